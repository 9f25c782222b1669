import type { EntitlementChange, PurchaseRecord, SupersededWrite } from '../domain/ownership';
import type { Store } from '../../events/vocabulary';
import type { Synchronization, SyncRef } from '../domain/synchronization';

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
  /** Google plan change: the replaced purchase ends in the same transaction, fenced on its own version. */
  supersededWrite?: SupersededWrite;
}

/** A lock another synchronization still holds: its name, its holder, and until when when known. */
export interface HeldLock {
  lockKey: string;
  holder: string;
  leaseExpiresAt?: number;
}

/** An entry of the open index: a synchronization that is not finalized, or whose event is not known to be published. */
export interface OpenSynchronization {
  publisherId: number;
  synchronizationId: string;
  /** When it was accepted, last restarted by the sweeper, or its publish failed (ISO 8601). */
  openSince: string;
}

/**
 * Synchronization records, locks and the ownership records they finalize into.
 * `accept` and `finalize` are each one atomic write.
 */
export interface SynchronizationRepository {
  /**
   * Checks the customer exists, then claims the locks (free: no owner, lease expired, or held by a
   * finalized synchronization) and creates the record, atomically.
   */
  accept(request: AcceptRequest): Promise<AcceptOutcome>;
  /**
   * Records a store notification and its refresh synchronization atomically, idempotent on the
   * store's notification id ('duplicate': recorded before, nothing written). Claims no lock: a
   * register or transfer of the same purchase is never refused because of a notification.
   */
  acceptNotice(sync: Synchronization, notice: { store: Store; notificationId: string }): Promise<'accepted' | 'duplicate'>;
  /** Undoes an `accept` whose workflow could not be started (owner-conditioned). */
  abandon(sync: Synchronization): Promise<void>;
  get(ref: SyncRef): Promise<Synchronization | undefined>;
  /** The subscription a transaction belongs to, if this service has verified it before. */
  findOriginalTransactionId(publisherId: number, transactionId: string): Promise<string | undefined>;
  /**
   * Sets status `retrying` and the attempt count, unless already finalized, and keeps the recovery
   * sweeper away until `nextAttemptAt` (the workflow is waiting, not lost). With `park` (EXPRESS) the
   * execution ends instead of waiting: the record says so, and the sweeper starts the attempt when due.
   */
  markRetrying(ref: SyncRef, attempts: number, now: Date, nextAttemptAt: Date, park?: { graceSeconds: number }): Promise<void>;
  /**
   * EXPRESS: the sweeper takes a parked synchronization whose attempt is due (conditioned on it still
   * being parked at the same attempt count, so two sweeps never start it twice). False otherwise.
   */
  resumeParked(sync: Synchronization, now: Date): Promise<boolean>;
  getPurchase(publisherId: number, store: Store, purchaseKey: string): Promise<PurchaseRecord | undefined>;
  /**
   * Writes the final record, the ownership record (fenced on its version) and the entitlement
   * changes in one transaction, then (outside it) Apple's transaction links, releasing the
   * transaction's lock with the same write. Locks are otherwise not released: a lock whose holder is
   * finalized is free. Throws ConcurrentUpdateError when the fence fails. Answers false when the
   * synchronization was already finalized (nothing written).
   */
  finalize(request: FinalizeRequest): Promise<boolean>;
  /** Open synchronizations (open index) whose `openSince` is before `olderThan`, at most `limit`. */
  listOpen(olderThan: Date, limit: number): Promise<OpenSynchronization[]>;
  /**
   * Counts one restart by the recovery sweeper and resets `openSince`, conditioned on the count read
   * (two sweepers never restart the same synchronization twice). False when someone else moved first
   * or it was finalized meanwhile.
   */
  recordRecovery(sync: Synchronization, now: Date): Promise<boolean>;
  /**
   * Takes the synchronization's locks again for a fresh lease (an operator's restart of a stuck one),
   * by the same rule as `accept`: free when unowned, its own, expired, or held by a synchronization
   * that is done. Answers the first lock another synchronization still holds (nothing renewed then),
   * or undefined when all are renewed.
   */
  renewLocks(sync: Pick<Synchronization, 'publisherId' | 'synchronizationId' | 'lockKeys'>, leaseExpiresAt: number): Promise<HeldLock | undefined>;
  /** Records that the event was published (the same write as the workflow's MarkPublished state): out of the open index. */
  markPublished(ref: SyncRef): Promise<void>;
}
