import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { hashPublisherToken } from '../../lambdas/tenants/domain/authenticate';
import { type ERROR_CODES } from '../../lambdas/platform/errors';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { startTestStack, type LocalClient, type Reply } from '../support/local-client';

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
const OTHER_TOKEN = 'pt_other_publisher_token';
const INACTIVE_TOKEN = 'pt_inactive_publisher_token';

beforeAll(async () => {
  // A short store retry budget (3 attempts) with 150 ms waits, so `retrying` is visible and exhaustion is quick.
  env = await startTestStack({ retry: { maxAttempts: 3, baseSeconds: 1, maxWaitSeconds: 1 }, fastWaitsMs: 150 });
  api = env.client;
  const publishers = new DynamoDbPublisherRepository(createDocumentClient(env.stack.dynamodb.client), LOCAL_TABLE_NAME);
  const demo = await publishers.getPublisher(1);
  if (!demo) throw new Error('demo publisher missing');
  writeFileSync(join(env.dataDir, 'secrets', 'jwt-publisher-2'), 'a-different-hs256-secret-for-publisher-2');
  await publishers.putPublisher({
    ...demo,
    publisherId: 2,
    name: 'Other',
    tokenHash: hashPublisherToken(OTHER_TOKEN),
    jwt: { hs256SecretRef: 'file:jwt-publisher-2' },
  });
  await publishers.putCustomer(2, 101);
  await publishers.putPublisher({
    ...demo,
    publisherId: 3,
    name: 'Not activated',
    tokenHash: hashPublisherToken(INACTIVE_TOKEN),
    storeKit: { activated: false, migrationInProgress: false },
  });
  await publishers.putCustomer(3, 101);
});
afterAll(async () => env?.stop());

function expectError(reply: Reply, status: number, code: keyof typeof ERROR_CODES) {
  expect({ status: reply.status, code: reply.body.code }).toEqual({ status, code });
  expect(reply.headers.get('content-type')).toContain('application/json');
  expect(Object.keys(reply.body).sort()).toEqual(['code', 'message']);
  expect(reply.text).not.toMatch(/at .*\.ts|Exception|stack/);
}

describe('errors of the Apple routes, over HTTP', () => {
  const body = { cleengCustomerId: 101, transactionId: '2000000000000999', ipAddress: '203.0.113.7' };

  it.each([
    ['missing X-Publisher-Id', { 'content-type': 'application/json', 'x-publisher-token': 'x' }, body, 400, 'REQ0004'],
    ['no credentials', { 'content-type': 'application/json', 'x-publisher-id': '1' }, body, 401, 'AUTH0001'],
    ['a wrong publisher token', { 'content-type': 'application/json', 'x-publisher-id': '1', 'x-publisher-token': 'pt_wrong' }, body, 401, 'AUTH0002'],
    ['a tampered customer JWT', { 'content-type': 'application/json', 'x-publisher-id': '1', authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJjdXN0b21lcklkIjoxMDF9.c2ln' }, body, 401, 'AUTH0002'],
    ['a form body', { 'content-type': 'application/x-www-form-urlencoded', 'x-publisher-id': '1', 'x-publisher-token': 'T' }, 'a=b', 415, 'REQ0005'],
    ['an unknown body property', undefined, { ...body, status: 'finalized' }, 400, 'REQ0001'],
    ['a body over 16 KiB', undefined, { ...body, pad: 'x'.repeat(20_000) }, 413, 'REQ0006'],
    ['an unknown customer', undefined, { ...body, cleengCustomerId: 999 }, 422, 'SK2C0100'],
  ])('%s → %i %s', async (_name, headers, requestBody, status, code) => {
    const resolved: Record<string, string> = headers ? { ...headers } : api.publisherHeaders();
    if (resolved['x-publisher-token'] === 'T') resolved['x-publisher-token'] = api.token;
    expectError(await api.register(requestBody as Record<string, unknown>, resolved), status, code as keyof typeof ERROR_CODES);
  });

  it('a customer JWT registering for another customer → 403 AUTH0003', async () => {
    expectError(await api.register({ cleengCustomerId: 102, transactionId: '1' }, api.customerHeaders(101)), 403, 'AUTH0003');
  });

  it('a customer JWT of publisher 1 presented for publisher 2 → 401 AUTH0002', async () => {
    expectError(await api.register({ cleengCustomerId: 101, transactionId: '1' }, api.customerHeaders(101, { 'x-publisher-id': '2' })), 401, 'AUTH0002');
  });

  it('a Correlation-Id UUID is scoped to its publisher: the same UUID under publisher 2 is a fresh key, and neither sees the other', async () => {
    const correlationId = randomUUID();
    const mine = await api.createTransaction({ productId: 'premium_monthly' });
    const theirs = await api.createTransaction({ productId: 'premium_monthly' });
    const other = { 'content-type': 'application/json', 'x-publisher-id': '2', 'x-publisher-token': OTHER_TOKEN, 'correlation-id': correlationId };
    // Publisher 2 uses the UUID first (squatting it would have refused publisher 1 before).
    const squat = await api.register({ cleengCustomerId: 101, transactionId: theirs.transactionId, ipAddress: '203.0.113.7' }, other);
    expect({ status: squat.status, id: squat.body.synchronizationId }).toEqual({ status: 202, id: correlationId });
    const accepted = await api.register({ cleengCustomerId: 101, transactionId: mine.transactionId, ipAddress: '203.0.113.7' }, api.publisherHeaders({ 'correlation-id': correlationId }));
    expect({ status: accepted.status, id: accepted.body.synchronizationId }).toEqual({ status: 202, id: correlationId });
    await api.waitFinalized(correlationId);
    await api.waitFinalized(correlationId, other);
    await api.settled();
    // Two synchronizations under one id, one per publisher, each with its own transaction and event.
    const events = api.eventsFor(correlationId).map((event) => [event.detail.broadcasterId, event.detail.transactionId]);
    expect(events.sort()).toEqual([[1, mine.transactionId], [2, theirs.transactionId]].sort());
    // A replay with another body is REQ0007 only against the publisher's own key.
    expectError(await api.register({ cleengCustomerId: 101, transactionId: theirs.transactionId, ipAddress: '203.0.113.7' }, api.publisherHeaders({ 'correlation-id': correlationId })), 409, 'REQ0007');
  });

  it('StoreKit 2 not activated → 500 SK2C0004', async () => {
    const headers = { 'content-type': 'application/json', 'x-publisher-id': '3', 'x-publisher-token': INACTIVE_TOKEN };
    expectError(await api.register(body, headers), 500, 'SK2C0004');
  });

  it.each([
    ['not a UUID', '/storekit2/purchases/synchronizations/12345', 400, 'REQ0003'],
    ['an unknown id', `/storekit2/purchases/synchronizations/${randomUUID()}`, 404, 'REQ0100'],
    ['an unknown route', '/storekit2/nothing-here', 404, 'REQ0008'],
  ])('GET %s → %i %s', async (_name, path, status, code) => {
    expectError(await api.request('GET', path, { headers: api.publisherHeaders() }), status, code as keyof typeof ERROR_CODES);
  });
});

describe('who may see a synchronization (BOLA)', () => {
  let ownId: string;
  let unknownReply: string;

  beforeAll(async () => {
    ownId = (await api.registerAndWait({ productId: 'premium_monthly' }, 101)).synchronizationId;
    unknownReply = (await api.status(randomUUID())).text;
  });

  it('the owner customer and its publisher can read it', async () => {
    expect((await api.status(ownId, api.customerHeaders(101))).status).toBe(200);
    expect((await api.status(ownId)).status).toBe(200);
  });

  it.each([
    ['another customer of the same publisher', () => api.customerHeaders(102)],
    ['another publisher with its own valid token', () => ({ 'x-publisher-id': '2', 'x-publisher-token': OTHER_TOKEN })],
  ])('%s gets a 404 byte-identical to an unknown id', async (_name, headers) => {
    const reply = await api.status(ownId, headers());
    expect(reply.status).toBe(404);
    expect(reply.text).toBe(unknownReply);
  });

  it('a token of publisher 1 with X-Publisher-Id 2 does not verify', async () => {
    expectError(await api.status(ownId, { 'x-publisher-id': '2', 'x-publisher-token': api.token }), 401, 'AUTH0002');
  });
});

describe('the purchase lock', () => {
  it('under 50 concurrent registers of one transactionId exactly one gets 202, the others 409 SK2C0101 with Retry-After', async () => {
    const { transactionId } = await api.createTransaction();
    // A slow Apple keeps the winner's synchronization active for the whole burst.
    await api.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', latencyMs: 2000 } });
    const replies = await Promise.all(
      Array.from({ length: 50 }, () => api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' })),
    );
    const accepted = replies.filter((r) => r.status === 202);
    const locked = replies.filter((r) => r.status === 409);
    expect(accepted).toHaveLength(1);
    expect(locked).toHaveLength(49);
    for (const reply of locked) {
      expect(reply.body.code).toBe('SK2C0101');
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    await api.request('DELETE', '/__simulator/faults');
    await api.waitFinalized(String(accepted[0]?.body.synchronizationId));
    await api.settled();
    // Finalizing released the lock: the same purchase can be registered again.
    const again = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    expect(again.status).toBe(202);
    await api.waitFinalized(String(again.body.synchronizationId));
  });
});

describe('when Apple is down', () => {
  afterEach(async () => {
    await api.request('DELETE', '/__simulator/faults');
    await api.settled();
  });

  it('shows `retrying`, then finalizes correctly once Apple answers again', async () => {
    const { transactionId } = await api.createTransaction();
    await api.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', status: 503, count: 2 } });
    const accepted = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    const { final, seen } = await api.waitFinalized(String(accepted.body.synchronizationId));
    // The first poll may already find it retrying: the workflow can be quicker than the client.
    expect(seen.filter((status) => status !== 'processing')).toEqual(['retrying', 'finalized']);
    expect(final).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED', accessGranted: true });
  });

  it('a register while the first is retrying is 409 SK2C0101', async () => {
    const { transactionId } = await api.createTransaction();
    await api.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', status: 429, count: 1 } });
    const first = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    expect(first.status).toBe(202);
    expectError(await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' }), 409, 'SK2C0101');
    await api.waitFinalized(String(first.body.synchronizationId));
  });

  it('exhausting the retry budget finalizes SYNCHRONIZATION_FAILED, publishes it and frees the lock', async () => {
    const { transactionId } = await api.createTransaction();
    await api.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', status: 500, count: 1000 } });
    const accepted = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    const id = String(accepted.body.synchronizationId);
    const { final, seen } = await api.waitFinalized(id);
    expect(seen).toContain('retrying');
    expect(final).toEqual({ synchronizationId: id, status: 'finalized', accessGranted: false, result: 'SYNCHRONIZATION_FAILED' });
    await api.settled();
    expect(api.eventsFor(id).map((e) => e.detail.result)).toEqual(['SYNCHRONIZATION_FAILED']);
    await api.request('DELETE', '/__simulator/faults');
    const retry = await api.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    expect(retry.status).toBe(202);
    expect((await api.waitFinalized(String(retry.body.synchronizationId))).final.result).toBe('PURCHASE_SYNCHRONIZED');
  });
});
