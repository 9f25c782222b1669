import { notificationCostModel } from '../../../bench/cost-model';
import { storeCallsPerRefresh } from '../../../bench/refresh-figures';
import type { NotificationRecord } from '../../../local/simulator/notifications';
import { expectedFromGoogle, knownTokens, validGoogleActions, type GoogleToken } from '../../../bench/resilience/lifecycle-google';

const NOW = Date.parse('2026-12-07T10:00:00.000Z');
const LATER = new Date(NOW + 86_400_000).toISOString();
const EARLIER = new Date(NOW - 1000).toISOString();

describe('lifecycle scenario, Google half', () => {
  it.each([
    ['ACTIVE', false, ['renew', 'grace', 'hold', 'pause', 'cancel', 'expire', 'revoke', 'replace'], ['recover', 'resubscribe']],
    ['CANCELED', false, ['expire', 'revoke', 'replace'], ['renew', 'grace', 'pause', 'resubscribe']],
    ['ON_HOLD', false, ['renew', 'recover', 'cancel', 'expire', 'revoke'], ['grace', 'pause', 'replace']],
    ['PAUSED', false, ['renew', 'cancel', 'expire', 'revoke'], ['recover', 'hold', 'replace']],
    ['EXPIRED', false, ['revoke', 'resubscribe'], ['renew', 'expire']],
    ['EXPIRED', true, ['resubscribe'], ['revoke']],
  ] as const)('from %s (revoked %s) picks only what the Play simulator allows', (state, revoked, allowed, refused) => {
    const actions = validGoogleActions(state, revoked);
    expect(new Set(actions)).toEqual(new Set(allowed));
    for (const action of refused) expect(actions).not.toContain(action);
  });

  it.each([
    ['SUBSCRIPTION_STATE_ACTIVE', LATER, false, { active: true, state: 'active' }],
    ['SUBSCRIPTION_STATE_ACTIVE', EARLIER, false, { active: false, state: 'expired' }],
    ['SUBSCRIPTION_STATE_CANCELED', LATER, false, { active: true, state: 'active' }],
    ['SUBSCRIPTION_STATE_IN_GRACE_PERIOD', LATER, false, { active: true, state: 'grace_period' }],
    ['SUBSCRIPTION_STATE_ON_HOLD', EARLIER, false, { active: false, state: 'on_hold' }],
    ['SUBSCRIPTION_STATE_PAUSED', EARLIER, false, { active: false, state: 'paused' }],
    ['SUBSCRIPTION_STATE_EXPIRED', EARLIER, false, { active: false, state: 'expired' }],
    // Google reads a revoked subscription as EXPIRED: only the scenario's own record says revoked.
    ['SUBSCRIPTION_STATE_EXPIRED', EARLIER, true, { active: false, state: 'revoked' }],
  ] as const)('reads %s (expiry %s, revoked %s) as the entitlement the service should show', (subscriptionState, expiresAt, revoked, expected) => {
    expect(expectedFromGoogle({ subscriptionState, expiresAt }, revoked, NOW)).toEqual({ ...expected, expiresAt });
  });

  it('knows a plan change only when its push arrives while the token it replaced is known', () => {
    const token = (name: string, linkedFrom?: string): [string, GoogleToken] => [name, { token: name, customerId: 101, revoked: false, pushIds: [], ...(linkedFrom ? { linkedFrom } : {}) }];
    const tokens = new Map([token('t1'), token('t2', 't1'), token('t3', 't2'), token('u2', 't1'), token('u3', 'u2')]);
    const pushNames = new Map([['p2', 't2'], ['p3', 't3'], ['q2', 'u2'], ['q3', 'u3']]);
    const record = (id: string, responseStatus: number | null): NotificationRecord => ({ id, store: 'google', type: 'SUBSCRIPTION_PURCHASED', target: null, responseStatus, dropped: responseStatus === null, sentAt: '' });
    // t2 then t3 arrive in order; u2's push is lost, so u3 (delivered) cannot be linked; a late u2 does not bring u3 back.
    const known = knownTokens({ tokens, pushNames }, [record('p2', 200), record('p3', 200), record('q2', null), record('q3', 200), record('q2', 200)]);
    expect([...known].sort()).toEqual(['t1', 't2', 't3', 'u2']);
  });

  it('splits counted Google calls into one subscriptionsv2.get per refresh, acknowledges and Voided Purchases reads', () => {
    expect(storeCallsPerRefresh('google', 150, 100, { VerifyGooglePurchase: 1, AcknowledgePurchase: 0.1 })).toEqual({
      'subscriptionsv2.get': 1,
      'voidedpurchases.list': 0.4,
      'subscriptions.acknowledge': 0.1,
    });
    expect(storeCallsPerRefresh('apple', 200, 100, {})).toEqual({ 'App Store Server API calls': 2 });
  });

  it('prices a Google push on both workflow types; the Play Developer API calls are listed at $0', () => {
    const model = notificationCostModel({
      source: 't',
      store: 'google',
      transitionsPerRefresh: 5,
      lambdaInvocationsPerRefresh: { VerifyGooglePurchase: 1, FinalizeSynchronization: 1 },
      lambdaMedianMs: { VerifyGooglePurchase: 30, FinalizeSynchronization: 20 },
      putEventsPerRefresh: 1,
      notificationMs: 10,
      executionMs: 150,
      storeCallsPerRefresh: { 'subscriptionsv2.get': 1, 'voidedpurchases.list': 0.4 },
    });
    expect(model.standard.lines[0]?.item).toMatch(/POST \/google-play\/notifications\/\{publisherId\}/);
    const calls = model.standard.lines.find((l) => l.service.startsWith('Play Developer API'));
    expect(calls).toMatchObject({ quantity: 1.4, usdPerMillion: 0 });
    expect(model.standard.lines.find((l) => l.service === 'Step Functions')?.usdPerMillion).toBe(125);
    // EXPRESS: $1 per million executions plus 200 ms billed at 64 MB.
    const express = model.express.lines.filter((l) => l.service === 'Step Functions');
    expect(express.map((l) => l.usdPerMillion)).toEqual([1, 0.2084]);
    expect(model.express.totalUsdPerMillion).toBeLessThan(model.standard.totalUsdPerMillion);
    expect(model.excluded.join(' ')).toMatch(/Pub\/Sub/);
  });
});
