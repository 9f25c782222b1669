import * as z from 'zod';
import { ENTITLEMENT_REASONS, ENTITLEMENT_STATES, STORES, SYNC_KINDS, SYNC_RESULTS } from './vocabulary';
import { positiveInt32, uuid } from '../platform/schema-primitives';

/** Contract §8: fixed source and detail-type of the one event this service publishes. */
export const EVENT_SOURCE = 'iap-sync';
export const SYNC_RESULT_DETAIL_TYPE = 'inappPurchaseSyncResult';

export const ENTITLEMENT_CHANGED_DETAIL_TYPE = 'inappEntitlementChanged';

/** Every detail-type this service publishes (the webhook topics). */
export const EVENT_DETAIL_TYPES = [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE] as const;
export type EventDetailType = (typeof EVENT_DETAIL_TYPES)[number];

/**
 * The rule pattern that selects the event, defined once: the CDK stack deploys it and the local
 * bus matches with it.
 */
export const SYNC_RESULT_EVENT_PATTERN = {
  source: [EVENT_SOURCE],
  'detail-type': [SYNC_RESULT_DETAIL_TYPE],
} as const;

/**
 * The rule pattern that feeds webhook delivery: every detail-type is a webhook topic, so the rule
 * selects them all and the delivery picks endpoints by topic. Shared like SYNC_RESULT_EVENT_PATTERN.
 */
export const WEBHOOK_EVENT_PATTERN = {
  source: [EVENT_SOURCE],
  'detail-type': [...EVENT_DETAIL_TYPES],
} as const;

const isoTimestamp = z.iso.datetime();

/**
 * Apple: the purchase's `appAccountToken` (the UUID the app attached to it), null when it has none
 * and for Google. Optional only so events published before the field existed still read.
 * https://developer.apple.com/documentation/appstoreserverapi/appaccounttoken
 */
const appAccountToken = z.string().nullable().optional().describe("Apple: the purchase's appAccountToken; null when the app set none, and for Google");

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
    appAccountToken,
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

/** Contract §11: `data` of an `inappEntitlementChanged` webhook; the EventBridge `detail` adds `broadcasterId`. */
export const EntitlementChangedData = z
  .strictObject({
    cleengCustomerId: positiveInt32,
    offerId: z.string().nullable(),
    store: z.enum(STORES),
    reason: z.enum(ENTITLEMENT_REASONS),
    active: z.boolean(),
    state: z.enum(ENTITLEMENT_STATES),
    expiresAt: isoTimestamp.nullable(),
    previousExpiresAt: isoTimestamp.nullable(),
    willRenew: z.boolean(),
    productId: z.string(),
    transactionId: z.string().nullable(),
    originalTransactionId: z.string().nullable(),
    purchaseToken: z.string().nullable(),
    packageName: z.string().nullable(),
    appAccountToken,
    environment: z.enum(['Production', 'Sandbox']).nullable(),
    ownershipVersion: z.number().int().min(0),
    synchronizationId: uuid().nullable(),
    changedAt: isoTimestamp,
  })
  .meta({ id: 'InappEntitlementChangedData' });
export type EntitlementChangedData = z.infer<typeof EntitlementChangedData>;

export const EntitlementChangedDetail = EntitlementChangedData.extend({ broadcasterId: positiveInt32 }).meta({
  id: 'InappEntitlementChangedDetail',
});
export type EntitlementChangedDetail = z.infer<typeof EntitlementChangedDetail>;

export const EntitlementChangedWebhookBody = z
  .strictObject({
    broadcasterId: positiveInt32,
    topic: z.literal(ENTITLEMENT_CHANGED_DETAIL_TYPE),
    data: EntitlementChangedData,
  })
  .meta({ id: 'InappEntitlementChangedWebhook' });
export type EntitlementChangedWebhookBody = z.infer<typeof EntitlementChangedWebhookBody>;

/**
 * The registry: each detail-type with its detail schema and version. Consumers and the webhook
 * delivery look events up here; a new event is one more entry.
 */
export const EVENT_REGISTRY = {
  [SYNC_RESULT_DETAIL_TYPE]: { version: 1, detail: SyncResultDetail, webhookBody: SyncResultWebhookBody },
  [ENTITLEMENT_CHANGED_DETAIL_TYPE]: { version: 1, detail: EntitlementChangedDetail, webhookBody: EntitlementChangedWebhookBody },
} as const satisfies Record<EventDetailType, unknown>;

/** One PutEvents entry as the workflow's PublishEvents state sends it (the optimized integration serializes Detail). */
export interface EventEntry {
  Source: typeof EVENT_SOURCE;
  DetailType: EventDetailType;
  EventBusName: string;
  Detail: SyncResultDetail | EntitlementChangedDetail;
}
