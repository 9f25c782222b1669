import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ApiError } from '../platform/errors';
import { SECURITY_HEADERS, errorResult } from '../platform/http';
import { buildOpenApiDocument } from './openapi';

/** The one path this function serves. */
export const OPENAPI_PATH = '/openapi.json';

let document: string | undefined;

/**
 * `GET /openapi.json`: the document generated from the zod schemas, built once per container.
 * The deployed API's `$default` route comes here too (lib/constructs/http-api.ts): any other method
 * or path answers the contract's `404 REQ0008` instead of API Gateway's own body.
 */
export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  if (event.requestContext.http.method !== 'GET' || event.rawPath !== OPENAPI_PATH) return errorResult(new ApiError('REQ0008'));
  document ??= JSON.stringify(buildOpenApiDocument());
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'max-age=300', ...SECURITY_HEADERS },
    body: document,
  };
};
