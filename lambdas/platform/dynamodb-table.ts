/**
 * The one DynamoDB table of iap-sync (single-table design), defined once for the CDK stack, the
 * local runtime and the tests. Item keys are built only by `keys` below.
 */
export const TABLE_DEFINITION = {
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  /** Epoch seconds; DynamoDB deletes the item some time after. */
  timeToLiveAttribute: 'ttl',
  /**
   * Sparse index of the synchronizations that still need work: not finalized yet, or finalized with
   * their event not known to be published. Only those items carry `openShard`/`openSince`, so the recovery sweeper
   * reads a handful of items instead of scanning the table. Sixteen shards spread the writes of a busy
   * stack over partitions; `openSince` lets a query skip the young ones, whose workflow is surely running.
   */
  openIndex: {
    indexName: 'open-synchronizations',
    partitionKey: { name: 'openShard', type: 'S' },
    sortKey: { name: 'openSince', type: 'S' },
    /** The sweeper needs only the keys and a few fields; the record itself is read with GetItem. */
    projection: 'KEYS_ONLY',
  },
} as const;

/** Shards of the open index: the first hex digit of the synchronizationId (a UUID). */
export const OPEN_SHARDS = [...'0123456789abcdef'].map((digit) => `OPEN#${digit}`);

/** The open-index shard of a synchronization. */
export function openShardOf(synchronizationId: string): string {
  const digit = synchronizationId.charAt(0).toLowerCase();
  return /^[0-9a-f]$/.test(digit) ? `OPEN#${digit}` : 'OPEN#0';
}

/** The synchronization item's key parts; the workflow's MarkPublished state receives them as substitutions. */
export const SYNCHRONIZATION_KEY = { partitionPrefix: 'SYNC#', sortKey: 'SYNC' } as const;

export const keys = {
  publisher: (publisherId: number) => ({ pk: `PUBLISHER#${publisherId}`, sk: 'PROFILE' }),
  customer: (publisherId: number, customerId: number) => ({ pk: `PUBLISHER#${publisherId}`, sk: `CUSTOMER#${customerId}` }),
  offer: (publisherId: number, store: string, productId: string) => ({
    pk: `PUBLISHER#${publisherId}`,
    sk: `OFFER#${store}#${productId}`,
  }),
  synchronization: (synchronizationId: string) => ({
    pk: `${SYNCHRONIZATION_KEY.partitionPrefix}${synchronizationId}`,
    sk: SYNCHRONIZATION_KEY.sortKey,
  }),
  /** A lock key (stored on the synchronization) names what is locked, e.g. `apple#txn#2000000123`. */
  lock: (publisherId: number, lockKey: string) => ({ pk: `LOCK#${publisherId}#${lockKey}`, sk: 'LOCK' }),
  /** Transaction → subscription link (Apple), written when a transaction is verified. */
  transaction: (publisherId: number, store: string, transactionId: string) => ({
    pk: `TXN#${publisherId}#${store}#${transactionId}`,
    sk: 'TXN',
  }),
  purchase: (publisherId: number, store: string, purchaseKey: string) => ({
    pk: `PURCHASE#${publisherId}#${store}#${purchaseKey}`,
    sk: 'PURCHASE',
  }),
  /** A store notification, by the store's own id (Apple notificationUUID, Pub/Sub messageId): the idempotency key of the notification routes. */
  notification: (publisherId: number, store: string, notificationId: string) => ({
    pk: `NOTIFICATION#${publisherId}#${store}#${notificationId}`,
    sk: 'NOTIFICATION',
  }),
  entitlement: (publisherId: number, customerId: number, store: string, purchaseKey: string) => ({
    pk: `PUBLISHER#${publisherId}#CUSTOMER#${customerId}`,
    sk: `ENTITLEMENT#${store}#${purchaseKey}`,
  }),
} as const;
