import fc from 'fast-check';
import { notificationCostModel } from '../../../bench/cost-model';
import { notificationRequests } from '../../../bench/resilience/fuzz-requests';
import { expectedFromApple, validActions } from '../../../bench/resilience/lifecycle-apple';
import { duplicateEntitlementEvents, prng } from '../../../bench/resilience/lifecycle-driver';
import { formatLifecycle } from '../../../bench/resilience/report';
import type { EventEnvelope } from '../../../local/event-bus';

const NOW = Date.parse('2026-12-07T10:00:00.000Z');
const DAY = 86_400_000;

describe('lifecycle scenario', () => {
  it('replays the same choices from the same seed', () => {
    const a = prng(42);
    const b = prng(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('only picks transitions Apple could make', () => {
    expect(validActions('active', false)).not.toContain('renew');
    expect(validActions('active', false)).not.toContain('grace');
    expect(validActions('refunded', true)).toContain('refund-reversed');
    expect(validActions('revoked', true)).toEqual(['resubscribe']);
    expect(validActions('retry', true)).toEqual(['renew', 'expire']);
  });

  it.each([
    [1, {}, undefined, { active: true, state: 'active' }],
    [2, {}, undefined, { active: false, state: 'expired' }],
    [3, {}, undefined, { active: false, state: 'billing_retry' }],
    [4, { expiresDate: NOW - 1000 }, { gracePeriodExpiresDate: NOW + DAY }, { active: true, state: 'grace_period' }],
    [1, { revocationDate: NOW }, undefined, { active: false, state: 'revoked' }],
  ])('maps status %s to the expected entitlement', (status, overrides, renewal, expected) => {
    const transaction = { expiresDate: NOW + 30 * DAY, ...overrides };
    expect(expectedFromApple(status, transaction, renewal, NOW)).toEqual({ ...expected, expiresAt: new Date(transaction.expiresDate).toISOString() });
  });

  it('counts an inappEntitlementChanged published twice for one customer, purchase and ownershipVersion', () => {
    const event = (customer: number, version: number) =>
      ({ 'detail-type': 'inappEntitlementChanged', detail: { cleengCustomerId: customer, originalTransactionId: '2000', ownershipVersion: version } }) as unknown as EventEnvelope;
    expect(duplicateEntitlementEvents([event(101, 1), event(101, 2), event(102, 2)]).duplicates).toBe(0);
    expect(duplicateEntitlementEvents([event(101, 1), event(101, 2), event(101, 2)])).toEqual({ duplicates: 1, examples: ['101|2000|2 ×2'] });
  });

  it('fuzzes only the notification route, with no credentials', () => {
    const requests = fc.sample(notificationRequests({ publisherId: 1 }), { numRuns: 200, seed: 1 });
    expect(requests.every((r) => r.method === 'POST' && r.path.startsWith('/storekit2/notifications/'))).toBe(true);
    expect(requests.some((r) => r.path !== '/storekit2/notifications/1')).toBe(true);
    expect(requests.every((r) => r.headers['x-publisher-token'] === undefined && r.headers.authorization === undefined)).toBe(true);
  });

  it('prices a notification from the per-refresh figures, PutEvents only for the share that changed', () => {
    const base = {
      source: 't',
      store: 'apple' as const,
      transitionsPerRefresh: 5,
      lambdaInvocationsPerRefresh: { VerifyApplePurchase: 1 },
      lambdaMedianMs: { VerifyApplePurchase: 40 },
      notificationMs: 15,
      executionMs: 120,
      storeCallsPerRefresh: { 'App Store Server API calls': 2 },
    };
    const changed = notificationCostModel({ ...base, putEventsPerRefresh: 1 });
    const unchanged = notificationCostModel({ ...base, putEventsPerRefresh: 0 });
    const events = (m: typeof changed) => m.standard.lines.find((l) => l.service === 'EventBridge')?.usdPerMillion;
    expect(events(changed)).toBe(1);
    expect(events(unchanged)).toBe(0);
    expect(changed.standard.lines.find((l) => l.service === 'Step Functions')?.usdPerMillion).toBe(125);
    expect(changed.standard.totalUsdPerMillion).toBeGreaterThan(unchanged.standard.totalUsdPerMillion);
  });

  it('prints its headline in the report, one block per store', () => {
    const half = { dropped: 100, drift: 0, driftBeforeReconciliation: 21, duplicateEvents: 0, lost: 0, noticesAccepted: 900 };
    const text = formatLifecycle({ seed: 7, wallSeconds: 300, apple: half, google: { ...half, drift: 2, googleDrift: { awaitingRecheck: 2, unknown: 0, unexplained: 0 } } }).join('\n');
    expect(text).toMatch(/seed 7;.*wall time 300 s/);
    expect(text).toMatch(/apple:[^]*drift 0 \(before the reconciliation 21\); duplicate events 0, lost 0 of 900/);
    expect(text).toMatch(/google:[^]*drift 2 \(before the reconciliation 21\): 0 unexplained, 2 awaiting the period-end re-check/);
  });
});
