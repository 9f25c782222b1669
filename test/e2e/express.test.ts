import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_STATE_MACHINE_ARN } from '../../local/stack';
import { GoogleAccessTokenProvider } from '../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../lambdas/stores/google/adapters/google-play-verifier';
import { startTestStack } from '../support/local-client';
import { executionName } from '../../lambdas/purchases/domain/synchronization';
import { createLogger } from '../../lambdas/platform/logger';
import { reconcile } from '../../cli/commands/reconcile';
import { runCli } from '../../cli/main';
import { localTarget, type StackTarget } from '../../cli/target';

/**
 * An EXPRESS stack's store outage, rehearsed locally: retries park the synchronization (its
 * execution ends) and the recovery sweeper starts each next attempt when it is due, so EXPRESS keeps
 * the retry budget STANDARD has. Waits are 1 s; the sweeper runs every 200 ms with a 1 s grace.
 */
describe('EXPRESS workflow type on npm start', () => {
  let run: Awaited<ReturnType<typeof startTestStack>>;
  let target: StackTarget;
  beforeAll(async () => {
    run = await startTestStack({
      workflowType: 'EXPRESS',
      retry: { maxAttempts: 6, baseSeconds: 1, maxWaitSeconds: 1 },
      recovery: { intervalMs: 200, graceSeconds: 1 },
      // The scheduled reconciliation runs at start-up only: the test runs it (iap-sync reconcile) when it wants.
      reconcile: { intervalMs: 0 },
      // Task retries (the acknowledgement's 4 attempts wait up to 10, 20 and 40 s with jitter) take 50 ms here:
      // the test checks which states ran, not how long they waited.
      fastWaitsMs: 50,
    });
    target = localTarget(run.dataDir);
  }, 90_000);
  afterAll(async () => {
    target?.close();
    await run?.stop();
  });

  const json = { 'content-type': 'application/json' };
  /** `npx iap-sync <argv>` against this stack: exit code and parsed JSON output. */
  async function cli(argv: string[]): Promise<{ code: number; out: Record<string, unknown>; err: string }> {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) }, async () => ({ ...target, close: () => undefined }));
    return { code, out: stdout.trim() === '' ? {} : (JSON.parse(stdout) as Record<string, unknown>), err: stderr };
  }

  it('parks through three store failures, each attempt a new execution, then finalizes with one event', async () => {
    const { client, stack } = run;
    const { transactionId } = await client.createTransaction();
    // Three lookups fail (production and sandbox count as one each): 503 for the next 3 App Store calls.
    await client.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', status: 503, count: 3 } });
    const accepted = await client.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    const id = String(accepted.body.synchronizationId);

    const { final, seen } = await client.waitFinalized(id);
    expect(final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' });
    expect(seen).toContain('retrying');
    await client.settled();
    expect(client.eventsFor(id)).toHaveLength(1);
    // The first execution parked; the sweeper started the later attempts as executions of their own.
    const name = executionName({ publisherId: 1, synchronizationId: id });
    const names = [...stack.stepFunctions.executions.values()].filter((e) => e.name.startsWith(name)).map((e) => e.name);
    expect(names[0]).toBe(name);
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names.slice(1).every((name) => /\.a\d+$/.test(name))).toBe(true);
    const first = stack.stepFunctions.executions.get(`${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`);
    expect(first?.history.some((event) => event.details?.name === 'Parked')).toBe(true);
  });
  it('a synchronization that failed for good (store down through the budget) is retried by the operator as a new one, once', async () => {
    const { client } = run;
    const { transactionId } = await client.createTransaction();
    await client.request('POST', '/__simulator/faults', { headers: json, body: { store: 'apple', status: 503, count: 10_000 } });
    const accepted = await client.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    const failedId = String(accepted.body.synchronizationId);
    expect((await client.waitFinalized(failedId)).final).toMatchObject({ result: 'SYNCHRONIZATION_FAILED' });
    await client.request('DELETE', '/__simulator/faults');
    await client.settled();

    // What the operator sees first: every parked attempt ran as an execution of its own, started by the sweeper.
    const shown = await cli(['sync', 'show', failedId, '--publisher', '1']);
    expect(shown.code).toBe(0);
    // 6 verifications: 5 failed and retried (the 6th exhausted the budget and finalized).
    expect(shown.out).toMatchObject({ status: 'finalized', result: 'SYNCHRONIZATION_FAILED', attempts: 5, recoveries: 0 });
    const base = executionName({ publisherId: 1, synchronizationId: failedId });
    expect((shown.out.executions as { name: string; by: string }[]).map(({ name, by }) => `${name} ${by}`)).toEqual([
      `${base} accept`,
      ...[1, 2, 3, 4, 5].map((attempt) => `${base}.a${attempt} sweeper-resume`),
    ]);

    const retried = await cli(['sync', 'retry', failedId, '--publisher', '1']);
    expect(retried).toMatchObject({ code: 0, out: { action: 'retried', synchronizationId: failedId } });
    const retryId = String((retried.out.retry as { synchronizationId: string }).synchronizationId);
    expect(retryId).not.toBe(failedId);
    expect((await client.waitFinalized(retryId)).final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED', accessGranted: true });
    await client.settled();
    // The failed one's result stands (a client may have read it); each has its one event.
    expect((await client.status(failedId)).body).toMatchObject({ status: 'finalized', result: 'SYNCHRONIZATION_FAILED' });
    expect(client.eventsFor(failedId).map((event) => event.detail.result)).toEqual(['SYNCHRONIZATION_FAILED']);
    expect(client.eventsFor(retryId).map((event) => event.detail.result)).toEqual(['PURCHASE_SYNCHRONIZED']);

    const again = await cli(['sync', 'retry', failedId, '--publisher', '1']);
    expect(again).toMatchObject({ code: 0, out: { action: 'already_retried', retry: { synchronizationId: retryId, status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' } } });
    const refused = await cli(['sync', 'retry', retryId, '--publisher', '1']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/is finalized PURCHASE_SYNCHRONIZED: the store answered, so there is nothing to retry/);
    expect((await cli(['sync', 'show', failedId, '--publisher', '1'])).out).toMatchObject({ retriedAs: retryId });
    expect((await cli(['sync', 'show', retryId, '--publisher', '1'])).out).toMatchObject({ retryOf: failedId, executions: [{ by: 'operator-retry' }] });
  });

  it('a Google acknowledgement that fails through the workflow\'s attempts is left pending, the event still goes out, and the reconciliation gets it through', async () => {
    const { client, stack } = run;
    const created = await client.request('POST', '/__simulator/google/subscriptions', { headers: json, body: { productId: 'premium_monthly' } });
    const purchaseToken = String(created.body.purchaseToken);
    // The simulator's own push starts a refresh of the new token: let it end before Google misbehaves.
    await client.settled();
    // Every Google call now waits 1.5 s before answering: time to make Google refuse once the entitlement is saved.
    await client.request('POST', '/__simulator/faults', { headers: json, body: { store: 'google', latencyMs: 1500 } });
    const accepted = await client.request('POST', '/google-play/purchases', {
      headers: client.publisherHeaders(),
      body: { cleengCustomerId: 101, purchaseToken, packageName: stack.localJson.google.packageName, productType: 'subscription', ipAddress: '203.0.113.7' },
    });
    expect(accepted.status).toBe(202);
    const id = String(accepted.body.synchronizationId);
    const statusHeaders = client.publisherHeaders();
    for (;;) {
      const reply = await client.request('GET', `/google-play/purchases/synchronizations/${id}`, { headers: statusHeaders });
      if (reply.body.status === 'finalized') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.request('POST', '/__simulator/faults', { headers: json, body: { store: 'google', status: 503, count: 10_000 } });
    await client.settled();

    const execution = stack.stepFunctions.executions.get(`${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${executionName({ publisherId: 1, synchronizationId: id })}`);
    const entered = (execution?.history ?? []).filter((event) => event.type.endsWith('StateEntered')).map((event) => event.details?.name);
    expect(entered.filter((name) => name === 'AcknowledgePurchase' || name === 'AcknowledgeLater')).toEqual(['AcknowledgePurchase', 'AcknowledgeLater']);
    expect(client.eventsFor(id).map((event) => event.detail.result)).toEqual(['PURCHASE_SYNCHRONIZED']);
    expect((await cli(['sync', 'show', id, '--publisher', '1'])).out).toMatchObject({ acknowledgement: { state: 'pending', synchronizationId: id, lastError: 'StoreUnavailableError' } });

    await client.request('DELETE', '/__simulator/faults');
    const reconciled = await reconcile(target, { publisher: '1', wait: '0' }, { logger: createLogger('express-test', 'silent') });
    expect(reconciled.acknowledgements).toMatchObject({ acknowledged: 1, givenUp: 0, pending: 0 });
    expect((await cli(['sync', 'show', id, '--publisher', '1'])).out).toMatchObject({ acknowledgement: { state: 'acknowledged' } });
    const google = new GooglePlayStoreVerifier({
      secrets: { get: async () => readFileSync(join(run.dataDir, 'secrets', 'google-service-account.json'), 'utf8') },
      tokens: new GoogleAccessTokenProvider({ tokenUrl: `${stack.url}/__simulator/google/oauth2/token` }),
      rootUrl: `${stack.url}/__simulator/google/`,
    });
    expect(await google.verify({ packageName: stack.localJson.google.packageName, serviceAccountRef: 'x' }, purchaseToken)).toMatchObject({ outcome: 'verified', facts: { acknowledged: true } });
  });
});
