import type { Store, SyncKind, SyncResult, SyncStatus } from '../../events/vocabulary';

/** Client metadata headers kept for support and analytics (contract §2). */
export interface ClientMetadata {
  appVersion?: string;
  deviceId?: string;
  deviceType?: string;
  userAction?: string;
}

/** The synchronization record: one per accepted register or transfer. */
export interface Synchronization {
  synchronizationId: string;
  publisherId: number;
  store: Store;
  kind: SyncKind;
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
  client: ClientMetadata;
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
export function executionName(sync: Pick<Synchronization, 'synchronizationId' | 'recoveries'>): string {
  const recoveries = sync.recoveries ?? 0;
  return recoveries === 0 ? sync.synchronizationId : `${sync.synchronizationId}.r${recoveries}`;
}
