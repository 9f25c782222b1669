import * as z from 'zod';
import { SYNC_RESULTS, SYNC_STATUSES } from '../events/vocabulary';
import { ipv4, positiveInt32, uuid } from '../platform/schema-primitives';

export const appleTransactionId = z.string().regex(/^\d{1,64}$/, '1-64 digits');

/** Contract §3: the device's JWS, x5c chain included, is at most 8 KiB. */
export const MAX_SIGNED_TRANSACTION_INFO = 8192;

/** `POST /storekit2/purchases` and `/storekit2/purchases/transfers` (contract §3). */
export const AppleRegisterBody = z
  .strictObject({
    cleengCustomerId: positiveInt32,
    transactionId: appleTransactionId,
    ipAddress: ipv4.optional(),
    signedTransactionInfo: z
      .string()
      .min(1)
      .max(MAX_SIGNED_TRANSACTION_INFO)
      .optional()
      .describe(
        "Proof of possession: the device's signed transaction (StoreKit 2 `jwsRepresentation`) of this transaction or of any " +
          'transaction of the same subscription. Required for a transfer with a customer JWT, and for a register with a customer ' +
          'JWT that would move the purchase from another customer (`transfer` ownership policy); checked whenever a customer JWT sends it (403 AUTH0004).',
      ),
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
