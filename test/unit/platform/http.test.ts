import middy from '@middy/core';
import * as z from 'zod';
import { ApiError, ERROR_CODES } from '../../../lambdas/platform/errors';
import {
  MAX_ERROR_MESSAGE_LENGTH,
  apiErrors,
  errorResult,
  json,
  parseHeaders,
  parseJsonBody,
  type ApiEvent,
  type ApiResult,
} from '../../../lambdas/platform/http';
import { ipv4, positiveInt32, uuid } from '../../../lambdas/platform/schema-primitives';
import { AppleRegisterBody } from '../../../lambdas/purchases/schemas';
import { apiEvent, testContext } from '../../support/api-events';
import { RecordingLogger } from '../../support/fakes';

/**
 * What the API says about a request it refuses (security review, issue 15 §4): the field and the
 * rule in words, never a regular expression, a bounded echo of the input, a bounded message; and
 * `X-Content-Type-Options: nosniff` on every answer.
 */

const JSON_TYPE = { 'content-type': 'application/json' };

function post(body: unknown, headers: Record<string, string> = JSON_TYPE): ApiEvent {
  return apiEvent({ path: '/test', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** The ApiError `run` throws (fails the test when it throws nothing or something else). */
function refusal(run: () => unknown): ApiError {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

const Sample = z.strictObject({
  id: positiveInt32,
  name: z.string().min(1).max(8),
  code: z.string().regex(/^[A-Z]{3}\d$/),
  ip: ipv4.optional(),
  ref: uuid().optional(),
  tags: z.array(z.string()).max(2).optional(),
  kind: z.enum(['a', 'b']).optional(),
});
const VALID = { id: 7, name: 'ok', code: 'ABC1' };

describe('an invalid body names the field and the rule in words', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['a missing field', { name: 'ok', code: 'ABC1' }, 'id: is required'],
    ['a string for an integer', { ...VALID, id: '7' }, 'id: must be a number, not a string'],
    ['a fraction for an integer', { ...VALID, id: 1.5 }, 'id: must be an integer, not a number'],
    ['an int32 overflow', { ...VALID, id: 2_147_483_648 }, 'id: must be at most 2147483647'],
    ['zero for a positive integer', { ...VALID, id: 0 }, 'id: must be at least 1'],
    ['an empty string', { ...VALID, name: '' }, 'name: must not be empty'],
    ['a string too long', { ...VALID, name: 'x'.repeat(9) }, 'name: must be at most 8 characters'],
    ['a pattern without words of its own', { ...VALID, code: 'abc' }, 'code: has an invalid format'],
    ['an IP address', { ...VALID, ip: '300.1.1.1' }, 'ip: must be an IPv4 address in dotted-quad form'],
    ['a UUID', { ...VALID, ref: 'not-a-uuid' }, 'ref: must be a UUID'],
    ['too many items', { ...VALID, tags: ['a', 'b', 'c'] }, 'tags: must have at most 2 items'],
    ['a value outside an enum', { ...VALID, kind: 'c' }, 'kind: must be one of "a", "b"'],
    ['an unknown property', { ...VALID, status: 'finalized' }, 'body: unknown property "status"'],
  ])('%s', (_name, body, expected) => {
    const error = refusal(() => parseJsonBody(post(body), Sample));
    expect(error.code).toBe('REQ0001');
    expect(error.message).toBe(`Invalid body: ${expected}`);
  });

  it('says "transactionId: must be 1-64 digits" and shows no regular expression', () => {
    const { message } = refusal(() => parseJsonBody(post({ cleengCustomerId: 1, transactionId: 'abc' }), AppleRegisterBody));
    expect(message).toBe('Invalid body: transactionId: must be 1-64 digits');
  });

  it.each<[string, Record<string, unknown>]>([
    ['a pattern of its own', { ...VALID, code: 'abc' }],
    ['a schema message', { ...VALID, ip: 'x', ref: 'y' }],
    ['the Apple body', { cleengCustomerId: 1, transactionId: 'abc', ipAddress: '1.2.3' }],
  ])('never echoes a pattern (%s)', (_name, body) => {
    const schema = 'transactionId' in body ? AppleRegisterBody : Sample;
    const { message } = refusal(() => parseJsonBody(post(body), schema));
    expect(message).not.toMatch(/pattern|\/\^|\\d|\[0-9|\$\//);
  });

  it('names at most 5 problems, then how many more', () => {
    const body = { id: 'x', name: 1, code: 2, ip: 3, ref: 4, tags: 5, kind: 6 };
    const { message } = refusal(() => parseJsonBody(post(body), Sample));
    expect(message.split('; ')).toHaveLength(6);
    expect(message).toMatch(/; and 2 more problems$/);
  });
});

describe('what an invalid request echoes is bounded', () => {
  it('1,500 unknown keys: 5 of them named, then "and 1495 more", well under the cap', () => {
    const body: Record<string, unknown> = { ...VALID };
    for (let i = 0; i < 1500; i += 1) body[`k${i}`] = 0;
    const { message } = refusal(() => parseJsonBody(post(body), Sample));
    expect(message).toBe('Invalid body: body: unknown properties "k0", "k1", "k2", "k3", "k4" and 1495 more');
  });

  it('cuts each echoed key to 64 characters', () => {
    const long = 'a'.repeat(5000);
    const { message } = refusal(() => parseJsonBody(post({ ...VALID, [long]: 1 }), Sample));
    expect(message).toBe(`Invalid body: body: unknown property "${'a'.repeat(63)}…"`);
  });

  it(`never answers a message longer than ${MAX_ERROR_MESSAGE_LENGTH} characters`, () => {
    const result = errorResult(new ApiError('REQ0001', {}, `Invalid body: ${'x'.repeat(5000)}`));
    const { message } = JSON.parse(result.body ?? '{}') as { message: string };
    expect(message).toHaveLength(MAX_ERROR_MESSAGE_LENGTH);
    expect(message.endsWith('…')).toBe(true);
  });

  it('does not split a character made of two UTF-16 units when it cuts', () => {
    const detail = `${'x'.repeat(MAX_ERROR_MESSAGE_LENGTH - 2)}😀😀`;
    const { message } = JSON.parse(errorResult(new ApiError('REQ0001', {}, detail)).body ?? '{}') as { message: string };
    expect(message).toBe(`${'x'.repeat(MAX_ERROR_MESSAGE_LENGTH - 2)}…`);
  });

  it('keeps a short message as it is', () => {
    const { message } = JSON.parse(errorResult(new ApiError('REQ0008')).body ?? '{}') as { message: string };
    expect(message).toBe(ERROR_CODES.REQ0008.message);
  });
});

describe('invalid headers name the header and the rule', () => {
  it.each<[string, Record<string, string>, string]>([
    ['X-Publisher-Id not a number', { 'x-publisher-id': 'abc' }, 'x-publisher-id: must be an integer from 1 to 2147483647 in decimal digits'],
    ['X-Publisher-Id above int32', { 'x-publisher-id': '3000000000' }, 'x-publisher-id: must be at most 2147483647'],
    ['a control character in Correlation-Id', { 'x-publisher-id': '1', 'correlation-id': 'a\tb' }, 'correlation-id: must be printable ASCII characters only'],
    ['a Correlation-Id too long', { 'x-publisher-id': '1', 'correlation-id': 'c'.repeat(257) }, 'correlation-id: must be at most 256 characters'],
  ])('%s', (_name, headers, expected) => {
    const error = refusal(() => parseHeaders(apiEvent({ path: '/test', headers })));
    expect(error.code).toBe('REQ0004');
    expect(error.message).toBe(`Invalid headers: ${expected}`);
  });
});

describe('X-Content-Type-Options: nosniff on every answer', () => {
  const nosniff = (result: ApiResult | undefined) => result?.headers?.['x-content-type-options'];

  it('on a JSON answer and an error answer', () => {
    expect(nosniff(json(200, {}))).toBe('nosniff');
    expect(nosniff(errorResult(new ApiError('SK2C0101', { retryAfterSeconds: 2 })))).toBe('nosniff');
  });

  it.each<[string, () => Promise<ApiResult>, number]>([
    ['a success', async () => json(202, { ok: true }), 202],
    ['a documented error', async () => Promise.reject(new ApiError('AUTH0001')), 401],
    ['an unexpected error', async () => Promise.reject(new Error('boom')), 500],
    ['an answer built without json()', async () => ({ statusCode: 200, body: '{}' }), 200],
  ])('through the apiErrors middleware: %s', async (_name, answer, status) => {
    const handler = middy<ApiEvent, ApiResult>().use(apiErrors(new RecordingLogger())).handler(answer);
    const result = await handler(post(VALID), testContext);
    expect(result.statusCode).toBe(status);
    expect(nosniff(result)).toBe('nosniff');
  });
});
