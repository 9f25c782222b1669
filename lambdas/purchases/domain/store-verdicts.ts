import type { AppleFacts, AppleVerification } from '../../stores/apple/facts';
import type { GoogleFacts, GoogleVerification } from '../../stores/google/facts';
import type { PurchaseState, StoreVerdict } from './ownership';

/**
 * Whether the purchase grants access now. Grace period (4) grants access as Apple advises;
 * billing retry (3) does not. A consumable or non-renewing item with an expiry in the past is expired.
 * https://developer.apple.com/documentation/appstoreserverapi/status
 */
export function applePurchaseState(facts: AppleFacts, now: Date): PurchaseState {
  if (facts.revokedAt !== null || facts.subscriptionStatus === 5) return 'revoked';
  if (facts.type === 'Auto-Renewable Subscription' && facts.subscriptionStatus !== undefined) {
    return facts.subscriptionStatus === 1 || facts.subscriptionStatus === 4 ? 'active' : 'expired';
  }
  if (facts.expiresAt !== null && Date.parse(facts.expiresAt) <= now.getTime()) return 'expired';
  return 'active';
}

/** Apple's verification as a verdict: the latest renewal's state decides. */
export function appleVerdict(verification: AppleVerification | undefined, now: Date): StoreVerdict | undefined {
  if (verification === undefined) return undefined;
  if (verification.outcome === 'not_found') return { outcome: 'not_found', result: 'TRANSACTION_ID_NOT_FOUND' };
  if (verification.outcome === 'invalid') return { outcome: 'invalid' };
  const { facts } = verification;
  return {
    outcome: 'verified',
    facts: {
      store: 'apple',
      purchaseKey: facts.originalTransactionId,
      productId: facts.productId,
      state: applePurchaseState(facts, now),
      expiresAt: facts.expiresAt,
      environment: facts.environment,
      lastTransactionId: facts.transactionId,
    },
  };
}

/**
 * Whether the subscription grants access now, following Google's guidance on entitlement:
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionState
 * - ACTIVE and IN_GRACE_PERIOD (payment being retried, user keeps access) are entitled.
 * - CANCELED means auto-renew was turned off: entitled until `expiryTime`, expired after.
 * - PENDING, ON_HOLD, PAUSED, EXPIRED, PENDING_PURCHASE_CANCELED and unknown values are not.
 * 'revoked' is never answered from Google's state alone (see GOOGLE_SUBSCRIPTION_STATES); it
 * stays in the return type shared with Apple.
 */
export function googlePurchaseState(facts: GoogleFacts, now: Date): PurchaseState {
  switch (facts.subscriptionState) {
    case 'SUBSCRIPTION_STATE_ACTIVE':
    case 'SUBSCRIPTION_STATE_IN_GRACE_PERIOD':
      return 'active';
    case 'SUBSCRIPTION_STATE_CANCELED': {
      const expiresAt = facts.expiresAt === null ? Number.NaN : Date.parse(facts.expiresAt);
      return expiresAt > now.getTime() ? 'active' : 'expired';
    }
    default:
      return 'expired';
  }
}

/** Google's answer as a verdict for the ownership decision; the purchase token is the purchase key. */
export function googleVerdict(verification: GoogleVerification | undefined, now: Date): StoreVerdict | undefined {
  if (verification === undefined) return undefined;
  if (verification.outcome === 'not_found') return { outcome: 'not_found', result: 'PURCHASE_TOKEN_NOT_FOUND' };
  if (verification.outcome === 'invalid') return { outcome: 'invalid' };
  const { facts } = verification;
  return {
    outcome: 'verified',
    facts: {
      store: 'google',
      purchaseKey: facts.purchaseToken,
      productId: facts.productId,
      state: googlePurchaseState(facts, now),
      expiresAt: facts.expiresAt,
      needsAcknowledgement: !facts.acknowledged,
    },
  };
}
