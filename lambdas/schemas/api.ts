import * as z from 'zod';
import { ERROR_CODES, type ErrorCode } from '../domain/errors';
import { SYNC_RESULTS, SYNC_STATUSES } from '../domain/results';

/** Contract §1: bodies above this size are `413 REQ0006`. */
export const MAX_BODY_BYTES = 16 * 1024;

const INT32_MAX = 2_147_483_647;
export const positiveInt32 = z.number().int().min(1).max(INT32_MAX);

/** Printable ASCII (0x20-0x7E), as header values must be. */
const printableAscii = (max: number, min = 1) =>
  z.string().min(min).max(max).regex(/^[\x20-\x7E]*$/, 'printable ASCII only');

export const ipv4 = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'IPv4 dotted quad');

/**
 * Any 8-4-4-4-12 hex UUID, whatever its version: a client's Correlation-Id UUID becomes the
 * synchronizationId as sent (lower-cased), so the status route must accept every such id.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const uuid = () => z.string().regex(UUID_PATTERN, 'a UUID');

export const appleTransactionId = z.string().regex(/^\d{1,64}$/, '1-64 digits');

/** `POST /storekit2/purchases` and `/storekit2/purchases/transfers` (contract §3). */
export const AppleRegisterBody = z
  .strictObject({
    cleengCustomerId: positiveInt32,
    transactionId: appleTransactionId,
    ipAddress: ipv4.optional(),
  })
  .meta({ id: 'AppleRegisterBody' });
export type AppleRegisterBody = z.infer<typeof AppleRegisterBody>;

export const AppleTransferBody = AppleRegisterBody.meta({ id: 'AppleTransferBody' });

/** `POST /google-play/purchases` and `/google-play/purchases/transfers` (contract §3). */
export const GoogleRegisterBody = z
  .strictObject({
    cleengCustomerId: positiveInt32,
    purchaseToken: z.string().min(1).max(4096).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : -'),
    packageName: z
      .string()
      .max(255)
      .regex(/^[a-zA-Z][\w]*(\.[a-zA-Z][\w]*)+$/, 'an Android application id'),
    // Any string: a value other than `subscription` is 400 GPLAY0004, not a schema error.
    productType: z.string().min(1).max(64),
    productId: z.string().min(1).max(200).optional(),
    ipAddress: ipv4.optional(),
  })
  .meta({ id: 'GoogleRegisterBody' });
export type GoogleRegisterBody = z.infer<typeof GoogleRegisterBody>;

export const GoogleTransferBody = GoogleRegisterBody.meta({ id: 'GoogleTransferBody' });

/** Headers after API Gateway lower-cases their names (payload format 2.0). */
export const RequestHeaders = z.object({
  'x-publisher-id': z
    .string()
    .regex(/^[1-9]\d{0,9}$/)
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

export const SynchronizationIdParam = uuid();

export const AcceptedResponse = z
  .object({
    synchronizationId: uuid(),
    correlationId: z.string().optional(),
  })
  .meta({ id: 'AcceptedResponse' });
export type AcceptedResponse = z.infer<typeof AcceptedResponse>;

export const SynchronizationStatusResponse = z
  .object({
    synchronizationId: uuid(),
    status: z.enum(SYNC_STATUSES),
    accessGranted: z.boolean().optional().describe('present only when finalized'),
    offerId: z.string().optional().describe('present only when accessGranted is true'),
    result: z.enum(SYNC_RESULTS).optional().describe('present only when finalized'),
    correlationId: z.string().optional().describe('present only when the starting request carried one'),
  })
  .meta({ id: 'SynchronizationStatus' });
export type SynchronizationStatusResponse = z.infer<typeof SynchronizationStatusResponse>;

export const ErrorResponse = z
  .object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    synchronizationId: uuid().optional(),
  })
  .meta({ id: 'Error' });
export type ErrorResponse = z.infer<typeof ErrorResponse>;
