import type { AppleConfig } from '../stores/apple/config';
import type { DecodedAppleNotification } from '../stores/apple/notifications';

/** A verified store notification that asks the service to re-read one purchase. */
export interface PurchaseChangeNotice {
  publisherId: number;
  store: 'apple' | 'google';
  /** The store's own id: Apple notificationUUID, Pub/Sub messageId. Idempotency key. */
  notificationId: string;
  notificationType: string;
  subtype?: string;
  /** Apple: originalTransactionId; Google: purchaseToken. */
  purchaseKey: string;
  /** Apple: the transaction the notification names (the store is asked about it). */
  transactionId?: string;
  /** ISO 8601: when the store signed/published it. */
  sentAt: string;
}

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
