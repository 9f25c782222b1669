import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { DynamoDbDeliveryLog, DynamoDbWebhookEndpointRepository } from '../../../lambdas/webhooks/adapters/dynamodb-webhook-repository';
import { deliveryWebhookId } from '../../../lambdas/webhooks/domain/deliver-webhooks';
import { generateWebhookSecret } from '../../../lambdas/webhooks/domain/signature';
import type { Delivery, WebhookTopic } from '../../../lambdas/webhooks/ports';
import {
  ENTITLEMENT_CHANGED_DETAIL_TYPE,
  EntitlementChangedWebhookBody,
  EVENT_SOURCE,
  SYNC_RESULT_DETAIL_TYPE,
  SyncResultWebhookBody,
  WEBHOOK_EVENT_PATTERN,
  type EntitlementChangedDetail,
} from '../../../lambdas/events/schemas';
import { createLogger } from '../../../lambdas/platform/logger';
import { freePort, startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { LocalEventBus, readEventLog } from '../../../local/event-bus';
import { LocalDeadLetterQueue, createLocalWebhookDelivery, type LocalWebhookDelivery } from '../../../local/webhook-queue';

/**
 * Webhook delivery on the local runtime: DynamoDB Local (in memory), the in-process queue feeding
 * the delivery handler, the local event bus with the deployed rule pattern, and real receivers on
 * 127.0.0.1. Signatures are checked with the Standard Webhooks reference library.
 *
 * The schedule is scaled by 0.00005 (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h become 0, 15 ms,
 * 90 ms, 360 ms, 0.9 s, 1.8 s, 1.8 s), so a delivery that exhausts all eight attempts takes ~5 s.
 */
const SCALE = 0.00005;
const TABLE = 'iap-sync-webhook-test';
const FIXTURE = JSON.parse(
  readFileSync(path.join(__dirname, '../../contract/fixtures/inapp-purchase-sync-result.webhook.json'), 'utf8'),
) as { broadcasterId: number; topic: string; data: Record<string, unknown> };

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  at: number;
}

/** Per-path behaviour of the receiver: the status to answer for the n-th request (1-based). */
type Behaviour = (n: number) => number;

let dynamodb: DynamoDbLocal;
let db: DynamoDBDocumentClient;
let secretsDir: string;
let delivery: LocalWebhookDelivery;
let bus: LocalEventBus;
let receiver: Server;
let receiverUrl: string;
const extraServers: Server[] = [];
const received: Received[] = [];
const behaviours = new Map<string, Behaviour>();
const counts = new Map<string, number>();
let endpoints: DynamoDbWebhookEndpointRepository;
let log: DynamoDbDeliveryLog;

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  return flat;
}

function recordingHandler(pathPrefix = '') {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const requestPath = pathPrefix + (req.url ?? '/');
      const n = (counts.get(requestPath) ?? 0) + 1;
      counts.set(requestPath, n);
      const status = (behaviours.get(requestPath) ?? (() => 200))(n);
      received.push({ path: requestPath, headers: flatHeaders(req.headers), body: Buffer.concat(chunks).toString('utf8'), status, at: Date.now() });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  };
}

const at = (requestPath: string) => received.filter((request) => request.path === requestPath);

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function addEndpoint(
  publisherId: number,
  url: string,
  topics: WebhookTopic[] = [SYNC_RESULT_DETAIL_TYPE],
): Promise<{ endpointId: string; secret: string }> {
  const endpointId = `ep_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const secret = generateWebhookSecret();
  writeFileSync(path.join(secretsDir, endpointId), secret, { mode: 0o600 });
  const now = new Date().toISOString();
  await endpoints.put({
    publisherId,
    endpointId,
    url,
    topics,
    enabled: true,
    secretRef: `file:${endpointId}`,
    createdAt: now,
    updatedAt: now,
  });
  return { endpointId, secret };
}

/** Publishes one event per synchronization id through the bus (PutEvents, 10 entries per call like EventBridge). */
async function publish(publisherId: number, synchronizationIds: string[]): Promise<void> {
  const before = delivery.queue.enqueued;
  for (let index = 0; index < synchronizationIds.length; index += 10) {
    const entries = synchronizationIds.slice(index, index + 10).map((synchronizationId) => ({
      EventBusName: 'webhook-test',
      Source: EVENT_SOURCE,
      DetailType: SYNC_RESULT_DETAIL_TYPE,
      Detail: JSON.stringify({ ...FIXTURE.data, synchronizationId, broadcasterId: publisherId }),
    }));
    const out = (await bus.call('PutEvents', { Entries: entries })) as { FailedEntryCount: number };
    expect(out.FailedEntryCount).toBe(0);
  }
  // The bus delivers to rule targets right after PutEvents answers (setImmediate), as EventBridge does asynchronously.
  await new Promise((resolve) => setImmediate(resolve));
  expect(delivery.queue.enqueued - before).toBe(synchronizationIds.length);
}

function expectVerified(request: Received, secret: string): void {
  // Throws WebhookVerificationError on a bad signature or a timestamp outside 5 minutes of now.
  expect(() => new Webhook(secret).verify(request.body, request.headers)).not.toThrow();
}

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  endpoints = new DynamoDbWebhookEndpointRepository(db, TABLE);
  log = new DynamoDbDeliveryLog(db, TABLE);
  secretsDir = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-webhook-secrets-'));
  delivery = createLocalWebhookDelivery({
    db,
    tableName: TABLE,
    secretsDir,
    scale: SCALE,
    logger: createLogger('test', 'silent'),
    queue: { visibilityTimeoutSeconds: 0.05 },
  });
  bus = new LocalEventBus({ busName: 'webhook-test', rules: [delivery.rule] });
  receiver = createServer(recordingHandler());
  receiverUrl = `http://127.0.0.1:${await listen(receiver)}`;
}, 90_000);

afterAll(async () => {
  await delivery?.stop();
  for (const server of [receiver, ...extraServers]) {
    if (!server?.listening) continue;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  await dynamodb?.stop();
  if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
});

it('retries a receiver that fails 3 times, then delivers: same webhook id, valid signatures, logged attempts', async () => {
  const publisherId = 501;
  behaviours.set('/flaky', (n) => (n <= 3 ? 503 : 200));
  const { endpointId, secret } = await addEndpoint(publisherId, `${receiverUrl}/flaky`);
  const synchronizationId = randomUUID();

  await publish(publisherId, [synchronizationId]);
  await delivery.drain();

  const requests = at('/flaky');
  expect(requests.map((request) => request.status)).toEqual([503, 503, 503, 200]);
  const webhookId = deliveryWebhookId(synchronizationId, endpointId);
  expect(new Set(requests.map((request) => request.headers['webhook-id']))).toEqual(new Set([webhookId]));
  for (const request of requests) {
    expectVerified(request, secret);
    expect(JSON.parse(request.body)).toEqual({ broadcasterId: publisherId, topic: SYNC_RESULT_DETAIL_TYPE, data: { ...FIXTURE.data, synchronizationId } });
  }
  // The second and third waits of the scaled schedule (15 ms, 90 ms) were kept.
  const gaps = requests.slice(1).map((request, index) => request.at - (requests[index]?.at ?? 0));
  expect(gaps[1]).toBeGreaterThanOrEqual(15);
  expect(gaps[2]).toBeGreaterThanOrEqual(90);

  const attempts = await log.get(webhookId);
  expect(attempts.map((attempt) => [attempt.attempt, attempt.status, attempt.next])).toEqual([
    [1, 503, 'retry'],
    [2, 503, 'retry'],
    [3, 503, 'retry'],
    [4, 200, 'done'],
  ]);
  expect(attempts.every((attempt) => attempt.url === `${receiverUrl}/flaky` && attempt.latencyMs >= 0)).toBe(true);
  const listed = await log.listByPublisher(publisherId, { limit: 10 });
  expect(listed.map((entry) => entry.attempt)).toEqual([4, 3, 2, 1]);
  expect(delivery.queue.poisonMessages).toEqual([]);
});

it('disables an endpoint that answers 410 and sends it nothing more', async () => {
  const publisherId = 502;
  behaviours.set('/gone', () => 410);
  const { endpointId } = await addEndpoint(publisherId, `${receiverUrl}/gone`);
  const { secret: okSecret } = await addEndpoint(publisherId, `${receiverUrl}/still-here`);

  await publish(publisherId, [randomUUID()]);
  await delivery.drain();

  expect(at('/gone')).toHaveLength(1);
  expect(await endpoints.get(publisherId, endpointId)).toMatchObject({ enabled: false, disabledReason: '410' });
  await publish(publisherId, [randomUUID()]);
  await delivery.drain();
  expect(at('/gone')).toHaveLength(1);
  expect(at('/still-here')).toHaveLength(2);
  for (const request of at('/still-here')) expectVerified(request, okSecret);
});

it('dead-letters after eight failed attempts; a replay re-sends with the same webhook id and a fresh signature', async () => {
  const publisherId = 503;
  let up = false;
  behaviours.set('/down', () => (up ? 200 : 500));
  const { endpointId, secret } = await addEndpoint(publisherId, `${receiverUrl}/down`);
  const synchronizationId = randomUUID();
  const webhookId = deliveryWebhookId(synchronizationId, endpointId);

  await publish(publisherId, [synchronizationId]);
  await delivery.drain();

  expect(at('/down').map((request) => request.status)).toEqual([500, 500, 500, 500, 500, 500, 500, 500]);
  expect((await delivery.deadLetters.list()).map((dead) => [dead.webhookId, dead.attempt])).toEqual([[webhookId, 8]]);
  expect((await log.get(webhookId)).at(-1)).toMatchObject({ attempt: 8, status: 500, next: 'dead-letter' });

  up = true;
  const replay = await delivery.replayDelivery(webhookId);
  await delivery.drain();

  expect(replay).toMatchObject({ webhookId, source: 'dead-letter-queue', report: { outcome: 'done', attempt: 1, status: 200 } });
  const resent = at('/down').at(-1);
  if (!resent) throw new Error('no replayed request');
  expect(resent.status).toBe(200);
  expect(resent.headers['webhook-id']).toBe(webhookId);
  expectVerified(resent, secret);
  expect(Number(resent.headers['webhook-timestamp'])).toBeGreaterThanOrEqual(Number(at('/down')[0]?.headers['webhook-timestamp']));
  expect(await delivery.deadLetters.list()).toEqual([]);
  expect((await log.get(webhookId)).map((attempt) => attempt.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 1]);
}, 30_000);

it('delivers every event of a burst of 200 to a receiver failing every 3rd request: 200 distinct ids, none missing', async () => {
  const publisherId = 504;
  // At most a third of any run of requests fails, so the deliveries still failing shrink by about
  // two thirds per retry round (200, 67, 23, 8, 3, 1): none can fail all eight attempts.
  behaviours.set('/every-third', (n) => (n % 3 === 0 ? 500 : 204));
  const { endpointId, secret } = await addEndpoint(publisherId, `${receiverUrl}/every-third`);
  const synchronizationIds = Array.from({ length: 200 }, () => randomUUID());

  await publish(publisherId, synchronizationIds);
  await delivery.drain();

  const requests = at('/every-third');
  const delivered = requests.filter((request) => request.status === 204);
  const expected = new Set(synchronizationIds.map((id) => deliveryWebhookId(id, endpointId)));
  const deliveredIds = new Set(delivered.map((request) => request.headers['webhook-id']));
  expect(deliveredIds.size).toBe(200);
  expect([...expected].filter((id) => !deliveredIds.has(id))).toEqual([]);
  // Every request that failed was retried; each id was accepted exactly once.
  expect(delivered).toHaveLength(200);
  expect(requests.length - delivered.length).toBe(requests.filter((request) => request.status === 500).length);
  expect(requests.filter((request) => request.status === 500).length).toBeGreaterThanOrEqual(99);
  for (const request of requests) expectVerified(request, secret);
  expect(await delivery.deadLetters.list()).toEqual([]);
  expect(delivery.queue.poisonMessages).toEqual([]);
}, 60_000);

it('loses nothing while the receiver is down: events sent meanwhile arrive once it is back', async () => {
  const publisherId = 505;
  const port = await freePort();
  const { endpointId, secret } = await addEndpoint(publisherId, `http://127.0.0.1:${port}/late`);
  const synchronizationIds = Array.from({ length: 5 }, () => randomUUID());

  await publish(publisherId, synchronizationIds);
  // Wait until every delivery has failed at least twice against the closed port.
  const ids = synchronizationIds.map((id) => deliveryWebhookId(id, endpointId));
  for (let waited = 0; waited < 100; waited += 1) {
    const logged = await Promise.all(ids.map((id) => log.get(id)));
    if (logged.every((attempts) => attempts.length >= 2)) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const failedBefore = await Promise.all(ids.map((id) => log.get(id)));
  expect(failedBefore.every((attempts) => attempts.length >= 2 && attempts.every((attempt) => attempt.error === 'connection'))).toBe(true);

  const late = createServer(recordingHandler(`:${port}`));
  extraServers.push(late);
  await listen(late, port);
  await delivery.drain();

  const arrived = received.filter((request) => request.path === `:${port}/late`);
  expect(new Set(arrived.map((request) => request.headers['webhook-id']))).toEqual(new Set(ids));
  expect(arrived).toHaveLength(5);
  for (const request of arrived) expectVerified(request, secret);
}, 30_000);

it('keeps dead letters in a file across restarts of the local stack, when given one', async () => {
  const file = path.join(secretsDir, 'dead-letters.json');
  const dead: Delivery = {
    webhookId: 'msg_persisted000000000001',
    publisherId: 506,
    endpointId: 'ep_persisted',
    topic: SYNC_RESULT_DETAIL_TYPE,
    body: '{}',
    attempt: 8,
  };
  await new LocalDeadLetterQueue(file).put(dead);
  const reopened = new LocalDeadLetterQueue(file);
  expect(await reopened.list()).toEqual([dead]);
  expect(await reopened.remove(dead.webhookId)).toBe(true);
  expect(await new LocalDeadLetterQueue(file).list()).toEqual([]);
  writeFileSync(file, '[{"webhookId": 1}]');
  expect(() => new LocalDeadLetterQueue(file)).toThrow(/not a valid dead-letter file/);
});

it('at start-up queues again the deliveries of logged events that were never attempted, and only those', async () => {
  const publisherId = 509;
  const { endpointId } = await addEndpoint(publisherId, `${receiverUrl}/restart`);
  const [attempted, neverAttempted] = [randomUUID(), randomUUID()];
  await publish(publisherId, [attempted]);
  await delivery.drain();
  expect(at('/restart')).toHaveLength(1);

  // The bus log of a killed process: the delivered event, one it published but never delivered, an old one and a cut line.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-requeue-'));
  try {
    const line = (synchronizationId: string, time: string) =>
      JSON.stringify({ time, 'detail-type': SYNC_RESULT_DETAIL_TYPE, detail: { ...FIXTURE.data, synchronizationId, broadcasterId: publisherId } });
    const now = new Date().toISOString();
    const logFile = path.join(dir, 'events.jsonl');
    writeFileSync(logFile, [line(attempted, now), line(neverAttempted, now), line(randomUUID(), '2020-01-01T00:00:00.000Z'), '{"cut'].join('\n'));

    expect(await delivery.requeueUndelivered(readEventLog(logFile), new Date(Date.now() - 3600_000))).toBe(1);
    await delivery.drain();
    const requests = at('/restart');
    expect(requests).toHaveLength(2);
    expect(requests[1]?.headers['webhook-id']).toBe(deliveryWebhookId(neverAttempted, endpointId));
    expect(await log.get(deliveryWebhookId(neverAttempted, endpointId))).toHaveLength(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('inappEntitlementChanged as a webhook topic', () => {
  const both: WebhookTopic[] = [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE];
  const entitlementDetail = (publisherId: number, synchronizationId: string | null, cleengCustomerId = 42): EntitlementChangedDetail => ({
    broadcasterId: publisherId,
    cleengCustomerId,
    offerId: 'S123456789_US',
    store: 'apple',
    reason: 'PURCHASED',
    active: true,
    state: 'active',
    expiresAt: '2026-12-23T10:00:00.000Z',
    previousExpiresAt: null,
    willRenew: true,
    productId: 'premium_monthly',
    transactionId: '2000000123',
    originalTransactionId: `orig-${publisherId}`,
    purchaseToken: null,
    packageName: null,
    environment: 'Sandbox',
    ownershipVersion: 1,
    synchronizationId,
    changedAt: new Date().toISOString(),
  });

  it('the local rule is the shared pattern selecting every topic', () => {
    expect(delivery.rule.pattern).toBe(WEBHOOK_EVENT_PATTERN);
    expect(WEBHOOK_EVENT_PATTERN['detail-type']).toEqual([SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE]);
  });

  it('one PutEvents with a result and its entitlement change reaches each endpoint by its topics, signed', async () => {
    const publisherId = 510;
    const subscribed = await addEndpoint(publisherId, `${receiverUrl}/both`, both);
    const byDefault = await addEndpoint(publisherId, `${receiverUrl}/default`);
    const synchronizationId = randomUUID();
    const detail = entitlementDetail(publisherId, synchronizationId);

    // As the workflow publishes them: the result, then one inappEntitlementChanged per customer.
    const out = (await bus.call('PutEvents', {
      Entries: [
        { EventBusName: 'webhook-test', Source: EVENT_SOURCE, DetailType: SYNC_RESULT_DETAIL_TYPE, Detail: JSON.stringify({ ...FIXTURE.data, synchronizationId, broadcasterId: publisherId }) },
        { EventBusName: 'webhook-test', Source: EVENT_SOURCE, DetailType: ENTITLEMENT_CHANGED_DETAIL_TYPE, Detail: JSON.stringify(detail) },
      ],
    })) as { FailedEntryCount: number };
    expect(out.FailedEntryCount).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    await delivery.drain();

    const topics = (requestPath: string) => at(requestPath).map((request) => (JSON.parse(request.body) as { topic: string }).topic).sort();
    expect(topics('/both')).toEqual([ENTITLEMENT_CHANGED_DETAIL_TYPE, SYNC_RESULT_DETAIL_TYPE]);
    expect(topics('/default')).toEqual([SYNC_RESULT_DETAIL_TYPE]);
    for (const request of at('/both')) expectVerified(request, subscribed.secret);
    for (const request of at('/default')) expectVerified(request, byDefault.secret);

    const entitlement = at('/both').find((request) => request.body.includes(ENTITLEMENT_CHANGED_DETAIL_TYPE));
    if (!entitlement) throw new Error('no entitlement webhook');
    const { broadcasterId: _broadcasterId, ...data } = detail;
    expect(EntitlementChangedWebhookBody.parse(JSON.parse(entitlement.body))).toEqual({ broadcasterId: publisherId, topic: ENTITLEMENT_CHANGED_DETAIL_TYPE, data });
    const result = at('/both').find((request) => request.body.includes(SYNC_RESULT_DETAIL_TYPE));
    expect(SyncResultWebhookBody.parse(JSON.parse(result?.body ?? '{}')).data.synchronizationId).toBe(synchronizationId);
    // Both share the synchronizationId, not the webhook id.
    expect(entitlement.headers['webhook-id']).not.toBe(result?.headers['webhook-id']);
    expect(result?.headers['webhook-id']).toBe(deliveryWebhookId(synchronizationId, subscribed.endpointId));

    // The delivery log keeps the topic of each; a replay from it re-sends the same bytes under the same id.
    const logged = await log.get(entitlement.headers['webhook-id'] ?? '');
    expect(logged.map((attempt) => [attempt.topic, attempt.next])).toEqual([[ENTITLEMENT_CHANGED_DETAIL_TYPE, 'done']]);
    const replay = await delivery.replayDelivery(entitlement.headers['webhook-id'] ?? '');
    expect(replay).toMatchObject({ source: 'log', report: { outcome: 'done' } });
    const resent = at('/both').at(-1);
    expect(resent?.body).toBe(entitlement.body);
    expect(resent?.headers['webhook-id']).toBe(entitlement.headers['webhook-id']);
    if (resent) expectVerified(resent, subscribed.secret);
  });

  it('at start-up queues again an entitlement change never attempted (null synchronizationId), and not one already sent', async () => {
    const publisherId = 511;
    await addEndpoint(publisherId, `${receiverUrl}/restart-entitlements`, both);
    const sent = entitlementDetail(publisherId, null, 42);
    const never = entitlementDetail(publisherId, null, 43);
    await bus.call('PutEvents', {
      Entries: [{ EventBusName: 'webhook-test', Source: EVENT_SOURCE, DetailType: ENTITLEMENT_CHANGED_DETAIL_TYPE, Detail: JSON.stringify(sent) }],
    });
    await new Promise((resolve) => setImmediate(resolve));
    await delivery.drain();
    expect(at('/restart-entitlements')).toHaveLength(1);

    // Log lines without an envelope id: the webhook id must not need one.
    const now = new Date().toISOString();
    const logged = [sent, never].map((detail) => ({ time: now, source: EVENT_SOURCE, 'detail-type': ENTITLEMENT_CHANGED_DETAIL_TYPE, detail }));
    expect(await delivery.requeueUndelivered(logged, new Date(Date.now() - 3600_000))).toBe(1);
    await delivery.drain();
    const requests = at('/restart-entitlements');
    expect(requests.map((request) => (JSON.parse(request.body) as { data: { cleengCustomerId: number } }).data.cleengCustomerId)).toEqual([42, 43]);
    expect(new Set(requests.map((request) => request.headers['webhook-id'])).size).toBe(2);
  });
});
