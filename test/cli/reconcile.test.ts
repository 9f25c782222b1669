import path from 'node:path';
import { createLogger } from '../../lambdas/platform/logger';
import { publishersOf } from '../../cli/commands/publisher';
import { parseReconcile, reconcile } from '../../cli/commands/reconcile';
import { CommandError, UsageError } from '../../cli/errors';
import { localTarget, type StackTarget } from '../../cli/target';
import { startTestStack, type LocalClient } from '../support/local-client';
import { publisher } from '../unit/lifecycle/apple-notification-fixtures';

/*
 * `iap-sync reconcile` against a running local stack (`npm start` in-process, its data in a temp
 * dir): a notification the store simulator drops leaves the entitlement stale until the command
 * catches up Apple's notification history, waits for the refresh and names the corrected purchase.
 */

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let target: StackTarget;
const io = { logger: createLogger('reconcile-cli-test', 'silent') };

beforeAll(async () => {
  // Not in memory: the simulator's PKI (the root the command trusts) is then in the data dir, as with `npm start`.
  env = await startTestStack({ inMemory: false, fastWaitsMs: 1 });
  api = env.client;
  target = localTarget(env.dataDir);
});
afterAll(async () => {
  target?.close();
  await env?.stop();
});

async function entitlementOf(customerId: number, originalTransactionId: string) {
  const reply = await api.request('GET', `/customers/${customerId}/entitlements`, { headers: api.customerHeaders(customerId) });
  const list = reply.body.entitlements as Array<{ originalTransactionId: string | null; active: boolean; state: string }>;
  return list.find((item) => item.originalTransactionId === originalTransactionId);
}

describe('iap-sync reconcile', () => {
  it('catches up a dropped notification, waits for its refresh and prints the corrected purchase', async () => {
    const { transactionId, originalTransactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    const accepted = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    expect(accepted.status).toBe(202);
    await api.waitFinalized(String(accepted.body.synchronizationId));
    await api.settled();
    // Lose the next Apple notification, then let the subscription expire: the service never hears of it.
    const dropped = await api.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', dropNotifications: 1 } });
    expect(dropped.status).toBeLessThan(300);
    const expired = await api.request('POST', `/__simulator/apple/transactions/${transactionId}/expire`, { headers: { 'content-type': 'application/json' }, body: {} });
    expect(expired.status).toBe(200);
    await api.settled();
    expect(await entitlementOf(101, originalTransactionId)).toMatchObject({ active: true, state: 'active' });

    const result = await reconcile(target, { publisher: '1' }, io);

    expect(result.corrected).toEqual({ count: 1, purchaseKeys: [originalTransactionId] });
    expect(result.report).toMatchObject({ publishers: 1, accepted: 1, refreshesStarted: 1, rejected: 0, errors: 0 });
    expect(result.report.duplicates).toBeGreaterThanOrEqual(1);
    expect(result.refreshes).toEqual([
      expect.objectContaining({ purchaseKey: originalTransactionId, source: 'history', status: 'finalized', refreshOutcome: 'changed' }),
    ]);
    expect(result.notFinalized).toBe(0);
    await api.settled();
    expect(await entitlementOf(101, originalTransactionId)).toMatchObject({ active: false, state: 'expired' });
    expect(api.entitlementEvents(101).map((event) => event.detail.reason).at(-1)).toBe('EXPIRED');

    // Nothing left to correct: the cursor moved, what is read again is a duplicate.
    const again = await reconcile(target, { publisher: '1' }, io);
    expect(again.corrected).toEqual({ count: 0, purchaseKeys: [] });
    expect(again.report).toMatchObject({ accepted: 0, refreshesStarted: 0 });
  });

  it('--since reads an explicit look-back: all duplicates, nothing corrected', async () => {
    const result = await reconcile(target, { publisher: '1', since: new Date(Date.now() - 3600_000).toISOString(), wait: '5' }, io);
    expect(result.report.notificationsSeen).toBeGreaterThan(0);
    expect(result.report).toMatchObject({ accepted: 0 });
    expect(result.corrected.count).toBe(0);
  });

  it('refuses an unknown publisher, one without Apple, and a deployed stack', async () => {
    await expect(reconcile(target, { publisher: '999' }, io)).rejects.toThrow(CommandError);
    await expect(reconcile(target, { publisher: '999' }, io)).rejects.toThrow(/Publisher 999 not found/);
    await publishersOf(target).putPublisher(publisher(5, undefined));
    await expect(reconcile(target, { publisher: '5' }, io)).rejects.toThrow(/Publisher 5 has no Apple configuration/);
    const deployed: StackTarget = { ...target, kind: 'deployed', description: 'stack test', close: () => undefined };
    await expect(reconcile(deployed, { publisher: '1' }, io)).rejects.toThrow(/local stack/);
  });

  it('refuses a data dir without the simulator\'s root certificate', async () => {
    const copy: StackTarget = { ...target, secretsDir: path.join(env.dataDir, 'elsewhere', 'secrets'), close: () => undefined };
    await expect(reconcile(copy, { publisher: '1' }, io)).rejects.toThrow(/root certificate/);
  });

  it.each([
    [{}, /--publisher is required/],
    [{ publisher: 'x' }, /--publisher must be an integer/],
    [{ publisher: '1', since: 'yesterday' }, /--since must be an ISO 8601/],
    [{ publisher: '1', since: '2999-01-01T00:00:00Z' }, /future/],
    [{ publisher: '1', wait: '-1' }, /--wait/],
    [{ publisher: '1', wait: '99999' }, /--wait/],
  ])('parses %j as a usage error', (args, message) => {
    expect(() => parseReconcile(args)).toThrow(UsageError);
    expect(() => parseReconcile(args)).toThrow(message);
  });

  it('parses the defaults', () => {
    expect(parseReconcile({ publisher: '7' })).toEqual({ publisherId: 7, waitSeconds: 60 });
    expect(parseReconcile({ publisher: '7', since: '2026-01-31T00:00:00Z', wait: '0' })).toEqual({ publisherId: 7, since: new Date('2026-01-31T00:00:00Z'), waitSeconds: 0 });
  });
});
