/**
 * Google refunds a purchase left unacknowledged for three days after it was bought
 * (https://developer.android.com/google/play/billing/integrate#process). The workflow tries to
 * acknowledge for about a minute (an EXPRESS execution ends at five); when that fails, the purchase
 * is recorded here and the scheduled reconciliation keeps asking Google until Google confirms or the
 * three days are over. Written only on that failure path, never on the happy path.
 */
export interface PendingAcknowledgement {
  publisherId: number;
  purchaseToken: string;
  /** Google's subscription id, which `purchases.subscriptions.acknowledge` names. */
  productId: string;
  packageName?: string;
  /** `pending` until Google confirms (`acknowledged`) or the reconciliation stops asking (`given_up`). */
  state: 'pending' | 'acknowledged' | 'given_up';
  /**
   * When Google's three days end (ISO 8601). Counted from the first synchronization that asked for
   * the acknowledgement: the purchase is older than that, so this errs late, never early.
   */
  acknowledgeBy: string;
  /** The synchronization whose workflow (or recovery) last recorded it. */
  synchronizationId: string;
  recordedAt: string;
  updatedAt: string;
  /** Attempts made after it was recorded (the reconciliation's). */
  attempts: number;
  lastError?: string;
  /** Pending: when the next attempt is due (ISO 8601), the index's sort key as read. */
  dueAt?: string;
  acknowledgedAt?: string;
  givenUpAt?: string;
  givenUpReason?: string;
}

/** What a failed acknowledgement records (the workflow's AcknowledgeLater state, or the recovery sweeper). */
export interface PendingAcknowledgementInput {
  publisherId: number;
  purchaseToken: string;
  productId: string;
  packageName?: string;
  synchronizationId: string;
  acknowledgeBy: Date;
  lastError?: string;
}

/** The pending acknowledgements in the table (one item per purchase token). */
export interface PendingAcknowledgementRepository {
  /**
   * Records a purchase to acknowledge later, due at once; idempotent. A purchase already pending
   * keeps its deadline and attempt count; one already `acknowledged` is left alone (Google's
   * acknowledgement is for good), answering `already_acknowledged`; one `given_up` is pending again
   * (a synchronization found it still unacknowledged and owned).
   */
  record(input: PendingAcknowledgementInput, now: Date): Promise<'recorded' | 'already_acknowledged'>;
  /** Pending acknowledgements due at `now`, oldest first, at most `limit`; only `publisherId`'s when given. */
  listDue(now: Date, limit: number, publisherId?: number): Promise<PendingAcknowledgement[]>;
  /** How many are pending, due or not (the alarm's metric); only `publisherId`'s when given. */
  countPending(publisherId?: number): Promise<number>;
  find(publisherId: number, purchaseToken: string): Promise<PendingAcknowledgement | undefined>;
  /**
   * The outcome of one attempt at a listed entry, conditioned on its `dueAt` still being the one
   * listed (so two runs never both count it); false when it moved meanwhile.
   * `retry`: failed, next attempt at `nextAt`; `acknowledged` and `given_up` take it out of the index.
   */
  settle(
    entry: PendingAcknowledgement,
    outcome: { kind: 'retry'; nextAt: Date; error: string } | { kind: 'acknowledged' } | { kind: 'given_up'; reason: string },
    now: Date,
  ): Promise<boolean>;
}
