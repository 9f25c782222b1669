import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbReconcileRepository } from '../../../lambdas/lifecycle/adapters/dynamodb-reconcile-repository';
import { DEFAULT_RECONCILE_SETTINGS, reconcilePurchases, type ReconcileDeps } from '../../../lambdas/lifecycle/domain/reconcile-purchases';
import type { DuePurchase } from '../../../lambdas/lifecycle/ports';
import type { LifecycleSnapshot } from '../../../lambdas/entitlements';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys, RECONCILE_MARGIN_SECONDS, TABLE_DEFINITION } from '../../../lambdas/platform/dynamodb-table';
import { createLogger } from '../../../lambdas/platform/logger';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { acceptNotice } from '../../../lambdas/purchases/domain/accept-notice';
import type { PurchaseRecord } from '../../../lambdas/purchases/domain/ownership';
import type { Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import type { SyncExecutionInput } from '../../../lambdas/purchases/workflow-schemas';
import type { Publisher } from '../../../lambdas/tenants';
import { ensureTable, startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { appleConfig, FakePublishers, publisher } from '../../unit/lifecycle/apple-notification-fixtures';

/*
 * The reconcile index on DynamoDB Local: purchase items enter it through the finalize's own Put
 * (DynamoDbSynchronizationRepository.finalize), and the reconciliation's repository lists what is
 * due and postpones it.
 */

const TABLE = 'reconcile-due-test';
const NOW = Date.now();
/** The purchases are written ten days ago, so an end a day after that is long past. */
const WRITTEN = NOW - 10 * 86_400_000;
const DAY = 86_400_000;
const MARGIN = RECONCILE_MARGIN_SECONDS * 1000;
const iso = (ms: number) => new Date(ms).toISOString();
const logger = createLogger('reconcile-due-test', 'silent');

let dynamodb: DynamoDbLocal;
let db: DynamoDBDocumentClient;
let reconcile: DynamoDbReconcileRepository;
let writtenThen: DynamoDbSynchronizationRepository;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  reconcile = new DynamoDbReconcileRepository(db, TABLE);
  writtenThen = new DynamoDbSynchronizationRepository(db, TABLE, () => WRITTEN);
});
afterAll(async () => dynamodb?.stop());

let sequence = 0;

/** Writes a purchase record the way a refresh's finalize does: accept a notice, then finalize with the purchase write. */
async function writePurchase(
  publisherId: number,
  store: 'apple' | 'google',
  purchaseKey: string,
  lifecycle: Pick<LifecycleSnapshot, 'state' | 'expiresAt' | 'gracePeriodExpiresAt'>,
  version = 1,
  syncs = writtenThen,
): Promise<PurchaseRecord> {
  sequence += 1;
  const synchronizationId = `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`;
  const at = iso(WRITTEN);
  const sync: Synchronization = {
    synchronizationId,
    publisherId,
    store,
    kind: 'refresh',
    customerId: 0,
    purchaseKey,
    ...(store === 'apple' ? { transactionId: purchaseKey } : { purchaseToken: purchaseKey }),
    status: 'processing',
    requestHash: '',
    lockKeys: [],
    client: {},
    attempts: 0,
    createdAt: at,
    updatedAt: at,
  };
  expect(await syncs.acceptNotice(sync, { store, notificationId: `n-${synchronizationId}` })).toBe('accepted');
  const state = lifecycle.state === 'revoked' ? 'revoked' : lifecycle.state === 'expired' ? 'expired' : 'active';
  const next: PurchaseRecord = {
    publisherId,
    store,
    purchaseKey,
    ownerCustomerId: 101,
    ownershipVersion: version,
    productId: 'premium_monthly',
    offerId: 'premium',
    state,
    entitled: state === 'active',
    expiresAt: lifecycle.expiresAt,
    updatedAt: at,
    lifecycle: { ...lifecycle, productId: 'premium_monthly', willRenew: true, observedAt: at },
  };
  const finalized = { ...sync, status: 'finalized' as const, result: 'PURCHASE_SYNCHRONIZED' as const, finalizedAt: at };
  expect(await syncs.finalize({ sync: finalized, purchaseWrite: { next, expectedVersion: version - 1 }, entitlementChanges: [] })).toBe(true);
  return next;
}

const keysOf = (due: DuePurchase[]) => due.map((d) => `${d.publisherId}/${d.purchaseKey}`).sort();

/**
 * One run of the reconciliation for `subject` alone, at NOW, on this table: the intake is the real
 * one (acceptNotice on the synchronization repository) with a workflow that records its starts.
 * Apple's history has nothing to tell; Google's list is `google`.
 */
async function reconcileOnly(subject: Publisher, google: ReconcileDeps['google']) {
  const workflowStarts: SyncExecutionInput[] = [];
  const syncs = new DynamoDbSynchronizationRepository(db, TABLE);
  const clock = { now: () => new Date(NOW) };
  const outcome = await reconcilePurchases(
    {
      publishers: new (class extends FakePublishers {
        async listPublisherIds(): Promise<number[]> {
          return [subject.publisherId];
        }
      })([subject]),
      history: { page: async () => ({ signedPayloads: [] }) },
      decoder: { decode: async () => Promise.reject(new Error('no notifications in this test')) },
      google,
      intake: { accept: (notice) => acceptNotice({ syncs, workflow: { start: async (input) => void workflowStarts.push(input) }, clock, logger }, notice) },
      reconcile,
      clock,
      sleep: async () => undefined,
      logger,
    },
    { ...DEFAULT_RECONCILE_SETTINGS, publisherId: subject.publisherId },
  );
  return { ...outcome, workflowStarts };
}

/** The refresh synchronization the intake recorded for a notice. */
async function synchronizationOf(publisherId: number, store: 'apple' | 'google', notificationId: string) {
  const item = await db.send(new GetCommand({ TableName: TABLE, Key: keys.notification(publisherId, store, notificationId) }));
  return new DynamoDbSynchronizationRepository(db, TABLE).get({ publisherId, synchronizationId: String(item.Item?.synchronizationId) });
}

describe('the reconcile-due index', () => {
  beforeAll(async () => {
    await writePurchase(1, 'apple', '1001', { state: 'active', expiresAt: iso(WRITTEN + DAY), gracePeriodExpiresAt: null });
    await writePurchase(1, 'apple', '1002', { state: 'active', expiresAt: iso(NOW + 30 * DAY), gracePeriodExpiresAt: null });
    await writePurchase(1, 'apple', '1003', { state: 'revoked', expiresAt: iso(WRITTEN + DAY), gracePeriodExpiresAt: null });
    await writePurchase(1, 'apple', '1004', { state: 'expired', expiresAt: iso(WRITTEN - DAY), gracePeriodExpiresAt: null });
    await writePurchase(1, 'apple', '1005', { state: 'grace_period', expiresAt: iso(WRITTEN - DAY), gracePeriodExpiresAt: iso(NOW + 5 * DAY) });
    await writePurchase(1, 'apple', '1006', { state: 'grace_period', expiresAt: iso(WRITTEN - DAY), gracePeriodExpiresAt: iso(WRITTEN + 2 * DAY) });
    await writePurchase(1, 'apple', '1007', { state: 'active', expiresAt: null, gracePeriodExpiresAt: null });
    await writePurchase(1, 'google', 'token.1008', { state: 'active', expiresAt: iso(WRITTEN + DAY), gracePeriodExpiresAt: null });
    await writePurchase(2, 'apple', '2001', { state: 'billing_retry', expiresAt: iso(WRITTEN - DAY), gracePeriodExpiresAt: null });
    // Publisher 10: its purchase keys begin like publisher 1's (PURCHASE#10#… and PURCHASE#1#…).
    await writePurchase(10, 'apple', '10001', { state: 'active', expiresAt: iso(WRITTEN + DAY), gracePeriodExpiresAt: null });
    await writePurchase(10, 'google', 'token.10002', { state: 'on_hold', expiresAt: iso(WRITTEN - DAY), gracePeriodExpiresAt: null });
  });

  it('lists only the purchases whose period (or grace) ended a margin ago, Apple\'s and Google\'s, not revoked, expired or lifetime ones', async () => {
    const due = await reconcile.listDue(new Date(NOW), 100);
    expect(keysOf(due)).toEqual(['1/1001', '1/1006', '1/token.1008', '10/10001', '10/token.10002', '2/2001']);
    // A Google purchase as an Apple one: named by its store and key (the token), due a margin after its period.
    const named = due.filter((d) => d.purchaseKey === '1001' || d.purchaseKey === 'token.1008');
    expect(named.sort((a, b) => a.store.localeCompare(b.store))).toEqual(
      [
        { store: 'apple', purchaseKey: '1001' },
        { store: 'google', purchaseKey: 'token.1008' },
      ].map((purchase) => ({ publisherId: 1, ...purchase, reconcileAt: iso(WRITTEN + DAY + MARGIN), attempts: 0 })),
    );
    // Billing retry: already past its end when written, so due a margin after the write.
    expect(due.find((d) => d.purchaseKey === '2001')?.reconcileAt).toBe(iso(WRITTEN + MARGIN));
    // Not yet due: the one still active and the one whose grace runs five more days.
    expect(keysOf(await reconcile.listDue(new Date(NOW + 40 * DAY), 100))).toEqual([
      '1/1001',
      '1/1002',
      '1/1005',
      '1/1006',
      '1/token.1008',
      '10/10001',
      '10/token.10002',
      '2/2001',
    ]);
  });

  it('stores the index attributes on the purchase item itself', async () => {
    const item = await db.send(new GetCommand({ TableName: TABLE, Key: keys.purchase(1, 'apple', '1001') }));
    const { reconcileIndex } = TABLE_DEFINITION;
    expect(item.Item?.[reconcileIndex.sortKey.name]).toBe(iso(WRITTEN + DAY + MARGIN));
    expect(String(item.Item?.[reconcileIndex.partitionKey.name])).toMatch(/^DUE#[0-9a-f]$/);
    const revoked = await db.send(new GetCommand({ TableName: TABLE, Key: keys.purchase(1, 'apple', '1003') }));
    expect(revoked.Item?.[reconcileIndex.sortKey.name]).toBeUndefined();
  });

  it('filters by publisher, both stores\' purchases of that publisher and no other\'s, and bounds the answer by the limit', async () => {
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 1))).toEqual(['1/1001', '1/1006', '1/token.1008']);
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 10))).toEqual(['10/10001', '10/token.10002']);
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 3))).toEqual([]);
    expect(await reconcile.listDue(new Date(NOW), 1)).toHaveLength(1);
    expect(await reconcile.listDue(new Date(NOW), 0)).toEqual([]);
  });

  it('postpones a listed purchase (counting the attempt) only while it is as listed; a new write of the purchase places it anew', async () => {
    const [listed] = (await reconcile.listDue(new Date(NOW), 100, 1)).filter((d) => d.purchaseKey === '1001');
    if (!listed) throw new Error('1001 is not due');
    expect(await reconcile.postpone(listed, new Date(NOW + 3600_000))).toBe(true);
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 1))).toEqual(['1/1006', '1/token.1008']);
    // Listed again an hour later, with the attempt counted (projected into the index).
    const later = (await reconcile.listDue(new Date(NOW + 3600_000), 100, 1)).find((d) => d.purchaseKey === '1001');
    expect(later).toMatchObject({ reconcileAt: iso(NOW + 3600_000), attempts: 1 });
    // A second postponement of the stale listing changes nothing.
    expect(await reconcile.postpone(listed, new Date(NOW + 7200_000))).toBe(false);

    // The refresh found a renewal: the finalize's Put places the purchase by its new end, attempts reset.
    const now = new DynamoDbSynchronizationRepository(db, TABLE, () => NOW);
    await writePurchase(1, 'apple', '1001', { state: 'active', expiresAt: iso(NOW - 2 * DAY), gracePeriodExpiresAt: null }, 2, now);
    const rewritten = (await reconcile.listDue(new Date(NOW + 2 * MARGIN), 100, 1)).find((d) => d.purchaseKey === '1001');
    expect(rewritten).toMatchObject({ reconcileAt: iso(NOW + MARGIN), attempts: 0 });
    // …and a finalize that settles it (expired) takes it out of the index.
    await writePurchase(1, 'apple', '1001', { state: 'expired', expiresAt: iso(NOW - 2 * DAY), gracePeriodExpiresAt: null }, 3, now);
    expect((await reconcile.listDue(new Date(NOW + 100 * DAY), 100, 1)).map((d) => d.purchaseKey)).not.toContain('1001');
    // A postponement never creates an item: the purchase is gone from the index, so the condition fails.
    expect(await reconcile.postpone({ ...listed, reconcileAt: iso(NOW + MARGIN) }, new Date(NOW))).toBe(false);
  });

  it('the reconciliation hands each due purchase to the intake as a RECONCILE refresh and postpones it', async () => {
    const { report, started: refreshes, workflowStarts } = await reconcileOnly(publisher(2, appleConfig({ environments: ['Sandbox'] })), {
      listVoided: () => Promise.reject(new Error('no Google in this test')),
    });
    expect(report).toMatchObject({ publishers: 1, duePurchases: 1, refreshesStarted: 1, errors: 0 });
    const notificationId = `reconcile#2001#${iso(WRITTEN + MARGIN)}`;
    expect(refreshes).toEqual([{ publisherId: 2, store: 'apple', notificationId, purchaseKey: '2001', source: 'due' }]);
    const sync = await synchronizationOf(2, 'apple', notificationId);
    expect(sync).toMatchObject({ kind: 'refresh', store: 'apple', transactionId: '2001', purchaseKey: '2001', notice: { id: notificationId, type: 'RECONCILE' } });
    expect(workflowStarts.map((input) => input.synchronizationId)).toEqual([sync?.synchronizationId]);
    // Postponed by the first back-off step: not due now, due again after it.
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 2))).toEqual([]);
    expect(await reconcile.listDue(new Date(NOW + DEFAULT_RECONCILE_SETTINGS.retryBaseSeconds * 1000), 100, 2)).toEqual([
      { publisherId: 2, store: 'apple', purchaseKey: '2001', reconcileAt: iso(NOW + DEFAULT_RECONCILE_SETTINGS.retryBaseSeconds * 1000), attempts: 1 },
    ]);
  });
});

describe('a due Google purchase through the reconciliation', () => {
  it('is handed to the intake as a RECONCILE refresh of its token without a package name; the publisher\'s Apple purchase waits (no Apple configuration)', async () => {
    const googleOnly: Publisher = { ...publisher(10, undefined), google: { profiles: [{ packageName: 'com.example.app10', serviceAccountRef: 'file:google.json' }] } };
    const voidedLists: string[] = [];
    const { report, started: refreshes, workflowStarts } = await reconcileOnly(googleOnly, {
      listVoided: async (profile) => {
        voidedLists.push(profile.packageName);
        return { purchases: [] };
      },
    });
    expect(voidedLists).toEqual(['com.example.app10']);
    expect(report).toMatchObject({ publishers: 1, voidedPagesRead: 1, duePurchases: 1, refreshesStarted: 1, errors: 0 });
    const notificationId = `reconcile#token.10002#${iso(WRITTEN + MARGIN)}`;
    expect(refreshes).toEqual([{ publisherId: 10, store: 'google', notificationId, purchaseKey: 'token.10002', source: 'due' }]);
    const sync = await synchronizationOf(10, 'google', notificationId);
    expect(sync).toMatchObject({ kind: 'refresh', store: 'google', purchaseToken: 'token.10002', purchaseKey: 'token.10002', notice: { id: notificationId, type: 'RECONCILE' } });
    expect(sync).not.toHaveProperty('packageName');
    expect(workflowStarts.map((input) => input.synchronizationId)).toEqual([sync?.synchronizationId]);
    // The Google purchase by the first back-off step, the Apple one (nothing can re-read it) by the longest.
    const byKey = Object.fromEntries((await reconcile.listDue(new Date(NOW + 30 * DAY), 100, 10)).map((d) => [d.purchaseKey, d]));
    expect(byKey['token.10002']).toMatchObject({ reconcileAt: iso(NOW + DEFAULT_RECONCILE_SETTINGS.retryBaseSeconds * 1000), attempts: 1 });
    expect(byKey['10001']).toMatchObject({ reconcileAt: iso(NOW + DEFAULT_RECONCILE_SETTINGS.retryMaxSeconds * 1000), attempts: 1 });
  });
});

describe('history cursors', () => {
  const APPLE_SANDBOX = { store: 'apple', environment: 'Sandbox' } as const;
  const GOOGLE_APP = { store: 'google', packageName: 'com.example.iapsync' } as const;
  const rawItem = async (pk: string) => (await db.send(new GetCommand({ TableName: TABLE, Key: { pk, sk: 'CURSOR' } }))).Item;

  it('keeps a Google cursor per app next to the Apple ones, whose keys are those of deployed tables', async () => {
    const appleCursor = { startDate: '2026-03-01T00:00:00.000Z', endDate: '2026-03-01T06:00:00.000Z' };
    const googleCursor = { startDate: '2026-02-22T06:00:00.000Z', endDate: '2026-03-01T06:00:00.000Z', paginationToken: 'page-2' };
    expect(await reconcile.getCursor(31, GOOGLE_APP)).toBeUndefined();
    await reconcile.saveCursor(31, APPLE_SANDBOX, appleCursor);
    await reconcile.saveCursor(31, GOOGLE_APP, googleCursor);

    expect(await reconcile.getCursor(31, APPLE_SANDBOX)).toEqual(appleCursor);
    expect(await reconcile.getCursor(31, GOOGLE_APP)).toEqual(googleCursor);
    expect(await reconcile.getCursor(31, { store: 'google', packageName: 'com.example.other' })).toBeUndefined();
    expect(await reconcile.getCursor(31, { store: 'apple', environment: 'Production' })).toBeUndefined();
    // The Apple item where deployed tables already hold it, with its attributes as before.
    expect(await rawItem('RECONCILE#31#apple#Sandbox')).toEqual({
      pk: 'RECONCILE#31#apple#Sandbox',
      sk: 'CURSOR',
      type: 'reconcileCursor',
      publisherId: 31,
      store: 'apple',
      environment: 'Sandbox',
      ...appleCursor,
    });
    expect(await rawItem('RECONCILE#31#google#com.example.iapsync')).toEqual({
      pk: 'RECONCILE#31#google#com.example.iapsync',
      sk: 'CURSOR',
      type: 'reconcileCursor',
      publisherId: 31,
      store: 'google',
      packageName: 'com.example.iapsync',
      ...googleCursor,
    });

    // A finished window replaces the unfinished one: the token is gone.
    await reconcile.saveCursor(31, GOOGLE_APP, { startDate: googleCursor.startDate, endDate: googleCursor.endDate });
    expect(await reconcile.getCursor(31, GOOGLE_APP)).toEqual({ startDate: googleCursor.startDate, endDate: googleCursor.endDate });
    expect(await reconcile.getCursor(31, APPLE_SANDBOX)).toEqual(appleCursor);
  });
});

describe('a local data dir from before the reconcile index', () => {
  it('gets the index added at start-up (ensureTable), next to the open index', async () => {
    const { partitionKey, sortKey, openIndex, reconcileIndex } = TABLE_DEFINITION;
    await dynamodb.client.send(
      new CreateTableCommand({
        TableName: 'before-reconcile',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [partitionKey, sortKey, openIndex.partitionKey, openIndex.sortKey].map((key) => ({ AttributeName: key.name, AttributeType: key.type })),
        KeySchema: [
          { AttributeName: partitionKey.name, KeyType: 'HASH' },
          { AttributeName: sortKey.name, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: openIndex.indexName,
            KeySchema: [
              { AttributeName: openIndex.partitionKey.name, KeyType: 'HASH' },
              { AttributeName: openIndex.sortKey.name, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: openIndex.projection },
          },
        ],
      }),
    );
    await ensureTable(dynamodb.client, 'before-reconcile');
    await ensureTable(dynamodb.client, 'before-reconcile');
    const described = await dynamodb.client.send(new DescribeTableCommand({ TableName: 'before-reconcile' }));
    const indexes = (described.Table?.GlobalSecondaryIndexes ?? []).map((index) => [index.IndexName, index.Projection?.ProjectionType, index.Projection?.NonKeyAttributes ?? []]);
    expect(indexes.sort()).toEqual(
      [
        [openIndex.indexName, 'KEYS_ONLY', []],
        [reconcileIndex.indexName, 'INCLUDE', ['reconcileAttempts']],
      ].sort(),
    );
  });
});
