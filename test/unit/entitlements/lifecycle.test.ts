import {
  appleSnapshot,
  changeReason,
  ENTITLEMENT_REASONS,
  googleSnapshot,
  HISTORY_RETENTION_DAYS,
  isActiveAt,
  isStale,
  LIFECYCLE_STATES,
  retainUntil,
  type AppleLifecycleInput,
  type EntitlementReason,
  type GoogleLifecycleInput,
  type LifecycleSnapshot,
  type LifecycleState,
} from '../../../lambdas/entitlements/domain/lifecycle';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (offsetMs: number): string => new Date(NOW.getTime() + offsetMs).toISOString();
const ms = (offsetMs: number): number => NOW.getTime() + offsetMs;

type AppleTransaction = AppleLifecycleInput['transaction'];
type AppleRenewal = NonNullable<AppleLifecycleInput['renewal']>;

function appleSubscription(
  status: number | undefined,
  renewal?: AppleRenewal,
  transaction: Partial<AppleTransaction> = {},
  hintType?: string,
): AppleLifecycleInput {
  return {
    status,
    transaction: {
      transactionId: '2000000000000002',
      originalTransactionId: '2000000000000001',
      productId: 'premium.monthly',
      type: 'Auto-Renewable Subscription',
      expiresDate: ms(10 * DAY),
      signedDate: ms(-3 * HOUR),
      environment: 'Production',
      ...transaction,
    },
    renewal,
    hintType,
  };
}

function appleOneOff(type: AppleTransaction['type'], expiresDate?: number): AppleLifecycleInput {
  return appleSubscription(undefined, undefined, { type, expiresDate, productId: 'credits.100' });
}

function google(overrides: Partial<GoogleLifecycleInput>): GoogleLifecycleInput {
  return {
    subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
    productId: 'premium_monthly',
    expiryTime: at(10 * DAY),
    autoRenewEnabled: true,
    readAt: at(0),
    ...overrides,
  };
}

function snapshot(overrides: Partial<LifecycleSnapshot> = {}): LifecycleSnapshot {
  return {
    state: 'active',
    productId: 'premium.monthly',
    expiresAt: at(10 * DAY),
    gracePeriodExpiresAt: null,
    willRenew: true,
    environment: 'Production',
    transactionId: '2000000000000002',
    observedAt: at(0),
    ...overrides,
  };
}

describe('Apple answer as a lifecycle snapshot', () => {
  it.each<[string, number, LifecycleState, string | null]>([
    ['status 1 is active', 1, 'active', null],
    ['status 2 is expired', 2, 'expired', null],
    ['status 3 is billing retry', 3, 'billing_retry', null],
    ['status 4 is grace period, ending when the renewal info says', 4, 'grace_period', at(6 * DAY)],
    ['an unknown status grants nothing', 9, 'expired', null],
  ])('%s', (_name, status, state, graceEnd) => {
    const renewal = { autoRenewStatus: 1, gracePeriodExpiresDate: ms(6 * DAY), signedDate: ms(-2 * HOUR) };
    expect(appleSnapshot(appleSubscription(status, renewal), NOW)).toEqual({
      state,
      productId: 'premium.monthly',
      expiresAt: at(10 * DAY),
      gracePeriodExpiresAt: graceEnd,
      willRenew: true,
      environment: 'Production',
      transactionId: '2000000000000002',
      observedAt: at(-2 * HOUR),
    });
  });

  it.each<[string, AppleLifecycleInput, 'refund' | 'revoke']>([
    ['status 5 without a hint is a refund', appleSubscription(5), 'refund'],
    ['status 5 after a REVOKE notification is a Family Sharing revoke', appleSubscription(5, undefined, {}, 'REVOKE'), 'revoke'],
    ['status 5 after a REFUND notification is a refund', appleSubscription(5, undefined, {}, 'REFUND'), 'refund'],
    ['a revocationDate wins over an active status', appleSubscription(1, undefined, { revocationDate: ms(-HOUR) }), 'refund'],
    [
      'a revoked non-consumable after a REVOKE notification is a revoke',
      { ...appleOneOff('Non-Consumable'), transaction: { ...appleOneOff('Non-Consumable').transaction, revocationDate: ms(-HOUR) }, hintType: 'REVOKE' },
      'revoke',
    ],
  ])('%s', (_name, input, revocation) => {
    const result = appleSnapshot(input, NOW);
    expect(result.state).toBe('revoked');
    expect(result.revocation).toBe(revocation);
  });

  it('leaves revocation unset when the purchase is not revoked', () => {
    expect(appleSnapshot(appleSubscription(1, undefined, {}, 'REVOKE'), NOW)).not.toHaveProperty('revocation');
  });

  it.each<[string, AppleLifecycleInput, boolean]>([
    ['auto-renew on renews', appleSubscription(1, { autoRenewStatus: 1 }), true],
    ['auto-renew off does not renew', appleSubscription(1, { autoRenewStatus: 0 }), false],
    ['renewal info without autoRenewStatus does not renew', appleSubscription(1, {}), false],
    ['an active subscription without renewal info renews', appleSubscription(1, undefined), true],
    ['an expired subscription without renewal info does not renew', appleSubscription(2, undefined), false],
    ['a non-renewing subscription never renews', appleOneOff('Non-Renewing Subscription', ms(DAY)), false],
    ['a non-consumable never renews', appleOneOff('Non-Consumable'), false],
  ])('%s', (_name, input, willRenew) => {
    expect(appleSnapshot(input, NOW).willRenew).toBe(willRenew);
  });

  it.each<[string, AppleLifecycleInput, LifecycleState, string | null]>([
    ['a non-consumable is active and never expires', appleOneOff('Non-Consumable'), 'active', null],
    ['a non-consumable ignores a stray expiresDate', appleOneOff('Non-Consumable', ms(-DAY)), 'active', null],
    ['a consumable whose expiry passed is expired', appleOneOff('Consumable', ms(-DAY)), 'expired', at(-DAY)],
    ['a consumable before its expiry is active', appleOneOff('Consumable', ms(DAY)), 'active', at(DAY)],
    ['a consumable without expiry is active', appleOneOff('Consumable'), 'active', null],
    ['a non-renewing subscription before its expiry is active', appleOneOff('Non-Renewing Subscription', ms(DAY)), 'active', at(DAY)],
    ['a non-renewing subscription expiring exactly now is expired', appleOneOff('Non-Renewing Subscription', ms(0)), 'expired', at(0)],
    ['an auto-renewable without a status falls back to its expiry', appleSubscription(undefined, undefined, { expiresDate: ms(-1) }), 'expired', at(-1)],
    ['an auto-renewable without expiresDate cannot grant access forever', appleSubscription(1, undefined, { expiresDate: undefined }), 'expired', null],
  ])('%s', (_name, input, state, expiresAt) => {
    const result = appleSnapshot(input, NOW);
    expect([result.state, result.expiresAt]).toEqual([state, expiresAt]);
  });

  it.each<[string, AppleRenewal | undefined, number, string]>([
    ['the renewal info is newer', { autoRenewStatus: 1, signedDate: ms(-HOUR) }, ms(-3 * HOUR), at(-HOUR)],
    ['the transaction is newer', { autoRenewStatus: 1, signedDate: ms(-5 * HOUR) }, ms(-3 * HOUR), at(-3 * HOUR)],
    ['the renewal info has no signedDate', { autoRenewStatus: 1 }, ms(-3 * HOUR), at(-3 * HOUR)],
    ['there is no renewal info', undefined, ms(-4 * HOUR), at(-4 * HOUR)],
  ])('observedAt is the newest signedDate when %s', (_name, renewal, transactionSigned, observedAt) => {
    expect(appleSnapshot(appleSubscription(1, renewal, { signedDate: transactionSigned }), NOW).observedAt).toBe(observedAt);
  });

  it.each<[string, number, AppleRenewal]>([
    ['keeps a grace end only while in grace', 1, { autoRenewStatus: 1, gracePeriodExpiresDate: ms(DAY) }],
    ['shows no grace end in billing retry', 3, { autoRenewStatus: 1, gracePeriodExpiresDate: ms(-DAY), isInBillingRetryPeriod: true }],
    ['shows no grace end when Apple sent none', 4, { autoRenewStatus: 1 }],
  ])('%s', (_name, status, renewal) => {
    expect(appleSnapshot(appleSubscription(status, renewal), NOW).gracePeriodExpiresAt).toBeNull();
  });

  it('carries the sandbox environment and the latest transaction id', () => {
    const result = appleSnapshot(appleSubscription(1, undefined, { environment: 'Sandbox', transactionId: '42' }), NOW);
    expect([result.environment, result.transactionId]).toEqual(['Sandbox', '42']);
  });

  it('refuses a signedDate that is not a time', () => {
    expect(() => appleSnapshot(appleSubscription(1, undefined, { signedDate: Number.NaN }), NOW)).toThrow(RangeError);
  });
});

describe('Google answer as a lifecycle snapshot', () => {
  it.each<[string, Partial<GoogleLifecycleInput>, LifecycleState, boolean, string | null]>([
    ['ACTIVE is active', { subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE' }, 'active', true, null],
    ['ACTIVE without the enum prefix is active', { subscriptionState: 'ACTIVE' }, 'active', true, null],
    ['ACTIVE with auto-renew off does not renew', { autoRenewEnabled: false }, 'active', false, null],
    ['ACTIVE without autoRenewEnabled renews, as Google defines ACTIVE', { autoRenewEnabled: undefined }, 'active', true, null],
    ['ACTIVE whose expiry passed is expired', { expiryTime: at(-1) }, 'expired', false, null],
    ['ACTIVE expiring exactly now is expired', { expiryTime: at(0) }, 'expired', false, null],
    ['ACTIVE without expiry is expired, not endless', { expiryTime: null }, 'expired', false, null],
    ['CANCELED before its expiry is active and will not renew', { subscriptionState: 'SUBSCRIPTION_STATE_CANCELED' }, 'active', false, null],
    ['CANCELED after its expiry is expired', { subscriptionState: 'SUBSCRIPTION_STATE_CANCELED', expiryTime: at(-DAY) }, 'expired', false, null],
    ['IN_GRACE_PERIOD ends its grace at the expiry', { subscriptionState: 'SUBSCRIPTION_STATE_IN_GRACE_PERIOD', expiryTime: at(3 * DAY) }, 'grace_period', true, at(3 * DAY)],
    ['ON_HOLD is on hold', { subscriptionState: 'SUBSCRIPTION_STATE_ON_HOLD', expiryTime: at(-DAY) }, 'on_hold', true, null],
    ['PAUSED is paused', { subscriptionState: 'SUBSCRIPTION_STATE_PAUSED', expiryTime: at(-DAY) }, 'paused', true, null],
    ['EXPIRED is expired', { subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiryTime: at(-DAY) }, 'expired', false, null],
    ['PENDING is not entitled', { subscriptionState: 'SUBSCRIPTION_STATE_PENDING', expiryTime: null }, 'expired', false, null],
    ['PENDING_PURCHASE_CANCELED is not entitled', { subscriptionState: 'SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED', expiryTime: null }, 'expired', false, null],
    ['UNSPECIFIED is not entitled', { subscriptionState: 'SUBSCRIPTION_STATE_UNSPECIFIED' }, 'expired', false, null],
    ['a state Google may add later is not entitled', { subscriptionState: 'SUBSCRIPTION_STATE_SOMETHING_NEW' }, 'expired', false, null],
  ])('%s', (_name, overrides, state, willRenew, graceEnd) => {
    const result = googleSnapshot(google(overrides), NOW);
    expect([result.state, result.willRenew, result.gracePeriodExpiresAt]).toEqual([state, willRenew, graceEnd]);
  });

  it.each<[string, string]>([
    ['an active one', 'SUBSCRIPTION_STATE_ACTIVE'],
    ['one Google already reads as expired', 'SUBSCRIPTION_STATE_EXPIRED'],
  ])('reads %s that was voided or revoked as revoked', (_name, subscriptionState) => {
    expect(googleSnapshot(google({ subscriptionState, voided: true }), NOW)).toEqual({
      state: 'revoked',
      revocation: 'revoke',
      productId: 'premium_monthly',
      expiresAt: at(10 * DAY),
      gracePeriodExpiresAt: null,
      willRenew: false,
      environment: 'Production',
      observedAt: at(0),
    });
  });

  it.each<[string, boolean | undefined, 'Production' | 'Sandbox']>([
    ['a test purchase is sandbox', true, 'Sandbox'],
    ['a purchase not marked as test is production', false, 'Production'],
    ['a purchase without the test flag is production', undefined, 'Production'],
  ])('%s', (_name, testPurchase, environment) => {
    expect(googleSnapshot(google({ testPurchase }), NOW).environment).toBe(environment);
  });

  it('takes observedAt from the read time, in one ISO spelling', () => {
    const result = googleSnapshot(google({ readAt: '2025-06-01T14:00:00+02:00', expiryTime: '2025-06-11T12:00:00Z' }), NOW);
    expect([result.observedAt, result.expiresAt]).toEqual([at(0), at(10 * DAY)]);
  });

  it.each<[string, Partial<GoogleLifecycleInput>]>([
    ['read time', { readAt: 'yesterday' }],
    ['expiry', { expiryTime: 'soon' }],
  ])('refuses a %s that is not a date', (_name, overrides) => {
    expect(() => googleSnapshot(google(overrides), NOW)).toThrow(RangeError);
  });
});

describe('access at read time', () => {
  it.each<[string, LifecycleState, string | null, string | null, boolean]>([
    ['active before expiry', 'active', at(1), null, true],
    ['active exactly at expiry', 'active', at(0), null, false],
    ['active after expiry', 'active', at(-1), null, false],
    ['active and never expiring', 'active', null, null, true],
    ['active with an unreadable expiry', 'active', 'not a date', null, false],
    ['in grace before the grace end', 'grace_period', at(-DAY), at(1), true],
    ['in grace exactly at the grace end', 'grace_period', at(-DAY), at(0), false],
    ['in grace after the grace end', 'grace_period', at(DAY), at(-1), false],
    ['in grace without a grace end, before expiry', 'grace_period', at(1), null, true],
    ['in grace without a grace end, after expiry', 'grace_period', at(-1), null, false],
    ['in grace without any end', 'grace_period', null, null, false],
    ['in billing retry', 'billing_retry', at(DAY), null, false],
    ['on hold', 'on_hold', at(DAY), null, false],
    ['paused', 'paused', at(DAY), null, false],
    ['expired', 'expired', at(DAY), null, false],
    ['revoked', 'revoked', null, null, false],
  ])('%s gives access: %s', (_name, state, expiresAt, gracePeriodExpiresAt, expected) => {
    expect(isActiveAt({ state, expiresAt, gracePeriodExpiresAt }, NOW)).toBe(expected);
  });
});

describe('reason announced for a change', () => {
  const active = snapshot();
  const grace = snapshot({ state: 'grace_period', gracePeriodExpiresAt: at(6 * DAY) });
  const retry = snapshot({ state: 'billing_retry', expiresAt: at(-DAY) });
  const hold = snapshot({ state: 'on_hold', expiresAt: at(-DAY) });
  const paused = snapshot({ state: 'paused', expiresAt: at(-DAY) });
  const expired = snapshot({ state: 'expired', expiresAt: at(-DAY), willRenew: false });
  const refunded = snapshot({ state: 'revoked', revocation: 'refund', willRenew: false });
  const revoked = snapshot({ state: 'revoked', revocation: 'revoke', willRenew: false });

  it.each<[string, LifecycleSnapshot, EntitlementReason]>([
    ['an active purchase', active, 'PURCHASED'],
    ['a purchase already in grace', grace, 'GRACE_PERIOD'],
    ['a purchase already in billing retry', retry, 'BILLING_RETRY'],
    ['a purchase already on hold', hold, 'ON_HOLD'],
    ['a purchase already paused', paused, 'PAUSED'],
    ['a purchase already expired', expired, 'EXPIRED'],
    ['a purchase already refunded', refunded, 'REFUNDED'],
    ['a purchase already revoked', revoked, 'REVOKED'],
  ])('first sight of %s is %s', (_name, next, reason) => {
    expect(changeReason(undefined, next)).toBe(reason);
  });

  it.each<[string, LifecycleSnapshot, LifecycleSnapshot, EntitlementReason]>([
    ['active to refunded', active, refunded, 'REFUNDED'],
    ['active to revoked from Family Sharing', active, revoked, 'REVOKED'],
    ['expired to refunded', expired, refunded, 'REFUNDED'],
    ['revoked without a known cause', active, snapshot({ state: 'revoked' }), 'REFUNDED'],
    ['refunded to active', refunded, active, 'REFUND_REVERSED'],
    ['refunded to expired', refunded, expired, 'REFUND_REVERSED'],
    ['active to expired', active, expired, 'EXPIRED'],
    ['grace to expired', grace, expired, 'EXPIRED'],
    ['on hold to expired', hold, expired, 'EXPIRED'],
    ['active to grace', active, grace, 'GRACE_PERIOD'],
    ['active to billing retry', active, retry, 'BILLING_RETRY'],
    ['grace to billing retry', grace, retry, 'BILLING_RETRY'],
    ['grace to on hold', grace, hold, 'ON_HOLD'],
    ['active to paused', active, paused, 'PAUSED'],
    ['expired to grace', expired, grace, 'GRACE_PERIOD'],
    ['grace to active', grace, active, 'RECOVERED'],
    ['billing retry to active', retry, active, 'RECOVERED'],
    ['on hold to active', hold, active, 'RECOVERED'],
    ['paused to active', paused, active, 'RECOVERED'],
    ['expired to active', expired, active, 'RENEWED'],
    ['expired to active on another product', expired, snapshot({ productId: 'premium.yearly' }), 'RENEWED'],
  ])('%s is %s', (_name, previous, next, reason) => {
    expect(changeReason(previous, next)).toBe(reason);
  });

  it.each<[string, LifecycleSnapshot, LifecycleSnapshot, EntitlementReason | null]>([
    ['another product', active, snapshot({ productId: 'premium.yearly', expiresAt: at(365 * DAY) }), 'PRODUCT_CHANGED'],
    ['a later expiry', active, snapshot({ expiresAt: at(40 * DAY) }), 'RENEWED'],
    ['a later expiry with auto-renew turned off', active, snapshot({ expiresAt: at(40 * DAY), willRenew: false }), 'RENEWED'],
    ['auto-renew turned off', active, snapshot({ willRenew: false }), 'RENEWAL_STATUS_CHANGED'],
    ['auto-renew turned back on', snapshot({ willRenew: false }), active, 'RENEWAL_STATUS_CHANGED'],
    ['an earlier expiry', active, snapshot({ expiresAt: at(5 * DAY) }), 'RENEWED'],
    ['a grace period extended', grace, snapshot({ ...grace, gracePeriodExpiresAt: at(9 * DAY) }), 'GRACE_PERIOD'],
    ['a later expiry while paused', paused, snapshot({ ...paused, expiresAt: at(20 * DAY) }), 'PAUSED'],
    ['a later expiry while expired', expired, snapshot({ ...expired, expiresAt: at(-HOUR) }), 'EXPIRED'],
    ['auto-renew turned off in billing retry', retry, snapshot({ ...retry, willRenew: false }), 'RENEWAL_STATUS_CHANGED'],
    ['a new transaction id with the same expiry', active, snapshot({ transactionId: '2000000000000003', observedAt: at(HOUR) }), null],
    ['the same expiry spelled differently', snapshot({ expiresAt: '2025-06-11T12:00:00Z' }), snapshot({ expiresAt: '2025-06-11T12:00:00.000Z' }), null],
    ['the same answer read twice', grace, { ...grace }, null],
    ['a refund now known as a revoke', refunded, revoked, null],
    ['a different environment only', active, snapshot({ environment: 'Sandbox' }), null],
  ])('within the same state, %s is %s', (_name, previous, next, reason) => {
    expect(changeReason(previous, next)).toBe(reason);
  });

  it.each(LIFECYCLE_STATES.flatMap((from) => LIFECYCLE_STATES.map((to) => [from, to] as const)))(
    'moving from %s to %s announces a reason of the contract',
    (from, to) => {
      const reason = changeReason(snapshot({ state: from }), snapshot({ state: to }));
      if (from === to) expect(reason).toBeNull();
      else expect(ENTITLEMENT_REASONS).toContain(reason);
    },
  );
});

describe('out-of-order fence', () => {
  it.each<[string, { observedAt: string } | undefined, string, boolean]>([
    ['nothing stored yet', undefined, at(0), false],
    ['an older read', { observedAt: at(0) }, at(-1), true],
    ['the same read again', { observedAt: at(0) }, at(0), false],
    ['a newer read', { observedAt: at(0) }, at(1), false],
    ['the same instant in another spelling', { observedAt: '2025-06-01T12:00:00.000Z' }, '2025-06-01T14:00:00+02:00', false],
    ['an older read in another spelling', { observedAt: '2025-06-01T12:00:00.000Z' }, '2025-06-01T13:59:59+02:00', true],
  ])('%s is stale: %s', (_name, stored, observedAt, stale) => {
    expect(isStale(stored, { observedAt })).toBe(stale);
  });

  it.each<[string, string, string]>([
    ['stored', 'garbage', at(0)],
    ['next', at(0), 'garbage'],
  ])('refuses to decide when the %s observedAt is not a date', (_name, stored, next) => {
    expect(() => isStale({ observedAt: stored }, { observedAt: next })).toThrow(RangeError);
  });
});

describe('history retention', () => {
  const RETENTION = HISTORY_RETENTION_DAYS * 86_400;
  const seconds = (iso: string): number => Date.parse(iso) / 1000;

  it('keeps history for 90 days', () => {
    expect(HISTORY_RETENTION_DAYS).toBe(90);
  });

  it.each<[string, LifecycleState, string | null, string | null, number | undefined]>([
    ['an active subscription has no TTL', 'active', at(DAY), null, undefined],
    ['a purchase that never expires has no TTL', 'active', null, null, undefined],
    ['a grace period still running has no TTL', 'grace_period', at(-DAY), at(DAY), undefined],
    ['a grace period that ran out waits for the store', 'grace_period', at(-DAY), at(-HOUR), undefined],
    ['billing retry waits for the store', 'billing_retry', at(-DAY), null, undefined],
    ['on hold waits for the store', 'on_hold', at(-DAY), null, undefined],
    ['paused waits for the store', 'paused', at(-DAY), null, undefined],
    ['an expired subscription is kept 90 days after the end was seen', 'expired', at(-DAY), null, seconds(at(0)) + RETENTION],
    ['an active one whose expiry passed counts as ended', 'active', at(-DAY), null, seconds(at(0)) + RETENTION],
    ['a refund mid-period is kept 90 days after the period end', 'revoked', at(10 * DAY), null, seconds(at(10 * DAY)) + RETENTION],
    ['a revoked non-consumable is kept 90 days after the revocation', 'revoked', null, null, seconds(at(0)) + RETENTION],
    ['an expired one with a later grace end counts from the grace end', 'expired', at(DAY), at(2 * DAY), seconds(at(2 * DAY)) + RETENTION],
  ])('%s', (_name, state, expiresAt, gracePeriodExpiresAt, ttl) => {
    expect(retainUntil({ state, expiresAt, gracePeriodExpiresAt }, NOW)).toBe(ttl);
  });

  it('gives whole epoch seconds', () => {
    const ttl = retainUntil({ state: 'expired', expiresAt: null, gracePeriodExpiresAt: null }, new Date(NOW.getTime() + 999));
    expect(ttl).toBe(seconds(at(0)) + RETENTION);
  });

  it('refuses an invalid end date', () => {
    expect(() => retainUntil({ state: 'expired', expiresAt: null, gracePeriodExpiresAt: null }, new Date(Number.NaN))).toThrow(RangeError);
  });
});
