import * as z from 'zod';
import { STORES, SYNC_KINDS, SYNC_RESULTS } from './vocabulary';
import { positiveInt32, uuid } from '../platform/schema-primitives';

/** Contract §8: fixed source and detail-type of the one event this service publishes. */
export const EVENT_SOURCE = 'iap-sync';
export const SYNC_RESULT_DETAIL_TYPE = 'inappPurchaseSyncResult';

/** Every detail-type this service publishes. */
export const EVENT_DETAIL_TYPES = [SYNC_RESULT_DETAIL_TYPE] as const;
export type EventDetailType = (typeof EVENT_DETAIL_TYPES)[number];

/**
 * The rule pattern that selects the event, defined once: the CDK stack deploys it and the local
 * bus matches with it.
 */
export const SYNC_RESULT_EVENT_PATTERN = {
  source: [EVENT_SOURCE],
  'detail-type': [SYNC_RESULT_DETAIL_TYPE],
} as const;

const isoTimestamp = z.iso.datetime();

/** `data` of the webhook body; the EventBridge `detail` is this plus `broadcasterId`. */
export const SyncResultData = z
  .strictObject({
    synchronizationId: uuid(),
    store: z.enum(STORES),
    kind: z.enum(SYNC_KINDS),
    status: z.literal('finalized'),
    result: z.enum(SYNC_RESULTS),
    accessGranted: z.boolean(),
    offerId: z.string().optional(),
    cleengCustomerId: positiveInt32,
    previousCustomerId: positiveInt32.optional(),
    transactionId: z.string().nullable(),
    originalTransactionId: z.string().nullable(),
    purchaseToken: z.string().nullable(),
    packageName: z.string().nullable(),
    productId: z.string().nullable(),
    expiresAt: isoTimestamp.nullable(),
    correlationId: z.string().optional(),
    ownershipVersion: z.number().int().min(0),
    finalizedAt: isoTimestamp,
  })
  .meta({ id: 'InappPurchaseSyncResultData' });
export type SyncResultData = z.infer<typeof SyncResultData>;

export const SyncResultDetail = SyncResultData.extend({ broadcasterId: positiveInt32 }).meta({
  id: 'InappPurchaseSyncResultDetail',
});
export type SyncResultDetail = z.infer<typeof SyncResultDetail>;

export const SyncResultWebhookBody = z
  .strictObject({
    broadcasterId: positiveInt32,
    topic: z.literal(SYNC_RESULT_DETAIL_TYPE),
    data: SyncResultData,
  })
  .meta({ id: 'InappPurchaseSyncResultWebhook' });
export type SyncResultWebhookBody = z.infer<typeof SyncResultWebhookBody>;

export function toDetail(broadcasterId: number, data: SyncResultData): SyncResultDetail {
  return { ...data, broadcasterId };
}
