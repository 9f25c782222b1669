import * as z from 'zod';
import { ERROR_CODES, type ErrorCode } from './errors';

/*
 * The contract's building blocks every route shares: sizes, identifiers, the common headers and the
 * error body. Route bodies live with their slice; these are here so the HTTP layer needs no slice.
 */

/** Contract §1: bodies above this size are `413 REQ0006`. */
export const MAX_BODY_BYTES = 16 * 1024;

const INT32_MAX = 2_147_483_647;
export const positiveInt32 = z.number().int().min(1).max(INT32_MAX);

/*
 * A regex's message is the rule in words, read after "must be" in an error answer
 * (`transactionId: must be 1-64 digits`); the pattern itself is never shown (platform/http.ts).
 */

/** Printable ASCII (0x20-0x7E), as header values must be. */
const printableAscii = (max: number, min = 1) =>
  z.string().min(min).max(max).regex(/^[\x20-\x7E]*$/, 'printable ASCII characters only');

export const ipv4 = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'an IPv4 address in dotted-quad form');

/**
 * Any 8-4-4-4-12 hex UUID, whatever its version: a client's Correlation-Id UUID becomes the
 * synchronizationId as sent (lower-cased), so the status route must accept every such id.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const uuid = () => z.string().regex(UUID_PATTERN, 'a UUID');

/** Headers after API Gateway lower-cases their names (payload format 2.0). */
export const RequestHeaders = z.object({
  'x-publisher-id': z
    .string()
    .regex(/^[1-9]\d{0,9}$/, 'an integer from 1 to 2147483647 in decimal digits')
    .transform(Number)
    .pipe(positiveInt32),
  'correlation-id': printableAscii(256).optional(),
  authorization: z.string().max(8192).optional(),
  'x-publisher-token': printableAscii(512).optional(),
  'x-app-version': printableAscii(256, 0).optional(),
  'x-device-id': printableAscii(256, 0).optional(),
  'x-device-type': printableAscii(256, 0).optional(),
  'x-user-action': printableAscii(256, 0).optional(),
});
export type RequestHeaders = z.infer<typeof RequestHeaders>;

/** The client metadata headers stored on the synchronization record (contract §2). */
export const CLIENT_METADATA_HEADERS = ['x-app-version', 'x-device-id', 'x-device-type', 'x-user-action'] as const;

export const ErrorResponse = z
  .object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    synchronizationId: uuid().optional(),
  })
  .meta({ id: 'Error' });
export type ErrorResponse = z.infer<typeof ErrorResponse>;
