import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { authenticate, credentialsOf, JoseCustomerTokenVerifier, type CustomerTokenVerifier, type PublisherRepository } from '../../tenants';
import type { Clock } from '../../platform/clock';
import { instrument, lazyHandler } from '../../platform/handler';
import { apiError, apiErrors, json, parseHeaders, type ApiEvent, type ApiResult } from '../../platform/http';
import type { Logger } from '../../platform/logger';
import { readEntitlements } from '../domain/read-entitlements';
import type { EntitlementRepository } from '../ports';
import { createEntitlementsRuntime } from '../runtime';
import { CleengCustomerIdParam } from '../schemas';

/** What `GET /customers/{cleengCustomerId}/entitlements` needs; tests pass fakes of each port. */
export interface GetEntitlementsDeps {
  publishers: PublisherRepository;
  customerTokens: CustomerTokenVerifier;
  entitlements: EntitlementRepository;
  /** Decides `active` at read time. */
  clock: Clock;
  logger: Logger;
}

/**
 * `GET /customers/{cleengCustomerId}/entitlements`: headers (400 REQ0004), credentials (401/403),
 * then the path parameter (400 REQ0003), as the synchronization status route checks them, then
 * {@link readEntitlements}.
 */
export function makeGetEntitlementsHandler(deps: GetEntitlementsDeps) {
  return middy<ApiEvent, ApiResult, Error, Context>()
    .use(apiErrors(deps.logger))
    .handler(async (event) => {
      const headers = parseHeaders(event);
      const { caller } = await authenticate(deps, credentialsOf(headers));
      const customerId = CleengCustomerIdParam.safeParse(event.pathParameters?.cleengCustomerId);
      if (!customerId.success) throw apiError('REQ0003', 'cleengCustomerId must be an integer from 1 to 2147483647.');
      return json(200, await readEntitlements(deps, { caller, customerId: customerId.data }));
    });
}

export const handler = lazyHandler(() => {
  const runtime = createEntitlementsRuntime('get-entitlements');
  return instrument(
    runtime,
    makeGetEntitlementsHandler({ ...runtime, customerTokens: new JoseCustomerTokenVerifier(runtime.secrets) }),
  );
});
