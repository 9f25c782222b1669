import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { acknowledgePending, type AcknowledgePendingDeps } from '../../../lambdas/lifecycle/domain/acknowledge-pending';
import { DEFAULT_RECONCILE_SETTINGS } from '../../../lambdas/lifecycle/domain/reconcile-purchases';
import { makeReconcileHandler } from '../../../lambdas/lifecycle/handlers/reconcile-purchases';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys, PENDING_ACKNOWLEDGEMENT_SHARD, TABLE_DEFINITION } from '../../../lambdas/platform/dynamodb-table';
import { ConfigurationError } from '../../../lambdas/platform/errors';
import { DynamoDbPendingAcknowledgements } from '../../../lambdas/purchases/adapters/dynamodb-pending-acknowledgements';
import type { PendingAcknowledgementInput } from '../../../lambdas/purchases/ports/pending-acknowledgements';
import { GoogleAccessTokenProvider } from '../../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../../lambdas/stores/google/adapters/google-play-verifier';
import type { GoogleProfile } from '../../../lambdas/stores/google/ports';
import type { Publisher } from '../../../lambdas/tenants';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { FaultInjector } from '../../../local/simulator/faults';
import { createGoogleSimulator, type GoogleSimulator } from '../../../local/simulator/google-simulator';
import { FakePublisherRepository, RecordingLogger } from '../../support/fakes';

/*
 * Pending Google acknowledgements on DynamoDB Local, acknowledged by the reconciliation's step
 * (acknowledgePending) through the real Play Developer API client against the Google Play simulator:
 * an outage is retried until Google confirms, Google's three days end the attempts, and Google's
 * refusal of a token it does not know is final.
 */

const TABLE = 'acknowledge-pending-test';
const PACKAGE = 'com.example.iapsync';
const SA_REF = 'file:google-service-account.json';
const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let dynamodb: DynamoDbLocal;
let db: DynamoDBDocumentClient;
let pending: DynamoDbPendingAcknowledgements;
let simulator: GoogleSimulator;
let server: Server;
let baseUrl: string;
let dataDir: string;
const faults = new FaultInjector();
let google: GooglePlayStoreVerifier;
let profile: GoogleProfile;
let publishers: FakePublisherRepository;

/** A clock the test moves. */
const clock = { at: T0, now: () => new Date(clock.at) };

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  pending = new DynamoDbPendingAcknowledgements(db, TABLE);
  dataDir = mkdtempSync(join(tmpdir(), 'acknowledge-pending-'));
  simulator = await createGoogleSimulator({ dataDir, inMemory: true, defaultPackageName: PACKAGE }, faults);
  server = createServer((req, res) => {
    void (async () => {
      if (!(await simulator.handle(req, res, new URL(req.url ?? '/', 'http://127.0.0.1')))) res.writeHead(404).end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  google = new GooglePlayStoreVerifier({
    secrets: {
      get: async (ref) => {
        if (ref !== SA_REF) throw new ConfigurationError(`no secret ${ref}`);
        return simulator.serviceAccountJson;
      },
    },
    tokens: new GoogleAccessTokenProvider({ tokenUrl: simulator.tokenUrl(baseUrl), timeoutMs: 5000 }),
    rootUrl: simulator.apiRootUrl(baseUrl),
    timeoutMs: 5000,
  });
  profile = { packageName: PACKAGE, serviceAccountRef: SA_REF };
  const publisher: Publisher = {
    publisherId: 1,
    name: 'Demo',
    tokenHash: '0'.repeat(64),
    jwt: {},
    storeKit: { activated: true, migrationInProgress: false },
    google: { profiles: [profile] },
    ownershipPolicy: 'keep',
  };
  publishers = new FakePublisherRepository([publisher, { ...publisher, publisherId: 2 }]);
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server?.closeAllConnections();
  await dynamodb?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  faults.set('google', 503, 0);
});

async function subscription(): Promise<string> {
  const reply = await fetch(`${baseUrl}/__simulator/google/subscriptions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ productId: 'premium_monthly' }),
  });
  expect(reply.status).toBe(201);
  return String(((await reply.json()) as { purchaseToken: string }).purchaseToken);
}

async function googleSaysAcknowledged(token: string): Promise<boolean> {
  const read = await google.verify(profile, token);
  if (read.outcome !== 'verified') throw new Error(`Google does not know ${token}`);
  return read.facts.acknowledged;
}

let sequence = 0;
function input(purchaseToken: string, overrides: Partial<PendingAcknowledgementInput> = {}): PendingAcknowledgementInput {
  sequence += 1;
  return {
    publisherId: 1,
    purchaseToken,
    productId: 'premium_monthly',
    packageName: PACKAGE,
    synchronizationId: `31111111-2222-4333-8444-${String(sequence).padStart(12, '0')}`,
    acknowledgeBy: new Date(clock.at + 3 * DAY),
    lastError: 'StoreUnavailableError',
    ...overrides,
  };
}

function deps(logger = new RecordingLogger()): AcknowledgePendingDeps & { logger: RecordingLogger } {
  return { pending, google, publishers, clock, logger };
}

const OPTIONS = { limit: 100, retrySeconds: 900 };

/** Settles everything due now (so each test starts from an empty queue), whatever it is. */
async function drain(): Promise<void> {
  for (const entry of await pending.listDue(new Date('9999-12-31T23:59:59.999Z'), 1000)) await pending.settle(entry, { kind: 'given_up', reason: 'test cleanup' }, clock.now());
}

describe('pending Google acknowledgements, retried by the reconciliation until Google confirms', () => {
  beforeEach(async () => {
    await drain();
    clock.at = T0;
  });

  it('Google down: each run fails and moves the next attempt on; once Google answers, acknowledged, out of the index, and a further run does nothing', async () => {
    const token = await subscription();
    await expect(pending.record(input(token), clock.now())).resolves.toBe('recorded');
    faults.set('google', 503, 10_000);

    const first = await acknowledgePending(deps(), OPTIONS);
    expect(first).toEqual({ due: 1, acknowledged: 0, failed: 1, givenUp: 0, pending: 1, errors: 0 });
    expect(await pending.find(1, token)).toMatchObject({ state: 'pending', attempts: 1, dueAt: new Date(T0 + 900_000).toISOString(), lastError: expect.stringMatching(/^StoreUnavailableError: Google answered 503/) });
    // Not due again before its next attempt.
    clock.at = T0 + 600_000;
    expect(await acknowledgePending(deps(), OPTIONS)).toMatchObject({ due: 0, pending: 1 });

    clock.at = T0 + HOUR;
    faults.set('google', 503, 0);
    const later = await acknowledgePending(deps(), OPTIONS);
    expect(later).toEqual({ due: 1, acknowledged: 1, failed: 0, givenUp: 0, pending: 0, errors: 0 });
    expect(await googleSaysAcknowledged(token)).toBe(true);
    expect(await pending.find(1, token)).toMatchObject({ state: 'acknowledged', attempts: 2, acknowledgedAt: new Date(T0 + HOUR).toISOString() });
    const item = (await db.send(new GetCommand({ TableName: TABLE, Key: keys.pendingAcknowledgement(1, token) }))).Item ?? {};
    expect(item[TABLE_DEFINITION.reconcileIndex.partitionKey.name]).toBeUndefined();

    clock.at = T0 + 2 * HOUR;
    expect(await acknowledgePending(deps(), OPTIONS)).toEqual({ due: 0, acknowledged: 0, failed: 0, givenUp: 0, pending: 0, errors: 0 });
    // A later failure of another synchronization of the same purchase records nothing: Google's acknowledgement is for good.
    await expect(pending.record(input(token), clock.now())).resolves.toBe('already_acknowledged');
  });

  it('a purchase Google already reads acknowledged (the workflow got through, then its execution was lost) is confirmed with no harm', async () => {
    const token = await subscription();
    await google.acknowledge(profile, token, 'premium_monthly');
    await pending.record(input(token, { lastError: 'the execution ended before its acknowledgement was known to be done' }), clock.now());
    expect(await acknowledgePending(deps(), OPTIONS)).toMatchObject({ due: 1, acknowledged: 1, givenUp: 0 });
    expect(await pending.find(1, token)).toMatchObject({ state: 'acknowledged' });
  });

  it("Google's three days over: given up without calling Google, logged as an error; a synchronization that finds it unacknowledged again makes it pending again", async () => {
    const token = await subscription();
    await pending.record(input(token, { acknowledgeBy: new Date(T0 + 3 * DAY) }), clock.now());
    clock.at = T0 + 3 * DAY;
    const logger = new RecordingLogger();
    expect(await acknowledgePending(deps(logger), OPTIONS)).toMatchObject({ due: 1, acknowledged: 0, givenUp: 1, pending: 0 });
    expect(await googleSaysAcknowledged(token)).toBe(false);
    expect(await pending.find(1, token)).toMatchObject({ state: 'given_up', givenUpReason: expect.stringMatching(/three days ended/) });
    expect(logger.entries.filter((entry) => entry.level === 'error').map((entry) => entry.message)).toEqual([
      'acknowledgement given up: Google refunds a purchase left unacknowledged for three days',
    ]);
    // Nothing of the token in the log line: its hash only.
    expect(JSON.stringify(logger.entries)).not.toContain(token);

    await expect(pending.record(input(token, { acknowledgeBy: new Date(clock.at + DAY) }), clock.now())).resolves.toBe('recorded');
    expect(await pending.find(1, token)).toMatchObject({ state: 'pending', attempts: 0, acknowledgeBy: new Date(clock.at + DAY).toISOString() });
  });

  it('a token Google does not know is refused for good: given up at the first attempt', async () => {
    await pending.record(input('unknown.token.of.nobody'), clock.now());
    expect(await acknowledgePending(deps(), OPTIONS)).toMatchObject({ due: 1, givenUp: 1, failed: 0 });
    expect(await pending.find(1, 'unknown.token.of.nobody')).toMatchObject({ state: 'given_up', givenUpReason: expect.stringMatching(/^StoreRejectedError/) });
  });

  it('recording twice keeps one item with the earliest deadline and its attempt count', async () => {
    const token = await subscription();
    await pending.record(input(token, { acknowledgeBy: new Date(T0 + 2 * DAY) }), clock.now());
    faults.set('google', 503, 10_000);
    await acknowledgePending(deps(), OPTIONS);
    await pending.record(input(token, { acknowledgeBy: new Date(T0 + 3 * DAY) }), clock.now());
    expect(await pending.find(1, token)).toMatchObject({ state: 'pending', attempts: 1, acknowledgeBy: new Date(T0 + 2 * DAY).toISOString(), dueAt: new Date(T0).toISOString() });
    expect(await pending.countPending()).toBe(1);
  });

  it('is bounded per run, oldest first, and one publisher at a time when asked (the command line)', async () => {
    const tokens = [await subscription(), await subscription(), await subscription()];
    for (const [index, token] of tokens.entries()) {
      clock.at = T0 + index * 1000;
      await pending.record(input(token, { publisherId: index === 2 ? 2 : 1 }), clock.now());
    }
    clock.at = T0 + 10_000;
    const one = await acknowledgePending(deps(), { ...OPTIONS, limit: 1 });
    expect(one).toMatchObject({ due: 1, acknowledged: 1, pending: 2 });
    expect(await googleSaysAcknowledged(tokens[0] ?? '')).toBe(true);
    const second = await acknowledgePending(deps(), { ...OPTIONS, publisherId: 2 });
    expect(second).toMatchObject({ due: 1, acknowledged: 1, pending: 0 });
    expect(await googleSaysAcknowledged(tokens[2] ?? '')).toBe(true);
    expect(await googleSaysAcknowledged(tokens[1] ?? '')).toBe(false);
    expect(await pending.countPending()).toBe(1);
  });

  it('lists only its own partition of the reconcile index (never a purchase of the reconciliation)', async () => {
    const token = await subscription();
    await pending.record(input(token), clock.now());
    const item = (await db.send(new GetCommand({ TableName: TABLE, Key: keys.pendingAcknowledgement(1, token) }))).Item ?? {};
    expect(item[TABLE_DEFINITION.reconcileIndex.partitionKey.name]).toBe(PENDING_ACKNOWLEDGEMENT_SHARD);
    expect(item.pk).not.toContain(token);
  });
});

describe('the ReconcilePurchases handler', () => {
  beforeEach(async () => {
    await drain();
    clock.at = T0;
  });

  it('acknowledges what is pending and publishes AcknowledgeFailures, AcknowledgementsGivenUp and AcknowledgementsPending (zero included)', async () => {
    const token = await subscription();
    await pending.record(input(token), clock.now());
    await pending.record(input('unknown.token.two'), clock.now());
    const added: [string, string | undefined, number | undefined][] = [];
    const metrics = { add: (metric: string, dimension: string | undefined, value?: number) => void added.push([metric, dimension, value]), flush: () => undefined };
    const handler = makeReconcileHandler(
      {
        publishers: { ...publishers, getPublisher: (id: number) => publishers.getPublisher(id), customerExists: async () => true, getOfferId: async () => undefined, listPublisherIds: async () => [] },
        history: { page: async () => ({ signedPayloads: [] }) },
        decoder: { decode: async () => Promise.reject(new Error('no notifications here')) },
        google,
        intake: { accept: async () => 'accepted' },
        reconcile: { getCursor: async () => undefined, saveCursor: async () => undefined, listDue: async () => [], postpone: async () => true },
        clock,
        sleep: async () => undefined,
        logger: new RecordingLogger(),
        metrics,
        acknowledgements: { pending, google },
      },
      DEFAULT_RECONCILE_SETTINGS,
    );
    const report = await handler({});
    expect(report.acknowledgements).toEqual({ due: 2, acknowledged: 1, failed: 0, givenUp: 1, pending: 0, errors: 0 });
    expect(added).toEqual(expect.arrayContaining([['acknowledgementsGivenUp', undefined, 1], ['acknowledgementsPending', undefined, 0]]));
    expect(added.some(([metric]) => metric === 'acknowledgeFailures')).toBe(false);
    expect(await googleSaysAcknowledged(token)).toBe(true);
  });
});
