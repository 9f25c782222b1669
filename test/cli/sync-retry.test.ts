import { randomUUID } from 'node:crypto';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbSynchronizationRepository } from '../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { LOCK_LEASE_SECONDS } from '../../lambdas/purchases/workflow-definition';
import { executionName, type Synchronization } from '../../lambdas/purchases/domain/synchronization';
import { syncRetry, syncShow } from '../../cli/commands/sync';
import { CommandError } from '../../cli/errors';
import { localTarget, type StackTarget } from '../../cli/target';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { startTestStack } from '../support/local-client';

/*
 * `iap-sync sync retry` and `sync show` against a running STANDARD local stack (its executions are
 * described through the Step Functions stand-in, as on AWS); test/e2e/express.test.ts does the same
 * on EXPRESS.
 */

let env: Awaited<ReturnType<typeof startTestStack>>;
let target: StackTarget;
const json = { 'content-type': 'application/json' };

beforeAll(async () => {
  env = await startTestStack({ workflowType: 'STANDARD', retry: { maxAttempts: 2, baseSeconds: 1, maxWaitSeconds: 1 }, fastWaitsMs: 1, reconcile: { intervalMs: 0 } });
  target = localTarget(env.dataDir);
}, 90_000);
afterAll(async () => {
  target?.close();
  await env?.stop();
});

async function googleRegister(purchaseToken: string) {
  const { client, stack } = env;
  return client.request('POST', '/google-play/purchases', {
    headers: client.publisherHeaders(),
    body: { cleengCustomerId: 101, purchaseToken, packageName: stack.localJson.google.packageName, productType: 'subscription', ipAddress: '203.0.113.7' },
  });
}

async function googleFinal(id: string) {
  for (;;) {
    const reply = await env.client.request('GET', `/google-play/purchases/synchronizations/${id}`, { headers: env.client.publisherHeaders() });
    if (reply.body.status === 'finalized') return reply.body;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('iap-sync sync retry on a STANDARD stack', () => {
  it('a Google register that failed for good is retried as a new synchronization that claims the token again; twice changes nothing', async () => {
    const { client } = env;
    const created = await client.request('POST', '/__simulator/google/subscriptions', { headers: json, body: { productId: 'premium_monthly' } });
    const token = String(created.body.purchaseToken);
    await client.settled();
    await client.request('POST', '/__simulator/faults', { headers: json, body: { store: 'google', status: 503, count: 10_000 } });
    const accepted = await googleRegister(token);
    const failedId = String(accepted.body.synchronizationId);
    expect(await googleFinal(failedId)).toMatchObject({ result: 'SYNCHRONIZATION_FAILED' });
    await client.request('DELETE', '/__simulator/faults');
    await client.settled();

    const retried = await syncRetry(target, failedId, { publisher: '1' });
    expect(retried).toMatchObject({ action: 'retried', synchronizationId: failedId });
    const retryId = retried.action === 'retried' ? retried.retry.synchronizationId : '';
    expect(await googleFinal(retryId)).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED', accessGranted: true });
    await client.settled();
    expect(client.eventsFor(failedId).map((event) => event.detail.result)).toEqual(['SYNCHRONIZATION_FAILED']);
    expect(client.eventsFor(retryId).map((event) => event.detail.result)).toEqual(['PURCHASE_SYNCHRONIZED']);
    // The token is the retry's: registering it again answers the retry's id.
    const duplicate = await googleRegister(token);
    expect({ status: duplicate.status, code: duplicate.body.code, synchronizationId: duplicate.body.synchronizationId }).toEqual({ status: 409, code: 'GPLAY0300', synchronizationId: retryId });

    expect(await syncRetry(target, failedId, { publisher: '1' })).toEqual({
      action: 'already_retried',
      synchronizationId: failedId,
      retry: { synchronizationId: retryId, status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' },
    });
    await expect(syncRetry(target, retryId, { publisher: '1' })).rejects.toThrow(CommandError);
    expect(await syncShow(target, failedId, { publisher: '1' })).toMatchObject({ result: 'SYNCHRONIZATION_FAILED', attempts: 1, retriedAs: retryId });
    expect(await syncShow(target, retryId, { publisher: '1' })).toMatchObject({
      result: 'PURCHASE_SYNCHRONIZED',
      retryOf: failedId,
      executions: [{ name: executionName({ publisherId: 1, synchronizationId: retryId }), by: 'operator-retry' }],
    });
  });

  it('an open synchronization whose execution never started is restarted (.r1) and finalizes; the restarted execution is shown', async () => {
    const { client } = env;
    const { transactionId } = await client.createTransaction();
    // Accepted, but its StartExecution never happened (the register crashed in between).
    const id = randomUUID();
    const now = new Date().toISOString();
    const sync: Synchronization = {
      synchronizationId: id,
      publisherId: 1,
      store: 'apple',
      kind: 'register',
      customerId: 101,
      transactionId,
      status: 'processing',
      requestHash: 'h',
      lockKeys: [`apple#txn#${transactionId}`],
      proof: { kind: 'trusted' },
      client: {},
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    };
    const syncs = new DynamoDbSynchronizationRepository(createDocumentClient(env.stack.dynamodb.client), LOCAL_TABLE_NAME);
    expect(await syncs.accept({ sync, leaseExpiresAt: Date.now() + LOCK_LEASE_SECONDS * 1000 })).toEqual({ outcome: 'accepted' });

    expect(await syncRetry(target, id, { publisher: '1' })).toEqual({ action: 'restarted', synchronizationId: id, executionName: `1-${id}.r1` });
    expect((await client.waitFinalized(id)).final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' });
    await client.settled();
    expect(client.eventsFor(id)).toHaveLength(1);
    const shown = await syncShow(target, id, { publisher: '1' });
    expect(shown).toMatchObject({ recoveries: 1, status: 'finalized' });
    expect(shown.executions.map((execution) => `${execution.name} ${execution.by}`)).toEqual([`1-${id} accept`, `1-${id}.r1 operator-restart`]);
    // Finalized successfully now: a retry is refused, and nothing is started.
    await expect(syncRetry(target, id, { publisher: '1' })).rejects.toThrow(/is finalized PURCHASE_SYNCHRONIZED/);
  });
});
