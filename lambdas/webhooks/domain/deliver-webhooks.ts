import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { Clock } from '../../platform/clock';
import type { SecretStore } from '../../platform/secret-store';
import {
  WEBHOOK_TOPICS,
  type DeadLetterQueue,
  type Delivery,
  type DeliveryAttemptRecord,
  type DeliveryLog,
  type DeliveryMessage,
  type DeliveryQueue,
  type EventEnvelopeMessage,
  type PoisonMessageQueue,
  type WebhookEndpoint,
  type WebhookEndpointRepository,
  type WebhookSender,
  type WebhookTopic,
} from '../ports';
import { ENTITLEMENT_CHANGED_DETAIL_TYPE, EVENT_REGISTRY, SYNC_RESULT_DETAIL_TYPE } from '../../events/schemas';
import type { Logger } from '../../platform/logger';
import {
  DELIVERY_TIMEOUT_MS,
  MAX_RETRY_DELAY_SECONDS,
  RETRY_SCHEDULE_SECONDS,
  nextAttempt,
  outcomeOf,
  type DeliveryAttemptResult,
  type NextAttempt,
  type TransportFailure,
} from './delivery-policy';
import { hasUrlCredentials, maskUrlCredentials } from './endpoint-url';
import { WEBHOOK_ID_PREFIX, webhookHeaders } from './signature';
import { positiveInt32 } from '../../platform/schema-primitives';

/**
 * The webhook delivery use case (contract §8): turns an event of the registry (its detail-type is
 * the topic) into one delivery per endpoint subscribed to that topic, makes attempts, and schedules
 * retries, dead letters and endpoint disabling from `nextAttempt`. Pure of AWS: queues, storage,
 * secrets and HTTP are ports.
 */

/** SQS's longest message delay. Longer waits are made in hops (see `attemptDelivery`). */
export const SQS_MAX_DELAY_SECONDS = 900;

export interface DeliverWebhooksDeps {
  endpoints: WebhookEndpointRepository;
  log: DeliveryLog;
  queue: DeliveryQueue;
  deadLetters: DeadLetterQueue;
  sender: WebhookSender;
  secrets: SecretStore;
  clock: Clock;
  logger: Logger;
  /** Waits before the retries; default the contract's schedule. The local runtime scales it down. */
  scheduleSeconds?: readonly number[];
  /** Ceiling for a receiver's Retry-After; default 10 h (scale it with the schedule). */
  maxRetryDelaySeconds?: number;
  /** Longest delay the queue accepts; default SQS's 900 s. */
  maxQueueDelaySeconds?: number;
  /** Bound on one attempt; default the contract's 15 s. */
  timeoutMs?: number;
  /**
   * Where the SQS handler sends a message it can never handle, at once. Without it (the local
   * runtime) such a message fails like any other and the queue sets it aside after its receives.
   */
  poisonMessages?: PoisonMessageQueue;
}

/** The message is not an event or an attempt this handler knows. Permanent: retrying cannot help. */
export class InvalidDeliveryMessageError extends Error {
  override readonly name = 'InvalidDeliveryMessageError';
  readonly retryable = false;
}

/** Neither the dead-letter queue nor the delivery log knows this webhook id. */
export class DeliveryNotFoundError extends Error {
  override readonly name = 'DeliveryNotFoundError';
  readonly retryable = false;
}

/** What became of one delivery when a message was processed. */
export type AttemptReport =
  | {
      webhookId: string;
      endpointId: string;
      attempt: number;
      /** The action `nextAttempt` chose after a real attempt. */
      outcome: NextAttempt['action'];
      status?: number;
      error?: TransportFailure;
      /** For `retry`: the wait before the next attempt, in seconds. */
      delaySeconds?: number;
    }
  /** Not due yet: sent back to the queue for `delaySeconds` (a hop of a long wait). */
  | { webhookId: string; endpointId: string; attempt: number; outcome: 'deferred'; delaySeconds: number }
  /** Not attempted: the endpoint is gone or disabled. */
  | { webhookId: string; endpointId: string; attempt: number; outcome: 'skipped'; reason: 'endpoint-missing' | 'endpoint-disabled' }
  /** The attempt failed inside this service (storage, secrets); queued again as it was. */
  | { webhookId: string; endpointId: string; attempt: number; outcome: 'requeued'; delaySeconds: number };

export interface ReplayReport {
  webhookId: string;
  /** Where the delivery was found: the dead-letter queue first, else the delivery log. */
  source: 'dead-letter-queue' | 'log';
  report: AttemptReport;
}

// ---------------------------------------------------------------------------------------------
// Messages

const DeliverySchema = z.strictObject({
  webhookId: z.string().regex(/^msg_[A-Za-z0-9_-]{1,64}$/),
  publisherId: positiveInt32,
  endpointId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  topic: z.enum(WEBHOOK_TOPICS),
  body: z.string().min(2).max(256 * 1024),
  attempt: z.number().int().min(1).max(1000),
  notBefore: z.iso.datetime().optional(),
});

const AttemptMessageSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('attempt'), delivery: DeliverySchema }),
  z.strictObject({ kind: z.literal('replay'), webhookId: z.string().min(1).max(200) }),
  z.strictObject({
    kind: z.literal('replay-since'),
    publisherId: z.number().int().min(1),
    since: z.iso.datetime(),
    limit: z.number().int().min(1).max(10_000),
  }),
]);

/** The fields of an EventBridge envelope the delivery reads; the others are ignored. */
const EventMessageSchema = z.object({
  id: z.string().optional(),
  source: z.string(),
  'detail-type': z.string(),
  detail: z.unknown(),
});

/** Reads a queue message: a scheduled attempt, or an EventBridge event. */
export function parseDeliveryMessage(raw: unknown): DeliveryMessage {
  if (typeof raw === 'object' && raw !== null && 'kind' in raw) {
    const attempt = AttemptMessageSchema.safeParse(raw);
    if (!attempt.success) throw new InvalidDeliveryMessageError(`Invalid attempt message: ${firstIssue(attempt.error)}`);
    return attempt.data;
  }
  const event = EventMessageSchema.safeParse(raw);
  if (!event.success) throw new InvalidDeliveryMessageError(`Neither an event nor an attempt: ${firstIssue(event.error)}`);
  return event.data;
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || 'message'}: ${issue.message}` : 'invalid';
}

export function isTopic(value: string): value is WebhookTopic {
  return (WEBHOOK_TOPICS as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// Topics

/** The EventBridge detail of a topic, as the registry's schema for that detail-type reads it. */
export type TopicDetail<T extends WebhookTopic> = z.infer<(typeof EVENT_REGISTRY)[T]['detail']>;

/**
 * The registry seen per topic. The same object, widened by an assignment the compiler checks: code
 * generic over a topic `T` can then take `detail` as a schema of `TopicDetail<T>`, which indexing
 * the `as const` registry itself gives only as a union of every topic's schema.
 */
const REGISTRY: { readonly [T in WebhookTopic]: { readonly detail: z.ZodType<TopicDetail<T>>; readonly webhookBody: z.ZodType } } =
  EVENT_REGISTRY;

/**
 * What one event of each topic is, independent of the envelope that carried it: the key its webhook
 * ids derive from. Not the EventBridge event id: an event published again (the sweeper publishes
 * what a dead execution had not, PutEvents retried after a lost answer) gets a new envelope id but
 * must keep its webhook ids, so receivers drop the copy. A mapped type, so a topic added to the
 * registry does not compile until it says what identifies its events.
 *
 * - `inappPurchaseSyncResult`: the synchronizationId (one result per synchronization; the ids
 *   deliveries had before topics were generic, so they stay the same).
 * - `inappEntitlementChanged`: its synchronizationId is null for store notifications and shared by
 *   the several changes of one transfer, so it cannot be the key. The purchase's ownershipVersion
 *   grows at every change of owner or entitlement and each change concerns one customer, so
 *   detail-type + publisher + store + purchase key + ownershipVersion + customer names one change.
 */
const EVENT_KEYS: { [T in WebhookTopic]: (detail: TopicDetail<T>) => string } = {
  [SYNC_RESULT_DETAIL_TYPE]: (detail) => detail.synchronizationId,
  [ENTITLEMENT_CHANGED_DETAIL_TYPE]: (detail) =>
    [
      ENTITLEMENT_CHANGED_DETAIL_TYPE,
      detail.broadcasterId,
      detail.store,
      // Apple's purchase key is the originalTransactionId, Google's the purchaseToken; one is always
      // set. Were both missing, product and change time still keep distinct changes apart.
      detail.originalTransactionId ?? detail.purchaseToken ?? `${detail.productId}@${detail.changedAt}`,
      detail.ownershipVersion,
      detail.cleengCustomerId,
    ].join('\n'),
};

/** The identity of an event of `topic` (see EVENT_KEYS); `deliveryWebhookId` derives the webhook ids from it. */
export function webhookEventKey<T extends WebhookTopic>(topic: T, detail: TopicDetail<T>): string {
  const keyOf: (detail: TopicDetail<T>) => string = EVENT_KEYS[topic];
  return keyOf(detail);
}

/**
 * The webhook id of an event's delivery to one endpoint: `msg_` + 22 url-safe characters of
 * SHA-256(eventKey, endpointId). Derived, not random, so an event the queue delivers twice (SQS is
 * at-least-once) or the bus carries twice gives the same id and receivers drop the second copy.
 * For a sync result the key is its synchronizationId.
 */
export function deliveryWebhookId(eventKey: string, endpointId: string): string {
  const digest = createHash('sha256').update(`${eventKey}\n${endpointId}`).digest('base64url');
  return WEBHOOK_ID_PREFIX + digest.slice(0, 22);
}

/**
 * The contract's webhook body for an event detail: `{ broadcasterId, topic, data }`, data = detail
 * minus broadcasterId, checked by the registry's webhookBody schema of the topic.
 */
export function webhookBodyOf<T extends WebhookTopic>(topic: T, detail: TopicDetail<T>): string {
  const { broadcasterId, ...data } = detail;
  // Parsing orders the keys as the schema declares them, which is the contract's order.
  return JSON.stringify(REGISTRY[topic].webhookBody.parse({ broadcasterId, topic, data }));
}

/** An event read for delivery: whose it is, what identifies it, and the body every endpoint gets. */
export interface WebhookEvent {
  topic: WebhookTopic;
  publisherId: number;
  /** See `webhookEventKey`. */
  key: string;
  body: string;
}

/**
 * Reads an event's detail with the registry's schema for its topic. Answers the zod error when the
 * detail breaks the contract, so each caller decides what that means (refuse the message, skip a
 * log line).
 */
export function readWebhookEvent<T extends WebhookTopic>(
  topic: T,
  rawDetail: unknown,
): { success: true; event: WebhookEvent } | { success: false; error: z.ZodError } {
  const parsed = REGISTRY[topic].detail.safeParse(rawDetail);
  if (!parsed.success) return { success: false, error: parsed.error };
  const detail = parsed.data;
  return {
    success: true,
    event: { topic, publisherId: detail.broadcasterId, key: webhookEventKey(topic, detail), body: webhookBodyOf(topic, detail) },
  };
}

/** The secrets that sign an attempt at `nowMs`: the current one, and the previous one during its rotation window. */
export function activeSecretRefs(endpoint: WebhookEndpoint, nowMs: number): string[] {
  const refs = [endpoint.secretRef];
  if (
    endpoint.previousSecretRef !== undefined &&
    endpoint.previousSecretActiveUntil !== undefined &&
    Date.parse(endpoint.previousSecretActiveUntil) > nowMs
  ) {
    refs.push(endpoint.previousSecretRef);
  }
  return refs;
}

/**
 * The endpoint's secrets that sign nothing any more: the previous one once its rotation window has
 * ended, and those a second rotation dropped early. Never one that still signs.
 */
export function retiredSecretRefs(endpoint: WebhookEndpoint, nowMs: number): string[] {
  const active = new Set(activeSecretRefs(endpoint, nowMs));
  const retired = new Set(endpoint.retiredSecretRefs ?? []);
  if (endpoint.previousSecretRef !== undefined) retired.add(endpoint.previousSecretRef);
  return [...retired].filter((ref) => !active.has(ref));
}

/**
 * Deletes the endpoint's retired signing secrets (Secrets Manager bills each one monthly), then
 * drops their references. Here, because every delivery reads the endpoint anyway: the secret goes
 * with the first delivery after its 24-hour window, at no extra read, and nothing else has to find
 * endpoints to clean (the table has no index of them). Deleted first, forgotten second: a failure
 * in between leaves a reference to a secret already gone, which the next delivery forgets. Never
 * fails the attempt.
 */
async function deleteRetiredSecrets(deps: DeliverWebhooksDeps, endpoint: WebhookEndpoint, nowMs: number): Promise<void> {
  const { secrets } = deps;
  const refs = retiredSecretRefs(endpoint, nowMs);
  if (refs.length === 0 || secrets.delete === undefined) return;
  const { publisherId, endpointId } = endpoint;
  try {
    for (const ref of refs) await secrets.delete(ref);
    await deps.endpoints.forgetRetiredSecrets(publisherId, endpointId, refs, new Date(nowMs));
    deps.logger.info('rotated-out webhook signing secrets deleted', { publisherId, endpointId, count: refs.length });
  } catch (error) {
    deps.logger.warn('a rotated-out webhook signing secret could not be deleted; the next delivery to the endpoint tries again', {
      publisherId,
      endpointId,
      error,
    });
  }
}

function queueDelay(deps: DeliverWebhooksDeps, seconds: number): number {
  return Math.max(0, Math.min(seconds, deps.maxQueueDelaySeconds ?? SQS_MAX_DELAY_SECONDS));
}

function firstRetryDelay(deps: DeliverWebhooksDeps): number {
  return (deps.scheduleSeconds ?? RETRY_SCHEDULE_SECONDS)[0] ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Use case

/** Processes one queue message (already JSON-parsed). Throws when the message must be retried. */
export async function processDeliveryMessage(deps: DeliverWebhooksDeps, raw: unknown): Promise<AttemptReport[]> {
  const message = parseDeliveryMessage(raw);
  if (!('kind' in message)) return fanOutEvent(deps, message);
  switch (message.kind) {
    case 'attempt':
      return [await attemptDelivery(deps, message.delivery)];
    case 'replay':
      try {
        return [(await replayDelivery(deps, message.webhookId)).report];
      } catch (error) {
        // An unknown id will not become known by retrying the message.
        if (!(error instanceof DeliveryNotFoundError)) throw error;
        deps.logger.warn('replay of an unknown webhook id ignored', { webhookId: message.webhookId });
        return [];
      }
    case 'replay-since':
      return (await replaySince(deps, message.publisherId, message.since, message.limit)).map((replayed) => replayed.report);
  }
}

/**
 * A new event of any registry topic: one delivery per enabled endpoint of the publisher subscribed
 * to the topic (its detail-type), each attempted now. An attempt that fails inside this service is
 * queued again on its own, so the other endpoints are not sent the event twice; only when that
 * queueing fails does this throw (and the event comes back with the same webhook ids).
 */
export async function fanOutEvent(deps: DeliverWebhooksDeps, event: EventEnvelopeMessage): Promise<AttemptReport[]> {
  const topic = event['detail-type'];
  if (!isTopic(topic)) {
    deps.logger.warn('webhook event ignored: unknown topic', { topic, eventId: event.id });
    return [];
  }
  const read = readWebhookEvent(topic, event.detail);
  if (!read.success) throw new InvalidDeliveryMessageError(`Invalid ${topic} detail: ${firstIssue(read.error)}`);
  const { publisherId, key, body } = read.event;
  const endpoints = (await deps.endpoints.listByPublisher(publisherId)).filter(
    (endpoint) => endpoint.enabled && endpoint.topics.includes(topic),
  );
  if (endpoints.length === 0) {
    deps.logger.debug('webhook event without endpoints', { publisherId, topic, eventId: event.id });
    return [];
  }
  const deliveries = endpoints.map((endpoint) => ({
    endpoint,
    delivery: {
      webhookId: deliveryWebhookId(key, endpoint.endpointId),
      publisherId,
      endpointId: endpoint.endpointId,
      topic,
      body,
      attempt: 1,
    } satisfies Delivery,
  }));

  const settled = await Promise.allSettled(deliveries.map(({ delivery, endpoint }) => attemptDelivery(deps, delivery, endpoint)));
  const reports: AttemptReport[] = [];
  for (const [index, result] of settled.entries()) {
    const entry = deliveries[index];
    if (entry === undefined) continue;
    if (result.status === 'fulfilled') {
      reports.push(result.value);
      continue;
    }
    const { delivery } = entry;
    const delaySeconds = queueDelay(deps, firstRetryDelay(deps));
    deps.logger.error('webhook attempt failed inside the service; queued again', {
      webhookId: delivery.webhookId,
      endpointId: delivery.endpointId,
      publisherId: delivery.publisherId,
      error: result.reason,
    });
    // Throws when the queue is down too: then the whole event is retried.
    await deps.queue.enqueue({ kind: 'attempt', delivery }, delaySeconds);
    reports.push({ webhookId: delivery.webhookId, endpointId: delivery.endpointId, attempt: delivery.attempt, outcome: 'requeued', delaySeconds });
  }
  return reports;
}

/**
 * One attempt of one delivery: sign with the endpoint's active secrets (timestamp = now), send,
 * log, then act on `nextAttempt`. A delivery whose `notBefore` is still ahead is not attempted but
 * queued again for the rest of the wait (at most one queue delay per hop).
 * `knownEndpoint` saves a read when the caller has just listed it.
 */
export async function attemptDelivery(
  deps: DeliverWebhooksDeps,
  delivery: Delivery,
  knownEndpoint?: WebhookEndpoint,
): Promise<AttemptReport> {
  const { webhookId, endpointId, attempt, publisherId } = delivery;
  const nowMs = deps.clock.now().getTime();
  if (delivery.notBefore !== undefined) {
    const remainingSeconds = (Date.parse(delivery.notBefore) - nowMs) / 1000;
    if (remainingSeconds > 0) {
      const delaySeconds = queueDelay(deps, remainingSeconds);
      await deps.queue.enqueue({ kind: 'attempt', delivery }, delaySeconds);
      return { webhookId, endpointId, attempt, outcome: 'deferred', delaySeconds };
    }
  }

  const endpoint = knownEndpoint ?? (await deps.endpoints.get(publisherId, endpointId));
  if (!endpoint?.enabled) {
    const reason = endpoint ? 'endpoint-disabled' : 'endpoint-missing';
    deps.logger.info('webhook dropped', { webhookId, endpointId, publisherId, attempt, reason });
    return { webhookId, endpointId, attempt, outcome: 'skipped', reason };
  }

  const shownUrl = maskUrlCredentials(endpoint.url);
  let result: DeliveryAttemptResult;
  if (hasUrlCredentials(endpoint.url)) {
    // Stored before such URLs were refused at registration. Never sent: the credentials would go
    // over the wire and into the receiver's logs. Permanent (dead-lettered at once): the publisher
    // registers the endpoint again without them.
    result = { latencyMs: 0, error: 'credentials-in-url' };
    deps.logger.warn('webhook not sent: the endpoint URL carries credentials', { webhookId, endpointId, publisherId, url: shownUrl });
  } else {
    // Trimmed: a secret file edited by hand often ends with a newline, which is not part of the secret.
    const secrets = await Promise.all(activeSecretRefs(endpoint, nowMs).map(async (ref) => (await deps.secrets.get(ref)).trim()));
    const headers = webhookHeaders(secrets, webhookId, Math.floor(nowMs / 1000), delivery.body);
    result = await deps.sender.send({
      url: endpoint.url,
      body: delivery.body,
      headers,
      timeoutMs: deps.timeoutMs ?? DELIVERY_TIMEOUT_MS,
    });
  }
  const afterMs = deps.clock.now().getTime();
  const decision = nextAttempt(attempt, outcomeOf(result), result.retryAfter, {
    scheduleSeconds: deps.scheduleSeconds ?? RETRY_SCHEDULE_SECONDS,
    maxDelaySeconds: deps.maxRetryDelaySeconds ?? MAX_RETRY_DELAY_SECONDS,
    nowMs: afterMs,
  });
  const nextAttemptAt = decision.action === 'retry' ? new Date(afterMs + decision.delaySeconds * 1000).toISOString() : undefined;

  const record: DeliveryAttemptRecord = {
    webhookId,
    publisherId,
    endpointId,
    topic: delivery.topic,
    url: shownUrl,
    attempt,
    at: new Date(nowMs).toISOString(),
    latencyMs: result.latencyMs,
    next: decision.action,
    body: delivery.body,
    ...(result.status !== undefined ? { status: result.status } : {}),
    ...(result.error !== undefined ? { error: result.error } : {}),
    ...(nextAttemptAt !== undefined ? { nextAttemptAt } : {}),
  };
  await deps.log.append(record);
  await deleteRetiredSecrets(deps, endpoint, afterMs);
  deps.logger.info('webhook attempt', {
    webhookId,
    endpointId,
    publisherId,
    attempt,
    status: result.status,
    error: result.error,
    latencyMs: result.latencyMs,
    next: decision.action,
    nextAttemptAt,
  });

  const report = {
    webhookId,
    endpointId,
    attempt,
    outcome: decision.action,
    ...(result.status !== undefined ? { status: result.status } : {}),
    ...(result.error !== undefined ? { error: result.error } : {}),
  };
  switch (decision.action) {
    case 'done':
      return report;
    case 'disable-endpoint':
      await deps.endpoints.setEnabled(publisherId, endpointId, false, '410', new Date(afterMs));
      deps.logger.warn('webhook endpoint disabled: the receiver answered 410 Gone', { endpointId, publisherId, url: shownUrl });
      return report;
    case 'dead-letter':
      await deps.deadLetters.put({ webhookId, publisherId, endpointId, topic: delivery.topic, body: delivery.body, attempt });
      deps.logger.warn('webhook dead-lettered', { webhookId, endpointId, publisherId, attempts: attempt });
      return report;
    case 'retry': {
      const next: Delivery = {
        webhookId,
        publisherId,
        endpointId,
        topic: delivery.topic,
        body: delivery.body,
        attempt: attempt + 1,
        ...(nextAttemptAt !== undefined ? { notBefore: nextAttemptAt } : {}),
      };
      await deps.queue.enqueue({ kind: 'attempt', delivery: next }, queueDelay(deps, decision.delaySeconds));
      return { ...report, delaySeconds: decision.delaySeconds };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Replay

/**
 * Sends a delivery again with the same webhook id (receivers de-duplicate on it), a fresh timestamp
 * and signature, and a fresh retry budget (attempt 1). Taken from the dead-letter queue if it is
 * there (and removed from it), else from the delivery log. A delivery to a disabled or deleted
 * endpoint is not sent and stays in the dead-letter queue.
 */
export async function replayDelivery(deps: DeliverWebhooksDeps, webhookId: string): Promise<ReplayReport> {
  const dead = (await deps.deadLetters.list()).find((delivery) => delivery.webhookId === webhookId);
  let delivery: Delivery;
  if (dead) {
    delivery = { webhookId, publisherId: dead.publisherId, endpointId: dead.endpointId, topic: dead.topic, body: dead.body, attempt: 1 };
  } else {
    const last = (await deps.log.get(webhookId)).at(-1);
    if (!last) throw new DeliveryNotFoundError(`Webhook ${webhookId} is neither in the dead-letter queue nor in the delivery log.`);
    delivery = { webhookId, publisherId: last.publisherId, endpointId: last.endpointId, topic: last.topic, body: last.body, attempt: 1 };
  }
  // Removed before the attempt: an attempt that ends in the dead-letter queue again puts it back.
  if (dead) await deps.deadLetters.remove(webhookId);
  let report: AttemptReport;
  try {
    report = await attemptDelivery(deps, delivery);
  } catch (error) {
    if (dead) await deps.deadLetters.put(dead);
    throw error;
  }
  if (dead && report.outcome === 'skipped') await deps.deadLetters.put(dead);
  deps.logger.info('webhook replayed', { webhookId, source: dead ? 'dead-letter-queue' : 'log', outcome: report.outcome });
  return { webhookId, source: dead ? 'dead-letter-queue' : 'log', report };
}

/** Replays run this many at a time: a receiver that times out should not make a replay take hours. */
const REPLAY_CONCURRENCY = 8;

/**
 * Replays every delivery of the publisher logged at or after `since` (ISO), oldest first, each
 * once, whatever its outcome was. `limit` bounds the log entries read.
 */
export async function replaySince(
  deps: DeliverWebhooksDeps,
  publisherId: number,
  since: string,
  limit = 1000,
): Promise<ReplayReport[]> {
  const entries = await deps.log.listByPublisher(publisherId, { since, limit });
  const ids = [...new Set(entries.map((entry) => entry.webhookId).reverse())];
  const reports: ReplayReport[] = new Array<ReplayReport>(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const index = next++;
      const id = ids[index];
      if (id !== undefined) reports[index] = await replayDelivery(deps, id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(REPLAY_CONCURRENCY, ids.length) }, worker));
  return reports;
}
