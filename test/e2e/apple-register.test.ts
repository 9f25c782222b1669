import { randomUUID } from 'node:crypto';
import { SyncResultDetail } from '../../lambdas/events/schemas';
import { startTestStack, type LocalClient } from '../support/local-client';

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;

beforeAll(async () => {
  env = await startTestStack();
  api = env.client;
});
afterAll(async () => env?.stop());

describe('Apple register, end to end on the local stack', () => {
  it('registers with the publisher token: 202 → processing → finalized, entitled, one contract event on the bus', async () => {
    const { transactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    const accepted = await api.register(
      { cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' },
      api.publisherHeaders({ 'correlation-id': 'order-42', 'x-app-version': '5.1.0', 'x-device-type': 'ios' }),
    );
    expect(accepted.status).toBe(202);
    expect(accepted.body).toEqual({ synchronizationId: expect.stringMatching(/^[0-9a-f-]{36}$/), correlationId: 'order-42' });
    const id = String(accepted.body.synchronizationId);
    const { final, seen } = await api.waitFinalized(id);
    expect(seen[0]).toBe('processing');
    expect(final).toEqual({
      synchronizationId: id,
      status: 'finalized',
      accessGranted: true,
      offerId: 'S100000001_US',
      result: 'PURCHASE_SYNCHRONIZED',
      correlationId: 'order-42',
    });
    await api.settled();
    const events = api.eventsFor(id);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event?.source).toBe('iap-sync');
    expect(event?.['detail-type']).toBe('inappPurchaseSyncResult');
    const detail = SyncResultDetail.parse(event?.detail);
    expect(detail).toMatchObject({
      broadcasterId: 1,
      synchronizationId: id,
      store: 'apple',
      kind: 'register',
      result: 'PURCHASE_SYNCHRONIZED',
      accessGranted: true,
      offerId: 'S100000001_US',
      cleengCustomerId: 101,
      transactionId,
      originalTransactionId: transactionId,
      purchaseToken: null,
      packageName: null,
      productId: 'premium_monthly',
      correlationId: 'order-42',
      ownershipVersion: 1,
    });
    expect(Date.parse(String(detail.expiresAt))).toBeGreaterThan(Date.now() + 29 * 24 * 3600 * 1000);
    expect(detail.previousCustomerId).toBeUndefined();
  });

  it('registers with a customer JWT for that customer, without ipAddress', async () => {
    const { transactionId } = await api.createTransaction({ productId: 'premium_yearly' });
    const accepted = await api.register({ cleengCustomerId: 102, transactionId }, api.customerHeaders(102));
    expect(accepted.status).toBe(202);
    const { final } = await api.waitFinalized(String(accepted.body.synchronizationId), api.customerHeaders(102));
    expect(final).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED', accessGranted: true, offerId: 'S100000002_US' });
    expect(final.correlationId).toBeUndefined();
  });

  it.each([
    ['an expired subscription', { productId: 'premium_monthly', expiresInSeconds: -60 }, 'RECEIVED_EXPIRED_PURCHASE'],
    ['a product without an offer mapping', { productId: 'not_mapped_product' }, 'OFFER_NOT_MAPPED'],
    ['another app\'s bundle id', { productId: 'premium_monthly', bundleId: 'com.other.app' }, 'VERIFICATION_FAILED'],
    ['a non-consumable', { productId: 'lifetime', type: 'Non-Consumable' }, 'PURCHASE_SYNCHRONIZED'],
    ['a production transaction (found in production first)', { productId: 'premium_monthly', environment: 'Production' }, 'PURCHASE_SYNCHRONIZED'],
  ])('finalizes %s as %s', async (_name, transaction, result) => {
    const { final, synchronizationId } = await api.registerAndWait(transaction);
    expect(final.result).toBe(result);
    expect(final.accessGranted).toBe(result === 'PURCHASE_SYNCHRONIZED');
    expect('offerId' in final).toBe(result === 'PURCHASE_SYNCHRONIZED');
    await api.settled();
    expect(api.eventsFor(synchronizationId).map((e) => e.detail.result)).toEqual([result]);
  });

  it('finalizes a refunded purchase as PURCHASE_REVOKED', async () => {
    const { transactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    await api.request('POST', `/__simulator/apple/transactions/${transactionId}/refund`, { headers: { 'content-type': 'application/json' }, body: {} });
    const accepted = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    const { final } = await api.waitFinalized(String(accepted.body.synchronizationId));
    expect(final).toMatchObject({ result: 'PURCHASE_REVOKED', accessGranted: false });
  });

  it('finalizes an id Apple does not know as TRANSACTION_ID_NOT_FOUND', async () => {
    const accepted = await api.register({ cleengCustomerId: 101, transactionId: '999000111222333', ipAddress: '203.0.113.7' });
    const { final } = await api.waitFinalized(String(accepted.body.synchronizationId));
    expect(final).toEqual({ synchronizationId: accepted.body.synchronizationId, status: 'finalized', accessGranted: false, result: 'TRANSACTION_ID_NOT_FOUND' });
  });

  it('keeps the owner: another customer registering the same purchase gets PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', async () => {
    const first = await api.registerAndWait({ productId: 'premium_monthly' }, 101);
    expect(first.final.result).toBe('PURCHASE_SYNCHRONIZED');
    const second = await api.register({ cleengCustomerId: 103, transactionId: first.transactionId, ipAddress: '203.0.113.9' });
    const { final } = await api.waitFinalized(String(second.body.synchronizationId));
    expect(final).toMatchObject({ result: 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', accessGranted: false });
    expect(final.offerId).toBeUndefined();
    await api.settled();
    expect(api.eventsFor(String(second.body.synchronizationId))[0]?.detail.ownershipVersion).toBe(1);
  });

  it('lets the latest renewal decide: re-registering after a renewal moves the expiry and the ownership version', async () => {
    const first = await api.registerAndWait({ productId: 'premium_monthly', expiresInSeconds: 3600 });
    const renewal = await api.request('POST', `/__simulator/apple/transactions/${first.transactionId}/renew`, {
      headers: { 'content-type': 'application/json' },
      body: { expiresInSeconds: 7200 },
    });
    expect(renewal.status).toBe(201);
    const again = await api.register({ cleengCustomerId: 101, transactionId: first.transactionId, ipAddress: '203.0.113.7' });
    const { final } = await api.waitFinalized(String(again.body.synchronizationId));
    expect(final.result).toBe('PURCHASE_SYNCHRONIZED');
    await api.settled();
    const detail = api.eventsFor(String(again.body.synchronizationId))[0]?.detail;
    expect(detail?.ownershipVersion).toBe(2);
    expect(detail?.originalTransactionId).toBe(first.transactionId);
    expect(Date.parse(String(detail?.expiresAt))).toBeGreaterThan(Date.now() + 3600 * 1000);
  });

  describe('Correlation-Id', () => {
    it('a UUID becomes the synchronizationId; a replay with the same body answers the same 202 and starts nothing new', async () => {
      const { transactionId } = await api.createTransaction();
      const correlationId = randomUUID();
      const headers = api.publisherHeaders({ 'correlation-id': correlationId });
      const body = { cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' };
      const first = await api.register(body, headers);
      expect(first.status).toBe(202);
      expect(first.body).toEqual({ synchronizationId: correlationId, correlationId });
      await api.waitFinalized(correlationId);
      const replay = await api.register(body, headers);
      expect(replay.status).toBe(202);
      expect(replay.body).toEqual(first.body);
      await api.settled();
      expect(api.eventsFor(correlationId)).toHaveLength(1);
      expect([...api.stack.stepFunctions.executions.keys()].filter((arn) => arn.endsWith(correlationId))).toHaveLength(1);
    });

    it('the same UUID with a different body is 409 REQ0007', async () => {
      const { transactionId } = await api.createTransaction();
      const correlationId = randomUUID();
      const headers = api.publisherHeaders({ 'correlation-id': correlationId });
      expect((await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' }, headers)).status).toBe(202);
      const other = await api.register({ cleengCustomerId: 102, transactionId, ipAddress: '203.0.113.7' }, headers);
      expect(other.status).toBe(409);
      expect(other.body).toEqual({ code: 'REQ0007', message: expect.any(String) });
    });

    it('a non-UUID Correlation-Id gets a generated id and is echoed by the status route', async () => {
      const { transactionId } = await api.createTransaction();
      const accepted = await api.register(
        { cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' },
        api.publisherHeaders({ 'correlation-id': 'not-a-uuid' }),
      );
      expect(accepted.body.synchronizationId).not.toBe('not-a-uuid');
      const { final } = await api.waitFinalized(String(accepted.body.synchronizationId));
      expect(final.correlationId).toBe('not-a-uuid');
    });
  });

  it('serves the OpenAPI 3.1 document generated from the schemas', async () => {
    const reply = await api.request('GET', '/openapi.json');
    expect(reply.status).toBe(200);
    expect(reply.body.openapi).toBe('3.1.0');
    const paths = reply.body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    expect(Object.keys(paths['/storekit2/purchases']?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(['202', '400', '401', '403', '409', '413', '415', '422', '500', '503']),
    );
    const schemas = (reply.body.components as { schemas: Record<string, { properties?: Record<string, unknown> }> }).schemas;
    expect(Object.keys(schemas.AppleRegisterBody?.properties ?? {})).toEqual(['cleengCustomerId', 'transactionId', 'ipAddress', 'signedTransactionInfo']);
  });
});
