import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { keys } from '../../lambdas/platform/dynamodb-table';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { startTestStack, type LocalClient } from '../support/local-client';

/*
 * Contract §5, proof of possession, on the local stack: Apple transaction ids are sequential, so
 * customer 103's own JWT must not be enough to take customer 101's purchase; the device's signed
 * transaction (what the simulator answers when it makes or renews a transaction) is.
 */

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let db: DynamoDBDocumentClient;
const IP = '203.0.113.7';
const JSON_HEADERS = { 'content-type': 'application/json' };

beforeAll(async () => {
  env = await startTestStack();
  api = env.client;
  db = createDocumentClient(env.stack.dynamodb.client);
});
afterAll(async () => env?.stop());

/** A purchase made on the simulator: its ids and the JWS the device holds. */
async function purchase(path = '/__simulator/apple/transactions', body: Record<string, unknown> = { productId: 'premium_monthly' }) {
  const reply = await api.request('POST', path, { headers: JSON_HEADERS, body });
  if (reply.status !== 201) throw new Error(`simulator answered ${reply.status}: ${reply.text}`);
  const { transactionId, originalTransactionId, signedTransactionInfo } = reply.body;
  if (typeof transactionId !== 'string' || typeof originalTransactionId !== 'string' || typeof signedTransactionInfo !== 'string') {
    throw new Error(`the simulator did not answer the signed transaction: ${reply.text}`);
  }
  return { transactionId, originalTransactionId, signedTransactionInfo };
}

/** A purchase made on the simulator and synchronized for customer 101 by the publisher's server. */
async function ownedBy101() {
  const bought = await purchase();
  const accepted = await api.register({ cleengCustomerId: 101, transactionId: bought.transactionId, ipAddress: IP });
  expect((await api.waitFinalized(String(accepted.body.synchronizationId))).final.result).toBe('PURCHASE_SYNCHRONIZED');
  await api.settled();
  return bought;
}

async function owner(originalTransactionId: string): Promise<unknown> {
  const out = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.purchase(1, 'apple', originalTransactionId) }));
  return (out.Item?.purchase as { ownerCustomerId?: number } | undefined)?.ownerCustomerId;
}

async function entitlementActive(customerId: number, originalTransactionId: string): Promise<unknown> {
  const out = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.entitlement(1, customerId, 'apple', originalTransactionId) }));
  return out.Item?.active;
}

const as103 = () => api.customerHeaders(103);
const transferAs103 = (body: Record<string, unknown>) => api.request('POST', '/storekit2/purchases/transfers', { headers: as103(), body: { cleengCustomerId: 103, ...body } });

describe('proof of possession for Apple transfers, end to end', () => {
  it("customer 103's JWT alone cannot take 101's purchase (403 AUTH0004, nothing changes); with the device's signed transaction it can", async () => {
    const victim = await ownedBy101();
    const mine = await purchase();
    const eventsBefore = env.stack.bus.events.length;

    const attempts = await Promise.all([
      transferAs103({ transactionId: victim.transactionId }),
      // The neighbouring id, as an attacker walking sequential ids would try.
      transferAs103({ transactionId: String(BigInt(victim.transactionId) + 1n) }),
      // A genuine signed transaction, but of 103's own purchase.
      transferAs103({ transactionId: victim.transactionId, signedTransactionInfo: mine.signedTransactionInfo }),
    ]);
    expect(attempts.map((reply) => [reply.status, reply.body.code])).toEqual([
      [403, 'AUTH0004'],
      [403, 'AUTH0004'],
      [403, 'AUTH0004'],
    ]);
    await api.settled();
    expect(env.stack.bus.events.length).toBe(eventsBefore);
    expect(await owner(victim.originalTransactionId)).toBe(101);
    expect(await entitlementActive(101, victim.originalTransactionId)).toBe(true);

    // Nothing was locked by the refusals: the proven transfer is accepted at once, not 409.
    const proven = await transferAs103({ transactionId: victim.transactionId, signedTransactionInfo: victim.signedTransactionInfo });
    expect(proven.status).toBe(202);
    const id = String(proven.body.synchronizationId);
    const { final } = await api.waitFinalized(id, as103());
    expect(final).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true });
    await api.settled();
    expect(api.eventsFor(id)[0]?.detail).toMatchObject({ kind: 'transfer', cleengCustomerId: 103, previousCustomerId: 101, appAccountToken: null });
    expect(await owner(victim.originalTransactionId)).toBe(103);
    expect(await entitlementActive(101, victim.originalTransactionId)).toBe(false);
    expect(await entitlementActive(103, victim.originalTransactionId)).toBe(true);
  });

  it('the signed transaction of a renewal proves the whole subscription', async () => {
    const victim = await ownedBy101();
    const renewal = await purchase(`/__simulator/apple/transactions/${victim.transactionId}/renew`, {});
    expect(renewal.originalTransactionId).toBe(victim.originalTransactionId);
    const proven = await transferAs103({ transactionId: victim.transactionId, signedTransactionInfo: renewal.signedTransactionInfo });
    expect(proven.status).toBe(202);
    expect((await api.waitFinalized(String(proven.body.synchronizationId), as103())).final.result).toBe('PURCHASE_OWNERSHIP_TRANSFERRED');
    await api.settled();
  });

  it('under the `transfer` policy a customer register that would take the purchase needs the proof too; under `keep` it does not', async () => {
    const publishers = new DynamoDbPublisherRepository(db, LOCAL_TABLE_NAME);
    const demo = await publishers.getPublisher(1);
    if (!demo) throw new Error('demo publisher missing');
    const victim = await ownedBy101();
    const registerAs103 = (body: Record<string, unknown>) =>
      api.request('POST', '/storekit2/purchases', { headers: as103(), body: { cleengCustomerId: 103, transactionId: victim.transactionId, ...body } });

    // `keep` (the demo's): no proof needed, and the purchase stays with 101.
    const kept = await registerAs103({});
    expect(kept.status).toBe(202);
    expect((await api.waitFinalized(String(kept.body.synchronizationId), as103())).final.result).toBe('PURCHASE_OWNED_BY_ANOTHER_CUSTOMER');
    await api.settled();

    await publishers.putPublisher({ ...demo, ownershipPolicy: 'transfer' });
    try {
      expect(await registerAs103({}).then((reply) => [reply.status, reply.body.code])).toEqual([403, 'AUTH0004']);
      expect(await owner(victim.originalTransactionId)).toBe(101);
      const proven = await registerAs103({ signedTransactionInfo: victim.signedTransactionInfo });
      expect(proven.status).toBe(202);
      expect((await api.waitFinalized(String(proven.body.synchronizationId), as103())).final.result).toBe('PURCHASE_OWNERSHIP_TRANSFERRED');
      await api.settled();
      expect(await owner(victim.originalTransactionId)).toBe(103);
    } finally {
      await publishers.putPublisher(demo);
    }
  });
});
