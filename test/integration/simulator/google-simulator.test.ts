import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { importPKCS8, SignJWT } from 'jose';
import { GoogleAccessTokenProvider } from '../../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../../lambdas/stores/google/adapters/google-play-verifier';
import { ConfigurationError, StoreCredentialsError, StoreRejectedError, StoreUnavailableError } from '../../../lambdas/platform/errors';
import { GOOGLE_SUBSCRIPTION_STATES, type GoogleFacts, type GoogleVerification } from '../../../lambdas/stores/google/facts';
import { googlePurchaseState } from '../../../lambdas/purchases/domain/store-verdicts';
import type { AccessTokenProvider, GoogleProfile } from '../../../lambdas/stores/google/ports';
import type { SecretStore } from '../../../lambdas/platform/secret-store';
import { FaultInjector, handleFaultRoutes } from '../../../local/simulator/faults';
import { createGoogleSimulator, GOOGLE_SERVICE_ACCOUNT_FILE, type GoogleSimulator, type GoogleSimulatorOptions } from '../../../local/simulator/google-simulator';

const PACKAGE = 'com.example.iapsync';
const SA_REF = 'file:google-service-account.json';
const FIXED_NOW = new Date('2030-01-01T00:00:00.000Z');
const TOKEN_PATTERN = /^[A-Za-z0-9._:-]{1,4096}$/;

interface Running {
  simulator: GoogleSimulator;
  baseUrl: string;
  dataDir: string;
  /** Requests that reached the OAuth token endpoint. */
  tokenCalls: () => number;
}

const servers: Server[] = [];
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'google-simulator-'));
  tempDirs.push(dir);
  return dir;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function start(options: Partial<GoogleSimulatorOptions> = {}): Promise<Running> {
  const faults = new FaultInjector();
  const dataDir = options.dataDir ?? tempDir();
  const simulator = await createGoogleSimulator({ dataDir, inMemory: false, ...options }, faults);
  let tokenCalls = 0;
  const baseUrl = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname.endsWith('/oauth2/token')) tokenCalls += 1;
    void (async () => {
      if (await handleFaultRoutes(req, res, url, faults)) return;
      if (await simulator.handle(req, res, url)) return;
      res.writeHead(404).end();
    })();
  });
  return { simulator, baseUrl, dataDir, tokenCalls: () => tokenCalls };
}

/** The SecretStore port, in memory: the service account JSON under its `file:` reference. */
function secretsWith(serviceAccountJson: string): SecretStore {
  const values = new Map([[SA_REF, serviceAccountJson]]);
  return {
    get: async (ref) => {
      const value = values.get(ref);
      if (value === undefined) throw new ConfigurationError(`no secret ${ref}`);
      return value;
    },
  };
}

function tokenProvider(running: Running, timeoutMs = 5000): GoogleAccessTokenProvider {
  return new GoogleAccessTokenProvider({ tokenUrl: running.simulator.tokenUrl(running.baseUrl), timeoutMs });
}

function verifierFor(
  running: Running,
  overrides: { tokens?: AccessTokenProvider; serviceAccountJson?: string; rootUrl?: string; timeoutMs?: number } = {},
): GooglePlayStoreVerifier {
  return new GooglePlayStoreVerifier({
    secrets: secretsWith(overrides.serviceAccountJson ?? running.simulator.serviceAccountJson),
    tokens: overrides.tokens ?? tokenProvider(running),
    rootUrl: overrides.rootUrl ?? running.simulator.apiRootUrl(running.baseUrl),
    timeoutMs: overrides.timeoutMs ?? 5000,
  });
}

function profile(packageName = PACKAGE): GoogleProfile {
  return { packageName, serviceAccountRef: SA_REF };
}

async function call(
  baseUrl: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

async function createSubscription(running: Running, body: Record<string, unknown>): Promise<string> {
  const { status, json } = await call(running.baseUrl, 'POST', '/__simulator/google/subscriptions', body);
  expect(status).toBe(201);
  const token = (json as { purchaseToken: string }).purchaseToken;
  expect(token).toMatch(TOKEN_PATTERN);
  return token;
}

function factsOf(verification: GoogleVerification): GoogleFacts {
  if (verification.outcome !== 'verified') throw new Error(`expected verified, got ${JSON.stringify(verification)}`);
  return verification.facts;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function setFault(running: Running, body: Record<string, unknown>): Promise<void> {
  expect((await call(running.baseUrl, 'POST', '/__simulator/faults', body)).status).toBe(200);
}

/** A JWT bearer assertion signed with `privateKeyPem`, with claims overridable per test. */
async function assertion(privateKeyPem: string, claims: Record<string, unknown>, lifetimeSeconds = 3600, issuedAt = Math.floor(Date.now() / 1000)): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + lifetimeSeconds)
    .sign(await importPKCS8(privateKeyPem, 'RS256'));
}

async function postToken(running: Running, form: Record<string, string>): Promise<{ status: number; json: unknown }> {
  return call(running.baseUrl, 'POST', '/__simulator/google/oauth2/token', new URLSearchParams(form).toString(), {
    'content-type': 'application/x-www-form-urlencoded',
  });
}

let shared: Running;
let fixed: Running;

beforeAll(async () => {
  shared = await start();
  fixed = await start({ now: () => FIXED_NOW });
});

afterEach(async () => {
  await call(shared.baseUrl, 'DELETE', '/__simulator/faults');
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('Google Play simulator through the service adapters', () => {
  it('verifies a created subscription: active, its product and expiry, not yet acknowledged, a test purchase', async () => {
    const token = await createSubscription(fixed, { productId: 'premium_monthly' });
    const facts = factsOf(await verifierFor(fixed).verify(profile(), token, 'premium_monthly'));
    expect(facts).toEqual({
      packageName: PACKAGE,
      purchaseToken: token,
      productId: 'premium_monthly',
      subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
      expiresAt: '2030-01-31T00:00:00.000Z',
      acknowledged: false,
      testPurchase: true,
      autoRenewEnabled: true,
    });
    expect(googlePurchaseState(facts, FIXED_NOW)).toBe('active');
  });

  it('takes the expiry from expiresInSeconds and the first line item when no product is expected', async () => {
    const token = await createSubscription(fixed, { productId: 'premium_yearly', expiresInSeconds: 3600, testPurchase: false });
    const facts = factsOf(await verifierFor(fixed).verify(profile(), token));
    expect(facts.productId).toBe('premium_yearly');
    expect(facts.expiresAt).toBe('2030-01-01T01:00:00.000Z');
    expect(facts.testPurchase).toBe(false);
  });

  it('answers a SubscriptionPurchaseV2 with Google\'s field names', async () => {
    const token = await createSubscription(fixed, { productId: 'premium_monthly' });
    const accessToken = await tokenProvider(fixed).getAccessToken(fixed.simulator.serviceAccountJson);
    const { status, json } = await call(
      fixed.baseUrl,
      'GET',
      `/__simulator/google/androidpublisher/v3/applications/${PACKAGE}/purchases/subscriptionsv2/tokens/${token}`,
      undefined,
      { authorization: `Bearer ${accessToken}` },
    );
    expect(status).toBe(200);
    expect(json).toEqual({
      kind: 'androidpublisher#subscriptionPurchaseV2',
      regionCode: 'US',
      startTime: '2030-01-01T00:00:00.000Z',
      subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
      acknowledgementState: 'ACKNOWLEDGEMENT_STATE_PENDING',
      testPurchase: {},
      lineItems: [
        {
          productId: 'premium_monthly',
          expiryTime: '2030-01-31T00:00:00.000Z',
          autoRenewingPlan: { autoRenewEnabled: true },
          latestSuccessfulOrderId: expect.stringMatching(/^GPA\.\d{4}-\d{4}-\d{4}-\d{5}$/),
        },
      ],
    });
  });

  it('acknowledges once; the next verify says acknowledged and a second acknowledge still succeeds', async () => {
    const verifier = verifierFor(shared);
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    await verifier.acknowledge(profile(), token, 'premium_monthly');
    expect(factsOf(await verifier.verify(profile(), token)).acknowledged).toBe(true);
    // Google answers 400 to the second acknowledge; the adapter sees the purchase is acknowledged.
    await expect(verifier.acknowledge(profile(), token, 'premium_monthly')).resolves.toBeUndefined();
    const accessToken = await tokenProvider(shared).getAccessToken(shared.simulator.serviceAccountJson);
    const again = await call(
      shared.baseUrl,
      'POST',
      `/__simulator/google/androidpublisher/v3/applications/${PACKAGE}/purchases/subscriptions/premium_monthly/tokens/${token}:acknowledge`,
      {},
      { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
    );
    expect(again).toEqual({
      status: 400,
      json: { error: expect.objectContaining({ code: 400, status: 'INVALID_ARGUMENT', errors: [expect.objectContaining({ reason: 'invalidPurchaseState' })] }) },
    });
  });

  it('refuses to acknowledge for another product and for an unknown token', async () => {
    const verifier = verifierFor(shared);
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    expect(await caught(verifier.acknowledge(profile(), token, 'premium_yearly'))).toBeInstanceOf(StoreRejectedError);
    expect(await caught(verifier.acknowledge(profile(), 'unknown.token', 'premium_monthly'))).toBeInstanceOf(StoreRejectedError);
    expect(factsOf(await verifier.verify(profile(), token)).acknowledged).toBe(false);
  });

  it('shows a revoked subscription as EXPIRED from now on, as Google does (it has no revoked state)', async () => {
    const token = await createSubscription(fixed, { productId: 'premium_monthly' });
    expect((await call(fixed.baseUrl, 'POST', `/__simulator/google/subscriptions/${token}/revoke`, {})).status).toBe(200);
    const facts = factsOf(await verifierFor(fixed).verify(profile(), token));
    expect(facts.subscriptionState).toBe('SUBSCRIPTION_STATE_EXPIRED');
    expect(facts.expiresAt).toBe('2029-12-31T23:59:59.000Z');
    expect(googlePurchaseState(facts, FIXED_NOW)).toBe('expired');
  });

  it.each([
    ['expired through /expire', { productId: 'premium_monthly' }, true],
    ['created with a negative expiresInSeconds', { productId: 'premium_monthly', expiresInSeconds: -60 }, false],
  ])('answers EXPIRED for a subscription %s', async (_label, body, expire) => {
    const token = await createSubscription(shared, body);
    if (expire) expect((await call(shared.baseUrl, 'POST', `/__simulator/google/subscriptions/${token}/expire`)).status).toBe(200);
    const facts = factsOf(await verifierFor(shared).verify(profile(), token));
    expect(facts.subscriptionState).toBe('SUBSCRIPTION_STATE_EXPIRED');
    expect(Date.parse(facts.expiresAt ?? '')).toBeLessThan(Date.now());
    expect(googlePurchaseState(facts, new Date())).toBe('expired');
  });

  it('answers not_found for an unknown token and for another app\'s token', async () => {
    const verifier = verifierFor(shared);
    expect(await verifier.verify(profile(), 'abcdefghijklmnopqrstuvwx.AO-J1Ounknown')).toEqual({ outcome: 'not_found' });
    const foreign = await createSubscription(shared, { productId: 'premium_monthly', packageName: 'com.other.app' });
    expect(await verifier.verify(profile(), foreign)).toEqual({ outcome: 'not_found' });
    expect(factsOf(await verifier.verify(profile('com.other.app'), foreign)).packageName).toBe('com.other.app');
  });

  it('answers invalid when the expected product is not among the line items', async () => {
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    expect(await verifierFor(shared).verify(profile(), token, 'premium_yearly')).toEqual({ outcome: 'invalid', reason: 'product id mismatch' });
  });

  it('answers Google\'s 404 error body for an unknown token', async () => {
    const accessToken = await tokenProvider(shared).getAccessToken(shared.simulator.serviceAccountJson);
    const { status, json } = await call(
      shared.baseUrl,
      'GET',
      `/__simulator/google/androidpublisher/v3/applications/${PACKAGE}/purchases/subscriptionsv2/tokens/nope`,
      undefined,
      { authorization: `Bearer ${accessToken}` },
    );
    expect({ status, json }).toEqual({ status: 404, json: { error: { code: 404, message: 'The purchase token was not found.', status: 'NOT_FOUND' } } });
  });

  it('throws StoreUnavailableError for two queued 503s, then verifies', async () => {
    const verifier = verifierFor(shared);
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    await setFault(shared, { store: 'google', status: 503, count: 2 });
    expect(await caught(verifier.verify(profile(), token))).toBeInstanceOf(StoreUnavailableError);
    expect(await caught(verifier.verify(profile(), token))).toBeInstanceOf(StoreUnavailableError);
    expect((await verifier.verify(profile(), token)).outcome).toBe('verified');
  });

  it.each([429, 500])('throws StoreUnavailableError for a %i', async (status) => {
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    await setFault(shared, { store: 'google', status, count: 1 });
    const error = await caught(verifierFor(shared).verify(profile(), token));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toContain(String(status));
  });

  it('applies faults to API calls only: the token endpoint still answers during an outage', async () => {
    const running = await start();
    const verifier = verifierFor(running);
    const token = await createSubscription(running, { productId: 'premium_monthly' });
    await setFault(running, { store: 'google', status: 503, count: 1 });
    expect(await caught(verifier.verify(profile(), token))).toBeInstanceOf(StoreUnavailableError);
    expect(running.tokenCalls()).toBe(1);
    expect((await verifier.verify(profile(), token)).outcome).toBe('verified');
    expect(running.tokenCalls()).toBe(1);
  });

  it('times out a slow Google as StoreUnavailableError', async () => {
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    await setFault(shared, { store: 'google', latencyMs: 1500 });
    const started = Date.now();
    expect(await caught(verifierFor(shared, { timeoutMs: 200 }).verify(profile(), token))).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(1400);
  });

  it('throws StoreUnavailableError when Google or its token endpoint cannot be reached', async () => {
    const closed = await listen((_req, res) => res.end());
    const closedServer = servers.pop();
    closedServer?.closeAllConnections();
    await new Promise((resolve) => closedServer?.close(resolve));
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    expect(await caught(verifierFor(shared, { rootUrl: `${closed}/` }).verify(profile(), token))).toBeInstanceOf(StoreUnavailableError);
    const noTokens = new GoogleAccessTokenProvider({ tokenUrl: `${closed}/token` });
    expect(await caught(verifierFor(shared, { tokens: noTokens }).verify(profile(), token))).toBeInstanceOf(StoreUnavailableError);
  });

  it('throws StoreCredentialsError when the token endpoint refuses a service account with another key', async () => {
    const account = JSON.parse(shared.simulator.serviceAccountJson) as Record<string, string>;
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const forged = JSON.stringify({ ...account, private_key: otherKey });
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    const error = await caught(verifierFor(shared, { serviceAccountJson: forged }).verify(profile(), token));
    expect(error).toBeInstanceOf(StoreCredentialsError);
    expect((error as Error).message).toContain('invalid_grant');
  });

  it('throws StoreCredentialsError when Google does not know the bearer token (401)', async () => {
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    const forgedTokens: AccessTokenProvider = { getAccessToken: async () => 'ya29.not-issued-by-the-simulator' };
    const error = await caught(verifierFor(shared, { tokens: forgedTokens }).verify(profile(), token));
    expect(error).toBeInstanceOf(StoreCredentialsError);
    expect((error as Error).message).toContain('401');
  });

  it('throws ConfigurationError for a service account that is not one', async () => {
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    for (const json of ['not json', '{"client_email":"a@b"}', JSON.stringify({ client_email: 'a@b', private_key: 'not a key' })]) {
      expect(await caught(verifierFor(shared, { serviceAccountJson: json }).verify(profile(), token))).toBeInstanceOf(ConfigurationError);
    }
  });

  it('caches the access token: one token request for two verifies, and for concurrent ones', async () => {
    const running = await start();
    const token = await createSubscription(running, { productId: 'premium_monthly' });
    const verifier = verifierFor(running);
    await verifier.verify(profile(), token);
    await verifier.verify(profile(), token);
    expect(running.tokenCalls()).toBe(1);
    const cold = verifierFor(running);
    await Promise.all([cold.verify(profile(), token), cold.verify(profile(), token), cold.verify(profile(), token)]);
    expect(running.tokenCalls()).toBe(2);
  });

  it('renews the access token a minute before it expires', async () => {
    const running = await start();
    // The provider's clock also dates its assertions, which the simulator checks against the wall
    // clock: start 59 minutes in the past so every assertion stays acceptable.
    const start0 = Date.now() - (3600 - 62) * 1000;
    let now = start0;
    const tokens = new GoogleAccessTokenProvider({ tokenUrl: running.simulator.tokenUrl(running.baseUrl), now: () => now });
    const first = await tokens.getAccessToken(running.simulator.serviceAccountJson);
    now = start0 + (3600 - 61) * 1000;
    expect(await tokens.getAccessToken(running.simulator.serviceAccountJson)).toBe(first);
    expect(running.tokenCalls()).toBe(1);
    now = start0 + (3600 - 59) * 1000;
    const second = await tokens.getAccessToken(running.simulator.serviceAccountJson);
    expect(second).not.toBe(first);
    expect(running.tokenCalls()).toBe(2);
  });
});

describe('Google Play simulator token endpoint', () => {
  const tokenUrl = (): string => shared.simulator.tokenUrl(shared.baseUrl);
  const key = (): string => (JSON.parse(shared.simulator.serviceAccountJson) as { private_key: string }).private_key;
  const email = 'iap-sync-local@simulator.iam.gserviceaccount.com';
  const scope = 'https://www.googleapis.com/auth/androidpublisher';

  it('issues an hour-long bearer token for a valid assertion, whatever host the audience names', async () => {
    const aud = tokenUrl().replace('127.0.0.1', 'localhost');
    const { status, json } = await postToken(shared, {
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: await assertion(key(), { iss: email, aud, scope }),
    });
    expect(status).toBe(200);
    expect(json).toEqual({ access_token: expect.stringMatching(/^ya29\.[\w-]{40,}$/), expires_in: 3600, token_type: 'Bearer' });
  });

  it.each([
    ['another audience path', { aud: 'https://oauth2.googleapis.com/token' }, 3600, 0, 'invalid_grant'],
    ['another scope', { scope: 'https://www.googleapis.com/auth/cloud-platform' }, 3600, 0, 'invalid_grant'],
    ['another issuer', { iss: 'someone@else.iam.gserviceaccount.com' }, 3600, 0, 'invalid_grant'],
    ['an expired assertion', {}, 60, -7200, 'invalid_grant'],
    ['an assertion longer than an hour', {}, 7200, 0, 'invalid_grant'],
  ])('refuses %s with 400 %s', async (_label, overrides, lifetime, shift, error) => {
    const claims = { iss: email, aud: tokenUrl(), scope, ...overrides };
    const { status, json } = await postToken(shared, {
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: await assertion(key(), claims, lifetime, Math.floor(Date.now() / 1000) + shift),
    });
    expect(status).toBe(400);
    expect(json).toMatchObject({ error });
  });

  it('refuses another grant type and a missing assertion', async () => {
    expect(await postToken(shared, { grant_type: 'client_credentials' })).toMatchObject({ status: 400, json: { error: 'unsupported_grant_type' } });
    expect(await postToken(shared, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer' })).toMatchObject({
      status: 400,
      json: { error: 'invalid_request' },
    });
  });
});

describe('Google Play simulator control routes and persistence', () => {
  it.each([
    ['no productId', {}],
    ['an unknown property', { productId: 'premium_monthly', status: 'active' }],
    ['a bad package name', { productId: 'premium_monthly', packageName: 'not a package' }],
    ['a string expiresInSeconds', { productId: 'premium_monthly', expiresInSeconds: '60' }],
    ['a product id with a slash', { productId: 'premium/monthly' }],
    ['invalid JSON', '{"productId":'],
  ])('answers 400 JSON to a create with %s', async (_label, body) => {
    const { status, json } = await call(shared.baseUrl, 'POST', '/__simulator/google/subscriptions', body);
    expect(status).toBe(400);
    expect(json).toEqual({ error: expect.any(String) });
  });

  it.each(['revoke', 'expire'])('answers 404 to %s of an unknown token and 400 to a non-empty body', async (action) => {
    expect((await call(shared.baseUrl, 'POST', `/__simulator/google/subscriptions/nope/${action}`, {})).status).toBe(404);
    const token = await createSubscription(shared, { productId: 'premium_monthly' });
    expect((await call(shared.baseUrl, 'POST', `/__simulator/google/subscriptions/${token}/${action}`, { at: 1 })).status).toBe(400);
  });

  it('writes the service account and subscriptions under the data dir and keeps them across a restart', async () => {
    const first = await start();
    const account = JSON.parse(first.simulator.serviceAccountJson) as Record<string, string>;
    expect(account).toMatchObject({
      type: 'service_account',
      client_email: 'iap-sync-local@simulator.iam.gserviceaccount.com',
      token_uri: 'https://oauth2.googleapis.com/token',
      private_key: expect.stringContaining('-----BEGIN PRIVATE KEY-----'),
      private_key_id: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    expect(readFileSync(path.join(first.dataDir, 'secrets', GOOGLE_SERVICE_ACCOUNT_FILE), 'utf8')).toBe(first.simulator.serviceAccountJson);
    const token = await createSubscription(first, { productId: 'premium_monthly' });
    expect(readdirSync(path.join(first.dataDir, 'simulator')).sort()).toEqual(['google-service-account.json', 'google-subscriptions.json']);
    await verifierFor(first).acknowledge(profile(), token, 'premium_monthly');

    const second = await start({ dataDir: first.dataDir });
    expect(second.simulator.serviceAccountJson).toBe(first.simulator.serviceAccountJson);
    const facts = factsOf(await verifierFor(second).verify(profile(), token, 'premium_monthly'));
    expect(facts.acknowledged).toBe(true);
    expect(facts.subscriptionState).toBe('SUBSCRIPTION_STATE_ACTIVE');
  });

  it('rewrites a missing secrets copy of the service account at start', async () => {
    const first = await start();
    const secretPath = path.join(first.dataDir, 'secrets', GOOGLE_SERVICE_ACCOUNT_FILE);
    rmSync(secretPath);
    const second = await start({ dataDir: first.dataDir });
    expect(readFileSync(secretPath, 'utf8')).toBe(second.simulator.serviceAccountJson);
    expect(second.simulator.serviceAccountJson).toBe(first.simulator.serviceAccountJson);
  });

  it('writes no files in memory, and forgets everything at restart', async () => {
    const dataDir = tempDir();
    const first = await start({ dataDir, inMemory: true });
    const token = await createSubscription(first, { productId: 'premium_monthly' });
    await verifierFor(first).acknowledge(profile(), token, 'premium_monthly');
    expect((await verifierFor(first).verify(profile(), token)).outcome).toBe('verified');
    expect(readdirSync(dataDir)).toEqual([]);
    const second = await start({ dataDir, inMemory: true });
    expect(second.simulator.serviceAccountJson).not.toBe(first.simulator.serviceAccountJson);
    expect(await verifierFor(second).verify(profile(), token)).toEqual({ outcome: 'not_found' });
    expect(existsSync(path.join(dataDir, 'simulator'))).toBe(false);
  });

  it('ignores paths outside /__simulator/google', async () => {
    expect((await call(shared.baseUrl, 'GET', '/__simulator/googleplay')).status).toBe(404);
    expect((await call(shared.baseUrl, 'GET', '/__simulator/google/nothing')).json).toEqual({ error: 'no such simulator route' });
  });
});

describe('GooglePlayStoreVerifier error mapping (stub Google)', () => {
  let answers: Array<{ status: number; body?: unknown }> = [];
  const seen: string[] = [];
  let stubUrl: string;

  beforeAll(async () => {
    stubUrl = await listen((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      req.resume();
      req.on('end', () => {
        const answer = answers.shift() ?? { status: 500 };
        const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
      });
    });
  });

  beforeEach(() => {
    answers = [];
    seen.length = 0;
  });

  const stubVerifier = (): GooglePlayStoreVerifier =>
    new GooglePlayStoreVerifier({
      secrets: secretsWith('{}'),
      tokens: { getAccessToken: async () => 'stub-token' },
      rootUrl: `${stubUrl}/prefix/`,
      timeoutMs: 2000,
    });
  const purchase = (acknowledgementState: string) => ({
    subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
    acknowledgementState,
    lineItems: [{ productId: 'premium_monthly', expiryTime: '2030-01-31T00:00:00.123456Z' }],
    linkedPurchaseToken: 'older.token',
  });

  it.each([
    [404, 'not_found'],
    [410, 'not_found'],
    [401, StoreCredentialsError],
    [403, StoreCredentialsError],
    [400, StoreRejectedError],
    [409, StoreRejectedError],
    [429, StoreUnavailableError],
    [500, StoreUnavailableError],
    [502, StoreUnavailableError],
    [503, StoreUnavailableError],
  ] as const)('maps %i from subscriptionsv2.get to %p', async (status, expected) => {
    answers = [{ status, body: { error: { code: status, message: 'stub' } } }];
    const result = stubVerifier().verify(profile(), 'tok.en');
    if (expected === 'not_found') expect(await result).toEqual({ outcome: 'not_found' });
    else expect(await caught(result)).toBeInstanceOf(expected);
    // One request: the client's own retries are off, the workflow owns the retry budget.
    expect(seen).toEqual([`GET /prefix/androidpublisher/v3/applications/${PACKAGE}/purchases/subscriptionsv2/tokens/tok.en Bearer stub-token`]);
  });

  it('reads the linked token and normalizes Google\'s nanosecond times', async () => {
    answers = [{ status: 200, body: purchase('ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED') }];
    expect(factsOf(await stubVerifier().verify(profile(), 'tok'))).toEqual({
      packageName: PACKAGE,
      purchaseToken: 'tok',
      productId: 'premium_monthly',
      subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
      expiresAt: '2030-01-31T00:00:00.123Z',
      acknowledged: true,
      linkedPurchaseToken: 'older.token',
      testPurchase: false,
    });
  });

  it.each([
    ['another package name', { ...purchase('ACKNOWLEDGEMENT_STATE_PENDING'), packageName: 'com.other.app' }, 'package name mismatch'],
    ['no line item', { subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE' }, 'no line item in Google answer'],
  ])('answers invalid for %s', async (_label, body, reason) => {
    answers = [{ status: 200, body }];
    expect(await stubVerifier().verify(profile(), 'tok')).toEqual({ outcome: 'invalid', reason });
  });

  it('treats an unreadable answer as Google being unavailable', async () => {
    answers = [{ status: 200, body: { lineItems: 'nope' } }];
    expect(await caught(stubVerifier().verify(profile(), 'tok'))).toBeInstanceOf(StoreUnavailableError);
  });

  it('accepts a 400 to acknowledge when Google then says the purchase is acknowledged', async () => {
    answers = [{ status: 400, body: { error: { code: 400 } } }, { status: 200, body: purchase('ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED') }];
    await expect(stubVerifier().acknowledge(profile(), 'tok', 'premium_monthly')).resolves.toBeUndefined();
    expect(seen.map((line) => line.split(' ')[1])).toEqual([
      `/prefix/androidpublisher/v3/applications/${PACKAGE}/purchases/subscriptions/premium_monthly/tokens/tok:acknowledge`,
      `/prefix/androidpublisher/v3/applications/${PACKAGE}/purchases/subscriptionsv2/tokens/tok`,
    ]);
  });

  it.each([
    [[{ status: 400 }, { status: 200, body: purchase('ACKNOWLEDGEMENT_STATE_PENDING') }], StoreRejectedError],
    [[{ status: 404 }], StoreRejectedError],
    [[{ status: 403 }], StoreCredentialsError],
    [[{ status: 503 }], StoreUnavailableError],
  ])('maps acknowledge failures %j to %p', async (queued, expected) => {
    answers = [...queued];
    expect(await caught(stubVerifier().acknowledge(profile(), 'tok', 'premium_monthly'))).toBeInstanceOf(expected);
  });
});

describe('googlePurchaseState', () => {
  const now = new Date('2030-01-15T00:00:00.000Z');
  const future = '2030-01-31T00:00:00.000Z';
  const past = '2030-01-01T00:00:00.000Z';
  const facts = (subscriptionState: string, expiresAt: string | null): GoogleFacts => ({
    packageName: PACKAGE,
    purchaseToken: 'tok',
    productId: 'premium_monthly',
    subscriptionState,
    expiresAt,
    acknowledged: true,
    testPurchase: false,
  });

  it.each([
    ['SUBSCRIPTION_STATE_ACTIVE', future, 'active'],
    ['SUBSCRIPTION_STATE_IN_GRACE_PERIOD', past, 'active'],
    ['SUBSCRIPTION_STATE_CANCELED', future, 'active'],
    ['SUBSCRIPTION_STATE_CANCELED', past, 'expired'],
    ['SUBSCRIPTION_STATE_CANCELED', null, 'expired'],
    ['SUBSCRIPTION_STATE_EXPIRED', past, 'expired'],
    ['SUBSCRIPTION_STATE_ON_HOLD', future, 'expired'],
    ['SUBSCRIPTION_STATE_PAUSED', future, 'expired'],
    ['SUBSCRIPTION_STATE_PENDING', null, 'expired'],
    ['SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED', null, 'expired'],
    ['SUBSCRIPTION_STATE_UNSPECIFIED', future, 'expired'],
    ['SUBSCRIPTION_STATE_SOMETHING_NEW', future, 'expired'],
  ] as const)('%s expiring %s is %s', (state, expiresAt, expected) => {
    expect(googlePurchaseState(facts(state, expiresAt), now)).toBe(expected);
  });

  it('covers every state Google documents', () => {
    expect(GOOGLE_SUBSCRIPTION_STATES).toHaveLength(9);
    for (const state of GOOGLE_SUBSCRIPTION_STATES) expect(['active', 'expired']).toContain(googlePurchaseState(facts(state, future), now));
  });
});
