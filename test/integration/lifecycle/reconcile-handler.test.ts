import { handler } from '../../../lambdas/lifecycle/handlers/reconcile-purchases';
import type { ReconcileReport } from '../../../lambdas/lifecycle';
import { lambdaContext } from '../../../local/lambda-context';
import { startTestStack, type LocalClient } from '../../support/local-client';

/*
 * The deployed handler module, composed as in Lambda (createRuntime, createNoticeIntake, the history
 * client, the decoder with APPLE_ROOT_CERTIFICATES), run inside the local stack whose environment
 * points it at DynamoDB Local, the store simulator and the Step Functions stand-in.
 */

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;

beforeAll(async () => {
  env = await startTestStack({ fastWaitsMs: 1 });
  api = env.client;
});
afterAll(async () => env?.stop());

const json = { 'content-type': 'application/json' };

async function entitlementOf(customerId: number, originalTransactionId: string) {
  const reply = await api.request('GET', `/customers/${customerId}/entitlements`, { headers: api.customerHeaders(customerId) });
  const list = reply.body.entitlements as Array<{ originalTransactionId: string | null; active: boolean; state: string }>;
  return list.find((item) => item.originalTransactionId === originalTransactionId);
}

describe('ReconcilePurchases handler in the local stack', () => {
  it('a refund whose notification was lost is caught up from the history and corrects the entitlement', async () => {
    const { transactionId, originalTransactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    const accepted = await api.register({ cleengCustomerId: 102, transactionId, ipAddress: '203.0.113.7' });
    await api.waitFinalized(String(accepted.body.synchronizationId));
    await api.settled();
    await api.request('POST', '/__simulator/faults', { headers: json, body: { store: 'apple', dropNotifications: 1 } });
    await api.request('POST', `/__simulator/apple/transactions/${transactionId}/refund`, { headers: json, body: {} });
    await api.settled();
    expect(await entitlementOf(102, originalTransactionId)).toMatchObject({ active: true });

    // A scheduled invocation: every publisher (the demo one, Production and Sandbox).
    const report = (await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events' }, lambdaContext('ReconcilePurchases'))) as ReconcileReport;
    await api.settled();

    // The demo publisher's Google app is read too (the simulator's Voided Purchases list: nothing voided).
    expect(report).toMatchObject({ publishers: 1, accepted: 1, rejected: 0, errors: 0, refreshesStarted: 1, voidedPagesRead: 1, voidedSeen: 0 });
    expect(report.duplicates).toBeGreaterThanOrEqual(1);
    expect(await entitlementOf(102, originalTransactionId)).toMatchObject({ active: false, state: 'revoked' });
    expect(api.entitlementEvents(102).map((event) => event.detail.reason).at(-1)).toBe('REFUNDED');

    const again = (await handler({ publisherId: 1 }, lambdaContext('ReconcilePurchases'))) as ReconcileReport;
    expect(again).toMatchObject({ accepted: 0, refreshesStarted: 0, errors: 0 });
  });
});
