/**
 * `subscriptionState` of a SubscriptionPurchaseV2, as Google documents it:
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionState
 * Google has no "revoked" state: a refunded-and-revoked subscription (Play Console refund with
 * revoke, or `subscriptionsv2.revoke`) reads as SUBSCRIPTION_STATE_EXPIRED from then on. Google
 * may add values; an unknown one is treated as not entitled.
 */
export const GOOGLE_SUBSCRIPTION_STATES = [
  'SUBSCRIPTION_STATE_UNSPECIFIED',
  'SUBSCRIPTION_STATE_PENDING',
  'SUBSCRIPTION_STATE_ACTIVE',
  'SUBSCRIPTION_STATE_PAUSED',
  'SUBSCRIPTION_STATE_IN_GRACE_PERIOD',
  'SUBSCRIPTION_STATE_ON_HOLD',
  'SUBSCRIPTION_STATE_CANCELED',
  'SUBSCRIPTION_STATE_EXPIRED',
  'SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED',
] as const;

export type GoogleSubscriptionState = (typeof GOOGLE_SUBSCRIPTION_STATES)[number];

/**
 * What `purchases.subscriptionsv2.get` tells us about a purchase token, reduced to the line item
 * the service cares about (the one matching the expected product, else the first).
 */
export interface GoogleFacts {
  packageName: string;
  purchaseToken: string;
  /** The line item's product id (Google's subscription id, e.g. `premium_monthly`). */
  productId: string;
  /** Google's state string; kept as sent so a new value is logged rather than lost. */
  subscriptionState: string;
  /** The line item's `expiryTime` (ISO 8601); null when Google sent none (e.g. pending). */
  expiresAt: string | null;
  /** `acknowledgementState` is ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED. Unacknowledged purchases are refunded by Google after three days. */
  acknowledged: boolean;
  /** The purchase this one replaces (upgrade, downgrade, re-signup). */
  linkedPurchaseToken?: string;
  /** Google sent `testPurchase` (license tester or simulator purchase). */
  testPurchase: boolean;
  /** The line item's `autoRenewingPlan.autoRenewEnabled`; absent for prepaid plans or when Google sent none. */
  autoRenewEnabled?: boolean;
}

/** Outcome of asking Google; retryable failures are thrown instead (StoreUnavailableError). */
export type GoogleVerification =
  | { outcome: 'verified'; facts: GoogleFacts }
  | { outcome: 'not_found' }
  /** Package name or product id does not match what the caller expected. */
  | { outcome: 'invalid'; reason: string };

/**
 * One entry of `purchases.voidedpurchases.list`: an order Google refunded, charged back or
 * canceled. https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.voidedpurchases#VoidedPurchase
 */
export interface VoidedPurchase {
  purchaseToken: string;
  orderId: string;
  /** When Google voided it (ISO 8601). */
  voidedAt: string;
  /** 0 user, 1 developer, 2 Google. */
  voidedSource?: number;
  /** 0 other … 8 unacknowledged purchase (Google refunds what was not acknowledged in three days). */
  voidedReason?: number;
}

/** One page of voided purchases, oldest first; `nextPageToken` asks for the next page of the same window. */
export interface VoidedPurchasesPage {
  purchases: VoidedPurchase[];
  nextPageToken?: string;
}

/** Google's Voided Purchases API looks back at most 30 days. */
export const GOOGLE_VOIDED_WINDOW_DAYS = 30;
