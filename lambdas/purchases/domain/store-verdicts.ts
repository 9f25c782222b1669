import { appleSnapshot, googleSnapshot, isActiveAt, type LifecycleSnapshot } from '../../entitlements';
import type { AppleFacts, AppleVerification } from '../../stores/apple/facts';
import type { GoogleFacts, GoogleVerification } from '../../stores/google/facts';
import type { PurchaseState, StoreVerdict } from './ownership';

/** The lifecycle state as the register/transfer results see it: access now, revoked, or not active. */
export function purchaseStateOf(snapshot: LifecycleSnapshot, now: Date): PurchaseState {
  if (snapshot.state === 'revoked') return 'revoked';
  return isActiveAt(snapshot, now) ? 'active' : 'expired';
}

/** Apple's facts as a lifecycle snapshot; `hintType` is the notification that prompted the read, if any. */
export function appleLifecycle(facts: AppleFacts, now: Date, hintType?: string): LifecycleSnapshot {
  return appleSnapshot(
    {
      ...(facts.subscriptionStatus !== undefined ? { status: facts.subscriptionStatus } : {}),
      transaction: {
        transactionId: facts.transactionId,
        originalTransactionId: facts.originalTransactionId,
        productId: facts.productId,
        type: facts.type,
        ...(facts.expiresAt !== null ? { expiresDate: Date.parse(facts.expiresAt) } : {}),
        ...(facts.revokedAt !== null ? { revocationDate: Date.parse(facts.revokedAt) } : {}),
        ...(facts.revocationReason !== undefined ? { revocationReason: facts.revocationReason } : {}),
        // An answer without signedDate (never seen from Apple) is as new as the moment we read it.
        signedDate: facts.signedDate ?? now.getTime(),
        environment: facts.environment,
      },
      ...(facts.renewal ? { renewal: facts.renewal } : {}),
      ...(hintType !== undefined ? { hintType } : {}),
    },
    now,
  );
}

/** Apple's verification as a verdict: the latest renewal's state decides. */
export function appleVerdict(verification: AppleVerification | undefined, now: Date, hintType?: string): StoreVerdict | undefined {
  if (verification === undefined) return undefined;
  if (verification.outcome === 'not_found') return { outcome: 'not_found', result: 'TRANSACTION_ID_NOT_FOUND' };
  if (verification.outcome === 'invalid') return { outcome: 'invalid' };
  const { facts } = verification;
  const lifecycle = appleLifecycle(facts, now, hintType);
  return {
    outcome: 'verified',
    facts: {
      store: 'apple',
      purchaseKey: facts.originalTransactionId,
      productId: facts.productId,
      state: purchaseStateOf(lifecycle, now),
      expiresAt: facts.expiresAt,
      environment: facts.environment,
      lastTransactionId: facts.transactionId,
      ...(facts.appAccountToken !== undefined ? { appAccountToken: facts.appAccountToken } : {}),
      lifecycle,
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

/**
 * Google's facts as a lifecycle snapshot. `voided` (the Voided Purchases list names the token, or the
 * notification was SUBSCRIPTION_REVOKED / voidedPurchaseNotification) revokes only a subscription
 * Google no longer entitles: a voided order of an earlier period (a partial refund) leaves a
 * subscription Google still reads ACTIVE alone.
 */
export function googleLifecycle(facts: GoogleFacts, now: Date, voided = false): LifecycleSnapshot {
  const input = {
    subscriptionState: facts.subscriptionState,
    productId: facts.productId,
    expiryTime: facts.expiresAt,
    ...(facts.autoRenewEnabled !== undefined ? { autoRenewEnabled: facts.autoRenewEnabled } : {}),
    testPurchase: facts.testPurchase,
    readAt: now.toISOString(),
  };
  const plain = googleSnapshot(input, now);
  return voided && !isActiveAt(plain, now) ? googleSnapshot({ ...input, voided: true }, now) : plain;
}

/** Google's answer as a verdict for the ownership decision; the purchase token is the purchase key. */
export function googleVerdict(verification: GoogleVerification | undefined, now: Date, voided = false): StoreVerdict | undefined {
  if (verification === undefined) return undefined;
  if (verification.outcome === 'not_found') return { outcome: 'not_found', result: 'PURCHASE_TOKEN_NOT_FOUND' };
  if (verification.outcome === 'invalid') return { outcome: 'invalid' };
  const { facts } = verification;
  const lifecycle = googleLifecycle(facts, now, voided);
  return {
    outcome: 'verified',
    facts: {
      store: 'google',
      purchaseKey: facts.purchaseToken,
      productId: facts.productId,
      state: purchaseStateOf(lifecycle, now),
      expiresAt: facts.expiresAt,
      needsAcknowledgement: !facts.acknowledged,
      packageName: facts.packageName,
      ...(facts.linkedPurchaseToken !== undefined ? { linkedPurchaseToken: facts.linkedPurchaseToken } : {}),
      lifecycle,
    },
  };
}
