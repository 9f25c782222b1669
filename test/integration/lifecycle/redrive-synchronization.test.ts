import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbRecoveryRecords } from '../../../lambdas/lifecycle/adapters/dynamodb-recovery-records';
import { recoverSynchronizations, type RecoverDeps } from '../../../lambdas/lifecycle/domain/recover-synchronizations';
import { redriveSynchronization, RedriveRefusedError, type RecoveredSynchronization, type RedriveDeps } from '../../../lambdas/lifecycle/domain/redrive-synchronization';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys } from '../../../lambdas/platform/dynamodb-table';
import { createLogger } from '../../../lambdas/platform/logger';
import { DynamoDbPendingAcknowledgements } from '../../../lambdas/purchases/adapters/dynamodb-pending-acknowledgements';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { finalizeSynchronization } from '../../../lambdas/purchases/domain/finalize-synchronization';
import { executionName, type Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import type { ExecutionState } from '../../../lambdas/purchases/ports/workflow';
import type { SyncExecutionInput } from '../../../lambdas/purchases/workflow-schemas';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { googleRegisterSync } from '../../support/synchronizations';

/*
 * `iap-sync sync retry` (redriveSynchronization) and the recovery sweeper's records on DynamoDB
 * Local, the workflow and its inspector faked: what is retried, how, and what is refused.
 */

const TABLE = 'redrive-test';
const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const LEASE_SECONDS = 7800;
const logger = createLogger('redrive-test', 'silent');

let dynamodb: DynamoDbLocal;
let db: DynamoDBDocumentClient;
let syncs: DynamoDbSynchronizationRepository;
let publishers: DynamoDbPublisherRepository;
let records: DynamoDbRecoveryRecords;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  syncs = new DynamoDbSynchronizationRepository(db, TABLE, () => clock.at);
  publishers = new DynamoDbPublisherRepository(db, TABLE);
  records = new DynamoDbRecoveryRecords(db, TABLE);
  await publishers.putCustomer(1, 101);
}, 60_000);
afterAll(async () => dynamodb?.stop());

const clock = { at: T0, now: () => new Date(clock.at) };

/** The operator's world: a fake workflow engine (every start recorded) and an inspector answering `states` by execution name. */
function operator(workflowType: 'STANDARD' | 'EXPRESS', states: Record<string, ExecutionState> = {}, ids: string[] = []) {
  const started: { name: string; input: SyncExecutionInput }[] = [];
  const deps: RedriveDeps = {
    syncs,
    records,
    workflow: {
      start: async (input, name) => {
        started.push({ name: name ?? executionName(input), input });
      },
    },
    inspector: { state: async (name) => (workflowType === 'EXPRESS' ? 'unknown' : (states[name] ?? 'missing')) },
    workflowType,
    clock,
    logger,
    leaseSeconds: LEASE_SECONDS,
    newId: () => {
      const id = ids.shift();
      if (id === undefined) throw new Error('no more ids');
      return id;
    },
  };
  return { deps, started };
}

let counter = 0;
const nextId = (prefix = 'a') => {
  counter += 1;
  return `${prefix}1111111-2222-4333-8444-${String(counter).padStart(12, '0')}`;
};

/** A Google register accepted at the clock's time (distinct token lock and claim per call), with client headers and a correlation id. */
async function accepted(): Promise<Synchronization> {
  const id = nextId();
  const sync: Synchronization = {
    ...googleRegisterSync(id),
    purchaseToken: `tok.${counter}`,
    productId: 'premium_monthly',
    lockKeys: [`google#token#${counter}`],
    claimKey: `google#claim#${counter}`,
    correlationId: `order-${counter}`,
    client: { appVersion: '4.2.0' },
    createdAt: new Date(clock.at).toISOString(),
    updatedAt: new Date(clock.at).toISOString(),
  };
  expect(await syncs.accept({ sync, leaseExpiresAt: clock.at + LEASE_SECONDS * 1000, claimKey: sync.claimKey })).toEqual({ outcome: 'accepted' });
  return sync;
}

/** The workflow's failure path: finalized SYNCHRONIZATION_FAILED (a Google register's claim on its token released). */
async function failed(): Promise<Synchronization> {
  const sync = await accepted();
  const outcome = await finalizeSynchronization({ publishers, syncs, clock, eventBusName: 'bus' }, { publisherId: 1, synchronizationId: sync.synchronizationId });
  expect(outcome.event?.result).toBe('SYNCHRONIZATION_FAILED');
  await syncs.markPublished(sync);
  return sync;
}

const read = async (id: string) => (await syncs.get({ publisherId: 1, synchronizationId: id })) as RecoveredSynchronization | undefined;

beforeEach(() => {
  clock.at = T0;
});

describe('sync retry of a finalized SYNCHRONIZATION_FAILED: a new synchronization of the same request', () => {
  it('accepts and starts the retry (locks, claim, customer as a register), links both ways, and leaves the failed result as it was', async () => {
    const original = await failed();
    const retryId = nextId('b');
    const { deps, started } = operator('STANDARD', {}, [retryId]);
    clock.at = T0 + 60_000;
    expect(await redriveSynchronization(deps, original)).toEqual({
      action: 'retried',
      synchronizationId: original.synchronizationId,
      retry: { synchronizationId: retryId, executionName: `1-${retryId}` },
    });
    expect(started).toEqual([{ name: `1-${retryId}`, input: expect.objectContaining({ synchronizationId: retryId, store: 'google', kind: 'register', customerId: 101, retry: { attempt: 0 } }) }]);
    expect(await read(retryId)).toMatchObject({
      status: 'processing',
      attempts: 0,
      retryOf: original.synchronizationId,
      purchaseToken: original.purchaseToken,
      productId: 'premium_monthly',
      correlationId: original.correlationId,
      client: { appVersion: '4.2.0' },
      createdAt: new Date(T0 + 60_000).toISOString(),
    });
    const retry = await read(retryId);
    for (const field of ['result', 'finalizedAt', 'publishState', 'eventDetail', 'retriedAs', 'recoveries'] as const) expect(retry?.[field]).toBeUndefined();
    // The token's claim is the retry's now.
    const claim = (await db.send(new GetCommand({ TableName: TABLE, Key: keys.lock(1, original.claimKey ?? '') }))).Item;
    expect(claim?.owner).toBe(retryId);
    // The failed one keeps its result; it names its retry.
    expect(await read(original.synchronizationId)).toMatchObject({ status: 'finalized', result: 'SYNCHRONIZATION_FAILED', retriedAs: retryId });
  });

  it('run twice, starts nothing the second time and answers the retry as it stands', async () => {
    const original = await failed();
    const retryId = nextId('b');
    const first = operator('STANDARD', {}, [retryId]);
    await redriveSynchronization(first.deps, original);
    const second = operator('STANDARD', {}, [nextId('c')]);
    expect(await redriveSynchronization(second.deps, original)).toEqual({
      action: 'already_retried',
      synchronizationId: original.synchronizationId,
      retry: { synchronizationId: retryId, status: 'processing' },
    });
    expect(second.started).toEqual([]);
  });

  it('refuses when the token was registered again meanwhile, and can be run again later (nothing half done)', async () => {
    const original = await failed();
    const again = { ...original, synchronizationId: nextId('d'), status: 'processing' as const, createdAt: new Date(T0).toISOString() };
    expect(await syncs.accept({ sync: again, leaseExpiresAt: T0 + LEASE_SECONDS * 1000, claimKey: again.claimKey })).toEqual({ outcome: 'accepted' });
    const { deps, started } = operator('STANDARD', {}, [nextId('b')]);
    await expect(redriveSynchronization(deps, original)).rejects.toThrow(new RedriveRefusedError(
      `The purchase token was registered again since (synchronization ${again.synchronizationId}): that synchronization is the retry; nothing was started`,
    ));
    expect(started).toEqual([]);
    expect((await read(original.synchronizationId))?.retriedAs).toBeUndefined();
  });

  it.each(['PURCHASE_SYNCHRONIZED', 'TRANSACTION_ID_NOT_FOUND'])('never runs a synchronization finalized %s again', async (result) => {
    const sync = await accepted();
    expect(await syncs.finalize({ sync: { ...sync, status: 'finalized', result, accessGranted: result === 'PURCHASE_SYNCHRONIZED', publishState: 'published' } as Synchronization, entitlementChanges: [] })).toBe(true);
    const { deps, started } = operator('STANDARD', {}, [nextId('b')]);
    await expect(redriveSynchronization(deps, sync)).rejects.toThrow(new RegExp(`is finalized ${result}: the store answered, so there is nothing to retry`));
    expect(started).toEqual([]);
    expect((await read(sync.synchronizationId))?.retriedAs).toBeUndefined();
  });
});

describe('sync retry of an open synchronization', () => {
  it('STANDARD: leaves a running execution alone; restarts one that ended (.r1, recorded on the record); run again, does nothing', async () => {
    const sync = await accepted();
    const running = operator('STANDARD', { [executionName(sync)]: 'running' });
    expect(await redriveSynchronization(running.deps, sync)).toMatchObject({ action: 'none', reason: expect.stringMatching(/^its execution 1-.* is running/) });
    expect(running.started).toEqual([]);

    clock.at = T0 + 600_000;
    const ended = operator('STANDARD', { [executionName(sync)]: 'ended' });
    expect(await redriveSynchronization(ended.deps, sync)).toEqual({ action: 'restarted', synchronizationId: sync.synchronizationId, executionName: `1-${sync.synchronizationId}.r1` });
    expect(ended.started.map((s) => s.name)).toEqual([`1-${sync.synchronizationId}.r1`]);
    expect(await read(sync.synchronizationId)).toMatchObject({
      status: 'processing',
      recoveries: 1,
      executions: [{ name: `1-${sync.synchronizationId}.r1`, startedAt: new Date(T0 + 600_000).toISOString(), by: 'operator-restart' }],
    });
    // Its lock has a fresh lease.
    const lock = (await db.send(new GetCommand({ TableName: TABLE, Key: keys.lock(1, sync.lockKeys[0] ?? '') }))).Item;
    expect(lock).toMatchObject({ owner: sync.synchronizationId, leaseExpiresAt: T0 + 600_000 + LEASE_SECONDS * 1000 });

    const again = operator('STANDARD', { [`1-${sync.synchronizationId}.r1`]: 'running' });
    expect(await redriveSynchronization(again.deps, sync)).toMatchObject({ action: 'none' });
    expect(again.started).toEqual([]);
  });

  it('refuses while another synchronization that is not finalized holds one of its locks; takes it over from a finalized one', async () => {
    const sync = await accepted();
    const holder = await accepted();
    const lockKey = sync.lockKeys[0] ?? '';
    await db.send(new PutCommand({ TableName: TABLE, Item: { ...keys.lock(1, lockKey), type: 'lock', owner: holder.synchronizationId, leaseExpiresAt: T0 + 3_600_000 } }));
    clock.at = T0 + 600_000;
    const blocked = operator('STANDARD');
    await expect(redriveSynchronization(blocked.deps, sync)).rejects.toThrow(new RegExp(`^The purchase is locked by synchronization ${holder.synchronizationId} \\(${lockKey}, lease until`));
    expect(blocked.started).toEqual([]);
    expect((await read(sync.synchronizationId))?.recoveries).toBeUndefined();

    await finalizeSynchronization({ publishers, syncs, clock, eventBusName: 'bus' }, holder);
    const free = operator('STANDARD');
    expect(await redriveSynchronization(free.deps, sync)).toMatchObject({ action: 'restarted' });
    expect((await db.send(new GetCommand({ TableName: TABLE, Key: keys.lock(1, lockKey) }))).Item?.owner).toBe(sync.synchronizationId);
  });

  it('EXPRESS: judged by age like the sweeper (an execution ends within 5 minutes); a parked one has its next attempt started now', async () => {
    const sync = await accepted();
    clock.at = T0 + 240_000;
    expect(await redriveSynchronization(operator('EXPRESS').deps, sync)).toMatchObject({ action: 'none', reason: expect.stringMatching(/EXPRESS execution may still be running/) });
    clock.at = T0 + 420_000;
    expect(await redriveSynchronization(operator('EXPRESS').deps, sync)).toMatchObject({ action: 'restarted' });

    const parked = await accepted();
    await syncs.markRetrying(parked, 2, new Date(clock.at), new Date(clock.at + 900_000), { graceSeconds: 180 });
    const resume = operator('EXPRESS');
    expect(await redriveSynchronization(resume.deps, parked)).toEqual({ action: 'resumed', synchronizationId: parked.synchronizationId, executionName: `1-${parked.synchronizationId}.a2` });
    expect(resume.started).toEqual([{ name: `1-${parked.synchronizationId}.a2`, input: expect.objectContaining({ retry: { attempt: 2 } }) }]);
    expect(await read(parked.synchronizationId)).toMatchObject({ status: 'retrying', executions: [{ name: `1-${parked.synchronizationId}.a2`, by: 'operator-resume' }] });
    expect((await read(parked.synchronizationId))?.parked).toBeUndefined();
    // Run again at once: its attempt is running now.
    expect(await redriveSynchronization(operator('EXPRESS').deps, parked)).toMatchObject({ action: 'none' });
  });

  it('refuses a store notification\'s refresh', async () => {
    const id = nextId('e');
    const refresh: Synchronization = { ...googleRegisterSync(id), kind: 'refresh', customerId: 0, lockKeys: [], purchaseKey: 'tok.refresh', notice: { id: `n-${id}`, type: 'SUBSCRIPTION_RENEWED' } };
    expect(await syncs.acceptNotice(refresh, { store: 'google', notificationId: `n-${id}` })).toBe('accepted');
    clock.at = T0 + 600_000;
    const { deps, started } = operator('STANDARD');
    await expect(redriveSynchronization(deps, refresh)).rejects.toThrow(/store notification's refresh/);
    expect(started).toEqual([]);
  });
});

describe('the recovery sweeper', () => {
  it('records the executions it starts, and hands a Google acknowledgement to the reconciliation when it republishes a lost execution\'s event', async () => {
    const pending = new DynamoDbPendingAcknowledgements(db, TABLE);
    const sync = await accepted();
    // Finalized, entitled, acknowledgement asked for; its execution died before MarkPublished.
    const final = { ...sync, status: 'finalized' as const, result: 'PURCHASE_SYNCHRONIZED' as const, accessGranted: true, acknowledge: true, publishState: 'claimed' as const, eventDetail: { synchronizationId: sync.synchronizationId, productId: 'premium_monthly' } };
    expect(await syncs.finalize({ sync: final, entitlementChanges: [] })).toBe(true);
    const lost = await accepted();
    clock.at = T0 + 600_000;
    const started: string[] = [];
    const deps: RecoverDeps = {
      syncs,
      publishers,
      clock,
      logger,
      eventBusName: 'bus',
      inspector: { state: async () => 'ended' },
      workflow: { start: async (_input, name) => void started.push(name ?? '') },
      events: { publish: async () => undefined },
      records,
      acknowledgements: pending,
    };
    const report = await recoverSynchronizations(deps, { graceSeconds: 180, maxRestarts: 2, unknownEndedAfterSeconds: 360, limit: 100 });
    expect(report.republished).toBeGreaterThanOrEqual(1);
    expect(await pending.find(1, sync.purchaseToken ?? '')).toMatchObject({
      state: 'pending',
      synchronizationId: sync.synchronizationId,
      productId: 'premium_monthly',
      acknowledgeBy: new Date(T0 + 3 * 86_400_000).toISOString(),
    });
    expect(started).toContain(`1-${lost.synchronizationId}.r1`);
    expect((await read(lost.synchronizationId))?.executions).toEqual([{ name: `1-${lost.synchronizationId}.r1`, startedAt: new Date(T0 + 600_000).toISOString(), by: 'sweeper-restart' }]);
  });
});
