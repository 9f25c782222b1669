import type { EntitlementChange, PurchaseRecord } from '../domain/ownership';
import type { Store } from '../domain/results';
import type { Synchronization } from '../domain/synchronization';

/** What happened when a new synchronization tried to claim its lock. */
export type AcceptOutcome =
  | { outcome: 'accepted' }
  /** A synchronization with this id exists already (idempotent replay or a reused Correlation-Id). */
  | { outcome: 'exists'; existing: Synchronization }
  | { outcome: 'customer_missing' }
  /** The claim is held by this synchronization (Google: the token was registered before). */
  | { outcome: 'claimed'; synchronizationId: string }
  /** Another synchronization holds `lockKey` until `leaseExpiresAt`. */
  | { outcome: 'locked'; lockKey?: string; holder?: string; leaseExpiresAt?: number };

export interface AcceptRequest {
  sync: Synchronization;
  /**
   * Google registers: a permanent claim on the purchase token (not a lease), so a later register of
   * the same token answers the first synchronization (409 GPLAY0300).
   */
  claimKey?: string;
  leaseExpiresAt: number;
  /** Recorded on the customer as last-activity address when given. */
  ipAddress?: string;
}

/** Which subscription (Apple originalTransactionId) a transaction belongs to, learnt when it was verified. */
export interface TransactionLink {
  transactionId: string;
  originalTransactionId: string;
}

export interface FinalizeRequest {
  sync: Synchronization;
  transactionLinks?: TransactionLink[];
  /** Delete the synchronization's claim (`claimKey`) so the purchase may be registered again. */
  releaseClaim?: boolean;
  purchaseWrite?: { next: PurchaseRecord; expectedVersion: number };
  entitlementChanges: EntitlementChange[];
}

/**
 * Synchronization records, locks and the ownership records they finalize into.
 * `accept` and `finalize` are each one atomic write.
 */
export interface SynchronizationRepository {
  /** Claims the locks (absent or lease expired), creates the record and checks the customer, atomically. */
  accept(request: AcceptRequest): Promise<AcceptOutcome>;
  /** Undoes an `accept` whose workflow could not be started (owner-conditioned). */
  abandon(sync: Synchronization): Promise<void>;
  get(synchronizationId: string): Promise<Synchronization | undefined>;
  /** The subscription a transaction belongs to, if this service has verified it before. */
  findOriginalTransactionId(publisherId: number, transactionId: string): Promise<string | undefined>;
  /** Sets status `retrying` and the attempt count, unless already finalized. */
  markRetrying(synchronizationId: string, attempts: number, now: Date): Promise<void>;
  getPurchase(publisherId: number, store: Store, purchaseKey: string): Promise<PurchaseRecord | undefined>;
  /**
   * Writes the final record, the ownership record (fenced on its version), the entitlement changes
   * and releases the lock, in one transaction. Throws ConcurrentUpdateError when the fence fails.
   * Answers false when the synchronization was already finalized (nothing written).
   */
  finalize(request: FinalizeRequest): Promise<boolean>;
}
