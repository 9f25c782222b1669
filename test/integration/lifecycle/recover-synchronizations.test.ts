import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { recoverSynchronizations, type RecoverDeps, type RecoverOptions } from '../../../lambdas/lifecycle/domain/recover-synchronizations';
import { executionName, type Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import type { ExecutionState } from '../../../lambdas/purchases/ports/workflow';
import type { SyncResultDetail } from '../../../lambdas/events/schemas';
import { createLogger } from '../../../lambdas/platform/logger';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { readEventLog } from '../../../local/event-bus';
import { settlePublishedBeforeRestart } from '../../../local/recover';
import { googleRegisterSync } from '../../support/synchronizations';

const TABLE = 'recover-test';
const ACCEPTED_AT = '2026-11-23T10:00:00.000Z';
const T0 = Date.parse(ACCEPTED_AT);
let dynamodb: DynamoDbLocal;
let syncs: DynamoDbSynchronizationRepository;
let publishers: DynamoDbPublisherRepository;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  const db = createDocumentClient(dynamodb.client);
  syncs = new DynamoDbSynchronizationRepository(db, TABLE);
  publishers = new DynamoDbPublisherRepository(db, TABLE);
  await publishers.putCustomer(1, 101);
});
afterAll(async () => dynamodb?.stop());

/** A world where the sweeper runs at `now`, executions are in `states` (by name) and publishing may fail. */
function world(now: number, states: Record<string, ExecutionState> = {}, publishFails = false) {
  const started: { name: string; synchronizationId: string }[] = [];
  const attempts = new Map<string, number>();
  const published: SyncResultDetail[] = [];
  const deps: RecoverDeps = {
    syncs,
    publishers,
    clock: { now: () => new Date(now) },
    eventBusName: 'bus',
    logger: createLogger('recover-test', 'silent'),
    inspector: { state: async (name) => states[name] ?? 'missing' },
    workflow: {
      start: async (input, name) => {
        started.push({ name: name ?? executionName(input), synchronizationId: input.synchronizationId });
        attempts.set(name ?? input.synchronizationId, input.retry.attempt);
      },
    },
    events: {
      publish: async (detailType, detail) => {
        if (publishFails) throw new Error('EventBridge is down');
        expect(detailType).toBe('inappPurchaseSyncResult');
        published.push(detail as SyncResultDetail);
      },
    },
  };
  return { deps, started, published, attempts };
}

const OPTIONS: RecoverOptions = { graceSeconds: 180, maxRestarts: 2, unknownEndedAfterSeconds: 360, limit: 100 };
let counter = 0;

/** Accepts a fresh Google register at ACCEPTED_AT (distinct ids, locks and claims per test). */
async function accepted(): Promise<Synchronization> {
  counter += 1;
  const id = `${(counter % 16).toString(16)}1111111-2222-4333-8444-${String(counter).padStart(12, '0')}`;
  const base = googleRegisterSync(id);
  const sync = { ...base, lockKeys: [`google#token#${counter}`], claimKey: `google#claim#${counter}` };
  expect(await syncs.accept({ sync, leaseExpiresAt: T0 + 7_800_000, claimKey: sync.claimKey })).toEqual({ outcome: 'accepted' });
  return sync;
}

async function openIds(at: number): Promise<string[]> {
  return (await syncs.listOpen(new Date(at), 1000)).map((entry) => entry.synchronizationId);
}

describe('recovery sweeper on DynamoDB Local', () => {
  it('leaves young and running synchronizations alone and restarts one whose execution is gone', async () => {
    const young = await accepted();
    const running = await accepted();
    const lost = await accepted();
    // Ten seconds after accept everything is within the grace period: nothing is even looked at.
    const early = world(T0 + 10_000);
    const none = await recoverSynchronizations(early.deps, OPTIONS);
    expect(none.examined).toBe(0);

    const later = world(T0 + 600_000, { [executionName(running)]: 'running' });
    const report = await recoverSynchronizations(later.deps, OPTIONS);
    expect(report).toMatchObject({ running: 1, stuck: 2, restarted: 2, failed: 0, errors: 0 });
    expect(later.started.map((start) => start.name).sort()).toEqual(
      [`${executionName({ ...young, recoveries: 0 })}.r1`, `${executionName({ ...lost, recoveries: 0 })}.r1`].sort(),
    );
    expect((await syncs.get(lost))?.recoveries).toBe(1);
    // The restart reset openSince: the next sweep within the grace period leaves it to the new execution.
    const again = world(T0 + 700_000, { [executionName(running)]: 'running' });
    expect(await recoverSynchronizations(again.deps, OPTIONS)).toMatchObject({ stuck: 0, restarted: 0 });
  });

  it('after the restart budget finalizes SYNCHRONIZATION_FAILED, frees the lock and publishes the event', async () => {
    const sync = await accepted();
    let now = T0;
    for (const restart of [1, 2]) {
      now += 600_000;
      const sweep = world(now);
      expect(await recoverSynchronizations(sweep.deps, OPTIONS)).toMatchObject({ restarted: expect.any(Number) });
      expect((await syncs.get(sync))?.recoveries).toBe(restart);
    }
    now += 600_000;
    const last = world(now);
    const report = await recoverSynchronizations(last.deps, OPTIONS);
    expect(report.failed).toBeGreaterThanOrEqual(1);
    const finalized = await syncs.get(sync);
    expect(finalized).toMatchObject({ status: 'finalized', result: 'SYNCHRONIZATION_FAILED' });
    expect(last.published.filter((event) => event.synchronizationId === sync.synchronizationId)).toHaveLength(1);
    expect(await openIds(now + 1)).not.toContain(sync.synchronizationId);
    // The transaction's lock is free: a new register of the same token is accepted.
    const retry = { ...sync, synchronizationId: 'f1111111-2222-4333-8444-999999999999', claimKey: 'google#claim#retry' };
    expect(await syncs.accept({ sync: retry, leaseExpiresAt: now + 7_800_000, claimKey: retry.claimKey })).toEqual({ outcome: 'accepted' });
  });

  it('keeps a finalized synchronization whose publish failed in the open index and publishes it at the next sweep', async () => {
    const sync = await accepted();
    const exhausted = { ...sync, recoveries: 2 };
    await syncs.recordRecovery(sync, new Date(T0));
    await syncs.recordRecovery({ ...sync, recoveries: 1 }, new Date(T0));
    expect((await syncs.get(sync))?.recoveries).toBe(exhausted.recoveries);

    const down = world(T0 + 600_000, {}, true);
    const failed = await recoverSynchronizations(down.deps, OPTIONS);
    expect(failed.errors).toBeGreaterThanOrEqual(1);
    expect(await syncs.get(sync)).toMatchObject({ status: 'finalized', publishState: 'claimed' });
    expect(await openIds(T0 + 1_200_000)).toContain(sync.synchronizationId);

    const up = world(T0 + 1_200_000);
    expect((await recoverSynchronizations(up.deps, OPTIONS)).republished).toBeGreaterThanOrEqual(1);
    expect(up.published.filter((event) => event.synchronizationId === sync.synchronizationId)).toHaveLength(1);
    expect((await syncs.get(sync))?.publishState).toBe('published');
    expect(await openIds(T0 + 2_000_000)).not.toContain(sync.synchronizationId);
  });

  it('judges EXPRESS executions, which cannot be described, by how long the synchronization has been open', async () => {
    const sync = await accepted();
    const express = (now: number) => {
      const w = world(now);
      w.deps.inspector = { state: async () => 'unknown' };
      return w;
    };
    // Four minutes after accept an EXPRESS execution may still be running; seven minutes after it cannot.
    const young = express(T0 + 240_000);
    await recoverSynchronizations(young.deps, OPTIONS);
    expect(young.started.map((s) => s.synchronizationId)).not.toContain(sync.synchronizationId);
    const old = express(T0 + 420_000);
    await recoverSynchronizations(old.deps, OPTIONS);
    expect(old.started.map((s) => s.synchronizationId)).toContain(sync.synchronizationId);
  });

  it('at local start-up restarts everything accepted before the process started, without a restart limit', async () => {
    const sync = await accepted();
    await syncs.recordRecovery(sync, new Date(T0));
    await syncs.recordRecovery({ ...sync, recoveries: 1 }, new Date(T0));
    const startup = world(T0 + 1000, { [`${executionName({ ...sync, recoveries: 0 })}.r2`]: 'running' });
    await recoverSynchronizations(startup.deps, { ...OPTIONS, acceptedBefore: new Date(T0 + 500) });
    expect(startup.started).toContainEqual({ name: `${executionName({ ...sync, recoveries: 0 })}.r3`, synchronizationId: sync.synchronizationId });
    expect(await syncs.get(sync)).toMatchObject({ status: 'processing', recoveries: 3 });
  });

  it('after a local restart, a claimed synchronization whose event is in the bus log is marked published, not published again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iap-sync-settle-'));
    try {
      const claimed = async () => {
        const sync = await accepted();
        const finalizedAt = new Date(T0 + 5000).toISOString();
        const eventDetail = { synchronizationId: sync.synchronizationId, finalizedAt };
        const finalized = { ...sync, status: 'finalized' as const, publishState: 'claimed' as const, updatedAt: finalizedAt, eventDetail };
        expect(await syncs.finalize({ sync: finalized, entitlementChanges: [] })).toBe(true);
        return finalized;
      };
      const published = await claimed();
      const notPublished = await claimed();
      const log = join(dir, 'events.jsonl');
      // The log as the killed process left it: one complete event and a line cut short.
      writeFileSync(log, `${JSON.stringify({ detail: published.eventDetail })}\n{"detail":{"synchronizationId":"${notPublished.synchronizationId}"`);
      expect(await settlePublishedBeforeRestart(syncs, readEventLog(log), new Date(T0 + 10_000))).toBe(1);
      expect((await syncs.get(published))?.publishState).toBe('published');
      expect((await syncs.get(notPublished))?.publishState).toBe('claimed');
      // The start-up sweep then publishes only the one the log does not have.
      const startup = world(T0 + 20_000);
      await recoverSynchronizations(startup.deps, { ...OPTIONS, acceptedBefore: new Date(T0 + 10_000) });
      expect(startup.published.map((event) => event.synchronizationId)).toContain(notPublished.synchronizationId);
      expect(startup.published.map((event) => event.synchronizationId)).not.toContain(published.synchronizationId);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('EXPRESS: starts a parked synchronization\'s next attempt when it is due, once, with the budget going on', async () => {
    const sync = await accepted();
    // MarkRetrying parked it after its 3rd failed attempt with 60 s to wait (grace 180 s places the index entry).
    await syncs.markRetrying(sync, 3, new Date(T0), new Date(T0 + 60_000), { graceSeconds: 180 });
    expect(await syncs.get(sync)).toMatchObject({ status: 'retrying', parked: true, attempts: 3 });

    const early = world(T0 + 30_000);
    await recoverSynchronizations(early.deps, OPTIONS);
    expect(early.started.map((start) => start.synchronizationId)).not.toContain(sync.synchronizationId);

    const due = world(T0 + 61_000);
    due.deps.inspector = { state: async () => 'unknown' };
    const report = await recoverSynchronizations(due.deps, OPTIONS);
    expect(report.resumed).toBeGreaterThanOrEqual(1);
    expect(due.started).toContainEqual({ name: `${executionName({ ...sync, recoveries: 0 })}.a3`, synchronizationId: sync.synchronizationId });
    expect(due.attempts.get(`${executionName({ ...sync, recoveries: 0 })}.a3`)).toBe(3);
    expect(await syncs.get(sync)).toMatchObject({ status: 'retrying', attempts: 3 });
    expect((await syncs.get(sync))?.parked).toBeUndefined();

    // A second sweep right after does not start it again: the resumed execution has it (EXPRESS, judged by age).
    const again = world(T0 + 62_000);
    again.deps.inspector = { state: async () => 'unknown' };
    await recoverSynchronizations(again.deps, OPTIONS);
    expect(again.started.map((start) => start.synchronizationId)).not.toContain(sync.synchronizationId);
  });
});

