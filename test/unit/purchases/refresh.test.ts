import type { AppleFacts } from '../../../lambdas/stores/apple/facts';
import { decidePurchase, decideRefresh, type PurchaseRecord } from '../../../lambdas/purchases/domain/ownership';
import { appleVerdict } from '../../../lambdas/purchases/domain/store-verdicts';

// A store notification re-reads the purchase; these are the entitlements it must produce.
const T0 = Date.parse('2026-12-07T10:00:00.000Z');
const DAY = 24 * 3600 * 1000;
const iso = (ms: number) => new Date(ms).toISOString();
const NOW = new Date(T0);

function facts(overrides: Partial<AppleFacts> = {}): AppleFacts {
  return {
    environment: 'Sandbox',
    transactionId: '2000000000000002',
    originalTransactionId: '2000000000000001',
    productId: 'premium_monthly',
    type: 'Auto-Renewable Subscription',
    expiresAt: iso(T0 + 30 * DAY),
    revokedAt: null,
    subscriptionStatus: 1,
    signedDate: T0,
    renewal: { autoRenewStatus: 1, signedDate: T0 },
    ...overrides,
  };
}

/** The record a register of `facts()` wrote: owned by 101, entitled, with its lifecycle. */
function registered(): PurchaseRecord {
  const decision = decidePurchase({
    kind: 'register',
    publisherId: 1,
    customerId: 101,
    policy: 'keep',
    verdict: appleVerdict({ outcome: 'verified', facts: facts({ signedDate: T0 - DAY, renewal: { autoRenewStatus: 1, signedDate: T0 - DAY } }) }, new Date(T0 - DAY)),
    offerId: 'S1',
    existing: undefined,
    now: new Date(T0 - DAY),
  });
  const next = decision.purchaseWrite?.next;
  if (!next) throw new Error('the register wrote no record');
  return next;
}

function refresh(overrides: Partial<AppleFacts>, hint?: string, existing: PurchaseRecord | undefined = registered()) {
  return decideRefresh({
    publisherId: 1,
    verdict: appleVerdict({ outcome: 'verified', facts: facts(overrides) }, NOW, hint),
    offerId: 'S1',
    existing,
    now: NOW,
  });
}

describe('a store notification re-reads the purchase and the entitlement follows the store', () => {
  it.each([
    ['renewal: later expiry', { transactionId: '2000000000000003', expiresAt: iso(T0 + 60 * DAY) }, undefined, 'RENEWED', true, 'active'],
    ['refund', { revokedAt: iso(T0), subscriptionStatus: 5 }, 'REFUND', 'REFUNDED', false, 'revoked'],
    ['Family Sharing revoked', { revokedAt: iso(T0), subscriptionStatus: 5 }, 'REVOKE', 'REVOKED', false, 'revoked'],
    ['expired', { subscriptionStatus: 2, expiresAt: iso(T0 - 1000) }, 'EXPIRED', 'EXPIRED', false, 'expired'],
    [
      'grace period',
      { subscriptionStatus: 4, expiresAt: iso(T0 - 1000), renewal: { autoRenewStatus: 1, isInBillingRetryPeriod: true, gracePeriodExpiresDate: T0 + 16 * DAY, signedDate: T0 } },
      'DID_FAIL_TO_RENEW',
      'GRACE_PERIOD',
      true,
      'grace_period',
    ],
    [
      'billing retry without grace',
      { subscriptionStatus: 3, expiresAt: iso(T0 - 1000), renewal: { autoRenewStatus: 1, isInBillingRetryPeriod: true, signedDate: T0 } },
      'DID_FAIL_TO_RENEW',
      'BILLING_RETRY',
      false,
      'billing_retry',
    ],
    ['auto-renew switched off', { renewal: { autoRenewStatus: 0, signedDate: T0 } }, 'DID_CHANGE_RENEWAL_STATUS', 'RENEWAL_STATUS_CHANGED', true, 'active'],
  ])('%s', (_name, overrides, hint, reason, active, state) => {
    const decision = refresh(overrides, hint);
    expect(decision.entitlementChanges).toEqual([
      expect.objectContaining({ customerId: 101, reason, active, state, offerId: 'S1' }),
    ]);
    expect(decision.purchaseWrite).toMatchObject({ expectedVersion: 1, next: { ownershipVersion: 2, ownerCustomerId: 101 } });
  });

  it('a refund reversed restores access', () => {
    const refunded = refresh({ revokedAt: iso(T0), subscriptionStatus: 5 }, 'REFUND').purchaseWrite?.next;
    const later = new Date(T0 + 1000);
    const decision = decideRefresh({
      publisherId: 1,
      verdict: appleVerdict({ outcome: 'verified', facts: facts({ signedDate: T0 + 1000 }) }, later, 'REFUND_REVERSED'),
      offerId: 'S1',
      existing: refunded,
      now: later,
    });
    expect(decision.entitlementChanges).toEqual([expect.objectContaining({ reason: 'REFUND_REVERSED', active: true, state: 'active' })]);
  });

  it('a recovery from billing retry reads RECOVERED', () => {
    const retrying = refresh(
      { subscriptionStatus: 3, expiresAt: iso(T0 - 1000), renewal: { autoRenewStatus: 1, isInBillingRetryPeriod: true, signedDate: T0 } },
      'DID_FAIL_TO_RENEW',
    ).purchaseWrite?.next;
    const later = new Date(T0 + 1000);
    const decision = decideRefresh({
      publisherId: 1,
      verdict: appleVerdict({ outcome: 'verified', facts: facts({ transactionId: '2000000000000009', expiresAt: iso(T0 + 30 * DAY), signedDate: T0 + 1000 }) }, later, 'DID_RENEW'),
      offerId: 'S1',
      existing: retrying,
      now: later,
    });
    expect(decision.entitlementChanges).toEqual([expect.objectContaining({ reason: 'RECOVERED', active: true })]);
  });

  it('the same answer again (a redelivered notification) changes nothing', () => {
    const renewed = refresh({ transactionId: '2000000000000003', expiresAt: iso(T0 + 60 * DAY) }).purchaseWrite?.next;
    const again = decideRefresh({
      publisherId: 1,
      verdict: appleVerdict({ outcome: 'verified', facts: facts({ transactionId: '2000000000000003', expiresAt: iso(T0 + 60 * DAY) }) }, NOW),
      offerId: 'S1',
      existing: renewed,
      now: NOW,
    });
    expect(again).toEqual({ entitlementChanges: [], unchanged: 'no_change' });
  });

  it('an older store answer (a delayed worker) never moves the entitlement backwards', () => {
    const renewed = refresh({ transactionId: '2000000000000003', expiresAt: iso(T0 + 60 * DAY) }).purchaseWrite?.next;
    const stale = decideRefresh({
      publisherId: 1,
      verdict: appleVerdict({ outcome: 'verified', facts: facts({ revokedAt: iso(T0), subscriptionStatus: 5, signedDate: T0 - 5000, renewal: { signedDate: T0 - 5000 } }) }, NOW),
      offerId: 'S1',
      existing: renewed,
      now: NOW,
    });
    expect(stale).toEqual({ entitlementChanges: [], unchanged: 'stale' });
  });

  it('a purchase nobody registered grants nothing', () => {
    const decision = decideRefresh({ publisherId: 1, verdict: appleVerdict({ outcome: 'verified', facts: facts() }, NOW, 'SUBSCRIBED'), offerId: 'S1', existing: undefined, now: NOW });
    expect(decision).toEqual({ entitlementChanges: [], unchanged: 'never_synchronized' });
  });

  it('a store that gave no answer changes nothing', () => {
    const decision = decideRefresh({ publisherId: 1, verdict: undefined, offerId: 'S1', existing: registered(), now: NOW });
    expect(decision).toEqual({ entitlementChanges: [], unchanged: 'store_gave_no_answer' });
  });
});
