import { hashPublisherToken } from '../../../lambdas/tenants/domain/authenticate';
import type { Publisher } from '../../../lambdas/tenants/domain/publisher';
import type { SyncKind } from '../../../lambdas/events/vocabulary';
import { makePurchaseHandler } from '../../../lambdas/purchases/handlers/purchase-handler';
import type { AcceptOutcome } from '../../../lambdas/purchases/ports/synchronization-repository';
import { createLogger } from '../../../lambdas/platform/logger';
import { apiEvent, testContext } from '../../support/api-events';
import { FakeCustomerTokenVerifier, FakePublisherRepository, FakeSynchronizationRepository, FakeWorkflowStarter, FixedClock } from '../../support/fakes';

const TOKEN = 'pt_test_token';
const publisher: Publisher = {
  publisherId: 7,
  name: 'P',
  tokenHash: hashPublisherToken(TOKEN),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  apple: { bundleId: 'b', issuerId: 'i', keyId: 'k', privateKeyRef: 'file:k', environments: ['Sandbox'] },
  ownershipPolicy: 'keep',
};

function setup(overrides: { outcome?: AcceptOutcome; publisher?: Publisher; startFails?: boolean; kind?: SyncKind; original?: string } = {}) {
  const syncs = new FakeSynchronizationRepository();
  syncs.acceptAnswer = overrides.outcome;
  if (overrides.original !== undefined) syncs.link(7, '123', overrides.original);
  const workflow = new FakeWorkflowStarter();
  if (overrides.startFails) workflow.failure = new Error('boom');
  const handler = makePurchaseHandler('apple', overrides.kind ?? 'register', {
    publishers: new FakePublisherRepository([overrides.publisher ?? publisher]),
    customerTokens: new FakeCustomerTokenVerifier({ 'a.b.c': { customerId: 42, publisherId: 7 } }),
    syncs,
    workflow,
    clock: new FixedClock('2026-11-23T10:00:00Z'),
    logger: createLogger('test', 'silent'),
    leaseSeconds: 7800,
    retryAfterSeconds: 5,
    newId: () => '11111111-2222-4333-8444-555555555555',
  });
  const call = async (headers: Record<string, string>, body: unknown = { cleengCustomerId: 42, transactionId: '123', ipAddress: '1.2.3.4' }) => {
    const result = await handler(
      apiEvent({ path: overrides.kind === 'transfer' ? '/storekit2/purchases/transfers' : '/storekit2/purchases', headers, body: typeof body === 'string' ? body : JSON.stringify(body) }),
      testContext,
    );
    return { status: result.statusCode, body: JSON.parse(result.body ?? '{}') as Record<string, unknown>, headers: result.headers ?? {} };
  };
  return { call, accepted: syncs.accepted, started: workflow.started, abandoned: syncs.abandoned };
}

const JSON_TOKEN = { 'content-type': 'application/json', 'x-publisher-id': '7', 'x-publisher-token': TOKEN };

describe('POST /storekit2/purchases handler', () => {
  it('answers 202 with a generated id, takes a lease longer than the workflow and starts the workflow', async () => {
    const { call, accepted, started } = setup();
    const res = await call(JSON_TOKEN);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ synchronizationId: '11111111-2222-4333-8444-555555555555' });
    expect(accepted[0]?.leaseExpiresAt).toBe(Date.parse('2026-11-23T10:00:00Z') + 7800 * 1000);
    expect(accepted[0]?.sync.lockKeys).toEqual(['apple#txn#123']);
    expect(started[0]).toMatchObject({ synchronizationId: res.body.synchronizationId, publisherId: 7, customerId: 42, transactionId: '123' });
  });

  it('uses a UUID Correlation-Id as the synchronizationId and echoes it', async () => {
    const { call } = setup();
    const id = 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE';
    const res = await call({ ...JSON_TOKEN, 'correlation-id': id });
    expect(res.body).toEqual({ synchronizationId: id.toLowerCase(), correlationId: id });
  });

  it.each([
    ['no X-Publisher-Id', { 'content-type': 'application/json', 'x-publisher-token': TOKEN }, 400, 'REQ0004'],
    ['X-Publisher-Id not a positive int32', { ...JSON_TOKEN, 'x-publisher-id': '0' }, 400, 'REQ0004'],
    ['X-Publisher-Id above int32', { ...JSON_TOKEN, 'x-publisher-id': '2147483648' }, 400, 'REQ0004'],
    ['Correlation-Id too long', { ...JSON_TOKEN, 'correlation-id': 'x'.repeat(257) }, 400, 'REQ0004'],
    ['Correlation-Id with control characters', { ...JSON_TOKEN, 'correlation-id': 'a\u0001b' }, 400, 'REQ0004'],
    ['X-Device-Id too long', { ...JSON_TOKEN, 'x-device-id': 'd'.repeat(257) }, 400, 'REQ0004'],
    ['no credentials', { 'content-type': 'application/json', 'x-publisher-id': '7' }, 401, 'AUTH0001'],
    ['wrong token', { ...JSON_TOKEN, 'x-publisher-token': 'nope' }, 401, 'AUTH0002'],
    ['unknown publisher', { ...JSON_TOKEN, 'x-publisher-id': '8' }, 401, 'AUTH0002'],
    ['JWT that does not verify', { 'content-type': 'application/json', 'x-publisher-id': '7', authorization: 'Bearer x.y.z' }, 401, 'AUTH0002'],
    ['not a Bearer scheme', { 'content-type': 'application/json', 'x-publisher-id': '7', authorization: 'Basic abc' }, 401, 'AUTH0002'],
    ['text/plain body', { ...JSON_TOKEN, 'content-type': 'text/plain' }, 415, 'REQ0005'],
    ['no content type', { 'x-publisher-id': '7', 'x-publisher-token': TOKEN }, 415, 'REQ0005'],
  ])('%s → %i %s', async (_name, headers, status, code) => {
    const { call, started } = setup();
    const res = await call(headers as Record<string, string>);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(typeof res.body.message).toBe('string');
    expect(started).toHaveLength(0);
  });

  it.each([
    ['bad JSON', '{"cleengCustomerId":', 'REQ0001'],
    ['unknown property', { cleengCustomerId: 42, transactionId: '1', ipAddress: '1.2.3.4', status: 'finalized' }, 'REQ0001'],
    ['customer id as string', { cleengCustomerId: '42', transactionId: '1', ipAddress: '1.2.3.4' }, 'REQ0001'],
    ['customer id 0', { cleengCustomerId: 0, transactionId: '1', ipAddress: '1.2.3.4' }, 'REQ0001'],
    ['transaction id with letters', { cleengCustomerId: 42, transactionId: '12a', ipAddress: '1.2.3.4' }, 'REQ0001'],
    ['transaction id of 65 digits', { cleengCustomerId: 42, transactionId: '1'.repeat(65), ipAddress: '1.2.3.4' }, 'REQ0001'],
    ['IP not a dotted quad', { cleengCustomerId: 42, transactionId: '1', ipAddress: '256.1.1.1' }, 'REQ0001'],
    ['publisher token without ipAddress', { cleengCustomerId: 42, transactionId: '1' }, 'REQ0001'],
    ['a JSON array', [1, 2], 'REQ0001'],
  ])('%s → 400 %s', async (_name, body, code) => {
    const { call } = setup();
    const res = await call(JSON_TOKEN, body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(code);
  });

  it('refuses bodies over 16 KiB with 413 REQ0006', async () => {
    const { call } = setup();
    const res = await call(JSON_TOKEN, JSON.stringify({ cleengCustomerId: 42, transactionId: '1', pad: 'x'.repeat(17 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('REQ0006');
  });

  it('lets a customer JWT register only for itself (403 AUTH0003), without ipAddress', async () => {
    const { call } = setup();
    const jwtHeaders = { 'content-type': 'application/json', 'x-publisher-id': '7', authorization: 'Bearer a.b.c' };
    expect((await call(jwtHeaders, { cleengCustomerId: 42, transactionId: '1' })).status).toBe(202);
    const other = await call(jwtHeaders, { cleengCustomerId: 43, transactionId: '1' });
    expect([other.status, other.body.code]).toEqual([403, 'AUTH0003']);
  });

  it('answers 500 SK2C0004 when StoreKit 2 is not activated', async () => {
    const { call } = setup({ publisher: { ...publisher, storeKit: { activated: false, migrationInProgress: false } } });
    const res = await call(JSON_TOKEN);
    expect([res.status, res.body.code]).toEqual([500, 'SK2C0004']);
  });

  it.each([
    [{ outcome: 'customer_missing' } as AcceptOutcome, 422, 'SK2C0100'],
    [{ outcome: 'locked' } as AcceptOutcome, 409, 'SK2C0101'],
  ])('maps %j to %i %s', async (outcome, status, code) => {
    const { call, started } = setup({ outcome });
    const res = await call(JSON_TOKEN);
    expect([res.status, res.body.code]).toEqual([status, code]);
    expect(started).toHaveLength(0);
    if (code === 'SK2C0101') expect(res.headers['retry-after']).toBe('5');
  });

  it('abandons the accepted synchronization and answers 503 S0002 when the workflow cannot start', async () => {
    const { call, abandoned } = setup({ startFails: true });
    const res = await call(JSON_TOKEN);
    expect([res.status, res.body.code]).toEqual([503, 'S0002']);
    expect(abandoned).toHaveLength(1);
    expect(JSON.stringify(res.body)).not.toContain('boom');
  });

  it('also locks the subscription when the transaction was seen before', async () => {
    const { call, accepted } = setup({ original: '100' });
    await call(JSON_TOKEN);
    expect(accepted[0]?.sync.lockKeys).toEqual(['apple#txn#123', 'apple#sub#100']);
  });
});

describe('POST /storekit2/purchases/transfers handler', () => {
  it('always generates the synchronizationId, echoes a UUID Correlation-Id and starts a transfer', async () => {
    const { call, started } = setup({ kind: 'transfer' });
    const correlationId = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    const res = await call({ ...JSON_TOKEN, 'correlation-id': correlationId });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ synchronizationId: '11111111-2222-4333-8444-555555555555', correlationId });
    expect(started[0]).toMatchObject({ kind: 'transfer', customerId: 42 });
  });

  it('refuses transfers while the publisher migration is in progress: 422 SK2C0005', async () => {
    const { call, started } = setup({ kind: 'transfer', publisher: { ...publisher, storeKit: { activated: true, migrationInProgress: true } } });
    const res = await call(JSON_TOKEN);
    expect([res.status, res.body.code]).toEqual([422, 'SK2C0005']);
    expect(started).toHaveLength(0);
  });

  it('lets registers through during a migration', async () => {
    const { call } = setup({ publisher: { ...publisher, storeKit: { activated: true, migrationInProgress: true } } });
    expect((await call(JSON_TOKEN)).status).toBe(202);
  });

  it.each([
    ['apple#txn#123', 'SK2C0103'],
    ['apple#sub#100', 'SK2C0104'],
  ])('a held lock %s answers 409 %s', async (lockKey, code) => {
    const { call } = setup({ kind: 'transfer', outcome: { outcome: 'locked', lockKey } });
    const res = await call(JSON_TOKEN);
    expect([res.status, res.body.code]).toEqual([409, code]);
    expect(res.headers['retry-after']).toBe('5');
  });

  it('lets a customer JWT transfer only to itself (AUTH0003 first), and only with proof of possession (AUTH0004)', async () => {
    // The accepted case, with a signed transaction, is in proof-of-possession.test.ts.
    const { call, accepted } = setup({ kind: 'transfer' });
    const jwtHeaders = { 'content-type': 'application/json', 'x-publisher-id': '7', authorization: 'Bearer a.b.c' };
    expect((await call(jwtHeaders, { cleengCustomerId: 41, transactionId: '1' })).body.code).toBe('AUTH0003');
    const unproven = await call(jwtHeaders, { cleengCustomerId: 42, transactionId: '1' });
    expect([unproven.status, unproven.body.code]).toEqual([403, 'AUTH0004']);
    expect(accepted).toHaveLength(0);
  });
});
