import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import { ApiError, DependencyUnavailableError, ERROR_CODES, type ErrorCode } from './errors';
import type { Logger } from './logger';
import { MAX_BODY_BYTES, RequestHeaders } from './schema-primitives';

export type ApiEvent = APIGatewayProxyEventV2;
export type ApiResult = APIGatewayProxyStructuredResultV2;

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** The contract's error body; never a stack trace, SDK message or internal name. */
export function errorResult(error: ApiError): ApiResult {
  const { code, extra } = error;
  const headers: Record<string, string> = {};
  if (extra.retryAfterSeconds !== undefined) headers['retry-after'] = String(extra.retryAfterSeconds);
  return json(
    ERROR_CODES[code].status,
    { code, message: error.message, ...(extra.synchronizationId ? { synchronizationId: extra.synchronizationId } : {}) },
    headers,
  );
}

export function apiError(code: ErrorCode, detail?: string): ApiError {
  return new ApiError(code, {}, detail);
}

/** Lower-cased header map (API Gateway 2.0 already lower-cases; the local server does too). */
function headerMap(event: ApiEvent): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) out[name.toLowerCase()] = value;
  return out;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`)
    .join('; ');
}

export function parseHeaders(event: ApiEvent): RequestHeaders {
  const headers = headerMap(event);
  if (headers['x-publisher-id'] === undefined) throw apiError('REQ0004', 'X-Publisher-Id is required.');
  const parsed = RequestHeaders.safeParse(headers);
  if (!parsed.success) throw apiError('REQ0004', `Invalid headers: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Contract §1: JSON only (415), at most 16 KiB (413), valid and without unknown properties (400). */
export function parseJsonBody<S extends z.ZodType>(event: ApiEvent, schema: S): z.infer<S> {
  const contentType = headerMap(event)['content-type'] ?? '';
  if (!/^application\/json\s*(;.*)?$/i.test(contentType.trim())) throw apiError('REQ0005');
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64') : Buffer.from(event.body ?? '', 'utf8');
  if (raw.byteLength > MAX_BODY_BYTES) throw apiError('REQ0006');
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw apiError('REQ0001', 'The body is not valid JSON.');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw apiError('REQ0001', `Invalid body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Maps every failure to the contract: ApiError → its code; a dependency that is down → 503 S0002;
 * anything else → 500 S0001, logged with the request id that the response also carries.
 */
export function apiErrors(logger: Logger): MiddlewareObj<ApiEvent, ApiResult, Error, Context> {
  return {
    name: 'apiErrors',
    after: (request) => {
      if (request.response) {
        request.response.headers = { ...request.response.headers, 'x-request-id': request.context.awsRequestId };
      }
    },
    onError: (request) => {
      const error = request.error;
      let result: ApiResult;
      if (error instanceof ApiError) {
        result = errorResult(error);
        if (error.code === 'S0002') logger.warn('dependency unavailable', { requestId: request.context.awsRequestId });
      } else if (error instanceof DependencyUnavailableError) {
        logger.warn('dependency unavailable', { requestId: request.context.awsRequestId, error });
        result = errorResult(new ApiError('S0002'));
      } else {
        logger.error('unexpected error', {
          requestId: request.context.awsRequestId,
          routeKey: request.event.routeKey,
          error,
          stack: error instanceof Error ? error.stack : undefined,
        });
        result = errorResult(new ApiError('S0001'));
      }
      request.response = { ...result, headers: { ...result.headers, 'x-request-id': request.context.awsRequestId } };
    },
  };
}
