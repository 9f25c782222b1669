import { randomUUID } from 'node:crypto';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { keys } from '../../lambdas/platform/dynamodb-table';
import { hashPublisherToken } from '../../lambdas/tenants/domain/authenticate';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { startTestStack, type LocalClient } from '../support/local-client';

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let db: DynamoDBDocumentClient;
const MIGRATING_TOKEN = 'pt_migrating_publisher';
const TRANSFER_POLICY_TOKEN = 'pt_transfer_policy_publisher';
const IP = '203.0.113.7';

beforeAll(async () => {
  env = await startTestStack();
  api = env.client;
  db = createDocumentClient(env.stack.dynamodb.client);
  const publishers = new DynamoDbPublisherRepository(db, LOCAL_TABLE_NAME);
  const demo = await publishers.getPublisher(1);
  if (!demo) throw new Error('demo publisher missing');
  const copies = [
    { publisherId: 4, token: MIGRATING_TOKEN, storeKit: { activated: true, migrationInProgress: true }, ownershipPolicy: 'keep' as const },
    { publisherId: 5, token: TRANSFER_POLICY_TOKEN, storeKit: demo.storeKit, ownershipPolicy: 'transfer' as const },
  ];
  for (const { publisherId, token, storeKit, ownershipPolicy } of copies) {
    await publishers.putPublisher({ ...demo, publisherId, name: `P${publisherId}`, tokenHash: hashPublisherToken(token), storeKit, ownershipPolicy });
    for (const customerId of [101, 102]) await publishers.putCustomer(publisherId, customerId);
    await publishers.putOffer(publisherId, 'apple', 'premium_monthly', 'S100000001_US');
  }
});
afterAll(async () => env?.stop());

const headersOf = (publisherId: number, token: string) => ({ 'content-type': 'application/json', 'x-publisher-id': String(publisherId), 'x-publisher-token': token });

function transfer(body: Record<string, unknown>, headers: Record<string, string> = api.publisherHeaders()) {
  return api.request('POST', '/storekit2/purchases/transfers', { headers, body });
}

async function transferAndWait(customerId: number, transactionId: string) {
  const accepted = await transfer({ cleengCustomerId: customerId, transactionId, ipAddress: IP });
  if (accepted.status !== 202) throw new Error(`transfer answered ${accepted.status}: ${accepted.text}`);
  const id = String(accepted.body.synchronizationId);
  const { final } = await api.waitFinalized(id);
  await api.settled();
  return { id, final, event: api.eventsFor(id)[0]?.detail };
}

async function entitlement(customerId: number, originalTransactionId: string, publisherId = 1) {
  const out = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.entitlement(publisherId, customerId, 'apple', originalTransactionId) }));
  return out.Item;
}

async function setSlowApple(latencyMs: number) {
  if (latencyMs > 0) {
    await api.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', latencyMs } });
  } else {
    await api.request('DELETE', '/__simulator/faults');
  }
}

describe('Apple transfers, end to end', () => {
  it('moves a purchase from 101 to 102: TRANSFERRED, 101 loses the entitlement, the event says so with version + 1', async () => {
    const registered = await api.registerAndWait({ productId: 'premium_monthly' }, 101);
    await api.settled();
    const before = api.eventsFor(registered.synchronizationId)[0]?.detail;
    expect(before?.ownershipVersion).toBe(1);
    expect((await entitlement(101, registered.transactionId))?.active).toBe(true);

    const moved = await transferAndWait(102, registered.transactionId);
    expect(moved.final).toMatchObject({ status: 'finalized', result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true, offerId: 'S100000001_US' });
    expect(moved.event).toMatchObject({ kind: 'transfer', cleengCustomerId: 102, previousCustomerId: 101, ownershipVersion: 2, result: 'PURCHASE_OWNERSHIP_TRANSFERRED' });
    expect((await entitlement(101, registered.transactionId))?.active).toBe(false);
    expect((await entitlement(102, registered.transactionId))).toMatchObject({ active: true, offerId: 'S100000001_US', ownershipVersion: 2 });

    const again = await transferAndWait(102, registered.transactionId);
    expect(again.final).toMatchObject({ result: 'PURCHASE_OWNERSHIP_UNCHANGED', accessGranted: true, offerId: 'S100000001_US' });
    expect(again.event?.previousCustomerId).toBeUndefined();
    expect(again.event?.ownershipVersion).toBe(2);

    // Under the default `keep` policy the former owner now meets the new owner.
    const back = await api.register({ cleengCustomerId: 101, transactionId: registered.transactionId, ipAddress: IP });
    expect((await api.waitFinalized(String(back.body.synchronizationId))).final.result).toBe('PURCHASE_OWNED_BY_ANOTHER_CUSTOMER');
  });

  it('records the environment the purchase was found in', async () => {
    const registered = await api.registerAndWait({ productId: 'premium_monthly', environment: 'Production' }, 101);
    const out = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.purchase(1, 'apple', registered.transactionId) }));
    expect(out.Item?.purchase).toMatchObject({ environment: 'Production', ownerCustomerId: 101 });
  });

  it.each([
    ['a purchase never synchronized here', 'PURCHASE_NOT_FOUND', async () => (await api.createTransaction()).transactionId],
    ['an id Apple does not know', 'TRANSACTION_ID_NOT_FOUND', async () => '999000111222444'],
    [
      'an expired purchase',
      'PURCHASE_NOT_ACTIVE',
      async () => {
        const { transactionId } = await api.registerAndWait({ productId: 'premium_monthly' }, 101);
        await api.request('POST', `/__simulator/apple/transactions/${transactionId}/expire`, { headers: { 'content-type': 'application/json' }, body: {} });
        return transactionId;
      },
    ],
    [
      'a refunded purchase',
      'PURCHASE_NOT_ACTIVE',
      async () => {
        const { transactionId } = await api.registerAndWait({ productId: 'premium_monthly' }, 101);
        await api.request('POST', `/__simulator/apple/transactions/${transactionId}/refund`, { headers: { 'content-type': 'application/json' }, body: {} });
        return transactionId;
      },
    ],
  ])('transferring %s finalizes %s without access', async (_name, result, prepare) => {
    const transactionId = await prepare();
    await api.settled();
    const { final, event } = await transferAndWait(102, transactionId);
    expect(final).toMatchObject({ result, accessGranted: false });
    expect(final.offerId).toBeUndefined();
    expect(event?.previousCustomerId).toBeUndefined();
  });

  it('generates the id even for a UUID Correlation-Id, and echoes it', async () => {
    const { transactionId } = await api.registerAndWait();
    await api.settled();
    const correlationId = randomUUID();
    const accepted = await transfer({ cleengCustomerId: 102, transactionId, ipAddress: IP }, api.publisherHeaders({ 'correlation-id': correlationId }));
    expect(accepted.status).toBe(202);
    expect(accepted.body.correlationId).toBe(correlationId);
    expect(accepted.body.synchronizationId).not.toBe(correlationId);
    expect((await api.waitFinalized(String(accepted.body.synchronizationId))).final.correlationId).toBe(correlationId);
    await api.settled();
  });

  it.each([
    ['an unknown new owner', 422, 'SK2C0100', () => transfer({ cleengCustomerId: 999, transactionId: '2000000000000001', ipAddress: IP })],
    ['a publisher migrating to StoreKit 2', 422, 'SK2C0005', () => transfer({ cleengCustomerId: 101, transactionId: '2000000000000001', ipAddress: IP }, headersOf(4, MIGRATING_TOKEN))],
    ['a customer JWT naming someone else', 403, 'AUTH0003', () => transfer({ cleengCustomerId: 102, transactionId: '2000000000000001' }, api.customerHeaders(101))],
  ])('refuses %s (%i %s)', async (_name, status, code, call) => {
    const reply = await call();
    expect({ status: reply.status, code: reply.body.code }).toEqual({ status, code });
  });

  describe('while something else holds the purchase', () => {
    afterEach(async () => {
      await setSlowApple(0);
      await api.settled();
    });

    it('409 SK2C0103 while a synchronization of the same transaction is active', async () => {
      const { transactionId } = await api.createTransaction();
      await setSlowApple(1500);
      const first = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: IP });
      expect(first.status).toBe(202);
      const reply = await transfer({ cleengCustomerId: 102, transactionId, ipAddress: IP });
      expect({ status: reply.status, code: reply.body.code }).toEqual({ status: 409, code: 'SK2C0103' });
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
    });

    it('two concurrent transfers of one subscription to different customers: one wins, the other is 409 SK2C0104, the owner matches the events', async () => {
      // Transaction A, then its renewal B, both synchronized by 101, so both are known to belong to one subscription.
      const a = await api.registerAndWait({ productId: 'premium_monthly' }, 101);
      const renewal = await api.request('POST', `/__simulator/apple/transactions/${a.transactionId}/renew`, { headers: { 'content-type': 'application/json' }, body: {} });
      const b = String(renewal.body.transactionId);
      const registeredB = await api.register({ cleengCustomerId: 101, transactionId: b, ipAddress: IP });
      await api.waitFinalized(String(registeredB.body.synchronizationId));
      await api.settled();

      await setSlowApple(1500);
      const replies = await Promise.all([
        transfer({ cleengCustomerId: 102, transactionId: a.transactionId, ipAddress: IP }),
        transfer({ cleengCustomerId: 103, transactionId: b, ipAddress: IP }),
      ]);
      const winners = replies.filter((r) => r.status === 202);
      const losers = replies.filter((r) => r.status === 409);
      expect(winners).toHaveLength(1);
      expect(losers.map((r) => r.body.code)).toEqual(['SK2C0104']);
      await setSlowApple(0);
      const winnerId = String(winners[0]?.body.synchronizationId);
      expect((await api.waitFinalized(winnerId)).final.result).toBe('PURCHASE_OWNERSHIP_TRANSFERRED');
      await api.settled();
      const event = api.eventsFor(winnerId)[0]?.detail;
      const purchase = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.purchase(1, 'apple', a.transactionId) }));
      expect(purchase.Item?.purchase).toMatchObject({ ownerCustomerId: event?.cleengCustomerId, ownershipVersion: event?.ownershipVersion });
      expect(event?.previousCustomerId).toBe(101);
    });
  });

  it('under the `transfer` ownership policy a register by another customer moves the purchase and says so', async () => {
    const headers = headersOf(5, TRANSFER_POLICY_TOKEN);
    const { transactionId } = await api.createTransaction();
    const first = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: IP }, headers);
    await api.waitFinalized(String(first.body.synchronizationId), headers);
    await api.settled();
    const second = await api.register({ cleengCustomerId: 102, transactionId, ipAddress: IP }, headers);
    const id = String(second.body.synchronizationId);
    const { final } = await api.waitFinalized(id, headers);
    expect(final).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true });
    await api.settled();
    expect(api.eventsFor(id)[0]?.detail).toMatchObject({ kind: 'register', previousCustomerId: 101, ownershipVersion: 2, broadcasterId: 5 });
    expect((await entitlement(101, transactionId, 5))?.active).toBe(false);
  });
});
