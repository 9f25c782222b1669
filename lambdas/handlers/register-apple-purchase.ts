import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { SfnWorkflowStarter } from '../adapters/sfn-workflow-starter';
import { JoseCustomerTokenVerifier } from '../adapters/jose-customer-token-verifier';
import { authenticate } from '../domain/authenticate';
import { registerApplePurchase, type RegisterDeps } from '../domain/register-purchase';
import { systemClock } from '../ports/clock';
import type { CustomerTokenVerifier } from '../ports/credential-verifier';
import type { PublisherRepository } from '../ports/publisher-repository';
import { AppleRegisterBody } from '../schemas/api';
import { LOCK_LEASE_SECONDS } from '../shared/catalog';
import { required } from '../shared/config';
import { apiErrors, json, parseHeaders, parseJsonBody, type ApiEvent, type ApiResult } from '../shared/http';
import { createRuntime, lazyHandler } from '../shared/runtime';

export interface RegisterHandlerDeps extends RegisterDeps {
  publishers: PublisherRepository;
  customerTokens: CustomerTokenVerifier;
}

/** `POST /storekit2/purchases`: parse, authenticate, accept (lock + record + workflow), answer 202. */
export function makeRegisterApplePurchaseHandler(deps: RegisterHandlerDeps) {
  return middy<ApiEvent, ApiResult, Error, Context>()
    .use(apiErrors(deps.logger))
    .handler(async (event) => {
      const headers = parseHeaders(event);
      const { caller, publisher } = await authenticate(deps, {
        publisherId: headers['x-publisher-id'],
        ...(headers.authorization !== undefined ? { authorization: headers.authorization } : {}),
        ...(headers['x-publisher-token'] !== undefined ? { publisherToken: headers['x-publisher-token'] } : {}),
      });
      const body = parseJsonBody(event, AppleRegisterBody);
      const correlationId = headers['correlation-id'];
      const sync = await registerApplePurchase(deps, {
        caller,
        publisher,
        ...(correlationId !== undefined ? { correlationId } : {}),
        client: {
          appVersion: headers['x-app-version'],
          deviceId: headers['x-device-id'],
          deviceType: headers['x-device-type'],
          userAction: headers['x-user-action'],
        },
        body,
      });
      return json(202, {
        synchronizationId: sync.synchronizationId,
        ...(sync.correlationId !== undefined ? { correlationId: sync.correlationId } : {}),
      });
    });
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('register-apple-purchase');
  return makeRegisterApplePurchaseHandler({
    ...runtime,
    customerTokens: new JoseCustomerTokenVerifier(runtime.secrets),
    workflow: new SfnWorkflowStarter(required(runtime.config, 'STATE_MACHINE_ARN')),
    clock: systemClock,
    leaseSeconds: LOCK_LEASE_SECONDS,
    retryAfterSeconds: runtime.config.LOCK_RETRY_AFTER_SECONDS,
  });
});
