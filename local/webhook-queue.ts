import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { ReferenceSecretStore } from '../lambdas/platform/reference-secret-store';
import {
  deliveryWebhookId,
  DeliveryNotFoundError,
  isTopic,
  readWebhookEvent,
  replayDelivery,
  replaySince,
  type DeliverWebhooksDeps,
  type ReplayReport,
} from '../lambdas/webhooks/domain/deliver-webhooks';
import { createDeliveryDeps, makeDeliverWebhooksHandler } from '../lambdas/webhooks/handlers/deliver-webhooks';
import type { Clock } from '../lambdas/platform/clock';
import {
  WEBHOOK_TOPICS,
  type DeadLetterQueue,
  type Delivery,
  type DeliveryMessage,
  type DeliveryQueue,
  type WebhookEndpoint,
  type WebhookSender,
} from '../lambdas/webhooks/ports';
import { WEBHOOK_EVENT_PATTERN } from '../lambdas/events/schemas';
import { createLogger, type Logger } from '../lambdas/platform/logger';
import { LOCAL_REGION } from './dynamodb-local';
import type { LocalRule, LoggedEvent } from './event-bus';
import { describeIssue, readJsonBody, RequestBodyError, sendJson } from './simulator/http-json';
import { positiveInt32 } from '../lambdas/platform/schema-primitives';

/**
 * SQS and the webhook delivery Lambda of `npm start` (the local runtime: "the same delivery
 * handler, fed by an in-process queue with the same retry schedule"). The queue hands batches of
 * SQS records to the same handler the Lambda runs, honours its partial batch failures like an
 * event source mapping (a failed record comes back after the visibility timeout, and after
 * `maxReceiveCount` receives is set aside as a poison message), and keeps delays with timers.
 * Pending messages live in memory: a restart of `npm start` loses scheduled retries (the delivery
 * log keeps every body, so `iap-sync webhook replay --since` re-sends them).
 */

const QUEUE_ARN = `arn:aws:sqs:${LOCAL_REGION}:000000000000:iap-sync-local-webhooks`;

/** The handler the queue feeds: `makeDeliverWebhooksHandler(deps)` (what the Lambda runs). */
export type DeliveryConsumer = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface LocalDeliveryQueueOptions {
  /** Records per handler call; the SQS event source's default is 10. */
  batchSize?: number;
  /** Handler calls at the same time (Lambda concurrency). */
  maxConcurrency?: number;
  /** A record the handler failed comes back after this many seconds (the visibility timeout). */
  visibilityTimeoutSeconds?: number;
  /** Receives before a failing record is set aside in `poisonMessages` (the queue's redrive policy). */
  maxReceiveCount?: number;
  logger?: Logger;
}

interface QueuedMessage {
  messageId: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  firstReceivedAt?: number;
}

/** An in-process stand-in for the delivery SQS queue, with timers for message delays. */
export class LocalDeliveryQueue implements DeliveryQueue {
  /** Records that failed `maxReceiveCount` times (the SQS queue's own dead-letter queue). */
  readonly poisonMessages: { messageId: string; body: string; receiveCount: number }[] = [];
  /** Messages accepted by `enqueue`, for tests and the start-up banner. */
  enqueued = 0;

  private consumer?: DeliveryConsumer;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly ready: QueuedMessage[] = [];
  private inFlight = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private readonly batchSize: number;
  private readonly maxConcurrency: number;
  private readonly visibilityTimeoutSeconds: number;
  private readonly maxReceiveCount: number;
  private readonly logger: Logger;

  constructor(options: LocalDeliveryQueueOptions = {}) {
    this.batchSize = options.batchSize ?? 10;
    this.maxConcurrency = options.maxConcurrency ?? 10;
    this.visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 30;
    this.maxReceiveCount = options.maxReceiveCount ?? 5;
    this.logger = options.logger ?? createLogger('local-webhook-queue');
  }

  /** Connects the handler; messages wait until there is one. */
  setConsumer(consumer: DeliveryConsumer): void {
    this.consumer = consumer;
    this.pump();
  }

  enqueue(message: DeliveryMessage, delaySeconds: number): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('The local webhook delivery queue is stopped.'));
    if (!Number.isFinite(delaySeconds) || delaySeconds < 0) {
      return Promise.reject(new RangeError(`A message delay is a number of seconds ≥ 0, got ${delaySeconds}.`));
    }
    // A JSON round trip, as SQS carries text.
    this.schedule({ messageId: randomUUID(), body: JSON.stringify(message), receiveCount: 0, sentAt: Date.now() }, delaySeconds);
    this.enqueued += 1;
    return Promise.resolve();
  }

  /** Messages waiting for their delay, ready, or being handled. */
  get pending(): number {
    return this.timers.size + this.ready.length + this.inFlight;
  }

  /** Resolves once nothing is delayed, ready or in flight (every retry chain has ended). */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops delayed and ready messages, waits for the batches in flight, and refuses new messages. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.ready.length = 0;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.notifyIfIdle();
  }

  private schedule(message: QueuedMessage, delaySeconds: number): void {
    if (this.stopped) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        this.ready.push(message);
        this.pump();
      },
      Math.ceil(delaySeconds * 1000),
    );
    // The queue alone does not keep a process alive; `npm start` has its HTTP server for that.
    timer.unref();
    this.timers.add(timer);
  }

  private pump(): void {
    const consumer = this.consumer;
    while (consumer && !this.stopped && this.ready.length > 0 && this.inFlight < this.maxConcurrency) {
      const batch = this.ready.splice(0, this.batchSize);
      this.inFlight += 1;
      void this.invoke(consumer, batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
        this.notifyIfIdle();
      });
    }
    this.notifyIfIdle();
  }

  private async invoke(consumer: DeliveryConsumer, batch: QueuedMessage[]): Promise<void> {
    const now = Date.now();
    for (const message of batch) {
      message.receiveCount += 1;
      message.firstReceivedAt ??= now;
    }
    let failed: Set<string>;
    try {
      const response = await consumer({ Records: batch.map(toRecord) });
      failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    } catch (error) {
      // A handler that throws fails the whole batch, as with Lambda.
      this.logger.error('webhook delivery handler failed', { error, records: batch.length });
      failed = new Set(batch.map((message) => message.messageId));
    }
    for (const message of batch) {
      if (!failed.has(message.messageId)) continue;
      if (message.receiveCount >= this.maxReceiveCount) {
        this.poisonMessages.push({ messageId: message.messageId, body: message.body, receiveCount: message.receiveCount });
        this.logger.error('webhook message set aside after repeated failures', { messageId: message.messageId, receives: message.receiveCount });
      } else {
        this.schedule(message, this.visibilityTimeoutSeconds);
      }
    }
  }

  private notifyIfIdle(): void {
    if (this.pending > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function toRecord(message: QueuedMessage): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: `${message.messageId}#${message.receiveCount}`,
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: String(message.sentAt),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt ?? message.sentAt),
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(message.body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: QUEUE_ARN,
    awsRegion: LOCAL_REGION,
  };
}

const DeadLetterFile = z.array(
  z.strictObject({
    webhookId: z.string().min(1),
    publisherId: positiveInt32,
    endpointId: z.string().min(1),
    topic: z.enum(WEBHOOK_TOPICS),
    body: z.string(),
    attempt: z.number().int().min(1),
    notBefore: z.iso.datetime().optional(),
  }),
);

/** The delivery dead-letter queue of `npm start`: in memory, or kept in a JSON file across restarts. */
export class LocalDeadLetterQueue implements DeadLetterQueue {
  private readonly entries = new Map<string, Delivery>();

  constructor(private readonly file?: string) {
    if (file && existsSync(file)) {
      const parsed = DeadLetterFile.safeParse(JSON.parse(readFileSync(file, 'utf8')) as unknown);
      if (!parsed.success) throw new Error(`${file} is not a valid dead-letter file (${describeIssue(parsed.error)}); fix or delete it`);
      for (const delivery of parsed.data) this.entries.set(delivery.webhookId, delivery);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  put(delivery: Delivery): Promise<void> {
    this.entries.set(delivery.webhookId, { ...delivery });
    this.persist();
    return Promise.resolve();
  }

  list(): Promise<Delivery[]> {
    return Promise.resolve([...this.entries.values()].map((delivery) => ({ ...delivery })));
  }

  remove(webhookId: string): Promise<boolean> {
    const removed = this.entries.delete(webhookId);
    if (removed) this.persist();
    return Promise.resolve(removed);
  }

  private persist(): void {
    if (!this.file) return;
    // Through a rename, so a crash never leaves half a file behind.
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify([...this.entries.values()], null, 2)}\n`, { mode: 0o600 });
    renameSync(temporary, this.file);
  }
}

/**
 * The rule of the deployed stack (same pattern object: every webhook topic), delivering each event
 * to the queue; the handler picks the endpoints subscribed to the event's topic.
 */
export function createLocalWebhookRule(queue: DeliveryQueue): LocalRule {
  return {
    name: 'WebhookEvents',
    pattern: WEBHOOK_EVENT_PATTERN,
    target: (event) => queue.enqueue(event, 0),
  };
}

export interface LocalWebhookDeliveryOptions {
  db: DynamoDBDocumentClient;
  tableName: string;
  /** The folder `file:` secret references resolve in (`<data-dir>/secrets`). */
  secretsDir: string;
  /** Multiplies the retry schedule: 1 is the contract's (5 s … 10 h); tests use 0.001. */
  scale?: number;
  /** Keeps dead letters across restarts (e.g. `<data-dir>/webhook-dead-letters.json`); memory when absent. */
  deadLetterFile?: string;
  queue?: LocalDeliveryQueueOptions;
  logger?: Logger;
  /** Default: HttpWebhookSender allowing private networks (receivers on 127.0.0.1). */
  sender?: WebhookSender;
  clock?: Clock;
}

/** Everything webhook delivery needs in `npm start`, built from the same pieces as the Lambda. */
export interface LocalWebhookDelivery {
  queue: LocalDeliveryQueue;
  deadLetters: LocalDeadLetterQueue;
  deps: DeliverWebhooksDeps;
  /** The handler module's factory, as the Lambda runs it. */
  handler: DeliveryConsumer;
  /** Add to the local bus's rules. */
  rule: LocalRule;
  replayDelivery(webhookId: string): Promise<ReplayReport>;
  replaySince(publisherId: number, since: string, limit?: number): Promise<ReplayReport[]>;
  /** Start-up: queue again the deliveries a killed process held in memory (see requeueUndelivered). */
  requeueUndelivered(loggedEvents: readonly LoggedEvent[], since: Date): Promise<number>;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export function createLocalWebhookDelivery(options: LocalWebhookDeliveryOptions): LocalWebhookDelivery {
  const logger = options.logger ?? createLogger('deliver-webhooks');
  const queue = new LocalDeliveryQueue({ logger, ...options.queue });
  const deadLetters = new LocalDeadLetterQueue(options.deadLetterFile);
  const deps = createDeliveryDeps({
    db: options.db,
    tableName: options.tableName,
    secrets: new ReferenceSecretStore({ localDir: options.secretsDir, cacheSeconds: 60 }),
    logger,
    queue,
    deadLetters,
    allowPrivateNetworks: true,
    ...(options.scale !== undefined ? { scale: options.scale } : {}),
    ...(options.sender ? { sender: options.sender } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const handler = makeDeliverWebhooksHandler(deps);
  queue.setConsumer(handler);
  return {
    queue,
    deadLetters,
    deps,
    handler,
    rule: createLocalWebhookRule(queue),
    replayDelivery: (webhookId) => replayDelivery(deps, webhookId),
    replaySince: (publisherId, since, limit) => replaySince(deps, publisherId, since, limit),
    requeueUndelivered: (loggedEvents, since) => requeueUndelivered(deps, loggedEvents, since),
    drain: () => queue.drain(),
    stop: () => queue.stop(),
  };
}

/**
 * The local queue lives in memory (SQS keeps messages on AWS), so deliveries a killed process had
 * queued, and events it published but had not yet handed to the queue, would be gone. At start-up,
 * every event of the bus log (readEventLog) since `since` whose delivery to an enabled, subscribed endpoint has no
 * attempt in the delivery log is queued again with its stable webhook id. Returns how many.
 */
async function requeueUndelivered(deps: DeliverWebhooksDeps, loggedEvents: readonly LoggedEvent[], since: Date): Promise<number> {
  let queued = 0;
  const endpointsOf = new Map<number, Promise<WebhookEndpoint[]>>();
  for (const event of loggedEvents) {
    const topic = event['detail-type'];
    if (!event.time || Date.parse(event.time) < since.getTime() || topic === undefined || !isTopic(topic)) continue;
    // Read as the handler reads it (registry schema of the topic), so the ids match what it would have sent.
    const read = readWebhookEvent(topic, event.detail);
    if (!read.success) continue;
    const { publisherId, key, body } = read.event;
    if (!endpointsOf.has(publisherId)) endpointsOf.set(publisherId, deps.endpoints.listByPublisher(publisherId));
    const endpoints = ((await endpointsOf.get(publisherId)) ?? []).filter((endpoint) => endpoint.enabled && endpoint.topics.includes(topic));
    for (const endpoint of endpoints) {
      const webhookId = deliveryWebhookId(key, endpoint.endpointId);
      if ((await deps.log.get(webhookId)).length > 0) continue;
      const delivery: Delivery = { webhookId, publisherId, endpointId: endpoint.endpointId, topic, body, attempt: 1 };
      await deps.queue.enqueue({ kind: 'attempt', delivery }, 0);
      queued += 1;
    }
  }
  return queued;
}

// ---------------------------------------------------------------------------------------------
// Control routes of the local stack, for `iap-sync webhook replay` (the CLI runs in another
// process; replays must go through this process's queue and dead-letter queue).

export const LOCAL_WEBHOOK_ROUTES = {
  replay: '/__local/webhooks/replay',
  deadLetters: '/__local/webhooks/dead-letters',
} as const;

export const ReplayRequest = z.union([
  z.strictObject({ webhookId: z.string().regex(/^msg_[A-Za-z0-9_-]{1,64}$/) }),
  z.strictObject({
    publisherId: positiveInt32,
    since: z.iso.datetime(),
    limit: z.number().int().min(1).max(10_000).optional(),
  }),
]);
export type ReplayRequest = z.infer<typeof ReplayRequest>;

/**
 * `POST /__local/webhooks/replay` (`{ webhookId }` or `{ publisherId, since, limit? }`) answers
 * `{ replayed: ReplayReport[] }`, 404 for an unknown webhook id; `GET /__local/webhooks/dead-letters`
 * lists the dead-letter queue without bodies. Answers false for any other path.
 */
export async function handleLocalWebhookRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  delivery: LocalWebhookDelivery,
): Promise<boolean> {
  if (url.pathname === LOCAL_WEBHOOK_ROUTES.deadLetters) {
    if (req.method !== 'GET') {
      sendJson(res, 405, { message: 'Use GET.' });
      return true;
    }
    const deadLetters = (await delivery.deadLetters.list()).map(({ body: _body, ...rest }) => rest);
    sendJson(res, 200, { deadLetters });
    return true;
  }
  if (url.pathname !== LOCAL_WEBHOOK_ROUTES.replay) return false;
  if (req.method !== 'POST') {
    sendJson(res, 405, { message: 'Use POST.' });
    return true;
  }
  let request: ReplayRequest;
  try {
    const parsed = ReplayRequest.safeParse(await readJsonBody(req));
    if (!parsed.success) {
      sendJson(res, 400, { message: describeIssue(parsed.error) });
      return true;
    }
    request = parsed.data;
  } catch (error) {
    if (error instanceof RequestBodyError) {
      sendJson(res, error.status, { message: error.message });
      return true;
    }
    throw error;
  }
  try {
    const replayed =
      'webhookId' in request
        ? [await delivery.replayDelivery(request.webhookId)]
        : await delivery.replaySince(request.publisherId, request.since, request.limit);
    sendJson(res, 200, { replayed });
  } catch (error) {
    if (!(error instanceof DeliveryNotFoundError)) throw error;
    sendJson(res, 404, { message: error.message });
  }
  return true;
}
