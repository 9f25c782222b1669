import { createHash } from 'node:crypto';

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
  /**
   * Sparse index of the purchases the scheduled reconciliation re-checks with the store: only
   * purchase items whose state could still change without a notification telling us (see
   * {@link reconcileIndexAttributes}) carry `reconcileShard`/`reconcileAt`, so the job reads the
   * due ones instead of scanning every purchase. Sixteen shards like the open index; `reconcileAt`
   * (ISO 8601) lets a query take only what is due.
   */
  reconcileIndex: {
    indexName: 'reconcile-due',
    partitionKey: { name: 'reconcileShard', type: 'S' },
    sortKey: { name: 'reconcileAt', type: 'S' },
    /**
     * The keys name the purchase; the attempt count sets the job's back-off without reading the item.
     * Google acknowledgements the workflow could not get through wait in the same index under a
     * partition of their own ({@link PENDING_ACKNOWLEDGEMENT_SHARD}), due at their next attempt.
     */
    projection: 'INCLUDE',
    nonKeyAttributes: ['reconcileAttempts'],
  },
} as const;

/** Shards of the open index: the first hex digit of the synchronizationId (a UUID). */
export const OPEN_SHARDS = [...'0123456789abcdef'].map((digit) => `OPEN#${digit}`);

/** The open-index shard of a synchronization. */
export function openShardOf(synchronizationId: string): string {
  const digit = synchronizationId.charAt(0).toLowerCase();
  return /^[0-9a-f]$/.test(digit) ? `OPEN#${digit}` : 'OPEN#0';
}

/** Shards of the reconcile index: the first hex digit of the SHA-256 of the purchase item's `pk`. */
export const RECONCILE_SHARDS = [...'0123456789abcdef'].map((digit) => `DUE#${digit}`);

/**
 * The reconcile-index shard of a purchase item. Hashed, not the purchase key's own first digit:
 * Apple's originalTransactionIds of one app share their leading digits and would all land in one shard.
 */
export function reconcileShardOf(purchasePk: string): string {
  return `DUE#${createHash('sha256').update(purchasePk).digest('hex').charAt(0)}`;
}

/**
 * The reconcile-index partition of the pending Google acknowledgements (see `keys.pendingAcknowledgement`):
 * written only when the workflow's acknowledgement attempts failed, so it stays small, and one
 * partition lists them in the order they are due. Apart from the purchases' `DUE#` shards.
 */
export const PENDING_ACKNOWLEDGEMENT_SHARD = 'ACK#google';

/**
 * How long after the end of its period (or grace period) a purchase is due: Apple renews before the
 * period ends and notifies within moments, so an hour later a purchase still on record as the store
 * last said has most likely lost a notification.
 */
export const RECONCILE_MARGIN_SECONDS = 3600;

/**
 * The stores the reconciliation re-checks. A Google refresh of a due purchase carries no package
 * name: the workflow's verification finds it on the purchase record.
 */
export const RECONCILED_STORES: readonly string[] = ['apple', 'google'];

/** What of a purchase's lifecycle decides whether and when it is due (a LifecycleSnapshot has these). */
export interface ReconcileLifecycle {
  state: string;
  expiresAt: string | null;
  gracePeriodExpiresAt: string | null;
}

/**
 * The reconcile-index attributes of a purchase item, written with every Put of the item (so a write
 * that settles the purchase also takes it out of the index). In the index: a purchase of a
 * reconciled store, with an expiry, not revoked and not confirmed expired by the store (both only
 * change with a new purchase, which arrives as a notification or a register). Due at the later of
 * its period's end and its grace period's end, never before `now`, plus the margin: a purchase
 * written already past its end (billing retry) is looked at one margin later, not at once.
 */
export function reconcileIndexAttributes(
  purchasePk: string,
  store: string,
  lifecycle: ReconcileLifecycle,
  now: Date,
): { reconcileShard: string; reconcileAt: string } | Record<string, never> {
  if (!RECONCILED_STORES.includes(store)) return {};
  if (lifecycle.expiresAt === null || lifecycle.state === 'revoked' || lifecycle.state === 'expired') return {};
  const ends = [lifecycle.expiresAt, lifecycle.gracePeriodExpiresAt]
    .filter((value): value is string => value !== null)
    .map((value) => Date.parse(value))
    .filter((value) => Number.isFinite(value));
  if (ends.length === 0) return {};
  const dueAt = Math.max(now.getTime(), ...ends) + RECONCILE_MARGIN_SECONDS * 1000;
  return { reconcileShard: reconcileShardOf(purchasePk), reconcileAt: new Date(dueAt).toISOString() };
}

/** The parts of a purchase item's `pk` (the inverse of `keys.purchase(...).pk`); undefined for any other key. */
export function purchaseOfPk(pk: string): { publisherId: number; store: string; purchaseKey: string } | undefined {
  const match = /^PURCHASE#([1-9]\d*)#([a-z]+)#(.+)$/.exec(pk);
  if (!match?.[1] || !match[2] || !match[3]) return undefined;
  return { publisherId: Number(match[1]), store: match[2], purchaseKey: match[3] };
}

/** The synchronization item's key parts; the workflow's MarkPublished state receives them as substitutions. */
export const SYNCHRONIZATION_KEY = { partitionPrefix: 'SYNC#', sortKey: 'SYNC' } as const;

/** The parts of a synchronization item's `pk` (the inverse of `keys.synchronization(...).pk`); undefined for any other key. */
export function synchronizationOfPk(pk: string): { publisherId: number; synchronizationId: string } | undefined {
  const match = /^SYNC#([1-9]\d*)#(.+)$/.exec(pk);
  if (!match?.[1] || !match[2]) return undefined;
  return { publisherId: Number(match[1]), synchronizationId: match[2] };
}

export const keys = {
  publisher: (publisherId: number) => ({ pk: `PUBLISHER#${publisherId}`, sk: 'PROFILE' }),
  /**
   * The directory of publishers: one item whose number set `publisherIds` every publisher write
   * adds to, in the same transaction, so listing publishers is one GetItem instead of a Scan.
   */
  publisherDirectory: () => ({ pk: 'PUBLISHERS', sk: 'DIRECTORY' }),
  customer: (publisherId: number, customerId: number) => ({ pk: `PUBLISHER#${publisherId}`, sk: `CUSTOMER#${customerId}` }),
  offer: (publisherId: number, store: string, productId: string) => ({
    pk: `PUBLISHER#${publisherId}`,
    sk: `OFFER#${store}#${productId}`,
  }),
  /**
   * Scoped to the publisher (contract §5): a register's UUID Correlation-Id is its synchronizationId,
   * so the same UUID under another publisher must be another item, not a collision.
   */
  synchronization: (publisherId: number, synchronizationId: string) => ({
    pk: `${SYNCHRONIZATION_KEY.partitionPrefix}${publisherId}#${synchronizationId}`,
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
  /**
   * Where the scheduled reconciliation's catch-up of a store's history ended, per publisher, store
   * and what the store keeps a history of: Apple's notifications per environment (Production,
   * Sandbox), Google's voided purchases per app (package name).
   */
  reconcileCursor: (publisherId: number, scope: { store: 'apple'; environment: string } | { store: 'google'; packageName: string }) => ({
    pk: `RECONCILE#${publisherId}#${scope.store}#${scope.store === 'apple' ? scope.environment : scope.packageName}`,
    sk: 'CURSOR',
  }),
  /**
   * A Google purchase whose acknowledgement the workflow could not get through, kept until Google
   * confirms it or its three days are over. One per purchase token (by its SHA-256: tokens may be
   * 4096 characters), whichever synchronizations failed to acknowledge it.
   */
  pendingAcknowledgement: (publisherId: number, purchaseToken: string) => ({
    pk: `ACKNOWLEDGE#${publisherId}#google#${createHash('sha256').update(purchaseToken).digest('hex')}`,
    sk: 'ACKNOWLEDGE',
  }),
  entitlement: (publisherId: number, customerId: number, store: string, purchaseKey: string) => ({
    pk: `PUBLISHER#${publisherId}#CUSTOMER#${customerId}`,
    sk: `ENTITLEMENT#${store}#${purchaseKey}`,
  }),
} as const;
