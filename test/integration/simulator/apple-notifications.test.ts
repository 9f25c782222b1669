import {
  APIException,
  AppStoreServerAPIClient,
  Environment,
  NotificationTypeV2,
  SendAttemptResult,
  SignedDataVerifier,
  Status,
  Subtype,
  VerificationStatus,
  type JWSRenewalInfoDecodedPayload,
  type JWSTransactionDecodedPayload,
  type NotificationHistoryRequest,
  type NotificationHistoryResponse,
  type ResponseBodyV2DecodedPayload,
} from '@apple/app-store-server-library';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Response as NodeFetchResponse } from 'node-fetch';
import { createAppleSimulator, type AppleSimulator } from '../../../local/simulator/apple-simulator';
import { FaultInjector, handleFaultRoutes } from '../../../local/simulator/faults';
import { createNotificationOutbox, type NotificationOutbox } from '../../../local/simulator/notifications';

type StoreEnvironment = Environment.SANDBOX | Environment.PRODUCTION;

interface Received {
  body: string;
  headers: IncomingHttpHeaders;
}

/** A simulator behind a node:http server, sending its notifications to a receiver server. */
interface Harness {
  simulator: AppleSimulator;
  outbox: NotificationOutbox;
  baseUrl: string;
  /** Every notification the receiver got, in order. */
  received: Received[];
  /** What the receiver answers next. */
  receiverStatus: { value: number };
}

interface Reply {
  status: number;
  json: unknown;
}

interface Created {
  transactionId: string;
  originalTransactionId: string;
  signedTransactionInfo: string;
}

const servers: Server[] = [];
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apple-notifications-'));
  tempDirs.push(dir);
  return dir;
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

async function start(options: { dataDir?: string; inMemory?: boolean } = {}): Promise<Harness> {
  const dataDir = options.dataDir ?? tempDir();
  const inMemory = options.inMemory ?? true;
  const received: Received[] = [];
  const receiverStatus = { value: 200 };
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.writeHead(receiverStatus.value).end();
    });
  });
  const receiverUrl = await listen(receiver);

  const outbox = await createNotificationOutbox({ dataDir, inMemory });
  outbox.setTarget('apple', `${receiverUrl}/apple-notifications`);
  const faults = new FaultInjector();
  const simulator = await createAppleSimulator({ dataDir, inMemory, outbox }, faults);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    void (async () => {
      if (await handleFaultRoutes(req, res, url, faults, outbox)) return;
      if (await outbox.handle(req, res, url)) return;
      if (await simulator.handle(req, res, url)) return;
      res.writeHead(404).end();
    })();
  });
  const baseUrl = await listen(server);
  return { simulator, outbox, baseUrl, received, receiverStatus };
}

async function call(h: Harness, method: string, route: string, body?: unknown): Promise<Reply> {
  const response = await fetch(`${h.baseUrl}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

async function create(h: Harness, body: Record<string, unknown>): Promise<Created> {
  const reply = await call(h, 'POST', '/__simulator/apple/transactions', body);
  expect(reply.status).toBe(201);
  return reply.json as Created;
}

async function act(h: Harness, transactionId: string, action: string, body: unknown = {}): Promise<Reply> {
  return call(h, 'POST', `/__simulator/apple/transactions/${transactionId}/${action}`, body);
}

/** Apple's own client, its one I/O seam pointed at the simulator. */
class SimulatorClient extends AppStoreServerAPIClient {
  constructor(
    h: Harness,
    environment: StoreEnvironment,
    private readonly baseUrl = `${h.baseUrl}/__simulator/apple/${environment === Environment.PRODUCTION ? 'production' : 'sandbox'}`,
  ) {
    super(h.simulator.apiKey.privateKeyPem, h.simulator.apiKey.keyId, h.simulator.apiKey.issuerId, h.simulator.bundleId, environment);
  }

  protected override async makeFetchRequest(
    route: string,
    query: URLSearchParams,
    method: string,
    body: string | Buffer | undefined,
    headers: Record<string, string>,
  ): Promise<NodeFetchResponse> {
    const search = query.toString();
    const response = await fetch(`${this.baseUrl}${route}${search ? `?${search}` : ''}`, { method, body, headers });
    // Not a port: Apple's library types this seam with node-fetch's Response and only reads ok, status and json(), which the WHATWG Response has too.
    return response as unknown as NodeFetchResponse;
  }
}

function verifier(h: Harness, environment: StoreEnvironment = Environment.SANDBOX): SignedDataVerifier {
  return new SignedDataVerifier([h.simulator.rootCertificateDer], false, environment, h.simulator.bundleId, h.simulator.appAppleId);
}

/** The notification as the service will read it: verified by Apple's library. */
async function verifyNotification(h: Harness, received: Received | undefined, environment: StoreEnvironment = Environment.SANDBOX): Promise<ResponseBodyV2DecodedPayload> {
  const body = JSON.parse(received?.body ?? '{}') as { signedPayload?: string };
  expect(Object.keys(body)).toEqual(['signedPayload']);
  return verifier(h, environment).verifyAndDecodeNotification(body.signedPayload ?? '');
}

async function statuses(h: Harness, transactionId: string): Promise<{ status: unknown; renewal: JWSRenewalInfoDecodedPayload; latest: JWSTransactionDecodedPayload }> {
  const response = await new SimulatorClient(h, Environment.SANDBOX).getAllSubscriptionStatuses(transactionId);
  const item = response.data?.[0]?.lastTransactions?.[0];
  return {
    status: item?.status,
    renewal: await verifier(h).verifyAndDecodeRenewalInfo(item?.signedRenewalInfo ?? ''),
    latest: await verifier(h).verifyAndDecodeTransaction(item?.signedTransactionInfo ?? ''),
  };
}

/** Matches a millisecond timestamp within a minute of now + `seconds`. */
function aboutFromNow(seconds: number): unknown {
  return {
    $$typeof: Symbol.for('jest.asymmetricMatcher'),
    asymmetricMatch: (value: unknown) => typeof value === 'number' && Math.abs(value - (Date.now() + seconds * 1000)) < 60_000,
    toAsymmetricMatcher: () => `about ${seconds} s from now`,
  };
}

/** Each field equals the expected one; an expected `undefined` means the field is absent. */
function expectFields(actual: object, expected: Record<string, unknown>): void {
  const record = actual as Record<string, unknown>;
  for (const [key, value] of Object.entries(expected)) {
    if (value === undefined) expect({ [key]: record[key] }).toEqual({});
    else expect({ [key]: record[key] }).toEqual({ [key]: value });
  }
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function history(h: Harness, request: Partial<NotificationHistoryRequest>, environment: StoreEnvironment = Environment.SANDBOX, token: string | null = null): Promise<NotificationHistoryResponse> {
  const full = { startDate: Date.now() - 3600_000, endDate: Date.now() + 60_000, ...request } as NotificationHistoryRequest;
  return new SimulatorClient(h, environment).getNotificationHistory(token, full);
}

async function historyPayloads(h: Harness, response: NotificationHistoryResponse, environment: StoreEnvironment = Environment.SANDBOX): Promise<ResponseBodyV2DecodedPayload[]> {
  return Promise.all((response.notificationHistory ?? []).map((item) => verifier(h, environment).verifyAndDecodeNotification(item.signedPayload ?? '')));
}

/** What a lifecycle step leads to: the call to make and whose notification and statuses to check. */
interface Scenario {
  act: () => Promise<Reply>;
  /** The transaction the notification is about; by default the one the reply names. */
  transactionId?: string;
  /** Any transaction of the subscription, to ask its statuses; none for one-time purchases. */
  subscription?: string;
}

interface Expected {
  notificationType: NotificationTypeV2;
  subtype?: Subtype;
  /** Subscription status in the notification and in Get All Subscription Statuses; none for one-time purchases. */
  status?: Status;
  renewal?: Record<string, unknown>;
  transaction?: Record<string, unknown>;
}

const monthly = { productId: 'premium_monthly' };

const lifecycle: Array<[string, (h: Harness) => Promise<Scenario>, Expected]> = [
  [
    'buying a subscription',
    async (h) => ({ act: () => call(h, 'POST', '/__simulator/apple/transactions', monthly) }),
    {
      notificationType: NotificationTypeV2.SUBSCRIBED, subtype: Subtype.INITIAL_BUY, status: Status.ACTIVE,
      renewal: { autoRenewStatus: 1, isInBillingRetryPeriod: false, productId: 'premium_monthly', autoRenewProductId: 'premium_monthly', expirationIntent: undefined },
      transaction: { transactionReason: 'PURCHASE', type: 'Auto-Renewable Subscription' },
    },
  ],
  [
    'buying a consumable',
    async (h) => ({ act: () => call(h, 'POST', '/__simulator/apple/transactions', { productId: 'coins', type: 'Consumable' }) }),
    { notificationType: NotificationTypeV2.ONE_TIME_CHARGE, transaction: { type: 'Consumable' } },
  ],
  [
    'buying a non-consumable',
    async (h) => ({ act: () => call(h, 'POST', '/__simulator/apple/transactions', { productId: 'lifetime', type: 'Non-Consumable' }) }),
    { notificationType: NotificationTypeV2.ONE_TIME_CHARGE, transaction: { type: 'Non-Consumable' } },
  ],
  [
    'buying again into an expired subscription',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'expire');
      return { act: () => call(h, 'POST', '/__simulator/apple/transactions', { ...monthly, originalTransactionId: first.transactionId }), subscription: first.transactionId };
    },
    {
      notificationType: NotificationTypeV2.SUBSCRIBED, subtype: Subtype.RESUBSCRIBE, status: Status.ACTIVE,
      renewal: { autoRenewStatus: 1, expirationIntent: undefined, recentSubscriptionStartDate: aboutFromNow(0) },
    },
  ],
  [
    'buying another product of an active subscription',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => call(h, 'POST', '/__simulator/apple/transactions', { productId: 'premium_yearly', originalTransactionId: first.transactionId }), subscription: first.transactionId };
    },
    {
      notificationType: NotificationTypeV2.DID_CHANGE_RENEWAL_PREF, subtype: Subtype.UPGRADE, status: Status.ACTIVE,
      renewal: { productId: 'premium_yearly', autoRenewProductId: 'premium_yearly' },
    },
  ],
  [
    'renewing',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'renew', { expiresInSeconds: 3600 }), subscription: first.transactionId };
    },
    {
      notificationType: NotificationTypeV2.DID_RENEW, status: Status.ACTIVE,
      renewal: { isInBillingRetryPeriod: false, renewalDate: aboutFromNow(3600) },
      transaction: { transactionReason: 'RENEWAL', expiresDate: aboutFromNow(3600) },
    },
  ],
  [
    'renewing out of billing retry',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'billing-retry');
      return { act: () => act(h, first.transactionId, 'renew'), subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_RENEW, subtype: Subtype.BILLING_RECOVERY, status: Status.ACTIVE, renewal: { isInBillingRetryPeriod: false, gracePeriodExpiresDate: undefined } },
  ],
  [
    'renewing out of a grace period',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'grace');
      return { act: () => act(h, first.transactionId, 'renew'), subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_RENEW, subtype: Subtype.BILLING_RECOVERY, status: Status.ACTIVE, renewal: { isInBillingRetryPeriod: false, gracePeriodExpiresDate: undefined } },
  ],
  [
    'expiring',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'expire'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    {
      notificationType: NotificationTypeV2.EXPIRED, subtype: Subtype.VOLUNTARY, status: Status.EXPIRED,
      renewal: { autoRenewStatus: 0, expirationIntent: 1, isInBillingRetryPeriod: false },
      transaction: { expiresDate: aboutFromNow(0) },
    },
  ],
  [
    'expiring at the end of billing retry',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'billing-retry');
      return { act: () => act(h, first.transactionId, 'expire'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.EXPIRED, subtype: Subtype.BILLING_RETRY, status: Status.EXPIRED, renewal: { expirationIntent: 2, isInBillingRetryPeriod: false } },
  ],
  [
    'expiring, named by the first transaction of a renewed subscription',
    async (h) => {
      const first = await create(h, monthly);
      const renewal = (await act(h, first.transactionId, 'renew')).json as Created;
      return { act: () => act(h, first.transactionId, 'expire'), transactionId: renewal.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.EXPIRED, subtype: Subtype.VOLUNTARY, status: Status.EXPIRED, transaction: { transactionReason: 'RENEWAL' } },
  ],
  [
    'refunding',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'refund'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.REFUND, status: Status.REVOKED, transaction: { revocationDate: aboutFromNow(0), revocationReason: 0, revocationType: 'REFUND_FULL' } },
  ],
  [
    'refunding an earlier period of a renewed subscription',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'renew');
      return { act: () => act(h, first.transactionId, 'refund'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.REFUND, status: Status.ACTIVE, transaction: { revocationDate: aboutFromNow(0), transactionReason: 'PURCHASE' } },
  ],
  [
    'reversing a refund',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'refund');
      return { act: () => act(h, first.transactionId, 'refund-reversed'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.REFUND_REVERSED, status: Status.ACTIVE, transaction: { revocationDate: undefined, revocationReason: undefined, revocationType: undefined } },
  ],
  [
    'revoking Family Sharing access',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'revoke'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.REVOKE, status: Status.REVOKED, transaction: { revocationDate: aboutFromNow(0), revocationReason: 0, revocationType: 'FAMILY_REVOKE' } },
  ],
  [
    'failing to renew into a grace period',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'grace'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    {
      notificationType: NotificationTypeV2.DID_FAIL_TO_RENEW, subtype: Subtype.GRACE_PERIOD, status: Status.BILLING_GRACE_PERIOD,
      renewal: { isInBillingRetryPeriod: true, gracePeriodExpiresDate: aboutFromNow(16 * 24 * 3600), autoRenewStatus: 1 },
      // The renewal was due when the period ended, so the period ends now.
      transaction: { expiresDate: aboutFromNow(0) },
    },
  ],
  [
    'failing to renew with a grace period of one hour',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'grace', { gracePeriodExpiresInSeconds: 3600 }), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_FAIL_TO_RENEW, subtype: Subtype.GRACE_PERIOD, status: Status.BILLING_GRACE_PERIOD, renewal: { gracePeriodExpiresDate: aboutFromNow(3600) } },
  ],
  [
    'failing to renew with a grace period already over',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'grace', { gracePeriodExpiresInSeconds: -60 }), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_FAIL_TO_RENEW, subtype: Subtype.GRACE_PERIOD, status: Status.BILLING_RETRY, renewal: { isInBillingRetryPeriod: true, gracePeriodExpiresDate: aboutFromNow(-60) } },
  ],
  [
    'failing to renew into billing retry',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'billing-retry'), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_FAIL_TO_RENEW, status: Status.BILLING_RETRY, renewal: { isInBillingRetryPeriod: true, gracePeriodExpiresDate: undefined } },
  ],
  [
    'turning auto-renew off',
    async (h) => {
      const first = await create(h, monthly);
      return { act: () => act(h, first.transactionId, 'auto-renew', { enabled: false }), transactionId: first.transactionId, subscription: first.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, subtype: Subtype.AUTO_RENEW_DISABLED, status: Status.ACTIVE, renewal: { autoRenewStatus: 0 } },
  ],
  [
    'turning auto-renew back on, named by the first transaction of a renewed subscription',
    async (h) => {
      const first = await create(h, monthly);
      await act(h, first.transactionId, 'auto-renew', { enabled: false });
      const renewal = (await act(h, first.transactionId, 'renew')).json as Created;
      return { act: () => act(h, first.transactionId, 'auto-renew', { enabled: true }), transactionId: renewal.transactionId, subscription: renewal.transactionId };
    },
    { notificationType: NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, subtype: Subtype.AUTO_RENEW_ENABLED, status: Status.ACTIVE, renewal: { autoRenewStatus: 1 } },
  ],
];

let shared: Harness;

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

describe('Apple simulator notifications', () => {
  it.each(lifecycle)('sends one notification that Apple\'s verifier accepts for %s, and reports the status behind it', async (_name, prepare, expected) => {
    const scenario = await prepare(shared);
    const before = shared.received.length;
    const reply = await scenario.act();
    expect([200, 201]).toContain(reply.status);

    const sent = shared.received.slice(before);
    expect(sent).toHaveLength(1);
    const payload = await verifyNotification(shared, sent[0]);
    expect(payload).toMatchObject({ notificationType: expected.notificationType, version: '2.0', signedDate: aboutFromNow(0) });
    expectFields(payload, { subtype: expected.subtype });
    expect(payload.notificationUUID).toBe(shared.outbox.list('apple').at(-1)?.id);
    expect(payload.data).toMatchObject({ bundleId: 'com.example.iapsync', bundleVersion: '1', environment: 'Sandbox', appAppleId: shared.simulator.appAppleId });

    const transaction = await verifier(shared).verifyAndDecodeTransaction(payload.data?.signedTransactionInfo ?? '');
    expect(transaction.transactionId).toBe(scenario.transactionId ?? (reply.json as Created).transactionId);
    expectFields(transaction, expected.transaction ?? {});

    if (expected.status === undefined) {
      expectFields(payload.data ?? {}, { status: undefined, signedRenewalInfo: undefined });
      return;
    }
    expect(payload.data?.status).toBe(expected.status);
    const renewalInNotification = await verifier(shared).verifyAndDecodeRenewalInfo(payload.data?.signedRenewalInfo ?? '');
    expectFields(renewalInNotification, { originalTransactionId: transaction.originalTransactionId, environment: 'Sandbox', ...expected.renewal });

    const now = await statuses(shared, scenario.subscription ?? transaction.transactionId ?? '');
    expect(now.status).toBe(expected.status);
    expectFields(now.renewal, { originalTransactionId: transaction.originalTransactionId, ...expected.renewal });
  });

  it('signs Production notifications that only a Production verifier accepts', async () => {
    const before = shared.received.length;
    await create(shared, { ...monthly, environment: 'Production' });
    const [sent] = shared.received.slice(before);
    const payload = await verifyNotification(shared, sent, Environment.PRODUCTION);
    expect(payload.data).toMatchObject({ environment: 'Production', appAppleId: 1234567890 });
    const error = await caught(verifyNotification(shared, sent, Environment.SANDBOX));
    expect(error).toMatchObject({ status: VerificationStatus.INVALID_ENVIRONMENT });
  });

  it('signs the notification with the chain of the transactions it carries', async () => {
    const before = shared.received.length;
    const created = await create(shared, monthly);
    const signedPayload = (JSON.parse(shared.received[before]?.body ?? '{}') as { signedPayload: string }).signedPayload;
    const x5c = (jws: string): unknown => (JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString()) as { x5c: unknown }).x5c;
    expect(x5c(signedPayload)).toEqual(x5c(created.signedTransactionInfo));
  });

  it.each(['renew', 'expire', 'refund', 'refund-reversed', 'revoke', 'grace', 'billing-retry', 'auto-renew'])(
    'answers 404 to %s of an unknown transaction and sends nothing',
    async (action) => {
      const before = shared.received.length;
      const reply = await act(shared, '1000000000000000', action, action === 'auto-renew' ? { enabled: true } : {});
      expect(reply).toEqual({ status: 404, json: { error: 'transaction not found' } });
      expect(shared.received.length).toBe(before);
    },
  );

  it.each([
    ['auto-renew', {}],
    ['auto-renew', { enabled: 'yes' }],
    ['grace', { gracePeriodExpiresInSeconds: 1.5 }],
    ['grace', { gracePeriodDays: 3 }],
    ['billing-retry', { reason: 'card declined' }],
    ['refund', { colour: 'red' }],
    ['refund-reversed', { colour: 'red' }],
    ['revoke', { colour: 'red' }],
    ['expire', { colour: 'red' }],
  ])('refuses %s with the body %j with 400 and sends nothing', async (action, body) => {
    const created = await create(shared, monthly);
    const before = shared.received.length;
    const reply = await act(shared, created.transactionId, action, body);
    expect(reply).toEqual({ status: 400, json: { error: expect.any(String) } });
    expect(shared.received.length).toBe(before);
  });

  it.each([
    ['grace', {}],
    ['billing-retry', {}],
    ['auto-renew', { enabled: false }],
  ])('refuses %s of a non-subscription with 400', async (action, body) => {
    const created = await create(shared, { productId: 'lifetime', type: 'Non-Consumable' });
    const reply = await act(shared, created.transactionId, action, body);
    expect(reply.status).toBe(400);
  });

  it('refuses to reverse the refund of a transaction that was not refunded', async () => {
    const created = await create(shared, monthly);
    const before = shared.received.length;
    expect(await act(shared, created.transactionId, 'refund-reversed')).toEqual({ status: 409, json: { error: 'transaction is not refunded' } });
    expect(shared.received.length).toBe(before);
  });

  it('drops armed notifications, which the listing and Get Notification History still show', async () => {
    const h = await start();
    const started = Date.now() - 1000;
    expect(await call(h, 'POST', '/__simulator/faults', { store: 'apple', dropNotifications: 2 })).toEqual({ status: 200, json: { store: 'apple', dropNotifications: 2 } });
    const [a, b, c] = [await create(h, monthly), await create(h, monthly), await create(h, monthly)];
    expect(h.received).toHaveLength(1);
    const delivered = await verifyNotification(h, h.received[0]);

    const listing = await call(h, 'GET', '/__simulator/notifications?store=apple');
    expect(listing.status).toBe(200);
    const records = (listing.json as { notifications: Array<Record<string, unknown>> }).notifications;
    expect(records.map(({ dropped, responseStatus }) => ({ dropped, responseStatus }))).toEqual([
      { dropped: true, responseStatus: null },
      { dropped: true, responseStatus: null },
      { dropped: false, responseStatus: 200 },
    ]);
    expect(records[2]?.id).toBe(delivered.notificationUUID);

    const response = await history(h, { startDate: started });
    const payloads = await historyPayloads(h, response);
    const transactionIds = await Promise.all(payloads.map(async (p) => (await verifier(h).verifyAndDecodeTransaction(p.data?.signedTransactionInfo ?? '')).transactionId));
    expect(transactionIds).toEqual([a.transactionId, b.transactionId, c.transactionId]);
    expect(response.notificationHistory?.map((item) => item.sendAttempts?.map((attempt) => attempt.sendAttemptResult))).toEqual([
      [SendAttemptResult.NO_RESPONSE],
      [SendAttemptResult.NO_RESPONSE],
      [SendAttemptResult.SUCCESS],
    ]);
    expect(response.notificationHistory?.[0]?.sendAttempts?.[0]?.attemptDate).toEqual(aboutFromNow(0));
    expect(response).toMatchObject({ hasMore: false });
  });

  it('resends a dropped notification byte for byte, and its history shows both attempts', async () => {
    const h = await start();
    await call(h, 'POST', '/__simulator/faults', { store: 'apple', dropNotifications: 1 });
    const created = await create(h, monthly);
    expect(h.received).toHaveLength(0);
    const [record] = h.outbox.history('apple');

    const resend = await call(h, 'POST', `/__simulator/notifications/${record?.id}/resend`);
    expect(resend).toEqual({ status: 200, json: { id: record?.id, responseStatus: 200 } });
    expect(h.received.map((r) => r.body)).toEqual([record?.body]);
    expect(h.received[0]?.headers['content-type']).toBe('application/json');

    const response = await history(h, { transactionId: created.transactionId });
    expect(response.notificationHistory).toHaveLength(1);
    expect(response.notificationHistory?.[0]?.sendAttempts?.map((attempt) => attempt.sendAttemptResult)).toEqual([SendAttemptResult.NO_RESPONSE, SendAttemptResult.SUCCESS]);
  });

  it('resends a delivered notification with the same bytes as the first time', async () => {
    const h = await start();
    await create(h, monthly);
    const id = h.outbox.list('apple')[0]?.id;
    await call(h, 'POST', `/__simulator/notifications/${id}/resend`);
    expect(h.received).toHaveLength(2);
    expect(h.received[1]?.body).toBe(h.received[0]?.body);
  });

  it('disarms notification drops on DELETE /__simulator/faults', async () => {
    const h = await start();
    await call(h, 'POST', '/__simulator/faults', { store: 'apple', dropNotifications: 5 });
    expect(await call(h, 'DELETE', '/__simulator/faults')).toEqual({ status: 200, json: { cleared: true } });
    await create(h, monthly);
    expect(h.received).toHaveLength(1);
  });

  it('drops only the notifications of the store the fault names', async () => {
    const h = await start();
    await call(h, 'POST', '/__simulator/faults', { store: 'google', dropNotifications: 5 });
    await create(h, monthly);
    expect(h.received).toHaveLength(1);
  });

  it('records the receiver\'s error status, which onlyFailures then finds', async () => {
    const h = await start();
    const ok = await create(h, monthly);
    h.receiverStatus.value = 500;
    const failed = await create(h, monthly);
    h.receiverStatus.value = 200;
    expect(h.outbox.list('apple').map((r) => r.responseStatus)).toEqual([200, 500]);

    const failures = await history(h, { onlyFailures: true });
    const [payload] = await historyPayloads(h, failures);
    expect(failures.notificationHistory).toHaveLength(1);
    expect(failures.notificationHistory?.[0]?.sendAttempts?.[0]?.sendAttemptResult).toBe(SendAttemptResult.UNSUCCESSFUL_HTTP_RESPONSE_CODE);
    expect((await verifier(h).verifyAndDecodeTransaction(payload?.data?.signedTransactionInfo ?? '')).transactionId).toBe(failed.transactionId);
    expect(ok.transactionId).not.toBe(failed.transactionId);
  });
});

describe('Get Notification History', () => {
  let h: Harness;
  let refunded: Created;
  let startedAt: number;

  beforeAll(async () => {
    h = await start();
    startedAt = Date.now();
    refunded = await create(h, monthly);
    await act(h, refunded.transactionId, 'refund');
    await create(h, monthly);
    await create(h, { ...monthly, environment: 'Production' });
  });

  it.each([
    ['all of the environment', () => ({}), [NotificationTypeV2.SUBSCRIBED, NotificationTypeV2.REFUND, NotificationTypeV2.SUBSCRIBED]],
    ['of one type', () => ({ notificationType: NotificationTypeV2.REFUND }), [NotificationTypeV2.REFUND]],
    ['of one type and subtype', () => ({ notificationType: NotificationTypeV2.SUBSCRIBED, notificationSubtype: Subtype.INITIAL_BUY }), [NotificationTypeV2.SUBSCRIBED, NotificationTypeV2.SUBSCRIBED]],
    ['of a subtype none of them has', () => ({ notificationType: NotificationTypeV2.SUBSCRIBED, notificationSubtype: Subtype.RESUBSCRIBE }), []],
    ['signed before the end date (none)', (startedAt: number) => ({ startDate: startedAt - 3600_000, endDate: startedAt }), []],
  ] as Array<[string, (startedAt: number) => Partial<NotificationHistoryRequest>, NotificationTypeV2[]]>)('lists the Sandbox notifications %s, oldest first', async (_name, request, types) => {
    const response = await history(h, request(startedAt));
    expect((await historyPayloads(h, response)).map((p) => p.notificationType)).toEqual(types);
    expect(response.hasMore).toBe(false);
    expect(response.paginationToken).toBeUndefined();
  });

  it('lists the notifications about one transaction\'s subscription', async () => {
    const response = await history(h, { transactionId: refunded.transactionId });
    const payloads = await historyPayloads(h, response);
    expect(payloads.map((p) => p.notificationType)).toEqual([NotificationTypeV2.SUBSCRIBED, NotificationTypeV2.REFUND]);
  });

  it('keeps Production notifications to the Production environment', async () => {
    const response = await history(h, {}, Environment.PRODUCTION);
    const payloads = await historyPayloads(h, response, Environment.PRODUCTION);
    expect(payloads.map((p) => [p.notificationType, p.data?.environment])).toEqual([[NotificationTypeV2.SUBSCRIBED, 'Production']]);
  });

  it('pages by 20 with a pagination token', async () => {
    const paged = await start();
    for (let i = 0; i < 23; i += 1) await create(paged, { productId: `coins_${i}`, type: 'Consumable' });
    const first = await history(paged, {});
    expect(first.notificationHistory).toHaveLength(20);
    expect(first.hasMore).toBe(true);
    expect(first.paginationToken).toEqual(expect.any(String));
    const second = await history(paged, {}, Environment.SANDBOX, first.paginationToken ?? null);
    expect(second.notificationHistory).toHaveLength(3);
    expect(second.hasMore).toBe(false);

    const uuids = [...(await historyPayloads(paged, first)), ...(await historyPayloads(paged, second))].map((p) => p.notificationUUID);
    expect(uuids).toEqual(paged.outbox.list('apple').map((r) => r.id));
  });

  const anHourAgo = Date.now() - 3600_000;

  it.each([
    ['without a start date', { startDate: undefined }, 4000015],
    ['without an end date', { endDate: undefined }, 4000016],
    ['starting more than 180 days ago', { startDate: Date.now() - 181 * 24 * 3600_000 }, 4000012],
    ['ending when it starts', { startDate: anHourAgo, endDate: anHourAgo }, 4000013],
    ['ending before it starts', { startDate: anHourAgo, endDate: anHourAgo - 1 }, 4000013],
    ['for an unknown notification type', { notificationType: 'NOPE' }, 4000018],
    ['for a subtype without a type', { notificationSubtype: Subtype.INITIAL_BUY }, 4000018],
    ['for a transaction and a type at once', { transactionId: '2000000000000000', notificationType: NotificationTypeV2.REFUND }, 4000019],
    ['for a transaction id that is not one', { transactionId: 'abc' }, 4000006],
  ] as Array<[string, Record<string, unknown>, number]>)('answers 400 to a request %s', async (_name, request, apiError) => {
    const error = await caught(history(h, request as Partial<NotificationHistoryRequest>));
    expect(error).toBeInstanceOf(APIException);
    expect(error).toMatchObject({ httpStatusCode: 400, apiError });
  });

  it('answers 400 4000014 to a pagination token it did not issue', async () => {
    const error = await caught(history(h, {}, Environment.SANDBOX, 'not-a-token'));
    expect(error).toMatchObject({ httpStatusCode: 400, apiError: 4000014 });
  });

  it('answers an armed fault before anything else', async () => {
    await call(h, 'POST', '/__simulator/faults', { store: 'apple', status: 503, count: 1 });
    const error = await caught(history(h, {}));
    expect(error).toMatchObject({ httpStatusCode: 503, apiError: 5000001 });
    expect((await history(h, {})).notificationHistory).toHaveLength(3);
  });

  it('refuses a request without a valid bearer token with 401', async () => {
    const reply = await call(h, 'POST', '/__simulator/apple/inApps/v1/notifications/history', { startDate: 0, endDate: 1 });
    expect(reply).toEqual({ status: 401, json: undefined });
  });
});

describe('Request a Test Notification', () => {
  it.each([
    ['Sandbox', Environment.SANDBOX],
    ['Production', Environment.PRODUCTION],
  ] as const)('sends a %s TEST notification carrying only the app and environment', async (environment, storeEnvironment) => {
    const h = await start();
    const response = await new SimulatorClient(h, storeEnvironment).requestTestNotification();
    expect(response.testNotificationToken).toMatch(/^[0-9a-f-]{36}_\d+$/);
    expect(h.received).toHaveLength(1);
    const payload = await verifyNotification(h, h.received[0], storeEnvironment);
    expect(payload.notificationType).toBe(NotificationTypeV2.TEST);
    expect(payload.subtype).toBeUndefined();
    expect(payload.data).toEqual({ bundleId: h.simulator.bundleId, environment, appAppleId: h.simulator.appAppleId });
    expect(response.testNotificationToken?.startsWith(payload.notificationUUID ?? 'none')).toBe(true);

    const listed = await history(h, { notificationType: NotificationTypeV2.TEST }, storeEnvironment);
    expect(listed.notificationHistory?.map((item) => item.signedPayload)).toEqual([(JSON.parse(h.received[0]?.body ?? '{}') as { signedPayload: string }).signedPayload]);
  });
});

describe('Apple simulator state', () => {
  it('loads a state file saved before subscription states existed, with the defaults', async () => {
    const dataDir = tempDir();
    const now = Date.now();
    mkdirSync(path.join(dataDir, 'simulator'), { recursive: true });
    writeFileSync(path.join(dataDir, 'simulator', 'apple-transactions.json'), JSON.stringify({
      nextId: 2000000000000100,
      transactions: [{
        transactionId: '2000000000000001',
        originalTransactionId: '2000000000000001',
        webOrderLineItemId: '2000000000000002',
        bundleId: 'com.example.iapsync',
        productId: 'premium_monthly',
        type: 'Auto-Renewable Subscription',
        environment: 'Sandbox',
        purchaseDate: now,
        originalPurchaseDate: now,
        expiresDate: now + 3600_000,
        transactionReason: 'PURCHASE',
      }],
    }));
    const h = await start({ dataDir, inMemory: false });
    const before = await statuses(h, '2000000000000001');
    expect(before.status).toBe(Status.ACTIVE);
    expectFields(before.renewal, { autoRenewStatus: 1, isInBillingRetryPeriod: false, recentSubscriptionStartDate: now, renewalDate: now + 3600_000 });

    expect((await act(h, '2000000000000001', 'billing-retry')).status).toBe(200);
    expect((await statuses(h, '2000000000000001')).status).toBe(Status.BILLING_RETRY);
  });

  it('keeps subscription states and the notification history across a restart', async () => {
    const dataDir = tempDir();
    const first = await start({ dataDir, inMemory: false });
    const created = await create(first, monthly);
    await act(first, created.transactionId, 'grace', { gracePeriodExpiresInSeconds: 3600 });
    await act(first, created.transactionId, 'auto-renew', { enabled: false });

    const second = await start({ dataDir, inMemory: false });
    const after = await statuses(second, created.transactionId);
    expect(after.status).toBe(Status.BILLING_GRACE_PERIOD);
    expectFields(after.renewal, { autoRenewStatus: 0, isInBillingRetryPeriod: true, gracePeriodExpiresDate: aboutFromNow(3600) });

    const response = await history(second, { transactionId: created.transactionId });
    expect((await historyPayloads(second, response)).map((p) => [p.notificationType, p.subtype])).toEqual([
      [NotificationTypeV2.SUBSCRIBED, Subtype.INITIAL_BUY],
      [NotificationTypeV2.DID_FAIL_TO_RENEW, Subtype.GRACE_PERIOD],
      [NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, Subtype.AUTO_RENEW_DISABLED],
    ]);
  });

  it('sends nothing and still answers when it has no outbox', async () => {
    const faults = new FaultInjector();
    const simulator = await createAppleSimulator({ dataDir: tempDir(), inMemory: true }, faults);
    const server = createServer((req, res) => {
      void simulator.handle(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'));
    });
    const baseUrl = await listen(server);
    const response = await fetch(`${baseUrl}/__simulator/apple/transactions`, { method: 'POST', body: JSON.stringify(monthly) });
    expect(response.status).toBe(201);
    const created = (await response.json()) as Created;
    const grace = await fetch(`${baseUrl}/__simulator/apple/transactions/${created.transactionId}/grace`, { method: 'POST', body: '{}' });
    expect(grace.status).toBe(200);
    expect(await grace.json()).toMatchObject({ status: Status.BILLING_GRACE_PERIOD, gracePeriodExpiresDate: aboutFromNow(16 * 24 * 3600) });
  });
});
