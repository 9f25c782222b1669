/**
 * The `notificationType` names the service gives Google notices (a refresh synchronization's
 * `notice.type`), shared by the push route, the reconciliation and the verification step.
 */

/**
 * `subscriptionNotification.notificationType` codes and their names.
 * https://developer.android.com/google/play/billing/rtdn-reference#sub
 */
export const GOOGLE_SUBSCRIPTION_NOTIFICATION_NAMES: Readonly<Record<number, string>> = {
  1: 'SUBSCRIPTION_RECOVERED',
  2: 'SUBSCRIPTION_RENEWED',
  3: 'SUBSCRIPTION_CANCELED',
  4: 'SUBSCRIPTION_PURCHASED',
  5: 'SUBSCRIPTION_ON_HOLD',
  6: 'SUBSCRIPTION_IN_GRACE_PERIOD',
  7: 'SUBSCRIPTION_RESTARTED',
  8: 'SUBSCRIPTION_PRICE_CHANGE_CONFIRMED',
  9: 'SUBSCRIPTION_DEFERRED',
  10: 'SUBSCRIPTION_PAUSED',
  11: 'SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED',
  12: 'SUBSCRIPTION_REVOKED',
  13: 'SUBSCRIPTION_EXPIRED',
  17: 'SUBSCRIPTION_ITEMS_CHANGED',
  18: 'SUBSCRIPTION_CANCELLATION_SCHEDULED',
  19: 'SUBSCRIPTION_PRICE_CHANGE_UPDATED',
  20: 'SUBSCRIPTION_PENDING_PURCHASE_CANCELED',
  22: 'SUBSCRIPTION_PRICE_STEP_UP_CONSENT_UPDATED',
};

/** The notice of a `voidedPurchaseNotification` or of an entry of the Voided Purchases list. */
export const GOOGLE_VOIDED_NOTICE_TYPE = 'VOIDED_PURCHASE';

/**
 * Notices that say Google took the purchase back (refund with revocation, chargeback, revoke):
 * Google reads such a subscription as EXPIRED afterwards, so only the notice tells it from a lapse.
 */
export const GOOGLE_REVOKING_NOTICE_TYPES: ReadonlySet<string> = new Set(['SUBSCRIPTION_REVOKED', GOOGLE_VOIDED_NOTICE_TYPE]);

/** The name of a subscription notification code; unknown codes keep their number, so they are logged rather than lost. */
export function subscriptionNotificationName(code: number): string {
  return GOOGLE_SUBSCRIPTION_NOTIFICATION_NAMES[code] ?? `SUBSCRIPTION_NOTIFICATION_${code}`;
}
