import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbReconcileRepository } from '../../../lambdas/lifecycle/adapters/dynamodb-reconcile-repository';
import { DEFAULT_RECONCILE_SETTINGS, reconcilePurchases } from '../../../lambdas/lifecycle/domain/reconcile-purchases';
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
  });

  it('lists only the purchases whose period (or grace) ended a margin ago, not revoked, expired, lifetime or Google ones', async () => {
    const due = await reconcile.listDue(new Date(NOW), 100);
    expect(keysOf(due)).toEqual(['1/1001', '1/1006', '2/2001']);
    expect(due.find((d) => d.purchaseKey === '1001')).toEqual({
      publisherId: 1,
      store: 'apple',
      purchaseKey: '1001',
      reconcileAt: iso(WRITTEN + DAY + MARGIN),
      attempts: 0,
    });
    // Billing retry: already past its end when written, so due a margin after the write.
    expect(due.find((d) => d.purchaseKey === '2001')?.reconcileAt).toBe(iso(WRITTEN + MARGIN));
    // Not yet due: the one still active and the one whose grace runs five more days.
    expect(keysOf(await reconcile.listDue(new Date(NOW + 40 * DAY), 100))).toEqual(['1/1001', '1/1002', '1/1005', '1/1006', '2/2001']);
  });

  it('stores the index attributes on the purchase item itself', async () => {
    const item = await db.send(new GetCommand({ TableName: TABLE, Key: keys.purchase(1, 'apple', '1001') }));
    const { reconcileIndex } = TABLE_DEFINITION;
    expect(item.Item?.[reconcileIndex.sortKey.name]).toBe(iso(WRITTEN + DAY + MARGIN));
    expect(String(item.Item?.[reconcileIndex.partitionKey.name])).toMatch(/^DUE#[0-9a-f]$/);
    const revoked = await db.send(new GetCommand({ TableName: TABLE, Key: keys.purchase(1, 'apple', '1003') }));
    expect(revoked.Item?.[reconcileIndex.sortKey.name]).toBeUndefined();
  });

  it('filters by publisher and bounds the answer by the limit', async () => {
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 1))).toEqual(['1/1001', '1/1006']);
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 3))).toEqual([]);
    expect(await reconcile.listDue(new Date(NOW), 1)).toHaveLength(1);
    expect(await reconcile.listDue(new Date(NOW), 0)).toEqual([]);
  });

  it('postpones a listed purchase (counting the attempt) only while it is as listed; a new write of the purchase places it anew', async () => {
    const [listed] = (await reconcile.listDue(new Date(NOW), 100, 1)).filter((d) => d.purchaseKey === '1001');
    if (!listed) throw new Error('1001 is not due');
    expect(await reconcile.postpone(listed, new Date(NOW + 3600_000))).toBe(true);
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 1))).toEqual(['1/1006']);
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
    const started: SyncExecutionInput[] = [];
    const syncs = new DynamoDbSynchronizationRepository(db, TABLE);
    const publishers = new (class extends FakePublishers {
      async listPublisherIds(): Promise<number[]> {
        return [2];
      }
    })([publisher(2, appleConfig({ environments: ['Sandbox'] }))]);
    const { report, started: refreshes } = await reconcilePurchases(
      {
        publishers,
        history: { page: async () => ({ signedPayloads: [] }) },
        decoder: { decode: async () => Promise.reject(new Error('no notifications in this test')) },
        intake: { accept: (notice) => acceptNotice({ syncs, workflow: { start: async (input) => void started.push(input) }, clock: { now: () => new Date(NOW) }, logger }, notice) },
        reconcile,
        clock: { now: () => new Date(NOW) },
        sleep: async () => undefined,
        logger,
      },
      { ...DEFAULT_RECONCILE_SETTINGS, publisherId: 2 },
    );
    expect(report).toMatchObject({ publishers: 1, duePurchases: 1, refreshesStarted: 1, errors: 0 });
    const notificationId = `reconcile#2001#${iso(WRITTEN + MARGIN)}`;
    expect(refreshes).toEqual([{ publisherId: 2, store: 'apple', notificationId, purchaseKey: '2001', source: 'due' }]);
    const item = await db.send(new GetCommand({ TableName: TABLE, Key: keys.notification(2, 'apple', notificationId) }));
    const sync = await syncs.get(String(item.Item?.synchronizationId));
    expect(sync).toMatchObject({ kind: 'refresh', store: 'apple', transactionId: '2001', purchaseKey: '2001', notice: { id: notificationId, type: 'RECONCILE' } });
    expect(started.map((input) => input.synchronizationId)).toEqual([sync?.synchronizationId]);
    // Postponed by the first back-off step: not due now, due again after it.
    expect(keysOf(await reconcile.listDue(new Date(NOW), 100, 2))).toEqual([]);
    expect(await reconcile.listDue(new Date(NOW + DEFAULT_RECONCILE_SETTINGS.retryBaseSeconds * 1000), 100, 2)).toEqual([
      { publisherId: 2, store: 'apple', purchaseKey: '2001', reconcileAt: iso(NOW + DEFAULT_RECONCILE_SETTINGS.retryBaseSeconds * 1000), attempts: 1 },
    ]);
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
