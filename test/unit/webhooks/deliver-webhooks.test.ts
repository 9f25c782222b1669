import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import {
  InvalidDeliveryMessageError,
  DeliveryNotFoundError,
  SQS_MAX_DELAY_SECONDS,
  deliveryWebhookId,
  processDeliveryMessage,
  replayDelivery,
  replaySince,
  type AttemptReport,
  type DeliverWebhooksDeps,
} from '../../../lambdas/webhooks/domain/deliver-webhooks';
import { RETRY_SCHEDULE_SECONDS, type DeliveryAttemptResult } from '../../../lambdas/webhooks/domain/delivery-policy';
import { generateWebhookSecret } from '../../../lambdas/webhooks/domain/signature';
import { makeDeliverWebhooksHandler } from '../../../lambdas/webhooks/handlers/deliver-webhooks';
import type { SecretStore } from '../../../lambdas/platform/secret-store';
import { DEFAULT_WEBHOOK_TOPICS } from '../../../lambdas/webhooks/ports';
import type {
  DeadLetterQueue,
  Delivery,
  DeliveryAttemptRecord,
  DeliveryAttemptSummary,
  DeliveryLog,
  DeliveryLogQuery,
  DeliveryMessage,
  DeliveryQueue,
  DisabledReason,
  PoisonMessage,
  PoisonMessageQueue,
  WebhookEndpoint,
  WebhookEndpointRepository,
  WebhookSendRequest,
  WebhookSender,
} from '../../../lambdas/webhooks/ports';
import {
  ENTITLEMENT_CHANGED_DETAIL_TYPE,
  EVENT_REGISTRY,
  EVENT_SOURCE,
  SYNC_RESULT_DETAIL_TYPE,
  type EntitlementChangedDetail,
  type EventDetailType,
} from '../../../lambdas/events/schemas';
import { createLogger } from '../../../lambdas/platform/logger';
import { RecordingLogger } from '../../support/fakes';

const FIXTURE_TEXT = readFileSync(path.join(__dirname, '../../contract/fixtures/inapp-purchase-sync-result.webhook.json'), 'utf8');
const FIXTURE = JSON.parse(FIXTURE_TEXT) as { broadcasterId: number; topic: string; data: Record<string, unknown> & { synchronizationId: string } };
const PUBLISHER = FIXTURE.broadcasterId;
const START_MS = Date.parse('2026-11-23T10:00:02.000Z');

// ---------------------------------------------------------------------------------------------
// In-memory ports

class MemoryEndpoints implements WebhookEndpointRepository {
  readonly items = new Map<string, WebhookEndpoint>();
  private key = (publisherId: number, endpointId: string) => `${publisherId}/${endpointId}`;
  async put(endpoint: WebhookEndpoint) {
    this.items.set(this.key(endpoint.publisherId, endpoint.endpointId), { ...endpoint });
  }
  async get(publisherId: number, endpointId: string) {
    const endpoint = this.items.get(this.key(publisherId, endpointId));
    return endpoint ? { ...endpoint } : undefined;
  }
  async listByPublisher(publisherId: number) {
    return [...this.items.values()].filter((endpoint) => endpoint.publisherId === publisherId).map((endpoint) => ({ ...endpoint }));
  }
  async setEnabled(publisherId: number, endpointId: string, enabled: boolean, reason: DisabledReason | undefined, now: Date) {
    const endpoint = this.items.get(this.key(publisherId, endpointId));
    if (!endpoint) return undefined;
    endpoint.enabled = enabled;
    if (reason !== undefined) endpoint.disabledReason = reason;
    endpoint.updatedAt = now.toISOString();
    return { ...endpoint };
  }
  async rotateSecret(publisherId: number, endpointId: string, secretRef: string, until: Date, now: Date) {
    const endpoint = this.items.get(this.key(publisherId, endpointId));
    if (!endpoint) return undefined;
    if (endpoint.previousSecretRef !== undefined) endpoint.retiredSecretRefs = [...(endpoint.retiredSecretRefs ?? []), endpoint.previousSecretRef];
    endpoint.previousSecretRef = endpoint.secretRef;
    endpoint.previousSecretActiveUntil = until.toISOString();
    endpoint.secretRef = secretRef;
    endpoint.updatedAt = now.toISOString();
    return { ...endpoint };
  }
  async forgetRetiredSecrets(publisherId: number, endpointId: string, refs: readonly string[], now: Date) {
    const endpoint = this.items.get(this.key(publisherId, endpointId));
    if (!endpoint) return;
    const retired = (endpoint.retiredSecretRefs ?? []).filter((ref) => !refs.includes(ref));
    if (retired.length > 0) endpoint.retiredSecretRefs = retired;
    else delete endpoint.retiredSecretRefs;
    const until = endpoint.previousSecretActiveUntil;
    if (endpoint.previousSecretRef !== undefined && refs.includes(endpoint.previousSecretRef) && until !== undefined && until <= now.toISOString()) {
      delete endpoint.previousSecretRef;
      delete endpoint.previousSecretActiveUntil;
    }
  }
}

class MemoryLog implements DeliveryLog {
  readonly records: DeliveryAttemptRecord[] = [];
  async append(record: DeliveryAttemptRecord) {
    this.records.push(record);
  }
  async listByPublisher(publisherId: number, query: DeliveryLogQuery): Promise<DeliveryAttemptSummary[]> {
    return this.records
      .filter((record) => record.publisherId === publisherId && (query.since === undefined || record.at >= query.since))
      .reverse()
      .slice(0, query.limit)
      .map(({ body: _body, ...summary }) => summary);
  }
  async get(webhookId: string) {
    return this.records.filter((record) => record.webhookId === webhookId);
  }
}

class MemoryQueue implements DeliveryQueue {
  readonly sent: { message: DeliveryMessage; delaySeconds: number }[] = [];
  async enqueue(message: DeliveryMessage, delaySeconds: number) {
    this.sent.push({ message: JSON.parse(JSON.stringify(message)) as DeliveryMessage, delaySeconds });
  }
  /** Takes the oldest queued message (what a consumer would receive next). */
  take(): { message: DeliveryMessage; delaySeconds: number } {
    const next = this.sent.shift();
    if (!next) throw new Error('queue is empty');
    return next;
  }
}

class MemoryDeadLetters implements DeadLetterQueue {
  readonly items = new Map<string, Delivery>();
  async put(delivery: Delivery) {
    this.items.set(delivery.webhookId, { ...delivery });
  }
  async list() {
    return [...this.items.values()];
  }
  async remove(webhookId: string) {
    return this.items.delete(webhookId);
  }
}

type Scripted = Partial<DeliveryAttemptResult> | ((request: WebhookSendRequest) => Partial<DeliveryAttemptResult>);

/** Answers per URL from a script (then 200), and records every request. */
class ScriptedSender implements WebhookSender {
  readonly requests: WebhookSendRequest[] = [];
  private readonly scripts = new Map<string, Scripted[]>();
  script(url: string, ...answers: Scripted[]) {
    this.scripts.set(url, answers);
  }
  async send(request: WebhookSendRequest): Promise<DeliveryAttemptResult> {
    this.requests.push(request);
    const next = this.scripts.get(request.url)?.shift() ?? { status: 200 };
    const answer = typeof next === 'function' ? next(request) : next;
    return { latencyMs: 12, ...answer };
  }
  to(url: string) {
    return this.requests.filter((request) => request.url === url);
  }
}

class MemorySecrets implements SecretStore {
  readonly values = new Map<string, string>();
  readonly deleted: string[] = [];
  /** Set to make `delete` fail (e.g. the function may not delete secrets yet). */
  deleteFails: Error | undefined;
  async get(ref: string) {
    const value = this.values.get(ref);
    if (value === undefined) throw new Error(`no secret ${ref}`);
    return value;
  }
  async delete(ref: string) {
    if (this.deleteFails) throw this.deleteFails;
    this.values.delete(ref);
    this.deleted.push(ref);
  }
}

interface World {
  deps: DeliverWebhooksDeps;
  endpoints: MemoryEndpoints;
  log: MemoryLog;
  queue: MemoryQueue;
  deadLetters: MemoryDeadLetters;
  sender: ScriptedSender;
  secrets: MemorySecrets;
  clock: { nowMs: number };
}

function world(): World {
  const endpoints = new MemoryEndpoints();
  const log = new MemoryLog();
  const queue = new MemoryQueue();
  const deadLetters = new MemoryDeadLetters();
  const sender = new ScriptedSender();
  const secrets = new MemorySecrets();
  const clock = { nowMs: START_MS };
  return {
    deps: {
      endpoints,
      log,
      queue,
      deadLetters,
      sender,
      secrets,
      clock: { now: () => new Date(clock.nowMs) },
      logger: createLogger('test', 'silent'),
    },
    endpoints,
    log,
    queue,
    deadLetters,
    sender,
    secrets,
    clock,
  };
}

async function addEndpoint(w: World, endpointId: string, overrides: Partial<WebhookEndpoint> = {}): Promise<{ url: string; secret: string }> {
  const secret = generateWebhookSecret();
  w.secrets.values.set(`file:${endpointId}`, `${secret}\n`);
  const url = `https://hooks.example.com/${endpointId}`;
  await w.endpoints.put({
    publisherId: PUBLISHER,
    endpointId,
    url,
    topics: [SYNC_RESULT_DETAIL_TYPE],
    enabled: true,
    secretRef: `file:${endpointId}`,
    createdAt: new Date(START_MS).toISOString(),
    updatedAt: new Date(START_MS).toISOString(),
    ...overrides,
  });
  return { url, secret };
}

function eventOf(synchronizationId = FIXTURE.data.synchronizationId) {
  return {
    version: '0',
    id: 'b1c1e5f0-0000-4000-8000-000000000001',
    source: EVENT_SOURCE,
    'detail-type': SYNC_RESULT_DETAIL_TYPE,
    account: '000000000000',
    time: '2026-11-23T10:00:01Z',
    region: 'us-east-1',
    resources: [],
    detail: { ...FIXTURE.data, synchronizationId, broadcasterId: PUBLISHER },
  };
}

function deliveryTo(endpointId: string, attempt: number, extra: Partial<Delivery> = {}): Delivery {
  return {
    webhookId: deliveryWebhookId(FIXTURE.data.synchronizationId, endpointId),
    publisherId: PUBLISHER,
    endpointId,
    topic: SYNC_RESULT_DETAIL_TYPE,
    body: JSON.stringify(FIXTURE),
    attempt,
    ...extra,
  };
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  const [item] = items;
  if (item === undefined) throw new Error('missing');
  return item;
}

/** Verifies one request's headers with the Standard Webhooks reference library, at the attempt's time. */
function expectSignedBy(request: WebhookSendRequest, secret: string, timestampSeconds: number) {
  expect(request.headers['webhook-timestamp']).toBe(String(timestampSeconds));
  const id = request.headers['webhook-id'] ?? '';
  const expected = new Webhook(secret).sign(id, new Date(timestampSeconds * 1000), request.body);
  expect(request.headers['webhook-signature']?.split(' ')).toContain(expected);
}

// ---------------------------------------------------------------------------------------------

describe('a new event', () => {
  it('fans out to every enabled endpoint subscribed to the topic, with the contract body, signed', async () => {
    const w = world();
    const first = await addEndpoint(w, 'ep_first');
    const second = await addEndpoint(w, 'ep_second');
    await addEndpoint(w, 'ep_disabled', { enabled: false, disabledReason: 'manual' });
    await addEndpoint(w, 'ep_unsubscribed', { topics: [] });
    await addEndpoint(w, 'ep_other_publisher', { publisherId: PUBLISHER + 1 });

    const reports = await processDeliveryMessage(w.deps, eventOf());

    expect(reports.map((report) => [report.endpointId, report.outcome]).sort()).toEqual([
      ['ep_first', 'done'],
      ['ep_second', 'done'],
    ]);
    expect(w.sender.requests.map((request) => request.url).sort()).toEqual([first.url, second.url]);
    for (const [endpointId, { url, secret }] of [['ep_first', first], ['ep_second', second]] as const) {
      const request = only(w.sender.to(url));
      // Byte for byte the contract fixture (same keys, same order), so signatures match the fixture's text.
      expect(request.body).toBe(JSON.stringify(FIXTURE));
      expect(request.headers['webhook-id']).toBe(deliveryWebhookId(FIXTURE.data.synchronizationId, endpointId));
      expect(request.headers['webhook-id']).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
      expect(request.timeoutMs).toBe(15_000);
      expectSignedBy(request, secret, START_MS / 1000);
    }
    expect(w.log.records.map((record) => [record.endpointId, record.attempt, record.status, record.next]).sort()).toEqual([
      ['ep_first', 1, 200, 'done'],
      ['ep_second', 1, 200, 'done'],
    ]);
    expect(w.queue.sent).toHaveLength(0);
  });

  it('keeps the webhook id of each delivery when the queue delivers the same event twice', async () => {
    const w = world();
    await addEndpoint(w, 'ep_first');
    await addEndpoint(w, 'ep_second');
    await processDeliveryMessage(w.deps, eventOf());
    await processDeliveryMessage(w.deps, eventOf());
    await processDeliveryMessage(w.deps, eventOf('0c6b9a52-1d7e-4c1b-9a53-4b1f6e2d7a10'));

    const ids = w.sender.requests.map((request) => `${request.url} ${request.headers['webhook-id']}`);
    expect(ids).toHaveLength(6);
    // Two endpoints × two synchronizations: the redelivered event repeated its two ids exactly.
    expect(new Set(ids).size).toBe(4);
    expect(deliveryWebhookId('a', 'ep_first')).not.toBe(deliveryWebhookId('a', 'ep_second'));
  });

  it('does nothing for a publisher without endpoints', async () => {
    const w = world();
    expect(await processDeliveryMessage(w.deps, eventOf())).toEqual([]);
    expect(w.sender.requests).toHaveLength(0);
  });

  it('queues again only the delivery that failed inside the service, not the others', async () => {
    const w = world();
    const ok = await addEndpoint(w, 'ep_ok');
    await addEndpoint(w, 'ep_secretless', { secretRef: 'file:missing' });

    const reports = await processDeliveryMessage(w.deps, eventOf());

    expect(reports.map((report) => [report.endpointId, report.outcome]).sort()).toEqual([
      ['ep_ok', 'done'],
      ['ep_secretless', 'requeued'],
    ]);
    expect(only(w.sender.requests).url).toBe(ok.url);
    const queued = only(w.queue.sent);
    expect(queued.delaySeconds).toBe(RETRY_SCHEDULE_SECONDS[0]);
    expect(queued.message).toEqual({ kind: 'attempt', delivery: deliveryTo('ep_secretless', 1) });
  });

  it('refuses a detail that breaks the contract, so the queue keeps the message', async () => {
    const w = world();
    await addEndpoint(w, 'ep_first');
    const broken = eventOf();
    broken.detail = { ...broken.detail, broadcasterId: -1 };
    await expect(processDeliveryMessage(w.deps, broken)).rejects.toBeInstanceOf(InvalidDeliveryMessageError);
    await expect(processDeliveryMessage(w.deps, { kind: 'attempt', delivery: { webhookId: 'x' } })).rejects.toThrow(/Invalid attempt message/);
    await expect(processDeliveryMessage(w.deps, 'hello')).rejects.toBeInstanceOf(InvalidDeliveryMessageError);
    expect(w.sender.requests).toHaveLength(0);
  });

  it('ignores events of another topic', async () => {
    const w = world();
    await addEndpoint(w, 'ep_first');
    expect(await processDeliveryMessage(w.deps, { ...eventOf(), 'detail-type': 'somethingElse' })).toEqual([]);
    expect(w.sender.requests).toHaveLength(0);
  });
});

describe('an attempt', () => {
  it.each([200, 201, 204, 299])('is done after a %i', async (status) => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_first');
    w.sender.script(url, { status });
    const report = only(await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_first', 3) }));
    expect(report).toMatchObject({ outcome: 'done', status, attempt: 3 });
    expect(w.queue.sent).toHaveLength(0);
    expect(w.deadLetters.items.size).toBe(0);
    expect(only(w.log.records)).toMatchObject({ attempt: 3, status, next: 'done', url, latencyMs: 12 });
  });

  it('skips a disabled endpoint without sending, logging an attempt or retrying', async () => {
    const w = world();
    await addEndpoint(w, 'ep_off', { enabled: false, disabledReason: '410' });
    const report = only(await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_off', 2) }));
    expect(report).toEqual({ webhookId: deliveryTo('ep_off', 2).webhookId, endpointId: 'ep_off', attempt: 2, outcome: 'skipped', reason: 'endpoint-disabled' });
    expect(w.sender.requests).toHaveLength(0);
    expect(w.log.records).toHaveLength(0);
    expect(w.queue.sent).toHaveLength(0);
  });

  it('skips a deleted endpoint', async () => {
    const w = world();
    const report = only(await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_gone', 1) }));
    expect(report).toMatchObject({ outcome: 'skipped', reason: 'endpoint-missing' });
  });

  it('retries a 500 after the scheduled wait, with the same webhook id and the next attempt number', async () => {
    const w = world();
    const { url, secret } = await addEndpoint(w, 'ep_first');
    w.sender.script(url, { status: 500 });
    const report = only(await processDeliveryMessage(w.deps, eventOf()));
    expect(report).toMatchObject({ outcome: 'retry', status: 500, delaySeconds: 5 });

    const queued = w.queue.take();
    expect(queued.delaySeconds).toBe(5);
    const notBefore = new Date(START_MS + 5000).toISOString();
    expect(queued.message).toEqual({ kind: 'attempt', delivery: deliveryTo('ep_first', 2, { notBefore }) });
    expect(only(w.log.records)).toMatchObject({ attempt: 1, status: 500, next: 'retry', nextAttemptAt: notBefore });

    // The retry comes due: sent again, same id, a new timestamp and signature.
    w.clock.nowMs = START_MS + 5000;
    expect(only(await processDeliveryMessage(w.deps, queued.message))).toMatchObject({ outcome: 'done', attempt: 2 });
    const [firstTry, secondTry] = w.sender.requests;
    expect(secondTry?.headers['webhook-id']).toBe(firstTry?.headers['webhook-id']);
    expect(secondTry?.headers['webhook-signature']).not.toBe(firstTry?.headers['webhook-signature']);
    if (secondTry) expectSignedBy(secondTry, secret, (START_MS + 5000) / 1000);
  });

  it.each(RETRY_SCHEDULE_SECONDS.map((seconds, index) => [index + 1, seconds] as const))(
    'after failed attempt %i waits %i s (queued for at most one SQS delay)',
    async (attempt, seconds) => {
      const w = world();
      const { url } = await addEndpoint(w, 'ep_first');
      w.sender.script(url, { error: 'connection' });
      await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_first', attempt) });
      const queued = w.queue.take();
      expect(queued.delaySeconds).toBe(Math.min(seconds, SQS_MAX_DELAY_SECONDS));
      expect(queued.message).toEqual({
        kind: 'attempt',
        delivery: deliveryTo('ep_first', attempt + 1, { notBefore: new Date(START_MS + seconds * 1000).toISOString() }),
      });
    },
  );

  it("honours a receiver's Retry-After that asks for longer than the schedule", async () => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_busy');
    w.sender.script(url, { status: 503, retryAfter: '120' });
    const report = only(await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_busy', 1) }));
    expect(report).toMatchObject({ outcome: 'retry', delaySeconds: 120 });
    const queued = w.queue.take();
    expect(queued.delaySeconds).toBe(120);
    expect(queued.message).toMatchObject({ delivery: { attempt: 2, notBefore: new Date(START_MS + 120_000).toISOString() } });
  });

  it('disables the endpoint after a 410 and neither retries nor dead-letters', async () => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_gone');
    w.sender.script(url, { status: 410 });
    const report = only(await processDeliveryMessage(w.deps, eventOf()));
    expect(report).toMatchObject({ outcome: 'disable-endpoint', status: 410 });
    expect(await w.endpoints.get(PUBLISHER, 'ep_gone')).toMatchObject({ enabled: false, disabledReason: '410' });
    expect(w.queue.sent).toHaveLength(0);
    expect(w.deadLetters.items.size).toBe(0);
    expect(only(w.log.records)).toMatchObject({ status: 410, next: 'disable-endpoint' });

    // The next event skips it.
    await processDeliveryMessage(w.deps, eventOf('0c6b9a52-1d7e-4c1b-9a53-4b1f6e2d7a10'));
    expect(w.sender.requests).toHaveLength(1);
  });

  it('dead-letters the delivery after the last attempt fails', async () => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_down');
    w.sender.script(url, { status: 500 });
    const last = RETRY_SCHEDULE_SECONDS.length + 1;
    const report = only(await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_down', last) }));
    expect(report).toMatchObject({ outcome: 'dead-letter', attempt: 8 });
    expect(w.queue.sent).toHaveLength(0);
    expect([...w.deadLetters.items.values()]).toEqual([deliveryTo('ep_down', 8)]);
    expect(only(w.log.records)).toMatchObject({ attempt: 8, next: 'dead-letter' });
  });

  it('is not made before notBefore: a long wait is re-queued in hops of at most 900 s', async () => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_first');
    const due = START_MS + 7200_000;
    await w.deps.queue.enqueue({ kind: 'attempt', delivery: deliveryTo('ep_first', 5, { notBefore: new Date(due).toISOString() }) }, 900);

    const hops: number[] = [];
    let report: AttemptReport | undefined;
    for (let guard = 0; guard < 20; guard += 1) {
      const { message, delaySeconds } = w.queue.take();
      w.clock.nowMs += delaySeconds * 1000;
      report = only(await processDeliveryMessage(w.deps, message));
      if (report.outcome !== 'deferred') break;
      hops.push(report.delaySeconds);
    }
    // 900 s were waited before the first receipt; 6300 s remained: 7 hops of 900 s.
    expect(hops).toEqual([900, 900, 900, 900, 900, 900, 900]);
    expect(report).toMatchObject({ outcome: 'done', attempt: 5 });
    expect(w.clock.nowMs).toBe(due);
    expect(only(w.sender.to(url)).headers['webhook-timestamp']).toBe(String(due / 1000));
  });

  it('signs with both secrets during a rotation window, and with the new one only after it', async () => {
    const w = world();
    const old = await addEndpoint(w, 'ep_rotating');
    const fresh = generateWebhookSecret();
    w.secrets.values.set('file:new', fresh);
    await w.endpoints.rotateSecret(PUBLISHER, 'ep_rotating', 'file:new', new Date(START_MS + 3600_000), new Date(START_MS));

    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    const during = only(w.sender.requests);
    expect(during.headers['webhook-signature']?.split(' ')).toHaveLength(2);
    expectSignedBy(during, fresh, START_MS / 1000);
    expectSignedBy(during, old.secret, START_MS / 1000);

    w.clock.nowMs = START_MS + 3600_000;
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    const after = w.sender.requests[1];
    expect(after?.headers['webhook-signature']?.split(' ')).toHaveLength(1);
    if (after) expectSignedBy(after, fresh, (START_MS + 3600_000) / 1000);
  });
});

describe('a rotated-out signing secret', () => {
  const WINDOW_END = START_MS + 24 * 3600_000;

  async function rotated(w: World) {
    await addEndpoint(w, 'ep_rotating');
    w.secrets.values.set('file:new', generateWebhookSecret());
    await w.endpoints.rotateSecret(PUBLISHER, 'ep_rotating', 'file:new', new Date(WINDOW_END), new Date(START_MS));
  }

  it('is kept while it still signs, and deleted by the first delivery after its window, then forgotten', async () => {
    const w = world();
    await rotated(w);
    w.clock.nowMs = WINDOW_END - 1000;
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    expect(w.secrets.deleted).toEqual([]);

    w.clock.nowMs = WINDOW_END;
    const [report] = await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    expect(report).toMatchObject({ outcome: 'done' });
    expect(w.secrets.deleted).toEqual(['file:ep_rotating']);
    const endpoint = await w.endpoints.get(PUBLISHER, 'ep_rotating');
    expect(endpoint).toMatchObject({ secretRef: 'file:new' });
    expect(endpoint?.previousSecretRef).toBeUndefined();
    expect(endpoint?.previousSecretActiveUntil).toBeUndefined();

    // Nothing left to delete: the next delivery deletes nothing.
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    expect(w.secrets.deleted).toEqual(['file:ep_rotating']);
  });

  it('dropped by a second rotation within the window, it is deleted at the next delivery; the secrets that sign stay', async () => {
    const w = world();
    await rotated(w);
    w.secrets.values.set('file:newer', generateWebhookSecret());
    await w.endpoints.rotateSecret(PUBLISHER, 'ep_rotating', 'file:newer', new Date(WINDOW_END + 3600_000), new Date(START_MS + 3600_000));
    w.clock.nowMs = START_MS + 7200_000;
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    expect(w.secrets.deleted).toEqual(['file:ep_rotating']);
    expect(only(w.sender.requests).headers['webhook-signature']?.split(' ')).toHaveLength(2);
    const endpoint = await w.endpoints.get(PUBLISHER, 'ep_rotating');
    expect(endpoint).toMatchObject({ secretRef: 'file:newer', previousSecretRef: 'file:new' });
    expect(endpoint?.retiredSecretRefs).toBeUndefined();
  });

  it('that cannot be deleted (no permission yet) does not fail the delivery and stays referenced for the next one', async () => {
    const w = world();
    const logger = new RecordingLogger();
    w.deps.logger = logger;
    await rotated(w);
    w.secrets.deleteFails = Object.assign(new Error('not authorized to perform secretsmanager:DeleteSecret'), { name: 'AccessDeniedException' });
    w.clock.nowMs = WINDOW_END + 1000;
    const [report] = await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    expect(report).toMatchObject({ outcome: 'done' });
    expect(await w.endpoints.get(PUBLISHER, 'ep_rotating')).toMatchObject({ previousSecretRef: 'file:ep_rotating' });
    expect(logger.entries).toContainEqual(
      expect.objectContaining({ level: 'warn', message: expect.stringContaining('could not be deleted') as unknown }),
    );

    w.secrets.deleteFails = undefined;
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_rotating', 1) });
    expect(w.secrets.deleted).toEqual(['file:ep_rotating']);
  });
});

describe('replay', () => {
  it('a replay message from the queue (deployed `webhook replay`) re-sends the dead letter', async () => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_q');
    w.sender.script(url, { status: 500 });
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_q', 8) });
    const webhookId = deliveryTo('ep_q', 8).webhookId;
    w.sender.script(url, { status: 200 });
    const reports = await processDeliveryMessage(w.deps, { kind: 'replay', webhookId });
    expect(reports).toMatchObject([{ webhookId, outcome: 'done', attempt: 1 }]);
    expect(w.deadLetters.items.size).toBe(0);
  });

  it('a replay message for an unknown id is dropped, not retried forever', async () => {
    const w = world();
    await expect(processDeliveryMessage(w.deps, { kind: 'replay', webhookId: 'msg_unknown' })).resolves.toEqual([]);
  });

  it('re-sends a dead letter with the same webhook id, a fresh signature and attempt 1, and removes it', async () => {
    const w = world();
    const { url, secret } = await addEndpoint(w, 'ep_down');
    w.sender.script(url, { status: 500 });
    await processDeliveryMessage(w.deps, { kind: 'attempt', delivery: deliveryTo('ep_down', 8) });
    const webhookId = deliveryTo('ep_down', 8).webhookId;
    expect(w.deadLetters.items.has(webhookId)).toBe(true);

    w.clock.nowMs = START_MS + 60_000;
    const replay = await replayDelivery(w.deps, webhookId);

    expect(replay).toMatchObject({ webhookId, source: 'dead-letter-queue', report: { outcome: 'done', attempt: 1 } });
    expect(w.deadLetters.items.size).toBe(0);
    const resent = w.sender.requests[1];
    expect(resent?.headers['webhook-id']).toBe(webhookId);
    if (resent) expectSignedBy(resent, secret, (START_MS + 60_000) / 1000);
  });

  it('keeps a dead letter whose endpoint is disabled', async () => {
    const w = world();
    await addEndpoint(w, 'ep_off', { enabled: false });
    await w.deadLetters.put(deliveryTo('ep_off', 8));
    const replay = await replayDelivery(w.deps, deliveryTo('ep_off', 8).webhookId);
    expect(replay.report).toMatchObject({ outcome: 'skipped' });
    expect(w.deadLetters.items.size).toBe(1);
  });

  it('re-sends from the log, and everything since a time, oldest first', async () => {
    const w = world();
    const { url } = await addEndpoint(w, 'ep_first');
    await processDeliveryMessage(w.deps, eventOf());
    w.clock.nowMs += 1000;
    await processDeliveryMessage(w.deps, eventOf('0c6b9a52-1d7e-4c1b-9a53-4b1f6e2d7a10'));
    const [firstId, secondId] = w.sender.requests.map((request) => request.headers['webhook-id']);

    w.clock.nowMs += 1000;
    const replays = await replaySince(w.deps, PUBLISHER, new Date(START_MS).toISOString());
    expect(replays.map((replay) => [replay.webhookId, replay.source, replay.report.outcome])).toEqual([
      [firstId, 'log', 'done'],
      [secondId, 'log', 'done'],
    ]);
    expect(w.sender.to(url).map((request) => request.headers['webhook-id'])).toEqual([firstId, secondId, firstId, secondId]);
  });

  it('says so when the webhook id is unknown', async () => {
    await expect(replayDelivery(world().deps, 'msg_unknown')).rejects.toBeInstanceOf(DeliveryNotFoundError);
  });
});

describe('the SQS handler', () => {
  const record = (messageId: string, body: string) =>
    ({ messageId, body, receiptHandle: messageId, attributes: {}, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: '', awsRegion: '' }) as unknown as SQSEvent['Records'][number];

  class MemoryPoison implements PoisonMessageQueue {
    readonly messages: PoisonMessage[] = [];
    failure: Error | undefined;
    async put(message: PoisonMessage) {
      if (this.failure) throw this.failure;
      this.messages.push(message);
    }
  }

  it('sends a poison message to the dead letters at once instead of reporting it as a failure (no 5 receives)', async () => {
    const w = world();
    const poison = new MemoryPoison();
    w.deps.poisonMessages = poison;
    await addEndpoint(w, 'ep_first');
    const handler = makeDeliverWebhooksHandler(w.deps);
    const badAttempt = JSON.stringify({ kind: 'attempt', delivery: {} });

    const response = await handler({
      Records: [
        record('good-event', JSON.stringify(eventOf())),
        record('not-json', '{'),
        record('bad-attempt', badAttempt),
        record('good-attempt', JSON.stringify({ kind: 'attempt', delivery: deliveryTo('ep_first', 2) })),
      ],
    });

    expect(response.batchItemFailures).toEqual([]);
    expect(poison.messages).toEqual([
      { messageId: 'not-json', body: '{', reason: 'The message is not JSON' },
      { messageId: 'bad-attempt', body: badAttempt, reason: expect.stringMatching(/^Invalid attempt message/) as unknown },
    ]);
    expect(w.sender.requests).toHaveLength(2);
  });

  it('still reports a message that may succeed later (a dependency down), and a poison message the dead letters refused', async () => {
    const w = world();
    const poison = new MemoryPoison();
    poison.failure = Object.assign(new Error('SQS down'), { name: 'ServiceUnavailable' });
    w.deps.poisonMessages = poison;
    w.deps.endpoints.listByPublisher = () => Promise.reject(Object.assign(new Error('DynamoDB down'), { name: 'DependencyUnavailableError', retryable: true }));
    const handler = makeDeliverWebhooksHandler(w.deps);

    const response = await handler({ Records: [record('event', JSON.stringify(eventOf())), record('not-json', '{')] });

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(['event', 'not-json']);
  });

  it('without a dead-letter port (the local runtime) reports only the records that failed (partial batch response)', async () => {
    const w = world();
    await addEndpoint(w, 'ep_first');
    const handler = makeDeliverWebhooksHandler(w.deps);

    const response = await handler({
      Records: [
        record('good-event', JSON.stringify(eventOf())),
        record('not-json', '{'),
        record('bad-attempt', JSON.stringify({ kind: 'attempt', delivery: {} })),
        record('good-attempt', JSON.stringify({ kind: 'attempt', delivery: deliveryTo('ep_first', 2) })),
      ],
    });

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(['bad-attempt', 'not-json']);
    expect(w.sender.requests).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------------------------
// Topics: the delivery is generic over the event registry

/** The `inappEntitlementChanged` of the fixture's register: customer 42 got the purchase. */
const ENTITLEMENT_DETAIL = {
  broadcasterId: PUBLISHER,
  cleengCustomerId: 42,
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
  originalTransactionId: '2000000100',
  purchaseToken: null,
  packageName: null,
  environment: 'Sandbox',
  ownershipVersion: 3,
  synchronizationId: FIXTURE.data.synchronizationId,
  changedAt: '2026-11-23T10:00:01.234Z',
} satisfies EntitlementChangedDetail;

/** An EventBridge envelope of an `inappEntitlementChanged`; `id` is the envelope's, which a republish changes. */
function entitlementEventOf(overrides: Partial<EntitlementChangedDetail> = {}, id = 'b1c1e5f0-0000-4000-8000-000000000002') {
  return { ...eventOf(), id, 'detail-type': ENTITLEMENT_CHANGED_DETAIL_TYPE, detail: { ...ENTITLEMENT_DETAIL, ...overrides } };
}

function topicOf(body: string): EventDetailType {
  return (JSON.parse(body) as { topic: EventDetailType }).topic;
}

describe('topics', () => {
  it('an endpoint subscribed to both topics gets both bodies; one on the default topics only the sync result', async () => {
    const w = world();
    // Real time: the reference verifier refuses timestamps more than 5 minutes from now.
    w.clock.nowMs = Date.now();
    const both = await addEndpoint(w, 'ep_both', { topics: [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE] });
    const byDefault = await addEndpoint(w, 'ep_default', { topics: [...DEFAULT_WEBHOOK_TOPICS] });
    const entitlementsOnly = await addEndpoint(w, 'ep_entitlements', { topics: [ENTITLEMENT_CHANGED_DETAIL_TYPE] });

    const syncReports = await processDeliveryMessage(w.deps, eventOf());
    const entitlementReports = await processDeliveryMessage(w.deps, entitlementEventOf());

    expect(syncReports.map((report) => [report.endpointId, report.outcome]).sort()).toEqual([
      ['ep_both', 'done'],
      ['ep_default', 'done'],
    ]);
    expect(entitlementReports.map((report) => [report.endpointId, report.outcome]).sort()).toEqual([
      ['ep_both', 'done'],
      ['ep_entitlements', 'done'],
    ]);
    expect(w.sender.to(both.url).map((request) => topicOf(request.body))).toEqual([SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE]);
    expect(w.sender.to(byDefault.url).map((request) => topicOf(request.body))).toEqual([SYNC_RESULT_DETAIL_TYPE]);
    expect(w.sender.to(entitlementsOnly.url).map((request) => topicOf(request.body))).toEqual([ENTITLEMENT_CHANGED_DETAIL_TYPE]);

    const { broadcasterId: _broadcasterId, ...entitlementData } = ENTITLEMENT_DETAIL;
    for (const { url, secret } of [both, byDefault, entitlementsOnly]) {
      for (const request of w.sender.to(url)) {
        // The Standard Webhooks reference verifier: throws on a bad signature, answers the parsed body.
        const verified = new Webhook(secret).verify(request.body, request.headers);
        const topic = topicOf(request.body);
        // Each body is its topic's contract body, as the registry declares it (strict: no extra keys).
        expect(EVENT_REGISTRY[topic].webhookBody.parse(verified)).toEqual(verified);
        expect(Object.keys(verified as object)).toEqual(['broadcasterId', 'topic', 'data']);
        if (topic === ENTITLEMENT_CHANGED_DETAIL_TYPE) {
          expect(verified).toEqual({ broadcasterId: PUBLISHER, topic, data: entitlementData });
        } else {
          expect(request.body).toBe(JSON.stringify(FIXTURE));
        }
      }
    }
    expect(w.log.records.map((record) => [record.endpointId, record.topic]).sort()).toEqual([
      ['ep_both', ENTITLEMENT_CHANGED_DETAIL_TYPE],
      ['ep_both', SYNC_RESULT_DETAIL_TYPE],
      ['ep_default', SYNC_RESULT_DETAIL_TYPE],
      ['ep_entitlements', ENTITLEMENT_CHANGED_DETAIL_TYPE],
    ]);
  });

  it('gives an entitlement change one webhook id whatever envelope carries it, and each change its own', async () => {
    const w = world();
    await addEndpoint(w, 'ep_both', { topics: [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE] });
    const idOf = async (event: unknown): Promise<string> => {
      const before = w.sender.requests.length;
      await processDeliveryMessage(w.deps, event);
      expect(w.sender.requests).toHaveLength(before + 1);
      return w.sender.requests.at(-1)?.headers['webhook-id'] ?? '';
    };
    const renewal = { reason: 'RENEWED', synchronizationId: null, ownershipVersion: 4 } as const;

    const purchased = await idOf(entitlementEventOf());
    // The same change published again (the sweeper, a retried PutEvents): a new envelope id, the same webhook id.
    expect(await idOf(entitlementEventOf({}, 'b1c1e5f0-0000-4000-8000-0000000000ff'))).toBe(purchased);
    // A store notification's change has no synchronizationId; still one id per change, stable.
    const renewed = await idOf(entitlementEventOf(renewal));
    expect(await idOf(entitlementEventOf(renewal, 'b1c1e5f0-0000-4000-8000-0000000000fe'))).toBe(renewed);
    // The two sides of one transfer share synchronizationId and ownershipVersion, not the customer.
    const transferredOut = await idOf(entitlementEventOf({ reason: 'TRANSFERRED_OUT', cleengCustomerId: 7, active: false, state: 'transferred' }));
    // A Google purchase is keyed by its purchase token.
    const google = await idOf(
      entitlementEventOf({ store: 'google', originalTransactionId: null, transactionId: null, purchaseToken: 'token-1', packageName: 'com.example' }),
    );
    const syncResult = await idOf(eventOf());

    const ids = [purchased, renewed, transferredOut, google, syncResult];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
    // The sync result keeps the id it had before topics were generic: derived from its synchronizationId.
    expect(syncResult).toBe(deliveryWebhookId(FIXTURE.data.synchronizationId, 'ep_both'));
  });

  it('reads each detail with the schema of its own detail-type', async () => {
    const w = world();
    await addEndpoint(w, 'ep_both', { topics: [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE] });
    // A sync result's detail sent as an entitlement change, and an entitlement change missing a field.
    await expect(processDeliveryMessage(w.deps, { ...eventOf(), 'detail-type': ENTITLEMENT_CHANGED_DETAIL_TYPE })).rejects.toThrow(
      /Invalid inappEntitlementChanged detail/,
    );
    const { changedAt: _changedAt, ...incomplete } = ENTITLEMENT_DETAIL;
    await expect(processDeliveryMessage(w.deps, { ...entitlementEventOf(), detail: incomplete })).rejects.toBeInstanceOf(
      InvalidDeliveryMessageError,
    );
    expect(w.sender.requests).toHaveLength(0);
  });

  it('retries, dead-letters and replays an entitlement change like a sync result: same id, same body, its topic kept', async () => {
    const w = world();
    const { url, secret } = await addEndpoint(w, 'ep_both', { topics: [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE] });
    w.sender.script(url, { status: 500 });
    expect(only(await processDeliveryMessage(w.deps, entitlementEventOf()))).toMatchObject({ outcome: 'retry', delaySeconds: 5 });
    const retry = w.queue.take();
    expect(retry.message).toMatchObject({ kind: 'attempt', delivery: { topic: ENTITLEMENT_CHANGED_DETAIL_TYPE, attempt: 2 } });
    const [first] = w.sender.requests;
    if (!first) throw new Error('no request');
    const webhookId = first.headers['webhook-id'] ?? '';

    // Every attempt fails: the last one dead-letters the delivery.
    w.sender.script(url, ...Array.from({ length: RETRY_SCHEDULE_SECONDS.length }, () => ({ status: 500 })));
    let next: DeliveryMessage | undefined = retry.message;
    while (next) {
      w.clock.nowMs += 36_000_000;
      await processDeliveryMessage(w.deps, next);
      next = w.queue.sent.shift()?.message;
    }
    expect([...w.deadLetters.items.values()]).toEqual([
      { webhookId, publisherId: PUBLISHER, endpointId: 'ep_both', topic: ENTITLEMENT_CHANGED_DETAIL_TYPE, body: first.body, attempt: 8 },
    ]);

    const replay = await replayDelivery(w.deps, webhookId);
    expect(replay).toMatchObject({ webhookId, source: 'dead-letter-queue', report: { outcome: 'done', attempt: 1 } });
    const resent = w.sender.requests.at(-1);
    expect(resent?.headers['webhook-id']).toBe(webhookId);
    expect(resent?.body).toBe(first.body);
    if (resent) expectSignedBy(resent, secret, Math.floor(w.clock.nowMs / 1000));
    expect(w.log.records.every((record) => record.topic === ENTITLEMENT_CHANGED_DETAIL_TYPE)).toBe(true);

    // replay --since re-sends both topics, each with its own id and body.
    await processDeliveryMessage(w.deps, eventOf());
    const syncRequest = w.sender.requests.at(-1);
    const replays = await replaySince(w.deps, PUBLISHER, new Date(START_MS).toISOString());
    expect(replays.map((replayed) => replayed.webhookId)).toEqual([webhookId, syncRequest?.headers['webhook-id']]);
    expect(w.sender.requests.slice(-2).map((request) => request.body)).toEqual([first.body, syncRequest?.body]);
  });
});

describe('an endpoint stored with credentials in its URL (before registration refused them)', () => {
  const PASSWORD = 's3cr3t-pa55';
  const stored = `https://alice:${PASSWORD}@hooks.example.com/ep_creds`;

  it('is never sent to: the delivery is dead-lettered at once, and logged with the URL masked', async () => {
    const w = world();
    const logger = new RecordingLogger();
    w.deps.logger = logger;
    await addEndpoint(w, 'ep_creds', { url: stored });
    await addEndpoint(w, 'ep_plain');

    const reports = await processDeliveryMessage(w.deps, eventOf());

    expect(reports.find((report) => report.endpointId === 'ep_creds')).toMatchObject({ outcome: 'dead-letter', error: 'credentials-in-url', attempt: 1 });
    expect(w.sender.requests.map((request) => request.url)).toEqual(['https://hooks.example.com/ep_plain']);
    expect([...w.deadLetters.items.values()]).toEqual([deliveryTo('ep_creds', 1)]);
    expect(w.queue.sent).toHaveLength(0);
    expect(w.log.records.find((record) => record.endpointId === 'ep_creds')).toMatchObject({
      url: 'https://***@hooks.example.com/ep_creds',
      error: 'credentials-in-url',
      next: 'dead-letter',
    });
    expect(JSON.stringify(w.log.records)).not.toContain(PASSWORD);
    expect(JSON.stringify(logger.entries)).not.toContain(PASSWORD);
    expect(logger.entries).toContainEqual(expect.objectContaining({ level: 'warn', message: 'webhook not sent: the endpoint URL carries credentials' }));
  });

  it('stays in the dead-letter queue when replayed', async () => {
    const w = world();
    await addEndpoint(w, 'ep_creds', { url: stored });
    await w.deadLetters.put(deliveryTo('ep_creds', 8));
    const replay = await replayDelivery(w.deps, deliveryTo('ep_creds', 8).webhookId);
    expect(replay.report).toMatchObject({ outcome: 'dead-letter', error: 'credentials-in-url' });
    expect(w.sender.requests).toHaveLength(0);
    expect(w.deadLetters.items.size).toBe(1);
  });
});
