import { createHash } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys } from '../../../lambdas/platform/dynamodb-table';
import { appleLocks } from '../../../lambdas/purchases/domain/accept-purchase';
import type { Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import type { EntitlementChangedDetail } from '../../../lambdas/events/schemas';
import { itemSize } from '../../../bench/dynamodb-proxy';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { googleRegisterSync } from '../../support/synchronizations';

const TABLE = 'sync-repository-test';
let dynamodb: DynamoDbLocal;
let syncs: DynamoDbSynchronizationRepository;
let db: DynamoDBDocumentClient;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  syncs = new DynamoDbSynchronizationRepository(db, TABLE);
  await new DynamoDbPublisherRepository(db, TABLE).putCustomer(1, 101);
});
afterAll(async () => dynamodb?.stop());

const googleRegister = googleRegisterSync;

describe('DynamoDB synchronization repository', () => {
  it('claims a Google token once; abandoning an accept frees the lock, the claim and the record', async () => {
    const leaseExpiresAt = Date.now() + 60_000;
    const first = googleRegister('11111111-2222-4333-8444-000000000001');
    expect(await syncs.accept({ sync: first, leaseExpiresAt, claimKey: first.claimKey })).toEqual({ outcome: 'accepted' });
    const second = googleRegister('11111111-2222-4333-8444-000000000002');
    // The claim is checked before the lock: the answer names the synchronization that holds the token.
    expect(await syncs.accept({ sync: second, leaseExpiresAt, claimKey: second.claimKey })).toEqual({
      outcome: 'claimed',
      synchronizationId: first.synchronizationId,
    });

    await syncs.abandon(first);
    expect(await syncs.get(first)).toBeUndefined();
    expect(await syncs.accept({ sync: second, leaseExpiresAt, claimKey: second.claimKey })).toEqual({ outcome: 'accepted' });
  });

  it('after finalize the lock is free but the claim answers with the first synchronization', async () => {
    const leaseExpiresAt = Date.now() + 60_000;
    const owner = googleRegister('11111111-2222-4333-8444-000000000002');
    const finalized = { ...owner, status: 'finalized' as const, result: 'PURCHASE_SYNCHRONIZED' as const };
    expect(await syncs.finalize({ sync: finalized, entitlementChanges: [] })).toBe(true);
    expect(await syncs.finalize({ sync: finalized, entitlementChanges: [] })).toBe(false);
    const late = googleRegister('11111111-2222-4333-8444-000000000003');
    expect(await syncs.accept({ sync: late, leaseExpiresAt, claimKey: late.claimKey })).toEqual({
      outcome: 'claimed',
      synchronizationId: owner.synchronizationId,
    });
  });
});

/** An Apple register as accepted: processing, holding its transaction's lock. */
function appleRegister(synchronizationId: string, transactionId: string, extra: Partial<Synchronization> = {}): Synchronization {
  return {
    synchronizationId,
    publisherId: 1,
    store: 'apple',
    kind: 'register',
    customerId: 101,
    transactionId,
    status: 'processing',
    requestHash: createHash('sha256').update(synchronizationId).digest('hex'),
    lockKeys: [appleLocks.transaction(transactionId)],
    client: { appVersion: '7.1.0', deviceId: 'D1A2B3C4-0000-4000-8000-000000000001', deviceType: 'iPhone15,2', userAction: 'purchase' },
    proof: { kind: 'signedTransaction', transactionId, originalTransactionId: transactionId },
    ipAddress: '203.0.113.7',
    attempts: 0,
    createdAt: '2026-12-07T10:00:00.000Z',
    updatedAt: '2026-12-07T10:00:00.000Z',
    ...extra,
  };
}

function finalizedOf(sync: Synchronization): Synchronization {
  return {
    ...sync,
    status: 'finalized',
    result: 'PURCHASE_SYNCHRONIZED',
    accessGranted: true,
    offerId: 'S100000001_US',
    finalizedAt: '2026-12-07T10:00:01.000Z',
    updatedAt: '2026-12-07T10:00:01.000Z',
    publishState: 'claimed',
    eventDetail: {
      synchronizationId: sync.synchronizationId,
      store: 'apple',
      kind: sync.kind,
      status: 'finalized',
      result: 'PURCHASE_SYNCHRONIZED',
      accessGranted: true,
      offerId: 'S100000001_US',
      cleengCustomerId: sync.customerId,
      transactionId: sync.transactionId,
      originalTransactionId: sync.transactionId,
      purchaseToken: null,
      packageName: null,
      productId: 'premium_monthly',
      expiresAt: '2027-01-07T10:00:00.000Z',
      ownershipVersion: 1,
      finalizedAt: '2026-12-07T10:00:01.000Z',
      broadcasterId: 1,
    },
    entitlementEvents: [
      {
        broadcasterId: 1,
        cleengCustomerId: sync.customerId,
        offerId: 'S100000001_US',
        store: 'apple',
        reason: 'PURCHASED',
        active: true,
        state: 'active',
        expiresAt: '2027-01-07T10:00:00.000Z',
        previousExpiresAt: null,
        willRenew: true,
        productId: 'premium_monthly',
        transactionId: sync.transactionId ?? null,
        originalTransactionId: sync.transactionId ?? null,
        purchaseToken: null,
        packageName: null,
        environment: 'Production',
        ownershipVersion: 1,
        synchronizationId: sync.synchronizationId,
        changedAt: '2026-12-07T10:00:01.000Z',
      } as unknown as EntitlementChangedDetail,
    ],
  };
}

describe('DynamoDB synchronization repository: fewer write units with the same guarantees', () => {
  const leaseExpiresAt = () => Date.now() + 60_000;

  it('a lock held by a running synchronization refuses, by a finalized one is taken over', async () => {
    const first = appleRegister('22222222-2222-4333-8444-000000000001', '3000000001');
    expect(await syncs.accept({ sync: first, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    const second = appleRegister('22222222-2222-4333-8444-000000000002', '3000000001');
    expect(await syncs.accept({ sync: second, leaseExpiresAt: leaseExpiresAt() })).toEqual({
      outcome: 'locked',
      lockKey: appleLocks.transaction('3000000001'),
      holder: first.synchronizationId,
    });
    // The finalize does not release the lock (no write for it)…
    expect(await syncs.finalize({ sync: finalizedOf(first), entitlementChanges: [] })).toBe(true);
    // …but a finalized holder no longer counts: the next request takes the lock over.
    expect(await syncs.accept({ sync: second, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    const third = appleRegister('22222222-2222-4333-8444-000000000003', '3000000001');
    expect(await syncs.accept({ sync: third, leaseExpiresAt: leaseExpiresAt() })).toMatchObject({ outcome: 'locked', holder: second.synchronizationId });
  });

  it('a replay of the same synchronization finds it; an unknown customer is refused before any write', async () => {
    const sync = appleRegister('22222222-2222-4333-8444-000000000004', '3000000004');
    expect(await syncs.accept({ sync, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    const replay = await syncs.accept({ sync, leaseExpiresAt: leaseExpiresAt() });
    expect(replay).toMatchObject({ outcome: 'exists', existing: { synchronizationId: sync.synchronizationId, requestHash: sync.requestHash } });
    const stranger = appleRegister('22222222-2222-4333-8444-000000000005', '3000000005', { customerId: 999_999 });
    expect(await syncs.accept({ sync: stranger, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'customer_missing' });
    expect(await syncs.get(stranger)).toBeUndefined();
  });

  it('the finalize links the transaction to its subscription on the lock item, for good, and frees the lock', async () => {
    const sync = appleRegister('22222222-2222-4333-8444-000000000006', '3000000006');
    expect(await syncs.accept({ sync, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    expect(await syncs.findOriginalTransactionId(1, '3000000006')).toBeUndefined();
    const links = [
      { transactionId: '3000000006', originalTransactionId: '3000000000' },
      { transactionId: '3000000007', originalTransactionId: '3000000000' },
    ];
    expect(await syncs.finalize({ sync: finalizedOf(sync), entitlementChanges: [], transactionLinks: links })).toBe(true);
    expect(await syncs.findOriginalTransactionId(1, '3000000006')).toBe('3000000000');
    expect(await syncs.findOriginalTransactionId(1, '3000000007')).toBe('3000000000');
    const lock = await db.send(new GetCommand({ TableName: TABLE, Key: keys.lock(1, appleLocks.transaction('3000000006')) }));
    expect(lock.Item).toEqual(expect.objectContaining({ originalTransactionId: '3000000000' }));
    expect(lock.Item).not.toHaveProperty('owner');
    expect(lock.Item).not.toHaveProperty('ttl');
  });

  it('reads the link from an earlier version\'s TXN item', async () => {
    await db.send(new PutCommand({ TableName: TABLE, Item: { ...keys.transaction(1, 'apple', '3000000010'), type: 'transaction', transactionId: '3000000010', originalTransactionId: '3000000009' } }));
    expect(await syncs.findOriginalTransactionId(1, '3000000010')).toBe('3000000009');
  });

  it('abandoning frees the lock and keeps the link', async () => {
    const first = appleRegister('22222222-2222-4333-8444-000000000011', '3000000011');
    await syncs.accept({ sync: first, leaseExpiresAt: leaseExpiresAt() });
    await syncs.finalize({ sync: finalizedOf(first), entitlementChanges: [], transactionLinks: [{ transactionId: '3000000011', originalTransactionId: '3000000008' }] });
    const second = appleRegister('22222222-2222-4333-8444-000000000012', '3000000011');
    expect(await syncs.accept({ sync: second, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    await syncs.abandon(second);
    expect(await syncs.get(second)).toBeUndefined();
    expect(await syncs.findOriginalTransactionId(1, '3000000011')).toBe('3000000008');
    const third = appleRegister('22222222-2222-4333-8444-000000000013', '3000000011');
    expect(await syncs.accept({ sync: third, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
  });

  it('a finalized record keeps everything it had, under 1 KB: events, client headers and proof compressed, hash as bytes', async () => {
    const sync = appleRegister('22222222-2222-4333-8444-000000000014', '3000000014');
    await syncs.accept({ sync, leaseExpiresAt: leaseExpiresAt() });
    const finalized = finalizedOf(sync);
    await syncs.finalize({ sync: finalized, entitlementChanges: [] });
    const { lockKeys: _locks, ...expected } = finalized;
    expect(await syncs.get(sync)).toEqual({ ...expected, lockKeys: [] });
    const raw = await dynamodb.client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: keys.synchronization(1, sync.synchronizationId).pk }, sk: { S: keys.synchronization(1, sync.synchronizationId).sk } } }));
    expect(itemSize(raw.Item as never)).toBeLessThan(1024);
    expect(raw.Item).not.toHaveProperty('eventDetail');
    expect(raw.Item).not.toHaveProperty('client');
    expect(raw.Item?.requestHash?.B).toHaveLength(32);
  });

  it('accepts an Apple request in two plain writes: a lock left without its record is free only once it is old', async () => {
    const lockKey = appleLocks.transaction('3000000020');
    // An accept that died between its lock and its record, a moment ago…
    await db.send(new PutCommand({ TableName: TABLE, Item: { ...keys.lock(1, lockKey), type: 'lock', owner: '22222222-2222-4333-8444-0000000000ff', leaseExpiresAt: Date.now() + 60_000, acquiredAt: Date.now() } }));
    const sync = appleRegister('22222222-2222-4333-8444-000000000020', '3000000020');
    expect(await syncs.accept({ sync, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'locked', lockKey, holder: '22222222-2222-4333-8444-0000000000ff' });
    // …and two minutes ago: its record is not coming.
    await db.send(new PutCommand({ TableName: TABLE, Item: { ...keys.lock(1, lockKey), type: 'lock', owner: '22222222-2222-4333-8444-0000000000ff', leaseExpiresAt: Date.now() + 60_000, acquiredAt: Date.now() - 120_000 } }));
    expect(await syncs.accept({ sync, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
  });

  it('gives back the locks it took when another is held, or when the id exists for another request', async () => {
    const holder = appleRegister('22222222-2222-4333-8444-000000000021', '3000000021', { lockKeys: [appleLocks.subscription('3000000000')] });
    expect(await syncs.accept({ sync: holder, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    // A transfer locks the transaction, then the subscription, which is held: the transaction's lock goes back.
    const transfer = appleRegister('22222222-2222-4333-8444-000000000022', '3000000022', {
      kind: 'transfer',
      lockKeys: [appleLocks.transaction('3000000022'), appleLocks.subscription('3000000000')],
    });
    expect(await syncs.accept({ sync: transfer, leaseExpiresAt: leaseExpiresAt() })).toMatchObject({ outcome: 'locked', holder: holder.synchronizationId });
    const other = appleRegister('22222222-2222-4333-8444-000000000023', '3000000022');
    expect(await syncs.accept({ sync: other, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });

    // The same Correlation-Id for another transaction: the record exists, and the new transaction's lock goes back.
    const reused = appleRegister(other.synchronizationId, '3000000024');
    expect(await syncs.accept({ sync: reused, leaseExpiresAt: leaseExpiresAt() })).toMatchObject({ outcome: 'exists', existing: { transactionId: '3000000022' } });
    const next = appleRegister('22222222-2222-4333-8444-000000000025', '3000000024');
    expect(await syncs.accept({ sync: next, leaseExpiresAt: leaseExpiresAt() })).toEqual({ outcome: 'accepted' });
    // A true replay keeps the running record's lock.
    expect(await syncs.accept({ sync: next, leaseExpiresAt: leaseExpiresAt() })).toMatchObject({ outcome: 'exists' });
    const late = appleRegister('22222222-2222-4333-8444-000000000026', '3000000024');
    expect(await syncs.accept({ sync: late, leaseExpiresAt: leaseExpiresAt() })).toMatchObject({ outcome: 'locked', holder: next.synchronizationId });
  });

  it('the request\'s address becomes the customer\'s last-activity address, written only when it changed', async () => {
    await new DynamoDbPublisherRepository(db, TABLE).putCustomer(1, 202);
    const customer = async () => (await db.send(new GetCommand({ TableName: TABLE, Key: keys.customer(1, 202), ConsistentRead: true }))).Item;
    const first = appleRegister('22222222-2222-4333-8444-000000000031', '3000000031', { customerId: 202, createdAt: '2026-12-07T11:00:00.000Z' });
    await syncs.accept({ sync: first, leaseExpiresAt: leaseExpiresAt() });
    expect(await customer()).toMatchObject({ lastActivityIp: '203.0.113.7', lastActivityAt: '2026-12-07T11:00:00.000Z' });
    const same = appleRegister('22222222-2222-4333-8444-000000000032', '3000000032', { customerId: 202, createdAt: '2026-12-07T12:00:00.000Z' });
    await syncs.accept({ sync: same, leaseExpiresAt: leaseExpiresAt() });
    expect(await customer()).toMatchObject({ lastActivityAt: '2026-12-07T11:00:00.000Z' });
    const moved = appleRegister('22222222-2222-4333-8444-000000000033', '3000000033', { customerId: 202, ipAddress: '198.51.100.9', createdAt: '2026-12-07T13:00:00.000Z' });
    await syncs.accept({ sync: moved, leaseExpiresAt: leaseExpiresAt() });
    expect(await customer()).toMatchObject({ lastActivityIp: '198.51.100.9', lastActivityAt: '2026-12-07T13:00:00.000Z' });
  });

  it('reads a record an earlier version wrote (plain events, hex hash)', async () => {
    const legacy = finalizedOf(appleRegister('22222222-2222-4333-8444-000000000015', '3000000015'));
    await db.send(new PutCommand({ TableName: TABLE, Item: { ...keys.synchronization(1, legacy.synchronizationId), type: 'sync', ...legacy } }));
    expect(await syncs.get(legacy)).toEqual(legacy);
  });
});
