import { ERROR_CODES } from '../../../lambdas/platform/errors';
import { OPENAPI_PATH, handler } from '../../../lambdas/openapi/get-openapi';
import { apiEvent } from '../../support/api-events';

/**
 * The GetOpenApi function serves `GET /openapi.json` and, deployed, the API's `$default` route:
 * every request no other route matches gets the contract's 404 REQ0008, not API Gateway's body.
 */

describe('GET /openapi.json', () => {
  it('answers the OpenAPI document as JSON, with nosniff', async () => {
    const result = await handler(apiEvent({ method: 'GET', path: OPENAPI_PATH }));
    expect(result.statusCode).toBe(200);
    expect(result.headers).toMatchObject({ 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
    expect(JSON.parse(result.body ?? '')).toMatchObject({ openapi: expect.stringMatching(/^3\.1/) });
  });
});

describe('unknown routes (the $default route)', () => {
  it.each<[string, string]>([
    ['GET', '/nope'],
    ['GET', '/'],
    ['POST', OPENAPI_PATH],
    ['HEAD', OPENAPI_PATH],
    ['GET', `${OPENAPI_PATH}/`],
    ['DELETE', '/storekit2/purchases'],
    ['GET', '/storekit2/purchases'],
  ])('%s %s answers 404 REQ0008 with the contract error body and nosniff', async (method, path) => {
    const result = await handler(apiEvent({ method, path, routeKey: '$default' }));
    expect(result.statusCode).toBe(404);
    expect(result.headers).toMatchObject({ 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
    expect(JSON.parse(result.body ?? '')).toEqual({ code: 'REQ0008', message: ERROR_CODES.REQ0008.message });
  });
});
