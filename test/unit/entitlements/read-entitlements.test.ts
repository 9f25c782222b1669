import type { Entitlement } from '../../../lambdas/entitlements/domain/entitlement';
import { readEntitlements } from '../../../lambdas/entitlements/domain/read-entitlements';
import { makeGetEntitlementsHandler } from '../../../lambdas/entitlements/handlers/get-entitlements';
import type { EntitlementRepository } from '../../../lambdas/entitlements/ports';
import { EntitlementsResponse } from '../../../lambdas/entitlements/schemas';
import type { Clock } from '../../../lambdas/platform/clock';
import { DependencyUnavailableError } from '../../../lambdas/platform/errors';
import { createLogger } from '../../../lambdas/platform/logger';
import type { Store } from '../../../lambdas/events/vocabulary';
import { hashPublisherToken } from '../../../lambdas/tenants/domain/authenticate';
import type { Publisher } from '../../../lambdas/tenants/domain/publisher';
import type { CustomerClaims, CustomerTokenVerifier } from '../../../lambdas/tenants/ports/credential-verifier';
import type { PublisherRepository } from '../../../lambdas/tenants/ports/publisher-repository';
import { apiEvent, testContext } from '../../support/api-events';
import { appleEntitlement as sampleEntitlement } from '../../support/fakes';

/** Customers' own entitlements, by publisher; what a DynamoDB partition per customer holds. */
class InMemoryEntitlementRepository implements EntitlementRepository {
  private readonly customers = new Set<string>();
  private readonly items: Entitlement[] = [];
  /** Every call, in order, so a test can tell which reads a request made. */
  readonly calls: string[] = [];
  failure: Error | undefined;

  addCustomer(publisherId: number, customerId: number): this {
    this.customers.add(`${publisherId}/${customerId}`);
    return this;
  }

  add(...entitlements: Entitlement[]): this {
    this.items.push(...entitlements);
    return this;
  }

  async listForCustomer(publisherId: number, customerId: number): Promise<Entitlement[]> {
    this.calls.push(`list ${publisherId}/${customerId}`);
    if (this.failure) throw this.failure;
    // Copies, so a use case that mutated what it read would not go unnoticed in a second read.
    return this.items.filter((e) => e.publisherId === publisherId && e.customerId === customerId).map((e) => ({ ...e }));
  }

  async customerExists(publisherId: number, customerId: number): Promise<boolean> {
    this.calls.push(`exists ${publisherId}/${customerId}`);
    if (this.failure) throw this.failure;
    return this.customers.has(`${publisherId}/${customerId}`);
  }
}

class OnePublisher implements PublisherRepository {
  constructor(private readonly publisher: Publisher) {}
  async getPublisher(publisherId: number): Promise<Publisher | undefined> {
    return publisherId === this.publisher.publisherId ? this.publisher : undefined;
  }
  async customerExists(): Promise<boolean> {
    throw new Error('the entitlements route asks its own repository whether the customer exists');
  }
  async getOfferId(): Promise<string | undefined> {
    throw new Error('not used by the entitlements route');
  }
}

/** `jwt.<publisherId>.<customerId>` verifies as that customer of that publisher; anything else does not. */
class FakeCustomerTokens implements CustomerTokenVerifier {
  async verify(_publisher: Publisher, token: string): Promise<CustomerClaims | undefined> {
    const match = /^jwt\.(\d+)\.(\d+)$/.exec(token);
    return match ? { publisherId: Number(match[1]), customerId: Number(match[2]) } : undefined;
  }
}

const fixedClock = (iso: string): Clock => ({ now: () => new Date(iso) });

const PUBLISHER_TOKEN = 'pt_entitlements_test';
const publisher: Publisher = {
  publisherId: 7,
  name: 'P',
  tokenHash: hashPublisherToken(PUBLISHER_TOKEN),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  ownershipPolicy: 'keep',
};

/** The contract's example entitlement (the brief's 200 body), stored for customer 101 of publisher 7. */
const EXAMPLE_VIEW = {
  offerId: 'S100000001_US',
  active: true,
  store: 'apple',
  productId: 'premium_monthly',
  transactionId: '2000000200',
  originalTransactionId: '2000000100',
  purchaseToken: null,
  packageName: null,
  expiresAt: '2027-01-06T10:00:00.000Z',
  willRenew: true,
  state: 'active',
  gracePeriodExpiresAt: null,
  environment: 'Sandbox',
  ownershipVersion: 4,
  updatedAt: '2026-12-07T10:00:00.000Z',
} as const;

/** Publisher 7's entitlement (the shared builder, on this file's publisher). */
function entitlement(overrides: Partial<Entitlement> = {}): Entitlement {
  return sampleEntitlement({ publisherId: 7, ...overrides });
}

/** An Apple entitlement known by its originalTransactionId, which is its purchase key. */
function appleEntitlement(originalTransactionId: string, overrides: Partial<Entitlement> = {}): Entitlement {
  return entitlement({ purchaseKey: originalTransactionId, originalTransactionId, ...overrides });
}

/** How a test names a listed entitlement: Google's purchase token, Apple's originalTransactionId. */
const identity = (view: { purchaseToken: string | null; originalTransactionId: string | null }) => view.purchaseToken ?? view.originalTransactionId;

function googleEntitlement(purchaseToken: string, overrides: Partial<Entitlement> = {}): Entitlement {
  return entitlement({
    store: 'google' satisfies Store,
    purchaseKey: purchaseToken,
    offerId: 'S200000002_US',
    productId: 'premium_yearly',
    transactionId: null,
    originalTransactionId: null,
    purchaseToken,
    packageName: 'com.example.app',
    environment: 'Production',
    ...overrides,
  });
}

const NOW = '2026-12-10T10:00:00.000Z';

function world(now = NOW) {
  const entitlements = new InMemoryEntitlementRepository()
    .addCustomer(7, 101)
    .addCustomer(7, 102)
    .addCustomer(7, 103)
    .addCustomer(7, 2147483647)
    .addCustomer(8, 104)
    .add(entitlement())
    .add(googleEntitlement('token-102', { customerId: 102 }))
    // Another publisher's customer: publisher 7 must not see it, whatever its credential.
    .add(entitlement({ publisherId: 8, customerId: 104 }));
  const handler = makeGetEntitlementsHandler({
    publishers: new OnePublisher(publisher),
    customerTokens: new FakeCustomerTokens(),
    entitlements,
    clock: fixedClock(now),
    logger: createLogger('test', 'silent'),
  });
  const get = async (headers: Record<string, string>, cleengCustomerId: string | undefined) => {
    const result = await handler(
      apiEvent({
        method: 'GET',
        path: `/customers/${cleengCustomerId ?? ''}/entitlements`,
        routeKey: 'GET /customers/{cleengCustomerId}/entitlements',
        headers,
        ...(cleengCustomerId !== undefined ? { pathParameters: { cleengCustomerId } } : {}),
      }),
      testContext,
    );
    const body: unknown = JSON.parse(result.body ?? 'null');
    return { status: result.statusCode, body, headers: result.headers ?? {} };
  };
  return { get, entitlements };
}

const AS_PUBLISHER = { 'x-publisher-id': '7', 'x-publisher-token': PUBLISHER_TOKEN };
const asCustomer = (customerId: number, publisherId = 7) => ({
  'x-publisher-id': '7',
  authorization: `Bearer jwt.${publisherId}.${customerId}`,
});

function errorCode(body: unknown): unknown {
  return typeof body === 'object' && body !== null && 'code' in body ? body.code : undefined;
}

describe('GET /customers/{cleengCustomerId}/entitlements', () => {
  it('answers the contract example for a publisher token', async () => {
    const { get } = world();
    const res = await get(AS_PUBLISHER, '101');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-request-id']).toBe('test-request-id');
    expect(res.body).toEqual({ cleengCustomerId: 101, entitlements: [EXAMPLE_VIEW] });
    expect(EntitlementsResponse.safeParse(res.body).success).toBe(true);
  });

  it.each<[string, Record<string, string>, string, number[]]>([
    ['a publisher token reads its customer 101', AS_PUBLISHER, '101', [101]],
    ['a publisher token reads any of its customers (102)', AS_PUBLISHER, '102', [102]],
    ['a publisher token reads a known customer without entitlements', AS_PUBLISHER, '103', []],
    ['a customer JWT reads its own entitlements', asCustomer(101), '101', [101]],
    ['the largest int32 is a valid id', AS_PUBLISHER, '2147483647', []],
  ])('%s → 200', async (_name, headers, param, owners) => {
    const { get } = world();
    const res = await get(headers, param);
    expect(res.status).toBe(200);
    const parsed = EntitlementsResponse.parse(res.body);
    expect(parsed.cleengCustomerId).toBe(Number(param));
    expect(parsed.entitlements.map((e) => (e.store === 'google' ? 102 : 101))).toEqual(owners);
  });

  it.each<[string, Record<string, string>, string | undefined, number, string, string[]]>([
    ['a customer JWT for another customer', asCustomer(101), '102', 403, 'AUTH0003', []],
    // Refused before any read: a JWT learns nothing about whether another customer exists.
    ['a customer JWT for an unknown customer', asCustomer(101), '999', 403, 'AUTH0003', []],
    ['a JWT of another publisher than X-Publisher-Id', asCustomer(101, 8), '101', 403, 'AUTH0003', []],
    ['an unknown customer', AS_PUBLISHER, '999', 404, 'REQ0101', ['list 7/999', 'exists 7/999']],
    ['a customer of another publisher', AS_PUBLISHER, '104', 404, 'REQ0101', ['list 7/104', 'exists 7/104']],
    ['a verified JWT whose customer is unknown', asCustomer(555), '555', 404, 'REQ0101', ['list 7/555', 'exists 7/555']],
    ['cleengCustomerId 0', AS_PUBLISHER, '0', 400, 'REQ0003', []],
    ['a negative cleengCustomerId', AS_PUBLISHER, '-101', 400, 'REQ0003', []],
    ['a cleengCustomerId above int32', AS_PUBLISHER, '2147483648', 400, 'REQ0003', []],
    ['a cleengCustomerId of letters', AS_PUBLISHER, 'abc', 400, 'REQ0003', []],
    ['a cleengCustomerId with a leading zero', AS_PUBLISHER, '0101', 400, 'REQ0003', []],
    ['a decimal cleengCustomerId', AS_PUBLISHER, '101.0', 400, 'REQ0003', []],
    ['an exponent', AS_PUBLISHER, '1e3', 400, 'REQ0003', []],
    ['a padded cleengCustomerId', AS_PUBLISHER, ' 101', 400, 'REQ0003', []],
    ['an empty cleengCustomerId', AS_PUBLISHER, '', 400, 'REQ0003', []],
    ['no path parameter', AS_PUBLISHER, undefined, 400, 'REQ0003', []],
    ['a bad parameter with a customer JWT', asCustomer(101), 'x', 400, 'REQ0003', []],
    ['no credentials', { 'x-publisher-id': '7' }, '101', 401, 'AUTH0001', []],
    ['a wrong publisher token', { ...AS_PUBLISHER, 'x-publisher-token': 'pt_wrong_token' }, '101', 401, 'AUTH0002', []],
    ['a JWT that does not verify', { 'x-publisher-id': '7', authorization: 'Bearer a.b.c' }, '101', 401, 'AUTH0002', []],
    ['no X-Publisher-Id', { 'x-publisher-token': PUBLISHER_TOKEN }, '101', 400, 'REQ0004', []],
  ])('%s → %i %s', async (_name, headers, param, status, code, reads) => {
    const { get, entitlements } = world();
    const res = await get(headers, param);
    expect(res.status).toBe(status);
    expect(errorCode(res.body)).toBe(code);
    expect(entitlements.calls).toEqual(reads);
  });

  it('answers 503 S0002 when the table cannot be read', async () => {
    const { get, entitlements } = world();
    entitlements.failure = new DependencyUnavailableError('query entitlements: ThrottlingException');
    const res = await get(AS_PUBLISHER, '101');
    expect(res.status).toBe(503);
    expect(errorCode(res.body)).toBe('S0002');
  });

  it('decides active with the clock of the request, not what was stored', async () => {
    const before = await world('2027-01-06T09:59:59.999Z').get(asCustomer(101), '101');
    const after = await world('2027-01-06T10:00:00.000Z').get(asCustomer(101), '101');
    expect(EntitlementsResponse.parse(before.body).entitlements.map((e) => e.active)).toEqual([true]);
    expect(EntitlementsResponse.parse(after.body).entitlements.map((e) => [e.active, e.state])).toEqual([[false, 'active']]);
  });
});

describe('readEntitlements', () => {
  const caller = { kind: 'publisher', publisherId: 7 } as const;

  async function read(now: string, ...stored: Entitlement[]) {
    const entitlements = new InMemoryEntitlementRepository().addCustomer(7, 101).add(...stored);
    const out = await readEntitlements({ entitlements, clock: fixedClock(now) }, { caller, customerId: 101 });
    return { out, calls: entitlements.calls };
  }

  it.each<[string, Partial<Entitlement>, string, boolean]>([
    ['active, before its expiry', {}, '2027-01-06T09:59:59.999Z', true],
    ['active, at its expiry', {}, '2027-01-06T10:00:00.000Z', false],
    ['active, after its expiry (no notification yet)', {}, '2027-02-01T00:00:00.000Z', false],
    ['active, never expires', { expiresAt: null }, '2099-01-01T00:00:00.000Z', true],
    ['grace period, before its end', { state: 'grace_period', expiresAt: '2026-12-01T00:00:00.000Z', gracePeriodExpiresAt: '2026-12-17T00:00:00.000Z' }, NOW, true],
    ['grace period, after its end', { state: 'grace_period', expiresAt: '2026-12-01T00:00:00.000Z', gracePeriodExpiresAt: '2026-12-09T00:00:00.000Z' }, NOW, false],
    ['grace period without a grace end, before expiresAt', { state: 'grace_period', expiresAt: '2026-12-11T00:00:00.000Z' }, NOW, true],
    ['transferred, with an expiry still ahead', { state: 'transferred', willRenew: false }, NOW, false],
    ['no offer mapped, though the store says active', { offerId: null }, NOW, false],
    ['billing retry', { state: 'billing_retry' }, NOW, false],
    ['on hold', { state: 'on_hold' }, NOW, false],
    ['paused', { state: 'paused' }, NOW, false],
    ['expired', { state: 'expired', willRenew: false }, NOW, false],
    ['revoked', { state: 'revoked', willRenew: false }, NOW, false],
  ])('%s → active %s, still listed with its stored state', async (_name, overrides, now, active) => {
    const stored = entitlement(overrides);
    const { out } = await read(now, stored);
    expect(out.entitlements).toHaveLength(1);
    expect(out.entitlements[0]).toEqual({ ...EXAMPLE_VIEW, ...viewFields(overrides), active });
  });

  it('sorts active first, then by updatedAt newest first (as instants), whatever the stored order', async () => {
    const rows = [
      googleEntitlement('old-ended', { state: 'expired', updatedAt: '2026-10-01T00:00:00.000Z' }),
      appleEntitlement('old-active', { updatedAt: '2026-11-01T00:00:00.000Z' }),
      googleEntitlement('new-ended', { state: 'revoked', updatedAt: '2026-12-09T00:00:00.000Z' }),
      // Expired by the clock only; its recent update must not lift it above the active ones.
      appleEntitlement('lapsed', { expiresAt: '2026-12-09T12:00:00.000Z', updatedAt: '2026-12-09T23:00:00.000Z' }),
      // Written without milliseconds: compared as an instant, it is newer than old-active.
      appleEntitlement('new-active', { updatedAt: '2026-12-08T00:00:00Z' }),
      appleEntitlement('unmapped', { offerId: null, updatedAt: '2026-09-01T00:00:00.000Z' }),
    ];
    const expected = ['new-active', 'old-active', 'lapsed', 'new-ended', 'old-ended', 'unmapped'];
    for (const order of [rows, [...rows].reverse()]) {
      const { out } = await read(NOW, ...order);
      expect(out.entitlements.map(identity)).toEqual(expected);
      expect(out.entitlements.map((e) => e.active)).toEqual([true, true, false, false, false, false]);
    }
  });

  it('orders entitlements updated at the same instant by store and purchase key', async () => {
    const same = '2026-12-01T00:00:00.000Z';
    const rows = [
      googleEntitlement('g-b', { updatedAt: same }),
      appleEntitlement('a-2', { updatedAt: same }),
      googleEntitlement('g-a', { updatedAt: same }),
      appleEntitlement('a-1', { updatedAt: same }),
    ];
    const { out } = await read(NOW, ...rows);
    expect(out.entitlements.map(identity)).toEqual(['a-1', 'a-2', 'g-a', 'g-b']);
  });

  it('leaves out entitlements whose ttl has passed (DynamoDB deletes lazily) and keeps the others', async () => {
    const nowSeconds = Date.parse(NOW) / 1000;
    const { out } = await read(
      NOW,
      googleEntitlement('ttl-passed', { state: 'expired', ttl: nowSeconds - 1 }),
      googleEntitlement('ttl-now', { state: 'expired', ttl: nowSeconds }),
      googleEntitlement('ttl-ahead', { state: 'expired', ttl: nowSeconds + 1 }),
      googleEntitlement('no-ttl'),
    );
    expect(out.entitlements.map((e) => e.purchaseToken)).toEqual(['no-ttl', 'ttl-ahead']);
  });

  it('a customer whose only entitlements are past their ttl has none (200), without a second read', async () => {
    const { out, calls } = await read(NOW, googleEntitlement('gone', { state: 'expired', ttl: Date.parse(NOW) / 1000 - 86_400 }));
    expect(out).toEqual({ cleengCustomerId: 101, entitlements: [] });
    expect(calls).toEqual(['list 7/101']);
  });

  it('asks whether the customer exists only when nothing is stored', async () => {
    expect((await read(NOW, entitlement())).calls).toEqual(['list 7/101']);
    expect((await read(NOW)).calls).toEqual(['list 7/101', 'exists 7/101']);
  });

  it('reads in the caller’s publisher only', async () => {
    const entitlements = new InMemoryEntitlementRepository().addCustomer(8, 101).add(entitlement({ publisherId: 8 }));
    await expect(
      readEntitlements({ entitlements, clock: fixedClock(NOW) }, { caller, customerId: 101 }),
    ).rejects.toMatchObject({ code: 'REQ0101' });
    expect(entitlements.calls).toEqual(['list 7/101', 'exists 7/101']);
  });

  it('refuses a customer caller for another customer before reading', async () => {
    const entitlements = new InMemoryEntitlementRepository().addCustomer(7, 102).add(entitlement({ customerId: 102 }));
    await expect(
      readEntitlements({ entitlements, clock: fixedClock(NOW) }, { caller: { kind: 'customer', publisherId: 7, customerId: 101 }, customerId: 102 }),
    ).rejects.toMatchObject({ code: 'AUTH0003' });
    expect(entitlements.calls).toEqual([]);
  });
});

/** The view fields an override changes (the stored-only ones, publisherId… and ttl, never show). */
function viewFields(overrides: Partial<Entitlement>): Record<string, unknown> {
  const { publisherId: _p, customerId: _c, purchaseKey: _k, ttl: _t, ...visible } = overrides;
  return visible;
}
