import type { EntitlementChangedDetail } from '../../events/schemas';
import type { AppleConfig } from '../../stores/apple/config';
import { appAccountTokenFor } from '../../stores/apple/app-account-token';
import type { Store, SyncKind, SyncResult, SyncStatus } from '../../events/vocabulary';

/** Client metadata headers kept for support and analytics (contract §2). */
export interface ClientMetadata {
  appVersion?: string;
  deviceId?: string;
  deviceType?: string;
  userAction?: string;
}

/**
 * How the caller of a register or transfer showed it holds the purchase (contract §5), decided when
 * the request was accepted and checked again by the finalize against what the store said:
 * - `trusted`: a publisher token (the publisher's server answers for its customers);
 * - `signedTransaction`: a customer JWT with a verified `signedTransactionInfo`, which named these ids;
 * - `purchaseToken`: a customer JWT on Google, where the purchase token is itself the proof;
 * - `none`: a customer JWT without proof; such a synchronization never moves a purchase.
 */
export type PossessionProof =
  | { kind: 'trusted' }
  | { kind: 'signedTransaction'; transactionId: string; originalTransactionId: string }
  | { kind: 'purchaseToken' }
  | { kind: 'none' };

/**
 * `refresh`: the internal synchronization a store notification starts, which re-reads one purchase
 * from the store; never visible on the status route, never an `inappPurchaseSyncResult`.
 */
export type SynchronizationKind = SyncKind | 'refresh';

/** The synchronization record: one per accepted register or transfer, or per store notification (`refresh`). */
export interface Synchronization {
  synchronizationId: string;
  publisherId: number;
  store: Store;
  kind: SynchronizationKind;
  /** The customer who asked (0 for a refresh: the purchase's owner decides). */
  customerId: number;
  transactionId?: string;
  purchaseToken?: string;
  packageName?: string;
  /** Google: the product the caller said it bought; must match what Google answers. */
  productId?: string;
  status: SyncStatus;
  result?: SyncResult;
  accessGranted?: boolean;
  offerId?: string;
  correlationId?: string;
  /** SHA-256 of what the caller asked for: tells an idempotent replay from a reused Correlation-Id. */
  requestHash: string;
  /** The locks this synchronization holds until it finalizes (transaction, and subscription when known). */
  lockKeys: string[];
  /** Google registers: the permanent claim on the purchase token this synchronization made. */
  claimKey?: string;
  /**
   * Registers and transfers: see PossessionProof. Absent on records accepted before proof of
   * possession existed; those do not say whether a publisher token or a customer JWT made them, so
   * they count as trusted.
   */
  proof?: PossessionProof;
  client: ClientMetadata;
  /** The customer's IPv4 address the request carried (required with a publisher token). */
  ipAddress?: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
  /** Google: the finalize asked for an acknowledgement (kept so a retried finalize asks again). */
  acknowledge?: boolean;
  /**
   * EXPRESS: the execution ended after MarkRetrying; the recovery sweeper starts the next attempt
   * at `retryAt` (ISO 8601).
   */
  parked?: boolean;
  retryAt?: string;
  /** Restarts by the recovery sweeper; the current execution is named after it (see executionName). */
  recoveries?: number;
  /**
   * `claimed` from the finalize write until the workflow's MarkPublished state records `published`.
   * A finalized synchronization stays in the open index while `claimed`, so the recovery sweeper
   * publishes the event of an execution that died in between; a duplicate execution (EXPRESS runs
   * at least once) sees `published` and does not publish again.
   */
  publishState?: 'claimed' | 'published';
  /** Kept so a retried finalize or publish re-sends the same event. */
  eventDetail?: Record<string, unknown>;
  /** The `inappEntitlementChanged` details of the finalize, kept for the same reason. */
  entitlementEvents?: EntitlementChangedDetail[];
  /** Refresh: the purchase re-read (Apple originalTransactionId, Google purchase token). */
  purchaseKey?: string;
  /** Refresh: the store notification that started it (its type is a hint for the decision, e.g. Apple REVOKE). */
  notice?: { id: string; type: string; subtype?: string };
  /** Refresh: what the finalize did, for logs and support. */
  refreshOutcome?: 'changed' | 'never_synchronized' | 'store_gave_no_answer' | 'stale' | 'no_change';
}

/**
 * How a synchronization is addressed inside the service: its id is unique per publisher only (a
 * register's UUID Correlation-Id becomes its id, and publishers choose those), so the publisher goes with it.
 */
export interface SyncRef {
  publisherId: number;
  synchronizationId: string;
}

/** What the caller of the status route sees (contract §4). */
export function toStatusView(sync: Synchronization) {
  const finalized = sync.status === 'finalized';
  return {
    synchronizationId: sync.synchronizationId,
    status: sync.status,
    ...(finalized ? { accessGranted: sync.accessGranted ?? false } : {}),
    ...(finalized && sync.accessGranted && sync.offerId ? { offerId: sync.offerId } : {}),
    ...(finalized && sync.result ? { result: sync.result } : {}),
    ...(sync.correlationId !== undefined ? { correlationId: sync.correlationId } : {}),
  };
}

/**
 * The Step Functions execution of a synchronization: named after it, so a repeated start is a no-op;
 * a restart by the recovery sweeper adds `.r<n>` (an execution name can never be reused).
 */
export function executionName(sync: Pick<Synchronization, 'publisherId' | 'synchronizationId' | 'recoveries'>): string {
  const recoveries = sync.recoveries ?? 0;
  // The publisher is part of the name: two publishers may use the same UUID (their Correlation-Id).
  const base = `${sync.publisherId}-${sync.synchronizationId}`;
  return recoveries === 0 ? base : `${base}.r${recoveries}`;
}

/** Whether a customer JWT made the synchronization (records without `proof` predate the field: not known, so no). */
export function madeByCustomer(sync: Pick<Synchronization, 'proof'>): boolean {
  return sync.proof?.kind === 'signedTransaction' || sync.proof?.kind === 'none' || sync.proof?.kind === 'purchaseToken';
}

/**
 * The `appAccountToken` an Apple register's transaction must carry: the customer's own, when the
 * publisher requires it (AppleConfig.appAccountTokenNamespace) and a customer JWT made the register.
 * Publisher-token calls are trusted, and transfers carry their proof in `signedTransactionInfo`.
 */
export function requiredAppAccountToken(sync: Synchronization, apple: AppleConfig | undefined): string | undefined {
  const namespace = apple?.appAccountTokenNamespace;
  if (namespace === undefined || sync.store !== 'apple' || sync.kind !== 'register' || !madeByCustomer(sync)) return undefined;
  return appAccountTokenFor(namespace, sync.customerId);
}
