import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { authenticate, credentialsOf, type CustomerTokenVerifier, JoseCustomerTokenVerifier, type PublisherRepository } from '../../tenants';
import { SfnWorkflowStarter } from '../adapters/sfn-workflow-starter';
import { acceptApplePurchase, acceptGooglePurchase, type AcceptDeps } from '../domain/accept-purchase';
import type { Store, SyncKind } from '../../events/vocabulary';
import type { Synchronization } from '../domain/synchronization';
import { systemClock } from '../../platform/clock';
import { AppleRegisterBody, AppleTransferBody, GoogleRegisterBody, GoogleTransferBody } from '../schemas';
import { LOCK_LEASE_SECONDS } from '../workflow-definition';
import { required } from '../../platform/config';
import { apiErrors, json, parseHeaders, parseJsonBody, type ApiEvent, type ApiResult } from '../../platform/http';
import { purchaseTokenHash, withKeys } from '../../platform/logger';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { createRuntime, type Runtime } from '../runtime';
import { instrument, lazyHandler } from '../../platform/handler';

export interface PurchaseHandlerDeps extends AcceptDeps {
  publishers: PublisherRepository;
  customerTokens: CustomerTokenVerifier;
  /** SynchronizationsAccepted (dimension `store`) on every 202; default none. */
  metrics?: MetricsRecorder;
}

/**
 * The register and transfer routes of both stores (`POST /storekit2/purchases`, `…/transfers`,
 * `POST /google-play/purchases`, `…/transfers`): parse, authenticate, accept (locks + record +
 * workflow), answer 202. The use case logs with the request's keys: publisherId, and the
 * transactionId or the purchase token's hash (never the token, nor any credential).
 */
export function makePurchaseHandler(store: Store, kind: SyncKind, deps: PurchaseHandlerDeps) {
  const metrics = deps.metrics ?? noMetrics;
  return middy<ApiEvent, ApiResult, Error, Context>()
    .use(apiErrors(deps.logger))
    .handler(async (event) => {
      const headers = parseHeaders(event);
      const { caller, publisher } = await authenticate(deps, credentialsOf(headers));
      const correlationId = headers['correlation-id'];
      const common = {
        kind,
        caller,
        publisher,
        ...(correlationId !== undefined ? { correlationId } : {}),
        client: {
          appVersion: headers['x-app-version'],
          deviceId: headers['x-device-id'],
          deviceType: headers['x-device-type'],
          userAction: headers['x-user-action'],
        },
      };
      const logger = withKeys(deps.logger, { publisherId: publisher.publisherId, store, kind });
      let sync: Synchronization;
      if (store === 'apple') {
        const body = parseJsonBody(event, kind === 'register' ? AppleRegisterBody : AppleTransferBody);
        sync = await acceptApplePurchase({ ...deps, logger: withKeys(logger, { transactionId: body.transactionId }) }, { ...common, body });
      } else {
        const body = parseJsonBody(event, kind === 'register' ? GoogleRegisterBody : GoogleTransferBody);
        const tokenKeys = { purchaseTokenHash: purchaseTokenHash(body.purchaseToken), packageName: body.packageName };
        sync = await acceptGooglePurchase({ ...deps, logger: withKeys(logger, tokenKeys) }, { ...common, body });
      }
      metrics.add('accepted', store);
      return json(202, {
        synchronizationId: sync.synchronizationId,
        ...(sync.correlationId !== undefined ? { correlationId: sync.correlationId } : {}),
      });
    });
}

/** The deployed wiring: DynamoDB, Step Functions and the customer-token verifier from configuration. */
export function defaultPurchaseDeps(service: string): PurchaseHandlerDeps & Runtime {
  const runtime = createRuntime(service);
  return {
    ...runtime,
    customerTokens: new JoseCustomerTokenVerifier(runtime.secrets),
    workflow: new SfnWorkflowStarter(required(runtime.config, 'STATE_MACHINE_ARN')),
    clock: systemClock,
    leaseSeconds: LOCK_LEASE_SECONDS,
    retryAfterSeconds: runtime.config.LOCK_RETRY_AFTER_SECONDS,
  };
}

/**
 * A register or transfer Lambda entry point: built on first call, logged and measured per invocation.
 * `extraDeps` adds what one store needs (the Apple routes' verifier of signed transactions): each
 * entry imports only its own store's code, so a Google route's bundle carries no Apple library.
 */
export function purchaseHandler(store: Store, kind: SyncKind, service: string, extraDeps?: (config: Runtime['config']) => Pick<AcceptDeps, 'signedTransactions'>) {
  return lazyHandler(() => {
    const runtimeDeps = defaultPurchaseDeps(service);
    const deps = { ...runtimeDeps, ...extraDeps?.(runtimeDeps.config) };
    return instrument(deps, makePurchaseHandler(store, kind, deps));
  });
}
