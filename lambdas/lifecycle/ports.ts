import type { NoticeInput } from '../purchases';
import type { AppleConfig, AppleEnvironment } from '../stores/apple/config';
import type { HistoryWindow, NotificationHistoryPage } from '../stores/apple/notification-history';
import type { DecodedAppleNotification } from '../stores/apple/notifications';
import type { VerifiedPushToken } from '../stores/google/notifications';

/**
 * A verified store notification that asks the service to re-read one purchase: the purchases
 * slice's own notice type (its intake records and processes it), named here for the routes.
 */
export type PurchaseChangeNotice = NoticeInput;

/** Records a notice durably (idempotent on notificationId) and starts its processing. */
export interface NoticeIntake {
  /**
   * 'duplicate' when this notificationId was recorded before: nothing is started again.
   * Throws DependencyUnavailableError when the notice could not be recorded now (the store retries).
   */
  accept(notice: PurchaseChangeNotice): Promise<'accepted' | 'duplicate'>;
}

/**
 * Verifies an App Store Server Notification V2 signedPayload for one publisher's app and decodes it.
 * Implemented by AppleNotificationDecoder (stores/apple/notifications.ts) with Apple's SignedDataVerifier.
 */
export interface AppleNotificationVerifier {
  /**
   * Throws NotificationRejectedError when it is not a genuine notification for one of the app's
   * configured environments, and StoreUnavailableError when Apple's certificate status could not be checked.
   */
  decode(config: AppleConfig, signedPayload: string): Promise<DecodedAppleNotification>;
}

/**
 * Verifies the OIDC ID token of a Google Cloud Pub/Sub push (Real-time Developer Notifications):
 * Google's signature, issuer and lifetime. Implemented by JosePushTokenVerifier
 * (stores/google/adapters/push-token-verifier.ts) with `jose` and Google's JWKS.
 */
export interface GooglePushTokenVerifier {
  /**
   * The audiences and service account the token names; whether they are the publisher's is the caller's check.
   * Throws PushTokenRejectedError when it is not a genuine, current Google ID token, and
   * StoreUnavailableError when Google's keys could not be fetched (Pub/Sub retries).
   */
  verify(token: string): Promise<VerifiedPushToken>;
}

// The scheduled reconciliation's ports.

/**
 * Apple's Get Notification History for one publisher's app, page by page. Implemented by
 * AppleNotificationHistoryClient (stores/apple/notification-history.ts).
 */
export interface AppleNotificationHistory {
  /**
   * One page of the notifications Apple signed in `window` for `environment`; `paginationToken`
   * (from the previous page of the same window) asks for the next one.
   * @throws StoreUnavailableError when Apple cannot answer now (429, 5xx, network): the next run tries again.
   * @throws PaginationTokenRejectedError when Apple refuses the token: the window must be read from its start.
   * @throws StoreCredentialsError, StoreRejectedError when Apple refuses the key or the request.
   */
  page(config: AppleConfig, environment: AppleEnvironment, window: HistoryWindow, paginationToken: string | undefined): Promise<NotificationHistoryPage>;
}

/**
 * How far the catch-up of one publisher's store history got: Apple's Get Notification History of
 * one environment, or Google's Voided Purchases list of one app. Without `paginationToken` the
 * window is done: everything the store listed before `endDate` has been handed to the intake. With
 * it, the pages before the token were handed over and the rest of the window is still to read (both
 * stores want the same window with a token).
 */
export interface HistoryCursor {
  /** ISO 8601. */
  startDate: string;
  /** ISO 8601. */
  endDate: string;
  paginationToken?: string;
}

/** A purchase the reconcile index says is due for a re-check with its store. */
export interface DuePurchase {
  publisherId: number;
  store: 'apple' | 'google';
  /** Apple: originalTransactionId; Google: purchaseToken. */
  purchaseKey: string;
  /** When it became due (ISO 8601): the index's sort key as read, which a postponement is conditioned on. */
  reconcileAt: string;
  /** Re-checks handed over since the purchase was last written (the back-off grows with it). */
  attempts: number;
}

/** Which history a cursor follows: Apple's notifications of one environment, or Google's voided purchases of one app. */
export type CursorScope = { store: 'apple'; environment: AppleEnvironment } | { store: 'google'; packageName: string };

/** The reconciliation's own state in the table: history cursors and the reconcile index of purchases. */
export interface ReconcileRepository {
  getCursor(publisherId: number, scope: CursorScope): Promise<HistoryCursor | undefined>;
  /** Replaces the cursor; written only after everything it claims was handed over. */
  saveCursor(publisherId: number, scope: CursorScope, cursor: HistoryCursor): Promise<void>;
  /**
   * Purchases whose `reconcileAt` is at or before `now`, oldest first within each shard, at most
   * `limit` (spread over the shards so that none starves); only `publisherId`'s when given.
   */
  listDue(now: Date, limit: number, publisherId?: number): Promise<DuePurchase[]>;
  /**
   * Moves a purchase's next re-check to `until` and counts the attempt, conditioned on its
   * `reconcileAt` still being the one listed. False when the purchase was written (or postponed)
   * since: that write placed it in the index anew.
   */
  postpone(due: DuePurchase, until: Date): Promise<boolean>;
}

/** The publishers to reconcile (all of them; the use case skips those without a store configuration). */
export interface PublisherDirectory {
  listPublisherIds(): Promise<number[]>;
}

// The recovery sweeper's and the operator's (`iap-sync sync retry`) ports.

/** An execution of a synchronization's workflow started after its first one, kept on its record for operators (`sync show`). */
export interface ExecutionStarted {
  /** The execution's name: `<publisherId>-<id>.r<n>` (a restart) or `.a<n>` (EXPRESS: a parked attempt resumed). */
  name: string;
  /** ISO 8601. */
  startedAt: string;
  by: 'sweeper-restart' | 'sweeper-resume' | 'operator-restart' | 'operator-resume';
}

/**
 * Writes on synchronization records that only recovery makes (never on the happy path): the
 * executions started after the first one, and an operator's retry of a failed synchronization.
 */
export interface RecoveryRecords {
  /** Appends to the record's `executions`; a record gone meanwhile is left alone. */
  executionStarted(ref: { publisherId: number; synchronizationId: string }, started: ExecutionStarted): Promise<void>;
  /**
   * Names `retryId` as the retry of a finalized SYNCHRONIZATION_FAILED synchronization (`retriedAs`),
   * conditioned on it having none yet: false when it is not such a synchronization, or another retry
   * was named first.
   */
  claimRetry(ref: { publisherId: number; synchronizationId: string }, retryId: string, now: Date): Promise<boolean>;
  /** Undoes claimRetry when the retry could not be accepted (conditioned on `retriedAs` still being `retryId`). */
  releaseRetry(ref: { publisherId: number; synchronizationId: string }, retryId: string): Promise<void>;
  /** The record's `openSince` (in the open index since: accept, last restart or resume), undefined when not open. */
  openSince(ref: { publisherId: number; synchronizationId: string }): Promise<string | undefined>;
}
