import { AppStoreServerAPIClient, Environment } from '@apple/app-store-server-library';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Response as NodeFetchResponse } from 'node-fetch';
import { makeReceiveAppleNotificationHandler } from '../../../lambdas/lifecycle/handlers/receive-apple-notification';
import { AppleNotificationDecoder } from '../../../lambdas/stores/apple/notifications';
import { createAppleSimulator, type AppleSimulator } from '../../../local/simulator/apple-simulator';
import { FaultInjector } from '../../../local/simulator/faults';
import { createNotificationOutbox, type NotificationOutbox } from '../../../local/simulator/notifications';
import { apiEvent, testContext } from '../../support/api-events';
import { FakeNoticeIntake, FakePublisherRepository, RecordingLogger } from '../../support/fakes';
import { appleConfig, publisher } from '../../unit/lifecycle/apple-notification-fixtures';

/*
 * The store simulator sends its App Store Server Notifications V2 (signed by its Apple-shaped
 * chain) through its outbox to a receiver that runs the handler in-process, as API Gateway would:
 * what the outbox records as the answer is what Apple would see.
 */

const PUBLISHER_ID = 7;
const ROUTE = /^\/storekit2\/notifications\/([^/]+)$/;

interface Harness {
  simulator: AppleSimulator;
  outbox: NotificationOutbox;
  intake: FakeNoticeIntake;
  simulatorUrl: string;
  receiverUrl: string;
}

const servers: Server[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function start(): Promise<Harness> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'apple-notification-receive-'));
  dirs.push(dataDir);
  const outbox = await createNotificationOutbox({ dataDir, inMemory: true });
  const simulator = await createAppleSimulator({ dataDir, inMemory: true, outbox }, new FaultInjector());
  const intake = new FakeNoticeIntake();
  const handler = makeReceiveAppleNotificationHandler({
    publishers: new FakePublisherRepository([
      publisher(PUBLISHER_ID, appleConfig({ bundleId: simulator.bundleId, appAppleId: simulator.appAppleId, environments: ['Production', 'Sandbox'] })),
    ]),
    decoder: new AppleNotificationDecoder({ rootCertificates: [simulator.rootCertificateDer], onlineChecks: false }),
    intake,
    logger: new RecordingLogger(),
  });
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        const match = ROUTE.exec(url.pathname);
        if (req.method !== 'POST' || !match) {
          res.writeHead(404).end();
          return;
        }
        const headers = Object.fromEntries(Object.entries(req.headers).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])));
        const event = apiEvent({
          path: url.pathname,
          routeKey: 'POST /storekit2/notifications/{publisherId}',
          pathParameters: { publisherId: decodeURIComponent(match[1] ?? '') },
          headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const result = await handler(event, testContext);
        res.writeHead(result.statusCode ?? 200, { 'content-type': 'application/json' }).end(result.body ?? '');
      })();
    });
  });
  const receiverUrl = await listen(receiver);
  outbox.setTarget('apple', `${receiverUrl}/storekit2/notifications/${PUBLISHER_ID}`);
  const simulatorServer = createServer((req, res) => {
    void (async () => {
      if (await simulator.handle(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'))) return;
      res.writeHead(404).end();
    })();
  });
  return { simulator, outbox, intake, simulatorUrl: await listen(simulatorServer), receiverUrl };
}

interface Created {
  transactionId: string;
  originalTransactionId: string;
}

async function control(h: Harness, route: string, body: unknown = {}): Promise<unknown> {
  const response = await fetch(`${h.simulatorUrl}/__simulator/apple${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBeLessThan(300);
  return response.json();
}

const create = (h: Harness, body: Record<string, unknown> = {}) =>
  control(h, '/transactions', { productId: 'premium_monthly', ...body }) as Promise<Created>;

/** Apple's own client, its one I/O seam pointed at the simulator (Request a Test Notification). */
class SimulatorClient extends AppStoreServerAPIClient {
  constructor(
    h: Harness,
    private readonly baseUrl = `${h.simulatorUrl}/__simulator/apple/sandbox`,
  ) {
    super(h.simulator.apiKey.privateKeyPem, h.simulator.apiKey.keyId, h.simulator.apiKey.issuerId, h.simulator.bundleId, Environment.SANDBOX);
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

describe('Apple notifications from the store simulator', () => {
  it('answers each notification of a subscription\'s life 200 and hands its purchase on', async () => {
    const h = await start();
    const bought = await create(h);
    const renewed = (await control(h, `/transactions/${bought.transactionId}/renew`)) as Created;
    await control(h, `/transactions/${renewed.transactionId}/refund`);

    const records = h.outbox.list('apple');
    expect(records.map((r) => [r.type, r.subtype, r.responseStatus])).toEqual([
      ['SUBSCRIBED', 'INITIAL_BUY', 200],
      ['DID_RENEW', undefined, 200],
      ['REFUND', undefined, 200],
    ]);
    expect(h.intake.notices.map((n) => ({ ...n, sentAt: typeof n.sentAt }))).toEqual([
      { publisherId: PUBLISHER_ID, store: 'apple', notificationId: records[0]?.id, notificationType: 'SUBSCRIBED', subtype: 'INITIAL_BUY', purchaseKey: bought.originalTransactionId, transactionId: bought.transactionId, sentAt: 'string' },
      { publisherId: PUBLISHER_ID, store: 'apple', notificationId: records[1]?.id, notificationType: 'DID_RENEW', purchaseKey: bought.originalTransactionId, transactionId: renewed.transactionId, sentAt: 'string' },
      { publisherId: PUBLISHER_ID, store: 'apple', notificationId: records[2]?.id, notificationType: 'REFUND', purchaseKey: bought.originalTransactionId, transactionId: renewed.transactionId, sentAt: 'string' },
    ]);
    expect(h.intake.notices.every((n) => Math.abs(Date.parse(n.sentAt) - Date.now()) < 60_000)).toBe(true);
  });

  it('answers a resend of the same bytes 200, as a duplicate', async () => {
    const h = await start();
    await create(h);
    const id = h.outbox.list('apple')[0]?.id ?? '';
    const resent = await h.outbox.resend(id);
    expect(resent?.responseStatus).toBe(200);
    expect(h.intake.notices.map((n) => n.notificationId)).toEqual([id, id]);
    expect(h.intake.outcomes).toEqual(['accepted', 'duplicate']);
  });

  it('accepts a Production purchase for a publisher configured for both environments', async () => {
    const h = await start();
    const bought = await create(h, { environment: 'Production', type: 'Non-Consumable', productId: 'lifetime' });
    expect(h.outbox.list('apple').map((r) => [r.type, r.responseStatus])).toEqual([['ONE_TIME_CHARGE', 200]]);
    expect(h.intake.notices[0]).toMatchObject({ notificationType: 'ONE_TIME_CHARGE', purchaseKey: bought.originalTransactionId });
  });

  it('answers Apple\'s TEST notification 200 and hands nothing on', async () => {
    const h = await start();
    await new SimulatorClient(h).requestTestNotification();
    expect(h.outbox.list('apple').map((r) => [r.type, r.responseStatus])).toEqual([['TEST', 200]]);
    expect(h.intake.notices).toEqual([]);
  });

  it('answers 400 to a purchase of another app and to a publisher the service does not know', async () => {
    const h = await start();
    await create(h, { bundleId: 'com.other.app' });
    h.outbox.setTarget('apple', `${h.receiverUrl}/storekit2/notifications/99`);
    await create(h);
    expect(h.outbox.list('apple').map((r) => r.responseStatus)).toEqual([400, 400]);
    expect(h.intake.notices).toEqual([]);
  });
});
