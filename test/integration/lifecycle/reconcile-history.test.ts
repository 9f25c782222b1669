import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbReconcileRepository } from '../../../lambdas/lifecycle/adapters/dynamodb-reconcile-repository';
import { receiveAppleNotification } from '../../../lambdas/lifecycle/domain/receive-apple-notification';
import { DEFAULT_RECONCILE_SETTINGS, reconcilePurchases, type ReconcileDeps, type ReconcileOptions } from '../../../lambdas/lifecycle/domain/reconcile-purchases';
import type { NoticeIntake, PurchaseChangeNotice } from '../../../lambdas/lifecycle/ports';
import { systemClock } from '../../../lambdas/platform/clock';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys } from '../../../lambdas/platform/dynamodb-table';
import { StoreUnavailableError } from '../../../lambdas/platform/errors';
import { createLogger } from '../../../lambdas/platform/logger';
import { ReferenceSecretStore } from '../../../lambdas/platform/reference-secret-store';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { acceptNotice } from '../../../lambdas/purchases/domain/accept-notice';
import type { SyncExecutionInput } from '../../../lambdas/purchases/workflow-schemas';
import type { AppleConfig } from '../../../lambdas/stores/apple/config';
import { AppleNotificationHistoryClient, PaginationTokenRejectedError } from '../../../lambdas/stores/apple/notification-history';
import { AppleNotificationDecoder } from '../../../lambdas/stores/apple/notifications';
import type { Publisher } from '../../../lambdas/tenants';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { createAppleSimulator, type AppleSimulator } from '../../../local/simulator/apple-simulator';
import { FaultInjector, handleFaultRoutes } from '../../../local/simulator/faults';
import { createNotificationOutbox, type NotificationOutbox } from '../../../local/simulator/notifications';
import { FakePublishers, publisher } from '../../unit/lifecycle/apple-notification-fixtures';

/*
 * The catch-up against the real store simulator and DynamoDB Local: the simulator sends its App
 * Store Server Notifications V2 to a receiver that runs the route's use case, its outbox drops
 * one, and the reconciliation reads Apple's Get Notification History (the simulator answers it
 * from its outbox, dropped ones included) into an intake that records into the real synchronization
 * repository, idempotent on notificationUUID.
 */

const TABLE = 'reconcile-history-test';
const SANDBOX = { store: 'apple', environment: 'Sandbox' } as const;
const ROUTE = /^\/storekit2\/notifications\/(\d+)$/;
let dynamodb: DynamoDbLocal;
let db: DynamoDBDocumentClient;
let syncs: DynamoDbSynchronizationRepository;
const servers: Server[] = [];
const dirs: string[] = [];
const logger = createLogger('reconcile-history-test', 'silent');

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  syncs = new DynamoDbSynchronizationRepository(db, TABLE);
});
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await dynamodb?.stop();
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What reached the intake, from which path, and what the intake answered. */
interface Handed {
  via: 'route' | 'reconcile';
  notice: PurchaseChangeNotice;
  outcome: 'accepted' | 'duplicate';
}

/** The notice intake of createNoticeIntake (acceptNotice on the real repository) with a recording workflow. */
class RecordingIntake implements NoticeIntake {
  readonly handed: Handed[] = [];
  readonly started: SyncExecutionInput[] = [];
  constructor(private readonly via: () => Handed['via']) {}
  async accept(notice: PurchaseChangeNotice): Promise<'accepted' | 'duplicate'> {
    const outcome = await acceptNotice({ syncs, workflow: { start: async (input) => void this.started.push(input) }, clock: systemClock, logger }, notice);
    this.handed.push({ via: this.via(), notice, outcome });
    return outcome;
  }
}

class Directory extends FakePublishers {
  constructor(private readonly all: Publisher[]) {
    super(all);
  }
  async listPublisherIds(): Promise<number[]> {
    return this.all.map((p) => p.publisherId);
  }
}

interface Harness {
  simulator: AppleSimulator;
  outbox: NotificationOutbox;
  simulatorUrl: string;
  intake: RecordingIntake;
  config: AppleConfig;
  history: AppleNotificationHistoryClient;
  deps: ReconcileDeps;
  /** Sets who hands notices over from now on (the route until the reconciliation runs). */
  phase: { via: Handed['via'] };
  run(options?: Partial<ReconcileOptions>): ReturnType<typeof reconcilePurchases>;
}

async function start(publisherId: number): Promise<Harness> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'reconcile-history-'));
  dirs.push(dataDir);
  const outbox = await createNotificationOutbox({ dataDir, inMemory: true });
  const faults = new FaultInjector();
  const simulator = await createAppleSimulator({ dataDir, inMemory: true, outbox }, faults);
  // The publisher's App Store Connect key is the simulator's, stored as the local runtime stores it.
  mkdirSync(path.join(dataDir, 'secrets'));
  writeFileSync(path.join(dataDir, 'secrets', 'apple-api-key.p8'), simulator.apiKey.privateKeyPem);
  const config: AppleConfig = {
    bundleId: simulator.bundleId,
    appAppleId: simulator.appAppleId,
    issuerId: simulator.apiKey.issuerId,
    keyId: simulator.apiKey.keyId,
    privateKeyRef: 'file:apple-api-key.p8',
    environments: ['Sandbox'],
  };
  const publishers = new Directory([publisher(publisherId, config)]);
  const decoder = new AppleNotificationDecoder({ rootCertificates: [simulator.rootCertificateDer], onlineChecks: false });
  const phase: { via: Handed['via'] } = { via: 'route' };
  const intake = new RecordingIntake(() => phase.via);

  // The notification URL: the route's use case, answering as the route does (200, or 400 when rejected).
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const match = ROUTE.exec(req.url ?? '');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { signedPayload: string };
        try {
          await receiveAppleNotification({ publishers, decoder, intake, logger }, { publisherId: Number(match?.[1]), signedPayload: body.signedPayload });
          res.writeHead(200).end('{}');
        } catch {
          res.writeHead(400).end('{}');
        }
      })();
    });
  });
  outbox.setTarget('apple', `${await listen(receiver)}/storekit2/notifications/${publisherId}`);
  const simulatorServer = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (await handleFaultRoutes(req, res, url, faults, outbox)) return;
      if (await simulator.handle(req, res, url)) return;
      res.writeHead(404).end();
    })();
  });
  const simulatorUrl = await listen(simulatorServer);
  const history = new AppleNotificationHistoryClient({
    secrets: new ReferenceSecretStore({ localDir: path.join(dataDir, 'secrets'), cacheSeconds: 300 }),
    baseUrls: { Production: `${simulatorUrl}/__simulator/apple/production`, Sandbox: `${simulatorUrl}/__simulator/apple/sandbox` },
    timeoutMs: 5000,
  });
  const deps: ReconcileDeps = {
    publishers,
    history,
    decoder,
    // These publishers have no Google configuration: Google is never asked.
    google: { listVoided: () => Promise.reject(new Error('no Google in this test')) },
    intake,
    reconcile: new DynamoDbReconcileRepository(db, TABLE),
    clock: systemClock,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    logger,
  };
  return {
    simulator,
    outbox,
    simulatorUrl,
    intake,
    config,
    history,
    deps,
    phase,
    run: (options = {}) => {
      phase.via = 'reconcile';
      return reconcilePurchases(deps, { ...DEFAULT_RECONCILE_SETTINGS, appleRequestsPerSecond: 50, ...options });
    },
  };
}

async function control(h: Harness, route: string, body: unknown = {}): Promise<{ transactionId: string; originalTransactionId: string }> {
  const response = await fetch(`${h.simulatorUrl}/__simulator${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBeLessThan(300);
  return (await response.json()) as { transactionId: string; originalTransactionId: string };
}

const reconciled = (h: Harness) => h.intake.handed.filter((handed) => handed.via === 'reconcile');

describe('notification history catch-up against the store simulator', () => {
  it('a dropped notification reaches the intake as accepted, the ones the route received as duplicates', async () => {
    const h = await start(21);
    const bought = await control(h, '/apple/transactions', { productId: 'premium_monthly' });
    await control(h, `/apple/transactions/${bought.transactionId}/renew`);
    // The next notification is lost on its way, as `POST /__simulator/faults {"store":"apple","dropNotifications":1}` does.
    h.outbox.dropNext('apple', 1);
    await control(h, `/apple/transactions/${bought.transactionId}/expire`);
    const sent = h.outbox.list('apple');
    expect(sent.map((r) => [r.type, r.dropped])).toEqual([
      ['SUBSCRIBED', false],
      ['DID_RENEW', false],
      ['EXPIRED', true],
    ]);
    expect(h.intake.handed.map((handed) => handed.outcome)).toEqual(['accepted', 'accepted']);

    const { report, started } = await h.run();

    expect(reconciled(h).map((handed) => [handed.notice.notificationId, handed.notice.notificationType, handed.outcome])).toEqual([
      [sent[0]?.id, 'SUBSCRIBED', 'duplicate'],
      [sent[1]?.id, 'DID_RENEW', 'duplicate'],
      [sent[2]?.id, 'EXPIRED', 'accepted'],
    ]);
    expect(report).toMatchObject({ publishers: 1, historyPages: 1, notificationsSeen: 3, accepted: 1, duplicates: 2, rejected: 0, refreshesStarted: 1, errors: 0 });
    expect(started).toEqual([{ publisherId: 21, store: 'apple', notificationId: sent[2]?.id, purchaseKey: bought.originalTransactionId, source: 'history' }]);
    // Recorded like a received notification: its notification item names a refresh synchronization, whose workflow started.
    const item = await db.send(new GetCommand({ TableName: TABLE, Key: keys.notification(21, 'apple', sent[2]?.id ?? '') }));
    const sync = await syncs.get({ publisherId: 21, synchronizationId: String(item.Item?.synchronizationId) });
    expect(sync).toMatchObject({ kind: 'refresh', purchaseKey: bought.originalTransactionId, notice: { id: sent[2]?.id, type: 'EXPIRED' } });
    expect(h.intake.started.map((input) => input.synchronizationId)).toContain(sync?.synchronizationId);

    // The cursor names the finished window; the next run reads only its overlap again, all duplicates.
    const cursor = await h.deps.reconcile.getCursor(21, SANDBOX);
    expect(cursor?.paginationToken).toBeUndefined();
    expect(Date.parse(cursor?.endDate ?? '') - Date.parse(cursor?.startDate ?? '')).toBe(DEFAULT_RECONCILE_SETTINGS.firstLookbackSeconds * 1000);
    const again = await h.run();
    expect(again.report).toMatchObject({ notificationsSeen: 3, accepted: 0, duplicates: 3 });
  });

  it('pages through more than one page of history with Apple\'s pagination token, kept in the cursor between runs', async () => {
    const h = await start(22);
    // 22 one-time purchases: the simulator, like Apple, answers 20 notifications per page.
    for (let i = 0; i < 22; i += 1) await control(h, '/apple/transactions', { productId: 'lifetime', type: 'Non-Consumable' });
    h.outbox.dropNext('apple', 1);
    await control(h, '/apple/transactions', { productId: 'lifetime', type: 'Non-Consumable' });

    const first = await h.run({ maxHistoryPages: 1 });
    expect(first.report).toMatchObject({ historyPages: 1, notificationsSeen: 20, duplicates: 20, accepted: 0 });
    const cursor = await h.deps.reconcile.getCursor(22, SANDBOX);
    expect(cursor?.paginationToken).toEqual(expect.any(String));

    const second = await h.run();
    expect(second.report).toMatchObject({ historyPages: 1, notificationsSeen: 3, duplicates: 2, accepted: 1 });
    expect(await h.deps.reconcile.getCursor(22, SANDBOX)).toEqual({ startDate: cursor?.startDate, endDate: cursor?.endDate });
  });

  it('maps Apple\'s answers: 429 → StoreUnavailableError (the cursor stays), a bad token → PaginationTokenRejectedError', async () => {
    const h = await start(23);
    await control(h, '/apple/transactions', { productId: 'premium_monthly' });
    await control(h, '/faults', { store: 'apple', status: 429, count: 1 });
    const failed = await h.run();
    expect(failed.report).toMatchObject({ historyPages: 0, errors: 1 });
    expect(await h.deps.reconcile.getCursor(23, SANDBOX)).toBeUndefined();

    const window = { startDate: new Date(Date.now() - 3600_000), endDate: new Date() };
    await expect(h.history.page(h.config, 'Sandbox', window, 'not-a-token')).rejects.toBeInstanceOf(PaginationTokenRejectedError);
    await control(h, '/faults', { store: 'apple', status: 503, count: 1 });
    await expect(h.history.page(h.config, 'Sandbox', window, undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
    const page = await h.history.page(h.config, 'Sandbox', window, undefined);
    expect(page.signedPayloads).toHaveLength(1);
    expect(page.paginationToken).toBeUndefined();
  });
});
