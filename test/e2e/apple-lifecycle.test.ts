import { EntitlementChangedDetail } from '../../lambdas/events/schemas';
import { startTestStack, type LocalClient } from '../support/local-client';

// Contract §9–§11 on the local stack: after the register, only the App Store simulator's own
// notifications move the entitlement. No API call is made between the steps.
let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;

beforeAll(async () => {
  env = await startTestStack({ fastWaitsMs: 1 });
  api = env.client;
});
afterAll(async () => env?.stop());

interface EntitlementView {
  originalTransactionId: string | null;
  active: boolean;
  state: string;
  expiresAt: string | null;
  willRenew: boolean;
  transactionId: string | null;
  gracePeriodExpiresAt: string | null;
}

async function entitlementOf(customerId: number, originalTransactionId: string): Promise<EntitlementView | undefined> {
  const reply = await api.request('GET', `/customers/${customerId}/entitlements`, { headers: api.customerHeaders(customerId) });
  expect(reply.status).toBe(200);
  const list = reply.body.entitlements as EntitlementView[];
  return list.find((item) => item.originalTransactionId === originalTransactionId);
}

async function control(path: string, body: Record<string, unknown> = {}) {
  const reply = await api.request('POST', `/__simulator/apple/transactions/${path}`, { headers: { 'content-type': 'application/json' }, body });
  expect([200, 201]).toContain(reply.status);
  await api.settled();
  return reply.body;
}

function changesOf(customerId: number, originalTransactionId: string) {
  return api
    .entitlementEvents(customerId)
    .map((event) => EntitlementChangedDetail.parse(event.detail))
    .filter((detail) => detail.originalTransactionId === originalTransactionId);
}

async function registered(customerId: number) {
  const { transactionId } = await api.createTransaction({ productId: 'premium_monthly' });
  await api.settled();
  const accepted = await api.register({ cleengCustomerId: customerId, transactionId, ipAddress: '203.0.113.7' }, api.publisherHeaders());
  expect(accepted.status).toBe(202);
  await api.waitFinalized(String(accepted.body.synchronizationId));
  await api.settled();
  return transactionId;
}

describe('Apple entitlements follow the App Store after the register', () => {
  it('a register publishes PURCHASED and the entitlement reads active', async () => {
    const original = await registered(101);
    expect(await entitlementOf(101, original)).toMatchObject({ active: true, state: 'active', willRenew: true });
    expect(changesOf(101, original).map((c) => c.reason)).toEqual(['PURCHASED']);
  });

  it('renew moves the expiry (RENEWED); the same notification resent changes nothing and publishes nothing', async () => {
    const original = await registered(101);
    const before = await entitlementOf(101, original);
    await control(`${original}/renew`);
    const after = await entitlementOf(101, original);
    expect(Date.parse(String(after?.expiresAt))).toBeGreaterThan(Date.parse(String(before?.expiresAt)));
    expect(after?.transactionId).not.toBe(original);
    expect(changesOf(101, original).map((c) => c.reason)).toEqual(['PURCHASED', 'RENEWED']);

    const listed = await api.request('GET', '/__simulator/notifications?store=apple');
    const notifications = listed.body.notifications as Array<{ id: string; type: string; responseStatus: number | null }>;
    const renewal = notifications.filter((n) => n.type === 'DID_RENEW').at(-1);
    expect(renewal?.responseStatus).toBe(200);
    const resent = await api.request('POST', `/__simulator/notifications/${renewal?.id}/resend`, { headers: { 'content-type': 'application/json' } });
    expect(resent.body).toMatchObject({ responseStatus: 200 });
    await api.settled();
    expect(changesOf(101, original).map((c) => c.reason)).toEqual(['PURCHASED', 'RENEWED']);
    expect(await entitlementOf(101, original)).toEqual(after);
  });

  it.each([
    ['refund', [['refund', 'REFUNDED', false, 'revoked'], ['refund-reversed', 'REFUND_REVERSED', true, 'active']]],
    ['expire', [['expire', 'EXPIRED', false, 'expired']]],
    ['revoke (Family Sharing ended)', [['revoke', 'REVOKED', false, 'revoked']]],
    ['grace, billing retry, recovery', [['grace', 'GRACE_PERIOD', true, 'grace_period'], ['billing-retry', 'BILLING_RETRY', false, 'billing_retry'], ['renew', 'RECOVERED', true, 'active']]],
  ] as const)('%s', async (_name, steps) => {
    const original = await registered(102);
    for (const [route, reason, active, state] of steps) {
      await control(`${original}/${route}`);
      expect(await entitlementOf(102, original)).toMatchObject({ active, state });
      expect(changesOf(102, original).at(-1)).toMatchObject({ reason, active, state });
    }
    expect(changesOf(102, original)).toHaveLength(steps.length + 1);
  });

  it('auto-renew off: RENEWAL_STATUS_CHANGED, willRenew false, access unchanged', async () => {
    const original = await registered(103);
    await control(`${original}/auto-renew`, { enabled: false });
    expect(await entitlementOf(103, original)).toMatchObject({ active: true, state: 'active', willRenew: false });
    expect(changesOf(103, original).at(-1)).toMatchObject({ reason: 'RENEWAL_STATUS_CHANGED', willRenew: false, active: true });
  });

  it('a forged signedPayload is 400 NOTIF0001 and nothing changes', async () => {
    const forged = await api.request('POST', '/storekit2/notifications/1', {
      headers: { 'content-type': 'application/json' },
      body: { signedPayload: 'eyJhbGciOiJFUzI1NiJ9.eyJub3RpZmljYXRpb25UeXBlIjoiUkVGVU5EIn0.c2lnbmF0dXJl' },
    });
    expect(forged.status).toBe(400);
    expect(forged.body).toMatchObject({ code: 'NOTIF0001' });
    const unknownPublisher = await api.request('POST', '/storekit2/notifications/999', {
      headers: { 'content-type': 'application/json' },
      body: { signedPayload: 'x' },
    });
    expect(unknownPublisher.body).toMatchObject({ code: 'NOTIF0001' });
  });

  it('the transfer publishes TRANSFERRED_OUT for the previous owner and TRANSFERRED_IN for the new one', async () => {
    const original = await registered(101);
    const accepted = await api.request('POST', '/storekit2/purchases/transfers', {
      headers: api.publisherHeaders(),
      body: { cleengCustomerId: 103, transactionId: original, ipAddress: '203.0.113.7' },
    });
    expect(accepted.status).toBe(202);
    await api.waitFinalized(String(accepted.body.synchronizationId));
    await api.settled();
    expect(changesOf(101, original).at(-1)).toMatchObject({ reason: 'TRANSFERRED_OUT', active: false, state: 'transferred' });
    expect(changesOf(103, original).at(-1)).toMatchObject({ reason: 'TRANSFERRED_IN', active: true, state: 'active' });
    expect(await entitlementOf(101, original)).toMatchObject({ active: false, state: 'transferred' });
    expect(await entitlementOf(103, original)).toMatchObject({ active: true });
  });
});
