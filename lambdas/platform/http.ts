import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import { ApiError, DependencyUnavailableError, ERROR_CODES, type ErrorCode } from './errors';
import { isTransientAwsError } from './aws-errors';
import type { Logger } from './logger';
import { MAX_BODY_BYTES, RequestHeaders } from './schema-primitives';

export type ApiEvent = APIGatewayProxyEventV2;
export type ApiResult = APIGatewayProxyStructuredResultV2;

/**
 * Every answer of the API carries these. `nosniff`: a browser must take the body for what
 * Content-Type says (JSON), never sniff it into HTML or script.
 */
export const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff' } as const;

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store', ...SECURITY_HEADERS };

/** Longest `message` an error answer carries; a longer detail is cut (it may echo parts of the request). */
export const MAX_ERROR_MESSAGE_LENGTH = 512;

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
    {
      code,
      message: truncate(error.message, MAX_ERROR_MESSAGE_LENGTH),
      ...(extra.synchronizationId ? { synchronizationId: extra.synchronizationId } : {}),
    },
    headers,
  );
}

/** `text` cut to at most `max` characters, ending with `…` when cut; never splits a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
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

/** At most this many problems, unknown keys or allowed values are named in one message. */
const MAX_LISTED = 5;
/** What is echoed of one name taken from the request (an unknown key, a record key in a path). */
const MAX_ECHOED_NAME = 64;

/** Up to MAX_LISTED items, then "and N more". */
function listCapped(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown} and ${items.length - MAX_LISTED} more` : shown;
}

/** A name from the request, quoted and cut to MAX_ECHOED_NAME characters. */
function echoedName(name: string): string {
  return JSON.stringify(truncate(name, MAX_ECHOED_NAME));
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  bigint: 'an integer',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

function typeWords(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return TYPE_WORDS[typeof value] ?? typeof value;
}

/** An allowed value of the schema (not of the input) as JSON; bigint and symbol as text. */
function literal(value: unknown): string {
  return typeof value === 'bigint' || typeof value === 'symbol' ? String(value) : (JSON.stringify(value) ?? String(value));
}

function sizeBound(origin: string, bound: number | bigint, side: 'min' | 'max', inclusive: boolean): string {
  const n = String(bound);
  if (origin === 'string') return side === 'min' ? (n === '1' ? 'must not be empty' : `must be at least ${n} characters`) : `must be at most ${n} characters`;
  if (origin === 'array' || origin === 'set') return `must have at ${side === 'min' ? 'least' : 'most'} ${n} items`;
  if (side === 'min') return inclusive ? `must be at least ${n}` : `must be greater than ${n}`;
  return inclusive ? `must be at most ${n}` : `must be less than ${n}`;
}

const FORMAT_WORDS: Record<string, string> = {
  uuid: 'a UUID',
  guid: 'a UUID',
  email: 'an email address',
  url: 'a URL',
  datetime: 'an ISO 8601 date-time',
  date: 'an ISO 8601 date',
  ipv4: 'an IPv4 address',
  base64: 'base64',
  base64url: 'base64url',
};

/**
 * The rule an input broke, in words: what the API tells a client instead of zod's default text,
 * which echoes regular expressions. Only for issues whose schema gives no message of its own
 * (zod's per-parse error map); nothing of the input is echoed but its type and, capped, the names
 * of unknown properties.
 */
const ruleInWords: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? 'is required'
        : `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}, not ${typeWords(issue.input)}`;
    case 'too_small':
      return sizeBound(issue.origin, issue.minimum, 'min', issue.inclusive !== false);
    case 'too_big':
      return sizeBound(issue.origin, issue.maximum, 'max', issue.inclusive !== false);
    case 'invalid_format':
      return FORMAT_WORDS[issue.format] !== undefined ? `must be ${FORMAT_WORDS[issue.format]}` : 'has an invalid format';
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'unrecognized_keys':
      return `unknown ${issue.keys.length === 1 ? 'property' : 'properties'} ${listCapped(issue.keys.map(echoedName))}`;
    case 'invalid_value':
      return issue.values.length === 1 ? `must be ${literal(issue.values[0])}` : `must be one of ${listCapped(issue.values.map(literal))}`;
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'invalid_key':
      return 'has an invalid key';
    case 'invalid_element':
      return 'has an invalid element';
    default:
      return 'is invalid';
  }
};

/**
 * One issue as `field: rule`. A schema's own message for a format (`'a UUID'`) reads as the rule
 * ("must be a UUID"); any message that would still show a pattern is replaced.
 */
function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.map((segment) => truncate(String(segment), MAX_ECHOED_NAME)).join('.') : 'body';
  let rule = issue.message;
  if (issue.code === 'invalid_format') {
    if (issue.pattern !== undefined && rule.includes(issue.pattern)) rule = 'has an invalid format';
    else if (!/^(must|has|is) /.test(rule)) rule = `must be ${rule}`;
  }
  return `${field}: ${rule}`;
}

/** The first MAX_LISTED issues, then how many more; parse with `ruleInWords` for the words. */
function describeIssues(error: z.ZodError): string {
  const { issues } = error;
  const shown = issues.slice(0, MAX_LISTED).map(describeIssue).join('; ');
  const more = issues.length - MAX_LISTED;
  return more > 0 ? `${shown}; and ${more} more ${more === 1 ? 'problem' : 'problems'}` : shown;
}

export function parseHeaders(event: ApiEvent): RequestHeaders {
  const headers = headerMap(event);
  if (headers['x-publisher-id'] === undefined) throw apiError('REQ0004', 'X-Publisher-Id is required.');
  const parsed = RequestHeaders.safeParse(headers, { error: ruleInWords });
  if (!parsed.success) throw apiError('REQ0004', `Invalid headers: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * The body (base64 when API Gateway says so) parsed as JSON, whatever its Content-Type: at most
 * `maxBytes` (else 413 REQ0006), valid JSON (else 400 REQ0001). Its shape is the caller's to check.
 */
export function readJsonBody(event: ApiEvent, maxBytes: number): unknown {
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64') : Buffer.from(event.body ?? '', 'utf8');
  if (raw.byteLength > maxBytes) throw apiError('REQ0006');
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw apiError('REQ0001', 'The body is not valid JSON.');
  }
}

/** Contract §1: JSON only (415), at most 16 KiB (413), valid and without unknown properties (400). */
export function parseJsonBody<S extends z.ZodType>(event: ApiEvent, schema: S): z.infer<S> {
  const contentType = headerMap(event)['content-type'] ?? '';
  if (!/^application\/json\s*(;.*)?$/i.test(contentType.trim())) throw apiError('REQ0005');
  const value = readJsonBody(event, MAX_BODY_BYTES);
  const parsed = schema.safeParse(value, { error: ruleInWords });
  if (!parsed.success) throw apiError('REQ0001', `Invalid body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Maps every failure to the contract: ApiError → its code; a dependency that is down or too slow
 * → 503 S0002; anything else → 500 S0001, logged with the request id that the response also carries.
 */
export function apiErrors(logger: Logger): MiddlewareObj<ApiEvent, ApiResult, Error, Context> {
  return {
    name: 'apiErrors',
    after: (request) => {
      if (request.response) {
        request.response.headers = { ...request.response.headers, ...SECURITY_HEADERS, 'x-request-id': request.context.awsRequestId };
      }
    },
    onError: (request) => {
      const error = request.error;
      let result: ApiResult;
      if (error instanceof ApiError) {
        result = errorResult(error);
        if (error.code === 'S0002') logger.warn('dependency unavailable', { requestId: request.context.awsRequestId });
      } else if (error instanceof DependencyUnavailableError || isTransientAwsError(error)) {
        // Also an SDK timeout or 5xx a caller did not wrap, and middy's own TimeoutError a few
        // milliseconds before the function's: the client may retry, API Gateway must not answer.
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
