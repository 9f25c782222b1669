import {
  APIException,
  Environment,
  SignedDataVerifier,
  VerificationException,
  VerificationStatus,
  type JWSTransactionDecodedPayload,
} from '@apple/app-store-server-library';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AppStoreClient } from '../../../lambdas/stores/apple/adapters/app-store-client';
import { createAppleSimulator, type AppleSimulator, type AppleSimulatorOptions } from '../../../local/simulator/apple-simulator';
import { FaultInjector, handleFaultRoutes } from '../../../local/simulator/faults';

type StoreEnvironment = Environment.SANDBOX | Environment.PRODUCTION;

interface Running {
  simulator: AppleSimulator;
  baseUrl: string;
  server: Server;
}

interface Created {
  transactionId: string;
  originalTransactionId: string;
  signedTransactionInfo: string;
}

const servers: Server[] = [];
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apple-simulator-'));
  tempDirs.push(dir);
  return dir;
}

async function start(options: Partial<AppleSimulatorOptions> = {}): Promise<Running> {
  const faults = new FaultInjector();
  const simulator = await createAppleSimulator({ dataDir: tempDir(), inMemory: false, ...options }, faults);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    void (async () => {
      if (await handleFaultRoutes(req, res, url, faults)) return;
      if (await simulator.handle(req, res, url)) return;
      res.writeHead(404).end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { simulator, server, baseUrl: `http://127.0.0.1:${port}` };
}

async function call(running: Running, method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${running.baseUrl}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

async function createTransaction(running: Running, body: Record<string, unknown>): Promise<Created> {
  const { status, json } = await call(running, 'POST', '/__simulator/apple/transactions', body);
  expect(status).toBe(201);
  return json as Created;
}

function client(
  running: Running,
  environment: StoreEnvironment = Environment.SANDBOX,
  overrides: { privateKeyPem?: string; issuerId?: string; bundleId?: string; pathPrefix?: string } = {},
): AppStoreClient {
  const { simulator } = running;
  const prefix = overrides.pathPrefix ?? (environment === Environment.PRODUCTION ? '/production' : '/sandbox');
  return new AppStoreClient(
    overrides.privateKeyPem ?? simulator.apiKey.privateKeyPem,
    simulator.apiKey.keyId,
    overrides.issuerId ?? simulator.apiKey.issuerId,
    overrides.bundleId ?? simulator.bundleId,
    environment,
    `${running.baseUrl}/__simulator/apple${prefix}`,
    5000,
  );
}

function verifier(running: Running, environment: StoreEnvironment = Environment.SANDBOX, root?: Buffer, bundleId?: string): SignedDataVerifier {
  const { simulator } = running;
  return new SignedDataVerifier(
    [root ?? simulator.rootCertificateDer],
    false,
    environment,
    bundleId ?? simulator.bundleId,
    environment === Environment.PRODUCTION ? simulator.appAppleId : undefined,
  );
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function latestStatus(running: Running, transactionId: string): Promise<{ status: unknown; latest: JWSTransactionDecodedPayload }> {
  const response = await client(running).getAllSubscriptionStatuses(transactionId);
  const item = response.data?.[0]?.lastTransactions?.[0];
  expect(item?.signedTransactionInfo).toEqual(expect.any(String));
  const latest = await verifier(running).verifyAndDecodeTransaction(item?.signedTransactionInfo ?? '');
  return { status: item?.status, latest };
}

let shared: Running;

beforeAll(async () => {
  shared = await start();
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('Apple store simulator', () => {
  it.each([
    ['Sandbox', Environment.SANDBOX],
    ['Production', Environment.PRODUCTION],
  ] as const)('serves a created %s transaction that Apple\'s verifier accepts', async (environment, storeEnvironment) => {
    const before = Date.now();
    const created = await createTransaction(shared, { productId: 'premium_monthly', environment });
    expect(created.transactionId).toMatch(/^\d{16}$/);
    expect(created.originalTransactionId).toBe(created.transactionId);

    const info = await client(shared, storeEnvironment).getTransactionInfo(created.transactionId);
    const decoded = await verifier(shared, storeEnvironment).verifyAndDecodeTransaction(info.signedTransactionInfo ?? '');
    expect(decoded).toMatchObject({
      transactionId: created.transactionId,
      originalTransactionId: created.transactionId,
      productId: 'premium_monthly',
      bundleId: 'com.example.iapsync',
      type: 'Auto-Renewable Subscription',
      environment,
      transactionReason: 'PURCHASE',
      subscriptionGroupIdentifier: expect.any(String),
      webOrderLineItemId: expect.any(String),
      quantity: 1,
      inAppOwnershipType: 'PURCHASED',
    });
    expect(decoded.expiresDate).toBeGreaterThanOrEqual(before + 2592000 * 1000);
    expect(decoded.expiresDate).toBeLessThanOrEqual(Date.now() + 2592000 * 1000);
    expect(decoded.revocationDate).toBeUndefined();

    const header = JSON.parse(Buffer.from(created.signedTransactionInfo.split('.')[0] ?? '', 'base64url').toString()) as { alg: string; x5c: string[] };
    expect(header.alg).toBe('ES256');
    expect(header.x5c).toHaveLength(3);
    expect(header.x5c[2]).toBe(shared.simulator.rootCertificateDer.toString('base64'));
  });

  it('serves the Sandbox environment on the unprefixed path too', async () => {
    const created = await createTransaction(shared, { productId: 'lifetime', type: 'Non-Consumable' });
    const info = await client(shared, Environment.SANDBOX, { pathPrefix: '' }).getTransactionInfo(created.transactionId);
    const decoded = await verifier(shared).verifyAndDecodeTransaction(info.signedTransactionInfo ?? '');
    expect(decoded.transactionId).toBe(created.transactionId);
    // A non-consumable never expires unless asked to.
    expect(decoded.expiresDate).toBeUndefined();
    expect(decoded.subscriptionGroupIdentifier).toBeUndefined();
  });

  it.each([
    ['Non-Renewing Subscription', {}, true],
    ['Consumable', {}, false],
    ['Consumable', { expiresInSeconds: 60 }, true],
  ] as const)('sets expiresDate of a %s %j: %s', async (type, extra, expires) => {
    const created = await createTransaction(shared, { productId: 'item', type, ...extra });
    const decoded = await verifier(shared).verifyAndDecodeTransaction(created.signedTransactionInfo);
    expect(decoded.type).toBe(type);
    expect(decoded.expiresDate !== undefined).toBe(expires);
  });

  it.each([
    ['getTransactionInfo', (c: AppStoreClient) => c.getTransactionInfo('1999999999999999')],
    ['getAllSubscriptionStatuses', (c: AppStoreClient) => c.getAllSubscriptionStatuses('1999999999999999')],
  ])('answers 4040010 to %s for an unknown transaction', async (_name, request) => {
    const error = await caught(request(client(shared)));
    expect(error).toBeInstanceOf(APIException);
    expect(error).toMatchObject({ httpStatusCode: 404, apiError: 4040010 });
  });

  it.each([
    ['Production', Environment.SANDBOX],
    ['Sandbox', Environment.PRODUCTION],
  ] as const)('does not find a %s transaction in the other environment', async (environment, otherEnvironment) => {
    const created = await createTransaction(shared, { productId: 'premium_monthly', environment });
    const error = await caught(client(shared, otherEnvironment).getTransactionInfo(created.transactionId));
    expect(error).toMatchObject({ httpStatusCode: 404, apiError: 4040010 });
  });

  it('answers 404 4040010 to subscription statuses of a non-subscription', async () => {
    const created = await createTransaction(shared, { productId: 'lifetime', type: 'Non-Consumable' });
    const error = await caught(client(shared).getAllSubscriptionStatuses(created.transactionId));
    expect(error).toMatchObject({ httpStatusCode: 404, apiError: 4040010 });
  });

  it('returns the latest renewal in subscription statuses, asked by any transaction of the subscription', async () => {
    const created = await createTransaction(shared, { productId: 'premium_monthly' });
    const renewal = await call(shared, 'POST', `/__simulator/apple/transactions/${created.transactionId}/renew`, { expiresInSeconds: 3600 });
    expect(renewal.status).toBe(201);
    const renewed = renewal.json as Created;
    expect(renewed.transactionId).not.toBe(created.transactionId);
    expect(renewed.originalTransactionId).toBe(created.transactionId);

    for (const askedBy of [created.transactionId, renewed.transactionId]) {
      const { status, latest } = await latestStatus(shared, askedBy);
      expect(status).toBe(1);
      expect(latest).toMatchObject({ transactionId: renewed.transactionId, originalTransactionId: created.transactionId, transactionReason: 'RENEWAL' });
    }

    const response = await client(shared).getAllSubscriptionStatuses(created.transactionId);
    expect(response).toMatchObject({ environment: 'Sandbox', bundleId: 'com.example.iapsync', appAppleId: 1234567890 });
    const renewalInfo = await verifier(shared).verifyAndDecodeRenewalInfo(response.data?.[0]?.lastTransactions?.[0]?.signedRenewalInfo ?? '');
    expect(renewalInfo).toMatchObject({
      originalTransactionId: created.transactionId,
      autoRenewProductId: 'premium_monthly',
      autoRenewStatus: 1,
      environment: 'Sandbox',
    });
  });

  it('picks the last renewal as latest even within one millisecond', async () => {
    const fixed = new Date();
    const running = await start({ inMemory: true, now: () => fixed });
    const created = await createTransaction(running, { productId: 'premium_monthly' });
    let lastId = created.transactionId;
    for (let renewal = 0; renewal < 2; renewal += 1) {
      const { json } = await call(running, 'POST', `/__simulator/apple/transactions/${created.transactionId}/renew`, {});
      lastId = (json as Created).transactionId;
    }
    const { latest } = await latestStatus(running, created.transactionId);
    expect(latest.transactionId).toBe(lastId);
  });

  it('joins a subscription given its originalTransactionId', async () => {
    const first = await createTransaction(shared, { productId: 'premium_monthly', environment: 'Production' });
    const upgrade = await createTransaction(shared, { productId: 'premium_yearly', originalTransactionId: first.transactionId });
    expect(upgrade.originalTransactionId).toBe(first.transactionId);
    const decoded = await verifier(shared, Environment.PRODUCTION).verifyAndDecodeTransaction(upgrade.signedTransactionInfo);
    expect(decoded).toMatchObject({ environment: 'Production', productId: 'premium_yearly', transactionReason: 'PURCHASE' });
  });

  it('marks a refunded transaction revoked (status 5)', async () => {
    const created = await createTransaction(shared, { productId: 'premium_monthly' });
    const refund = await call(shared, 'POST', `/__simulator/apple/transactions/${created.transactionId}/refund`, {});
    expect(refund.status).toBe(200);
    expect(refund.json).toEqual({ transactionId: created.transactionId, revocationDate: expect.any(Number) });

    const info = await client(shared).getTransactionInfo(created.transactionId);
    const decoded = await verifier(shared).verifyAndDecodeTransaction(info.signedTransactionInfo ?? '');
    expect(decoded.revocationDate).toBe((refund.json as { revocationDate: number }).revocationDate);
    expect(decoded.revocationReason).toBe(0);
    expect((await latestStatus(shared, created.transactionId)).status).toBe(5);
  });

  it.each([
    ['expired through the expire route', {}, true],
    ['created with a negative expiresInSeconds', { expiresInSeconds: -60 }, false],
  ])('reports a subscription %s as expired (status 2)', async (_name, extra, useRoute) => {
    const created = await createTransaction(shared, { productId: 'premium_monthly', ...extra });
    if (useRoute) {
      const expire = await call(shared, 'POST', `/__simulator/apple/transactions/${created.transactionId}/expire`);
      expect(expire.status).toBe(200);
      expect((expire.json as { expiresDate: number }).expiresDate).toBeLessThan(Date.now());
    }
    const { status, latest } = await latestStatus(shared, created.transactionId);
    expect(status).toBe(2);
    expect(latest.expiresDate).toBeLessThan(Date.now());
  });

  it.each([
    ['a verifier trusting a different root', async () => (await start({ inMemory: true })).simulator.rootCertificateDer, undefined, VerificationStatus.VERIFICATION_FAILURE],
    ['a verifier expecting another bundle id', async () => shared.simulator.rootCertificateDer, 'com.example.other', VerificationStatus.INVALID_APP_IDENTIFIER],
  ] as const)('is rejected by %s', async (_name, root, bundleId, expectedStatus) => {
    const created = await createTransaction(shared, { productId: 'premium_monthly' });
    const error = await caught(verifier(shared, Environment.SANDBOX, await root(), bundleId).verifyAndDecodeTransaction(created.signedTransactionInfo));
    expect(error).toBeInstanceOf(VerificationException);
    expect((error as VerificationException).status).toBe(expectedStatus);
  });

  it('signs for the bundle id the transaction was created with', async () => {
    const created = await createTransaction(shared, { productId: 'premium_monthly', bundleId: 'com.example.other' });
    const decoded = await verifier(shared, Environment.SANDBOX, undefined, 'com.example.other').verifyAndDecodeTransaction(created.signedTransactionInfo);
    expect(decoded.bundleId).toBe('com.example.other');
  });

  it.each([
    ['signed with a different key', { privateKeyPem: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }],
    ['with another issuer id', { issuerId: '00000000-0000-4000-8000-000000000000' }],
  ])('refuses a bearer token %s with 401', async (_name, overrides) => {
    const created = await createTransaction(shared, { productId: 'premium_monthly' });
    const error = await caught(client(shared, Environment.SANDBOX, overrides).getTransactionInfo(created.transactionId));
    expect(error).toBeInstanceOf(APIException);
    expect(error).toMatchObject({ httpStatusCode: 401, apiError: null });
  });

  it('serves another bundle\'s transaction to a valid token, so the service\'s bundle-id check is what refuses it', async () => {
    const created = await createTransaction(shared, { productId: 'premium_monthly', bundleId: 'com.example.other' });
    const info = await client(shared, Environment.SANDBOX).getTransactionInfo(created.transactionId);
    const error = await caught(verifier(shared).verifyAndDecodeTransaction(String(info.signedTransactionInfo)));
    expect(error).toMatchObject({ status: VerificationStatus.INVALID_APP_IDENTIFIER });
  });

  it('answers queued faults before anything else, then recovers; DELETE clears them', async () => {
    const running = await start();
    const created = await createTransaction(running, { productId: 'premium_monthly' });
    const set = await call(running, 'POST', '/__simulator/faults', { store: 'apple', status: 503, count: 2 });
    expect(set).toEqual({ status: 200, json: { store: 'apple', status: 503, count: 2 } });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const error = await caught(client(running).getTransactionInfo(created.transactionId));
      expect(error).toMatchObject({ httpStatusCode: 503, apiError: 5000001 });
    }
    expect((await client(running).getTransactionInfo(created.transactionId)).signedTransactionInfo).toEqual(expect.any(String));

    await call(running, 'POST', '/__simulator/faults', { store: 'apple', status: 429, count: 5 });
    // Faults come first: even an unknown id, with a bad token, gets the outage answer.
    const throttled = await caught(client(running, Environment.SANDBOX, { issuerId: '00000000-0000-4000-8000-000000000000' }).getTransactionInfo('1'));
    expect(throttled).toMatchObject({ httpStatusCode: 429, apiError: 4290000 });
    expect(await call(running, 'DELETE', '/__simulator/faults')).toEqual({ status: 200, json: { cleared: true } });
    expect((await client(running).getTransactionInfo(created.transactionId)).signedTransactionInfo).toEqual(expect.any(String));
  });

  it('leaves Apple alone when the fault is for Google', async () => {
    const running = await start();
    const created = await createTransaction(running, { productId: 'premium_monthly' });
    await call(running, 'POST', '/__simulator/faults', { store: 'google', status: 500, count: 1 });
    expect((await client(running).getTransactionInfo(created.transactionId)).signedTransactionInfo).toEqual(expect.any(String));
  });

  it.each([
    [{ store: 'amazon', status: 503, count: 1 }],
    [{ store: 'apple', status: 502, count: 1 }],
    [{ store: 'apple', status: 503, count: -1 }],
    [{ store: 'apple', status: 503 }],
    ['not json'],
  ])('refuses the fault body %j with 400', async (body) => {
    const { status, json } = await call(shared, 'POST', '/__simulator/faults', body);
    expect(status).toBe(400);
    expect(json).toEqual({ error: expect.any(String) });
  });

  it.each([
    [undefined],
    [{}],
    [{ productId: '' }],
    [{ productId: 'x'.repeat(201) }],
    [{ productId: 'p', type: 'Subscription' }],
    [{ productId: 'p', expiresInSeconds: 1.5 }],
    [{ productId: 'p', environment: 'Prod' }],
    [{ productId: 'p', bundleId: 42 }],
    [{ productId: 'p', originalTransactionId: '1000000000000000' }],
    [{ productId: 'p', colour: 'red' }],
    [[1, 2]],
    ['{"productId":'],
  ])('refuses the create body %j with 400', async (body) => {
    const { status, json } = await call(shared, 'POST', '/__simulator/apple/transactions', body);
    expect(status).toBe(400);
    expect(json).toEqual({ error: expect.any(String) });
  });

  it.each(['renew', 'refund', 'expire'])('answers 404 to %s of an unknown transaction', async (action) => {
    const { status, json } = await call(shared, 'POST', `/__simulator/apple/transactions/1000000000000000/${action}`, {});
    expect(status).toBe(404);
    expect(json).toEqual({ error: 'transaction not found' });
  });

  it('refuses to renew a non-subscription', async () => {
    const created = await createTransaction(shared, { productId: 'lifetime', type: 'Non-Consumable' });
    const { status } = await call(shared, 'POST', `/__simulator/apple/transactions/${created.transactionId}/renew`, {});
    expect(status).toBe(400);
  });

  it('refuses a body over 64 KiB with 413', async () => {
    const { status } = await call(shared, 'POST', '/__simulator/apple/transactions', { productId: 'p', padding: 'x'.repeat(70 * 1024) });
    expect(status).toBe(413);
  });

  it('ignores paths outside /__simulator/apple', async () => {
    const { status } = await call(shared, 'GET', '/__simulator/applex/inApps/v1/transactions/1');
    expect(status).toBe(404);
  });

  it('issues an Apple-shaped chain valid from a day ago for ten years', async () => {
    const root = new X509Certificate(shared.simulator.rootCertificateDer);
    const created = await createTransaction(shared, { productId: 'premium_monthly' });
    const header = JSON.parse(Buffer.from(created.signedTransactionInfo.split('.')[0] ?? '', 'base64url').toString()) as { x5c: string[] };
    const [leaf, intermediate] = header.x5c.map((der) => new X509Certificate(Buffer.from(der, 'base64')));
    expect(intermediate?.ca).toBe(true);
    expect(leaf?.ca).toBe(false);
    expect(intermediate?.issuer).toBe(root.subject);
    expect(leaf?.issuer).toBe(intermediate?.subject);
    const day = 24 * 3600 * 1000;
    expect(Date.parse(root.validFrom)).toBeGreaterThan(Date.now() - day - 60_000);
    expect(Date.parse(root.validFrom)).toBeLessThan(Date.now() - day + 60_000);
    expect(Date.parse(root.validTo)).toBeGreaterThan(Date.now() + 9.9 * 365 * day);
  });

  it('keeps transactions, the root and the API key across a restart', async () => {
    const dataDir = tempDir();
    const first = await start({ dataDir });
    const created = await createTransaction(first, { productId: 'premium_monthly', environment: 'Production' });
    const second = await start({ dataDir });

    expect(second.simulator.rootCertificateDer.equals(first.simulator.rootCertificateDer)).toBe(true);
    expect(second.simulator.apiKey).toEqual(first.simulator.apiKey);
    expect(first.simulator.apiKey.keyId).toMatch(/^[A-Z0-9]{10}$/);
    expect(first.simulator.apiKey.privateKeyPath).toBe(path.join(dataDir, 'secrets', 'apple-api-key.p8'));
    expect(readFileSync(path.join(dataDir, 'secrets', 'apple-api-key.p8'), 'utf8')).toBe(first.simulator.apiKey.privateKeyPem);
    expect(existsSync(path.join(dataDir, 'simulator', 'apple-transactions.json'))).toBe(true);

    const info = await client(second, Environment.PRODUCTION).getTransactionInfo(created.transactionId);
    const decoded = await verifier(second, Environment.PRODUCTION).verifyAndDecodeTransaction(info.signedTransactionInfo ?? '');
    expect(decoded.transactionId).toBe(created.transactionId);
    const next = await createTransaction(second, { productId: 'premium_monthly' });
    expect(Number(next.transactionId)).toBeGreaterThan(Number(created.transactionId));
  });

  it('writes no file in memory-only mode', async () => {
    const dataDir = tempDir();
    const running = await start({ dataDir, inMemory: true });
    const created = await createTransaction(running, { productId: 'premium_monthly' });
    await call(running, 'POST', `/__simulator/apple/transactions/${created.transactionId}/renew`, {});
    expect((await client(running).getTransactionInfo(created.transactionId)).signedTransactionInfo).toEqual(expect.any(String));
    expect(running.simulator.apiKey.privateKeyPath).toBeUndefined();
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('signs with the injected clock', async () => {
    const fixed = new Date(Date.now() - 3600_000);
    const running = await start({ inMemory: true, now: () => fixed });
    const created = await createTransaction(running, { productId: 'premium_monthly', expiresInSeconds: 60 });
    const decoded = await verifier(running).verifyAndDecodeTransaction(created.signedTransactionInfo);
    expect(decoded.purchaseDate).toBe(fixed.getTime());
    expect(decoded.signedDate).toBe(fixed.getTime());
    expect(decoded.expiresDate).toBe(fixed.getTime() + 60_000);
  });
});
