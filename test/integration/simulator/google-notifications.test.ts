import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { androidpublisher, type androidpublisher_v3 } from '@googleapis/androidpublisher';
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, importPKCS8, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { FaultInjector, handleFaultRoutes } from '../../../local/simulator/faults';
import {
  createGoogleSimulator,
  type DeveloperNotification,
  type GoogleSimulator,
  type GoogleSimulatorOptions,
  type PubSubPushBody,
} from '../../../local/simulator/google-simulator';
import { createNotificationOutbox, type NotificationOutbox, type NotificationRecord } from '../../../local/simulator/notifications';

/*
 * The Google simulator as a Pub/Sub push subscription sees it: every control route changes the
 * subscription, then POSTs its Real-time Developer Notification to a receiver with a Google-style
 * OIDC token; the real @googleapis/androidpublisher client then reads the new state.
 * https://cloud.google.com/pubsub/docs/push, https://developer.android.com/google/play/billing/rtdn-reference
 */

const PACKAGE = 'com.example.iapsync';
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const DAY_MS = 24 * 3600 * 1000;
const iso = (ms: number): string => new Date(ms).toISOString();
const DEFAULT_PUSH_EMAIL = 'pubsub-push@iap-sync-local.iam.gserviceaccount.com';
const SUBSCRIPTION_NAME = 'projects/iap-sync-local/subscriptions/play-rtdn';

interface Push {
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  pushes: Push[];
  /** Status the receiver answers with (default 204). */
  status: number;
}

interface Running {
  simulator: GoogleSimulator;
  outbox: NotificationOutbox;
  baseUrl: string;
  dataDir: string;
  /** The simulator's clock (ms); tests move it. */
  clock: { ms: number };
}

const servers: Server[] = [];
const tempDirs: string[] = [];
const client = androidpublisher({ version: 'v3' });

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'google-notifications-'));
  tempDirs.push(dir);
  return dir;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function receiver(): Promise<Receiver> {
  const state: Receiver = { url: '', pushes: [], status: 204 };
  const base = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      state.pushes.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(state.status).end();
    });
  });
  state.url = `${base}/google/rtdn`;
  return state;
}

async function start(target: string | undefined, options: Partial<GoogleSimulatorOptions> = {}, withOutbox = true): Promise<Running> {
  const faults = new FaultInjector();
  const dataDir = options.dataDir ?? tempDir();
  const inMemory = options.inMemory ?? false;
  const outbox = await createNotificationOutbox({ dataDir, inMemory });
  outbox.setTarget('google', target);
  const clock = { ms: T0 };
  const simulator = await createGoogleSimulator(
    { dataDir, inMemory, now: () => new Date(clock.ms), ...options, ...(withOutbox ? { outbox } : {}) },
    faults,
  );
  const baseUrl = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    void (async () => {
      if (await handleFaultRoutes(req, res, url, faults, outbox)) return;
      if (await outbox.handle(req, res, url)) return;
      if (await simulator.handle(req, res, url)) return;
      res.writeHead(404).end();
    })();
  });
  return { simulator, outbox, baseUrl, dataDir, clock };
}

async function call(baseUrl: string, method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const control = (running: Running, route: string, body: unknown = {}) => call(running.baseUrl, 'POST', `/__simulator/google${route}`, body);

async function create(running: Running, body: Record<string, unknown> = { productId: 'premium_monthly' }): Promise<string> {
  const { status, json } = await control(running, '/subscriptions', body);
  expect(status).toBe(201);
  expect(typeof json.purchaseToken).toBe('string');
  return String(json.purchaseToken);
}

async function step(running: Running, token: string, action: string, body: unknown = {}): Promise<Record<string, unknown>> {
  const { status, json } = await control(running, `/subscriptions/${encodeURIComponent(token)}/${action}`, body);
  expect({ action, status }).toEqual({ action, status: action === 'replace' ? 201 : 200 });
  return json;
}

/** An access token through the JWT bearer grant the simulator's token endpoint checks (as google-auth-library does it). */
async function accessToken(running: Running): Promise<string> {
  const account = JSON.parse(running.simulator.serviceAccountJson) as { client_email: string; private_key: string };
  const tokenUrl = running.simulator.tokenUrl(running.baseUrl);
  const assertion = await new SignJWT({ scope: 'https://www.googleapis.com/auth/androidpublisher' })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setIssuer(account.client_email)
    .setAudience(tokenUrl)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(await importPKCS8(account.private_key, 'RS256'));
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

/** Options for one call of the real client against the simulator (as the service's verifier makes them). */
async function clientOptions(running: Running, bearer?: string) {
  return {
    rootUrl: running.simulator.apiRootUrl(running.baseUrl),
    headers: { Authorization: `Bearer ${bearer ?? (await accessToken(running))}` },
    retry: false,
    fetchImplementation: fetch,
  };
}

async function getPurchase(running: Running, token: string, packageName = PACKAGE): Promise<androidpublisher_v3.Schema$SubscriptionPurchaseV2> {
  const response = await client.purchases.subscriptionsv2.get({ packageName, token }, await clientOptions(running));
  return response.data;
}

async function listVoided(
  running: Running,
  params: Omit<androidpublisher_v3.Params$Resource$Purchases$Voidedpurchases$List, 'packageName'> & { packageName?: string },
  bearer?: string,
): Promise<androidpublisher_v3.Schema$VoidedPurchasesListResponse> {
  const response = await client.purchases.voidedpurchases.list({ packageName: PACKAGE, ...params }, await clientOptions(running, bearer));
  return response.data;
}

/** The HTTP status of a rejected client call. */
async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { response?: { status?: number } }).response?.status;
  }
  throw new Error('expected the call to fail');
}

interface Verified {
  token: string;
  claims: JWTPayload;
  kid: string | undefined;
  body: PubSubPushBody;
  notification: DeveloperNotification;
}

/** Checks one push as an authenticated push endpoint must, and decodes its DeveloperNotification. */
async function verifyPush(running: Running, push: Push | undefined, audience: string, email = DEFAULT_PUSH_EMAIL): Promise<Verified> {
  if (!push) throw new Error('no push received');
  expect(push.headers['content-type']).toMatch(/^application\/json/);
  const match = /^Bearer (\S+)$/.exec(push.headers.authorization ?? '');
  if (!match?.[1]) throw new Error(`no bearer token in ${String(push.headers.authorization)}`);
  const jwks = createRemoteJWKSet(new URL(running.simulator.jwksUrl(running.baseUrl)));
  const { payload, protectedHeader } = await jwtVerify(match[1], jwks, {
    issuer: 'https://accounts.google.com',
    audience,
    algorithms: ['RS256'],
    requiredClaims: ['iat', 'exp', 'sub', 'azp', 'email'],
  });
  expect(payload.email).toBe(email);
  expect(payload.email_verified).toBe(true);
  expect(payload.sub).toMatch(/^\d{21}$/);
  expect(payload.azp).toBe(payload.sub);
  expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
  const body = JSON.parse(push.body) as PubSubPushBody;
  expect(body.subscription).toBe(SUBSCRIPTION_NAME);
  expect(body.message.messageId).toMatch(/^\d+$/);
  expect(body.message.message_id).toBe(body.message.messageId);
  expect(body.message.publish_time).toBe(body.message.publishTime);
  expect(Number.isNaN(Date.parse(body.message.publishTime))).toBe(false);
  expect(body.message.attributes).toEqual({});
  const notification = JSON.parse(Buffer.from(body.message.data, 'base64').toString('utf8')) as DeveloperNotification;
  return { token: match[1], claims: payload, kid: protectedHeader.kid, body, notification };
}

function lineItem(purchase: androidpublisher_v3.Schema$SubscriptionPurchaseV2): androidpublisher_v3.Schema$SubscriptionPurchaseLineItem {
  expect(purchase.lineItems).toHaveLength(1);
  const item = purchase.lineItems?.[0];
  if (!item) throw new Error('no line item');
  return item;
}

let shared: Running;
let sink: Receiver;

beforeAll(async () => {
  sink = await receiver();
  shared = await start(sink.url);
});

beforeEach(() => {
  shared.clock.ms = T0;
  sink.status = 204;
  sink.pushes.length = 0;
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * One row per control route: the steps before it, its body, the RTDN type it must send and what
 * subscriptionsv2.get must say afterwards (times relative to T0 on the simulator's clock).
 */
interface RouteCase {
  action: string;
  before: string[];
  body?: Record<string, unknown>;
  type: string;
  notificationType: number;
  state: string;
  expiryTime: string;
  autoRenewEnabled: boolean;
  /** Successful renewal orders: the latest order id is `<first>..<renewals - 1>`. */
  renewals?: number;
  extra?: Partial<androidpublisher_v3.Schema$SubscriptionPurchaseV2>;
}

const ROUTE_CASES: RouteCase[] = [
  {
    action: 'renew',
    before: [],
    type: 'SUBSCRIPTION_RENEWED',
    notificationType: 2,
    state: 'SUBSCRIPTION_STATE_ACTIVE',
    expiryTime: iso(T0 + 60 * DAY_MS),
    autoRenewEnabled: true,
    renewals: 1,
  },
  {
    action: 'renew',
    before: ['renew'],
    body: { expiresInSeconds: 3600 },
    type: 'SUBSCRIPTION_RENEWED',
    notificationType: 2,
    state: 'SUBSCRIPTION_STATE_ACTIVE',
    expiryTime: iso(T0 + 60 * DAY_MS + 3600 * 1000),
    autoRenewEnabled: true,
    renewals: 2,
  },
  {
    action: 'renew',
    before: ['hold'],
    type: 'SUBSCRIPTION_RENEWED',
    notificationType: 2,
    state: 'SUBSCRIPTION_STATE_ACTIVE',
    expiryTime: iso(T0 + 30 * DAY_MS),
    autoRenewEnabled: true,
    renewals: 1,
  },
  {
    action: 'expire',
    before: [],
    type: 'SUBSCRIPTION_EXPIRED',
    notificationType: 13,
    state: 'SUBSCRIPTION_STATE_EXPIRED',
    expiryTime: iso(T0 - 1000),
    autoRenewEnabled: false,
  },
  {
    action: 'revoke',
    before: [],
    type: 'SUBSCRIPTION_REVOKED',
    notificationType: 12,
    state: 'SUBSCRIPTION_STATE_EXPIRED',
    expiryTime: iso(T0 - 1000),
    autoRenewEnabled: false,
    extra: { canceledStateContext: { developerInitiatedCancellation: {} } },
  },
  {
    action: 'grace',
    before: [],
    type: 'SUBSCRIPTION_IN_GRACE_PERIOD',
    notificationType: 6,
    state: 'SUBSCRIPTION_STATE_IN_GRACE_PERIOD',
    expiryTime: iso(T0 + 37 * DAY_MS),
    autoRenewEnabled: true,
  },
  {
    action: 'grace',
    before: [],
    body: { gracePeriodSeconds: 3 * 24 * 3600 },
    type: 'SUBSCRIPTION_IN_GRACE_PERIOD',
    notificationType: 6,
    state: 'SUBSCRIPTION_STATE_IN_GRACE_PERIOD',
    expiryTime: iso(T0 + 33 * DAY_MS),
    autoRenewEnabled: true,
  },
  {
    action: 'hold',
    before: [],
    type: 'SUBSCRIPTION_ON_HOLD',
    notificationType: 5,
    state: 'SUBSCRIPTION_STATE_ON_HOLD',
    expiryTime: iso(T0 - 1000),
    autoRenewEnabled: true,
  },
  {
    action: 'hold',
    before: ['grace'],
    type: 'SUBSCRIPTION_ON_HOLD',
    notificationType: 5,
    state: 'SUBSCRIPTION_STATE_ON_HOLD',
    expiryTime: iso(T0 - 1000),
    autoRenewEnabled: true,
  },
  {
    action: 'recover',
    before: ['hold'],
    type: 'SUBSCRIPTION_RECOVERED',
    notificationType: 1,
    state: 'SUBSCRIPTION_STATE_ACTIVE',
    expiryTime: iso(T0 + 30 * DAY_MS),
    autoRenewEnabled: true,
    renewals: 1,
  },
  {
    // Recovered in grace: the next period counts from when the failed renewal was due.
    action: 'recover',
    before: ['grace'],
    type: 'SUBSCRIPTION_RECOVERED',
    notificationType: 1,
    state: 'SUBSCRIPTION_STATE_ACTIVE',
    expiryTime: iso(T0 + 60 * DAY_MS),
    autoRenewEnabled: true,
    renewals: 1,
  },
  {
    action: 'pause',
    before: [],
    type: 'SUBSCRIPTION_PAUSED',
    notificationType: 10,
    state: 'SUBSCRIPTION_STATE_PAUSED',
    expiryTime: iso(T0 - 1000),
    autoRenewEnabled: true,
    extra: { pausedStateContext: { autoResumeTime: iso(T0 + 30 * DAY_MS) } },
  },
  {
    action: 'cancel',
    before: [],
    type: 'SUBSCRIPTION_CANCELED',
    notificationType: 3,
    state: 'SUBSCRIPTION_STATE_CANCELED',
    expiryTime: iso(T0 + 30 * DAY_MS),
    autoRenewEnabled: false,
    extra: { canceledStateContext: { userInitiatedCancellation: { cancelTime: iso(T0) } } },
  },
  {
    action: 'cancel',
    before: ['grace'],
    type: 'SUBSCRIPTION_CANCELED',
    notificationType: 3,
    state: 'SUBSCRIPTION_STATE_CANCELED',
    expiryTime: iso(T0 + 37 * DAY_MS),
    autoRenewEnabled: false,
  },
];

describe('Google simulator: each control route pushes its RTDN and subscriptionsv2.get reports the new state', () => {
  it.each(ROUTE_CASES.map((c) => [`${c.action}${c.before.length ? ` after ${c.before.join(', ')}` : ''}${c.body ? ` ${JSON.stringify(c.body)}` : ''}`, c] as const))(
    '%s',
    async (_label, c) => {
      const token = await create(shared);
      const first = await getPurchase(shared, token);
      const firstOrderId = lineItem(first).latestSuccessfulOrderId;
      for (const before of c.before) await step(shared, token, before);
      sink.pushes.length = 0;

      const answer = await step(shared, token, c.action, c.body);
      expect(answer).toMatchObject({ purchaseToken: token, subscriptionState: c.state, expiryTime: c.expiryTime });

      expect(sink.pushes).toHaveLength(1);
      const push = await verifyPush(shared, sink.pushes[0], sink.url);
      expect(push.notification).toEqual({
        version: '1.0',
        packageName: PACKAGE,
        eventTimeMillis: String(T0),
        subscriptionNotification: { version: '1.0', notificationType: c.notificationType, purchaseToken: token, subscriptionId: 'premium_monthly' },
      });
      // The outbox record is the push: same id, the notification's type name.
      const record = (answer as { notification?: NotificationRecord }).notification;
      expect(record).toMatchObject({ id: push.body.message.messageId, store: 'google', type: c.type, target: sink.url, responseStatus: 204, dropped: false });

      const purchase = await getPurchase(shared, token);
      expect(purchase.subscriptionState).toBe(c.state);
      expect(purchase.acknowledgementState).toBe('ACKNOWLEDGEMENT_STATE_PENDING');
      expect(purchase.testPurchase).toEqual({});
      expect(purchase.linkedPurchaseToken).toBeUndefined();
      const item = lineItem(purchase);
      expect(item).toMatchObject({ productId: 'premium_monthly', expiryTime: c.expiryTime, autoRenewingPlan: { autoRenewEnabled: c.autoRenewEnabled } });
      expect(item.latestSuccessfulOrderId).toBe(c.renewals ? `${firstOrderId}..${c.renewals - 1}` : firstOrderId);
      if (c.extra) expect(purchase).toMatchObject(c.extra);
      if (c.state !== 'SUBSCRIPTION_STATE_PAUSED') expect(purchase.pausedStateContext).toBeUndefined();
      if (c.state !== 'SUBSCRIPTION_STATE_CANCELED' && c.state !== 'SUBSCRIPTION_STATE_EXPIRED') expect(purchase.canceledStateContext).toBeUndefined();
    },
  );

  it('create pushes SUBSCRIPTION_PURCHASED for the new token, with its package and product', async () => {
    const token = await create(shared, { productId: 'premium_yearly', packageName: 'com.other.app', testPurchase: false, expiresInSeconds: 3600 });
    expect(sink.pushes).toHaveLength(1);
    const push = await verifyPush(shared, sink.pushes[0], sink.url);
    expect(push.notification).toEqual({
      version: '1.0',
      packageName: 'com.other.app',
      eventTimeMillis: String(T0),
      subscriptionNotification: { version: '1.0', notificationType: 4, purchaseToken: token, subscriptionId: 'premium_yearly' },
    });
    expect(shared.outbox.list('google').at(-1)).toMatchObject({ id: push.body.message.messageId, type: 'SUBSCRIPTION_PURCHASED' });
    const purchase = await getPurchase(shared, token, 'com.other.app');
    expect(purchase).toMatchObject({ subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE', acknowledgementState: 'ACKNOWLEDGEMENT_STATE_PENDING' });
    expect(purchase.testPurchase).toBeUndefined();
    expect(lineItem(purchase)).toMatchObject({ productId: 'premium_yearly', expiryTime: iso(T0 + 3600 * 1000), autoRenewingPlan: { autoRenewEnabled: true } });
  });

  it('replace makes a new token linked to the old one, pushes SUBSCRIPTION_PURCHASED for it, and expires the old one', async () => {
    const old = await create(shared);
    await client.purchases.subscriptions.acknowledge(
      { packageName: PACKAGE, subscriptionId: 'premium_monthly', token: old, requestBody: {} },
      await clientOptions(shared),
    );
    sink.pushes.length = 0;
    const answer = await step(shared, old, 'replace', { productId: 'premium_yearly' });
    const fresh = String(answer.purchaseToken);
    expect(fresh).not.toBe(old);
    expect(fresh).toMatch(/^[a-z]{24}\.AO-J1O[\w-]+$/);

    expect(sink.pushes).toHaveLength(1);
    const push = await verifyPush(shared, sink.pushes[0], sink.url);
    expect(push.notification.subscriptionNotification).toEqual({ version: '1.0', notificationType: 4, purchaseToken: fresh, subscriptionId: 'premium_yearly' });
    expect(push.notification.packageName).toBe(PACKAGE);

    const replacement = await getPurchase(shared, fresh);
    expect(replacement).toMatchObject({
      subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
      linkedPurchaseToken: old,
      acknowledgementState: 'ACKNOWLEDGEMENT_STATE_PENDING',
      testPurchase: {},
    });
    expect(lineItem(replacement)).toMatchObject({ productId: 'premium_yearly', expiryTime: iso(T0 + 30 * DAY_MS) });
    const replaced = await getPurchase(shared, old);
    expect(replaced).toMatchObject({
      subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED',
      acknowledgementState: 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED',
      canceledStateContext: { replacementCancellation: {} },
    });
    expect(replaced.linkedPurchaseToken).toBeUndefined();
    expect(lineItem(replaced)).toMatchObject({ productId: 'premium_monthly', expiryTime: iso(T0 - 1000), autoRenewingPlan: { autoRenewEnabled: false } });
  });

  it('a canceled subscription keeps access until its expiry, then reads as EXPIRED', async () => {
    const token = await create(shared);
    await step(shared, token, 'cancel');
    shared.clock.ms = T0 + 30 * DAY_MS - 1;
    expect((await getPurchase(shared, token)).subscriptionState).toBe('SUBSCRIPTION_STATE_CANCELED');
    shared.clock.ms = T0 + 30 * DAY_MS;
    const purchase = await getPurchase(shared, token);
    expect(purchase).toMatchObject({
      subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED',
      canceledStateContext: { userInitiatedCancellation: { cancelTime: iso(T0) } },
    });
    expect(lineItem(purchase).autoRenewingPlan?.autoRenewEnabled).toBe(false);
  });

  it('the test notification carries testNotification and no subscriptionNotification', async () => {
    const { status, json } = await control(shared, '/test-notification');
    expect(status).toBe(200);
    expect(sink.pushes).toHaveLength(1);
    const push = await verifyPush(shared, sink.pushes[0], sink.url);
    expect(push.notification).toEqual({ version: '1.0', packageName: PACKAGE, eventTimeMillis: String(T0), testNotification: { version: '1.0' } });
    expect(json.notification).toMatchObject({ id: push.body.message.messageId, type: 'TEST_NOTIFICATION', responseStatus: 204 });
    expect((await control(shared, '/test-notification', { packageName: 'com.other.app' })).status).toBe(200);
    expect((await verifyPush(shared, sink.pushes[1], sink.url)).notification.packageName).toBe('com.other.app');
  });

  it('gives every push its own numeric message id, and records the receiver\'s answer', async () => {
    sink.status = 500;
    const token = await create(shared);
    await step(shared, token, 'grace');
    await step(shared, token, 'hold');
    await step(shared, token, 'recover');
    const ids = await Promise.all(sink.pushes.map(async (push) => (await verifyPush(shared, push, sink.url)).body.message.messageId));
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    const records = shared.outbox.list('google').slice(-4);
    expect(records.map((r) => [r.id, r.type, r.responseStatus])).toEqual([
      [ids[0], 'SUBSCRIPTION_PURCHASED', 500],
      [ids[1], 'SUBSCRIPTION_IN_GRACE_PERIOD', 500],
      [ids[2], 'SUBSCRIPTION_ON_HOLD', 500],
      [ids[3], 'SUBSCRIPTION_RECOVERED', 500],
    ]);
  });
});

describe('Google simulator: control routes refuse what cannot happen on Google, and send nothing then', () => {
  it.each([
    ['recover', [], {}],
    ['renew', ['expire'], {}],
    ['renew', ['cancel'], {}],
    ['grace', ['grace'], {}],
    ['hold', ['pause'], {}],
    ['pause', ['cancel'], {}],
    ['cancel', ['cancel'], {}],
    ['expire', ['expire'], {}],
    ['revoke', ['revoke'], {}],
    ['replace', ['expire'], { productId: 'premium_yearly' }],
    ['replace', ['hold'], { productId: 'premium_yearly' }],
  ])('answers 409 to %s after %j', async (action, before, body) => {
    const token = await create(shared);
    for (const previous of before) await step(shared, token, previous);
    const stateBefore = await getPurchase(shared, token);
    sink.pushes.length = 0;
    const { status, json } = await control(shared, `/subscriptions/${token}/${action}`, body);
    expect(status).toBe(409);
    expect(json.error).toEqual(expect.stringContaining(`cannot ${action}`));
    expect(sink.pushes).toHaveLength(0);
    expect(await getPurchase(shared, token)).toEqual(stateBefore);
  });

  it.each([
    ['renew', { expiresInSeconds: 0 }],
    ['renew', { expiresInSeconds: '60' }],
    ['grace', { gracePeriodSeconds: 31 * 24 * 3600 }],
    ['revoke', { voidedReason: 9 }],
    ['replace', {}],
    ['replace', { productId: 'bad/product' }],
    ['cancel', { at: 1 }],
    ['hold', { at: 1 }],
  ])('answers 400 to %s with %j', async (action, body) => {
    const token = await create(shared);
    sink.pushes.length = 0;
    const { status, json } = await control(shared, `/subscriptions/${token}/${action}`, body);
    expect({ status, error: typeof json.error }).toEqual({ status: 400, error: 'string' });
    expect(sink.pushes).toHaveLength(0);
  });

  it('answers 404 to an unknown token or action, and 400 to a test notification with a bad body', async () => {
    expect((await control(shared, '/subscriptions/nope/renew')).status).toBe(404);
    const token = await create(shared);
    expect((await control(shared, `/subscriptions/${token}/refund`)).status).toBe(404);
    expect((await control(shared, '/test-notification', { packageName: 'not a package' })).status).toBe(400);
    expect((await call(shared.baseUrl, 'GET', '/__simulator/google/test-notification')).status).toBe(405);
  });
});

describe('Google simulator: push authentication', () => {
  it('serves its JWKS: one RS256 signing key whose kid the push tokens name', async () => {
    const { status, json } = await call(shared.baseUrl, 'GET', '/__simulator/google/oauth2/v3/certs');
    expect(status).toBe(200);
    const keys = json.keys as Array<Record<string, string>>;
    expect(keys).toEqual([{ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.stringMatching(/^[0-9a-f]{40}$/), n: expect.any(String), e: 'AQAB' }]);
    expect(keys.some((key) => 'd' in key)).toBe(false);
    expect(shared.simulator.jwksUrl(`${shared.baseUrl}/`)).toBe(`${shared.baseUrl}/__simulator/google/oauth2/v3/certs`);
    expect(shared.simulator.oidcIssuer).toBe('https://accounts.google.com');
    expect(shared.simulator.pushServiceAccountEmail).toBe(DEFAULT_PUSH_EMAIL);
    await create(shared);
    const push = await verifyPush(shared, sink.pushes[0], sink.url);
    expect(push.kid).toBe(keys[0]?.kid);
    expect(decodeProtectedHeader(push.token).typ).toBe('JWT');
  });

  it('signs a fresh token at each attempt: a resend to a new target carries the new audience', async () => {
    const second = await receiver();
    const running = await start(sink.url);
    await create(running);
    const id = running.outbox.list('google').at(-1)?.id ?? '';
    const original = sink.pushes.at(-1);
    running.outbox.setTarget('google', second.url);
    const resent = await running.outbox.resend(id);
    expect(resent).toMatchObject({ id, target: second.url, responseStatus: 204 });
    expect(second.pushes).toHaveLength(1);
    expect(second.pushes[0]?.body).toBe(original?.body);
    await verifyPush(running, second.pushes[0], second.url);
    await expect(verifyPush(running, second.pushes[0], sink.url)).rejects.toBeInstanceOf(joseErrors.JWTClaimValidationFailed);
  });

  it('uses pushAudience and pushServiceAccountEmail when given', async () => {
    const audience = 'https://iap-sync.example.com/google/rtdn';
    const email = 'rtdn-push@my-project.iam.gserviceaccount.com';
    const running = await start(sink.url, { pushAudience: audience, pushServiceAccountEmail: email });
    expect(running.simulator.pushServiceAccountEmail).toBe(email);
    await create(running);
    const push = await verifyPush(running, sink.pushes.at(-1), audience, email);
    expect(push.claims.aud).toBe(audience);
    const token = await running.simulator.signPushToken();
    await expect(jwtVerify(token, createRemoteJWKSet(new URL(running.simulator.jwksUrl(running.baseUrl))), { audience })).resolves.toBeDefined();
  });

  describe('signPushToken forges tokens a push endpoint must refuse', () => {
    const verify = (token: string, audience = sink.url) =>
      jwtVerify(token, createRemoteJWKSet(new URL(shared.simulator.jwksUrl(shared.baseUrl))), { issuer: 'https://accounts.google.com', audience });

    it('signs valid push claims by default (audience: the latest google target)', async () => {
      await create(shared);
      const { payload } = await verify(await shared.simulator.signPushToken());
      expect(payload).toMatchObject({ iss: 'https://accounts.google.com', aud: sink.url, email: DEFAULT_PUSH_EMAIL, email_verified: true });
    });

    it('overrides aud, email and email_verified, and leaves out claims set to null', async () => {
      await create(shared);
      await expect(verify(await shared.simulator.signPushToken({ aud: 'https://elsewhere.example/' }))).rejects.toBeInstanceOf(joseErrors.JWTClaimValidationFailed);
      expect((await verify(await shared.simulator.signPushToken({ email: 'attacker@evil.example' }))).payload.email).toBe('attacker@evil.example');
      expect((await verify(await shared.simulator.signPushToken({ email_verified: false }))).payload.email_verified).toBe(false);
      expect('email' in (await verify(await shared.simulator.signPushToken({ email: null }))).payload).toBe(false);
      await expect(verify(await shared.simulator.signPushToken({ iss: 'https://evil.example' }))).rejects.toBeInstanceOf(joseErrors.JWTClaimValidationFailed);
    });

    it('signs expired tokens', async () => {
      const iat = Math.floor(Date.now() / 1000) - 7200;
      const token = await shared.simulator.signPushToken({ aud: sink.url, iat, exp: iat + 3600 });
      await expect(verify(token)).rejects.toBeInstanceOf(joseErrors.JWTExpired);
    });

    it('refuses to guess an audience it does not know', async () => {
      const running = await start(undefined);
      await expect(running.simulator.signPushToken()).rejects.toThrow(/audience/);
      const { payload } = await jwtVerify(
        await running.simulator.signPushToken({ aud: 'https://x.example/' }),
        createRemoteJWKSet(new URL(running.simulator.jwksUrl(running.baseUrl))),
        { audience: 'https://x.example/' },
      );
      expect(payload.aud).toBe('https://x.example/');
    });

    it('is not signed by another key', async () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const forged = await new SignJWT({ email: DEFAULT_PUSH_EMAIL, email_verified: true })
        .setProtectedHeader({ alg: 'RS256', kid: decodeProtectedHeader(await shared.simulator.signPushToken({ aud: sink.url })).kid ?? '' })
        .setIssuer('https://accounts.google.com')
        .setAudience(sink.url)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey);
      await expect(verify(forged)).rejects.toBeInstanceOf(joseErrors.JWSSignatureVerificationFailed);
    });
  });
});

describe('Google simulator: notification delivery through the outbox', () => {
  it('changes the state even when the push is dropped, and records the drop', async () => {
    shared.outbox.dropNext('google', 1);
    const token = await create(shared);
    expect(sink.pushes).toHaveLength(0);
    expect(shared.outbox.list('google').at(-1)).toMatchObject({ type: 'SUBSCRIPTION_PURCHASED', dropped: true, responseStatus: null });
    expect((await getPurchase(shared, token)).subscriptionState).toBe('SUBSCRIPTION_STATE_ACTIVE');
  });

  it('without an outbox, changes state and sends nothing; the test notification is refused', async () => {
    const running = await start(sink.url, {}, false);
    const token = await create(running);
    const answer = await step(running, token, 'cancel');
    expect(answer).toEqual({ purchaseToken: token, subscriptionState: 'SUBSCRIPTION_STATE_CANCELED', expiryTime: iso(T0 + 30 * DAY_MS) });
    expect(sink.pushes).toHaveLength(0);
    expect((await control(running, '/test-notification')).status).toBe(409);
  });
});

describe('Google simulator: purchases.voidedpurchases.list', () => {
  let running: Running;
  const revoked: string[] = [];

  beforeAll(async () => {
    running = await start(sink.url);
    for (const [index, body] of [{}, { voidedSource: 0, voidedReason: 1 }, {}].entries()) {
      running.clock.ms = T0 + index * 60_000;
      const token = await create(running);
      await step(running, token, 'renew');
      await step(running, token, 'revoke', body);
      revoked.push(token);
    }
    running.clock.ms = T0 + 10 * 60_000;
    // Revoked in another app: never listed for this one.
    await step(running, await create(running, { productId: 'premium_monthly', packageName: 'com.other.app' }), 'revoke');
  });

  it('lists revoked subscriptions for type=1, oldest first, with their latest order', async () => {
    const list = await listVoided(running, { type: 1 });
    expect(list.pageInfo).toEqual({ totalResults: 3, resultPerPage: 1000, startIndex: 0 });
    expect(list.tokenPagination).toBeUndefined();
    const orders = await Promise.all(revoked.map(async (token) => lineItem(await getPurchase(running, token)).latestSuccessfulOrderId));
    expect(list.voidedPurchases).toEqual(
      revoked.map((token, index) => ({
        kind: 'androidpublisher#voidedPurchase',
        purchaseToken: token,
        orderId: orders[index],
        purchaseTimeMillis: String(T0 + index * 60_000),
        voidedTimeMillis: String(T0 + index * 60_000 - 1000),
        voidedSource: index === 1 ? 0 : 1,
        voidedReason: index === 1 ? 1 : 0,
      })),
    );
    expect(orders.every((order) => /^GPA\.\d{4}-\d{4}-\d{4}-\d{5}\.\.0$/.test(order ?? ''))).toBe(true);
  });

  it('lists no subscriptions for the default type (in-app products only)', async () => {
    const list = await listVoided(running, {});
    expect(list.voidedPurchases).toBeUndefined();
    expect(list.pageInfo?.totalResults).toBe(0);
  });

  it('filters on startTime and endTime', async () => {
    const list = await listVoided(running, { type: 1, startTime: String(T0), endTime: String(T0 + 60_000) });
    expect(list.voidedPurchases?.map((v) => v.purchaseToken)).toEqual([revoked[1]]);
  });

  it('pages by maxResults and token', async () => {
    const seen: string[] = [];
    let page = await listVoided(running, { type: 1, maxResults: 2 });
    seen.push(...(page.voidedPurchases ?? []).map((v) => v.purchaseToken ?? ''));
    const next = page.tokenPagination?.nextPageToken;
    expect(next).toEqual(expect.any(String));
    page = await listVoided(running, { maxResults: 2, token: next ?? '' });
    seen.push(...(page.voidedPurchases ?? []).map((v) => v.purchaseToken ?? ''));
    expect(page.tokenPagination).toBeUndefined();
    expect(page.pageInfo).toEqual({ totalResults: 3, resultPerPage: 2, startIndex: 2 });
    expect(seen).toEqual(revoked);
  });

  it.each([
    ['a startTime older than 30 days', { type: 1, startTime: String(T0 + 10 * 60_000 - 31 * DAY_MS) }],
    ['an endTime in the future', { type: 1, endTime: String(T0 + 10 * 60_000 + DAY_MS) }],
    ['startTime after endTime', { type: 1, startTime: String(T0), endTime: String(T0 - 1) }],
    ['type 2', { type: 2 }],
    ['maxResults 1001', { type: 1, maxResults: 1001 }],
    ['a forged page token', { token: 'not-a-token' }],
  ])('answers 400 to %s', async (_label, params) => {
    expect(await statusOf(listVoided(running, params))).toBe(400);
  });

  it('checks the bearer token and injects faults like the other API routes', async () => {
    expect(await statusOf(listVoided(running, { type: 1 }, 'ya29.not-issued'))).toBe(401);
    expect((await call(running.baseUrl, 'POST', '/__simulator/faults', { store: 'google', status: 503, count: 1 })).status).toBe(200);
    expect(await statusOf(listVoided(running, { type: 1 }))).toBe(503);
    expect((await listVoided(running, { type: 1 })).voidedPurchases).toHaveLength(3);
  });
});

describe('Google simulator: persistence', () => {
  it('keeps the push signing key, subscriptions and voided purchases across a restart', async () => {
    const first = await start(sink.url);
    const token = await create(first);
    await step(first, token, 'revoke');
    const kid = decodeProtectedHeader(await first.simulator.signPushToken({ aud: sink.url })).kid;
    expect(readdirSync(path.join(first.dataDir, 'simulator')).sort()).toEqual(['google-service-account.json', 'google-subscriptions.json', 'notifications.json']);

    const second = await start(sink.url, { dataDir: first.dataDir });
    expect(second.simulator.serviceAccountJson).toBe(first.simulator.serviceAccountJson);
    expect(decodeProtectedHeader(await second.simulator.signPushToken({ aud: sink.url })).kid).toBe(kid);
    // A token signed before the restart still verifies against the JWKS served after it.
    const early = await first.simulator.signPushToken({ aud: sink.url });
    await expect(jwtVerify(early, createRemoteJWKSet(new URL(second.simulator.jwksUrl(second.baseUrl))), { audience: sink.url })).resolves.toBeDefined();
    expect((await getPurchase(second, token)).subscriptionState).toBe('SUBSCRIPTION_STATE_EXPIRED');
    expect((await listVoided(second, { type: 1 })).voidedPurchases?.map((v) => v.purchaseToken)).toEqual([token]);
  });

  it('loads state files written before notifications, and adds a signing key to the account file', async () => {
    const seed = await start(undefined, { inMemory: true });
    const account = JSON.parse(seed.simulator.serviceAccountJson) as unknown;
    const dataDir = tempDir();
    mkdirSync(path.join(dataDir, 'simulator'), { recursive: true });
    const accountFile = path.join(dataDir, 'simulator', 'google-service-account.json');
    writeFileSync(accountFile, JSON.stringify({ version: 1, serviceAccount: account }));
    const old = {
      purchaseToken: 'abcdefghijklmnopqrstuvwx.AO-J1Oold',
      packageName: PACKAGE,
      productId: 'premium_monthly',
      orderId: 'GPA.1111-2222-3333-44444',
      startTime: T0 - DAY_MS,
      expiryTime: T0 + DAY_MS,
      acknowledged: true,
      testPurchase: false,
    };
    const canceledOld = { ...old, purchaseToken: 'abcdefghijklmnopqrstuvwx.AO-J1Orevoked', revokedAt: T0 - 1000 };
    writeFileSync(path.join(dataDir, 'simulator', 'google-subscriptions.json'), JSON.stringify({ version: 1, subscriptions: [old, canceledOld] }));

    const running = await start(sink.url, { dataDir });
    expect(JSON.parse(running.simulator.serviceAccountJson)).toEqual(account);
    const stored = JSON.parse(readFileSync(accountFile, 'utf8')) as { pushSigner?: { kid: string } };
    expect(stored.pushSigner?.kid).toMatch(/^[0-9a-f]{40}$/);
    const purchase = await getPurchase(running, old.purchaseToken);
    expect(purchase).toMatchObject({ subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE', acknowledgementState: 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED' });
    expect(lineItem(purchase)).toMatchObject({ expiryTime: iso(T0 + DAY_MS), latestSuccessfulOrderId: old.orderId });
    expect((await getPurchase(running, canceledOld.purchaseToken)).subscriptionState).toBe('SUBSCRIPTION_STATE_EXPIRED');
    // Revoked before voided purchases were recorded: nothing to list, and no failure either.
    expect((await listVoided(running, { type: 1 })).voidedPurchases).toBeUndefined();
    const renewed = await step(running, old.purchaseToken, 'renew');
    expect(renewed.expiryTime).toBe(iso(T0 + 31 * DAY_MS));
    await verifyPush(running, sink.pushes.at(-1), sink.url);
  });

  it('writes nothing in memory, and makes a new signing key at each start', async () => {
    const dataDir = tempDir();
    const first = await start(sink.url, { dataDir, inMemory: true });
    const second = await start(sink.url, { dataDir, inMemory: true });
    await create(first);
    const kid = (running: Running) => running.simulator.signPushToken({ aud: sink.url }).then((token) => decodeProtectedHeader(token).kid);
    expect(await kid(first)).not.toBe(await kid(second));
    expect(existsSync(path.join(dataDir, 'simulator'))).toBe(false);
  });
});
