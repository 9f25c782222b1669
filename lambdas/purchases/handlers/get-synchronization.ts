import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { authenticate, credentialsOf, type CustomerTokenVerifier, JoseCustomerTokenVerifier, type PublisherRepository } from '../../tenants';
import type { Store } from '../../events/vocabulary';
import { getSynchronizationStatus } from '../domain/synchronization-status';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import { SynchronizationIdParam } from '../schemas';
import { apiError, apiErrors, json, parseHeaders, type ApiEvent, type ApiResult } from '../../platform/http';
import type { Logger } from '../../platform/logger';
import { createRuntime } from '../runtime';
import { instrument, lazyHandler } from '../../platform/handler';

export interface GetSynchronizationDeps {
  publishers: PublisherRepository;
  syncs: SynchronizationRepository;
  customerTokens: CustomerTokenVerifier;
  logger: Logger;
}

/** The route prefix tells the store: Apple and Google synchronizations are read through their own routes. */
function storeOf(event: ApiEvent): Store {
  const path = event.rawPath ?? event.requestContext?.http?.path ?? '';
  return path.startsWith('/google-play/') ? 'google' : 'apple';
}

/** `GET …/purchases/synchronizations/{synchronizationId}`. */
export function makeGetSynchronizationHandler(deps: GetSynchronizationDeps) {
  return middy<ApiEvent, ApiResult, Error, Context>()
    .use(apiErrors(deps.logger))
    .handler(async (event) => {
      const headers = parseHeaders(event);
      const { caller } = await authenticate(deps, credentialsOf(headers));
      const id = SynchronizationIdParam.safeParse(event.pathParameters?.synchronizationId?.toLowerCase());
      if (!id.success) throw apiError('REQ0003', 'synchronizationId must be a UUID.');
      const view = await getSynchronizationStatus(deps, { caller, store: storeOf(event), synchronizationId: id.data });
      return json(200, view);
    });
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('get-synchronization');
  return instrument(runtime, makeGetSynchronizationHandler({ ...runtime, customerTokens: new JoseCustomerTokenVerifier(runtime.secrets) }));
});
