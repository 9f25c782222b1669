import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { LOCAL_STATE_MACHINE_ARN, LOCAL_TABLE_NAME } from '../../local/stack';
import { startTestStack } from '../support/local-client';
import { executionName } from '../../lambdas/purchases/domain/synchronization';

describe('npm start on a data dir', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iap-sync-restart-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps synchronizations, simulator transactions, credentials and later changes across a restart', async () => {
    const first = await startTestStack({ dataDir, inMemory: false });
    let synchronizationId: string;
    let transactionId: string;
    let token: string;
    try {
      ({ synchronizationId, transactionId } = await first.client.registerAndWait());
      token = first.stack.localJson.publisherToken;
      // A change made after the first start must survive: seeding happens on first start only.
      const publishers = new DynamoDbPublisherRepository(createDocumentClient(first.stack.dynamodb.client), LOCAL_TABLE_NAME);
      await publishers.putOffer(1, 'apple', 'premium_monthly', 'CHANGED_OFFER');
      await first.client.settled();
    } finally {
      await first.stop(false);
    }
    expect(JSON.parse(readFileSync(join(dataDir, 'local.json'), 'utf8')).publisherToken).toBe(token);

    // A restart is a new process: drop the handler modules (and the clients they built) of the first run.
    jest.resetModules();
    const second = await startTestStack({ dataDir, inMemory: false });
    try {
      expect(second.stack.localJson.publisherToken).toBe(token);
      const status = await second.client.status(synchronizationId);
      expect(status.body).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED', offerId: 'S100000001_US' });
      // The simulator still knows the transaction, signed by the same root the service trusts.
      const again = await second.client.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
      const { final } = await second.client.waitFinalized(String(again.body.synchronizationId));
      expect(final).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED', offerId: 'CHANGED_OFFER' });
      await second.client.settled();
    } finally {
      await second.stop(false);
    }
  });

  it('finishes a synchronization that was still running when the process stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iap-sync-crash-'));
    try {
      jest.resetModules();
      const first = await startTestStack({ dataDir: dir, inMemory: false });
      let id: string;
      try {
        const { transactionId } = await first.client.createTransaction();
        // A slow Apple keeps the synchronization running when the process goes away.
        await first.client.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', latencyMs: 5000 } });
        const accepted = await first.client.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
        id = String(accepted.body.synchronizationId);
        expect((await first.client.status(id)).body.status).toBe('processing');
      } finally {
        await first.stop(false);
      }
      jest.resetModules();
      const second = await startTestStack({ dataDir: dir, inMemory: false });
      try {
        const { final } = await second.client.waitFinalized(id);
        expect(final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' });
        await second.client.settled();
        expect(second.client.eventsFor(id)).toHaveLength(1);
      } finally {
        await second.stop(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the sweeper restarts a synchronization whose execution was aborted, and it finalizes with one event', async () => {
    jest.resetModules();
    // A one-second grace period and a 200 ms schedule instead of 180 s and 1 minute.
    const run = await startTestStack({ recovery: { intervalMs: 200, graceSeconds: 1 } });
    try {
      const { transactionId } = await run.client.createTransaction();
      const faults = { headers: { 'content-type': 'application/json' } };
      await run.client.request('POST', '/__simulator/faults', { ...faults, body: { store: 'apple', latencyMs: 3000 } });
      const accepted = await run.client.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
      const id = String(accepted.body.synchronizationId);
      const executionArn = `${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${executionName({ publisherId: 1, synchronizationId: id })}`;
      await run.stack.stepFunctions.call('StopExecution', { executionArn });
      await run.client.request('POST', '/__simulator/faults', { ...faults, body: { store: 'apple', latencyMs: 0 } });

      const { final } = await run.client.waitFinalized(id);
      expect(final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' });
      expect(((await run.stack.stepFunctions.call('DescribeExecution', { executionArn })) as { status: string }).status).toBe('ABORTED');
      await run.client.settled();
      const restarted = (await run.stack.stepFunctions.call('DescribeExecution', { executionArn: `${executionArn}.r1` })) as { status: string };
      expect(restarted.status).toBe('SUCCEEDED');
      expect(run.client.eventsFor(id)).toHaveLength(1);
    } finally {
      await run.stop();
    }
  });
});

