import type { DeliveryAttemptResult, NextAttempt } from './domain/delivery-policy';
import { EVENT_DETAIL_TYPES, SYNC_RESULT_DETAIL_TYPE } from '../events/schemas';

/**
 * Webhook endpoints, deliveries and the ports the delivery use case needs (contract §8). The
 * records are plain JSON: a delivery travels through queues as is.
 */

/**
 * Topics an endpoint can subscribe to: every event of the registry, the EventBridge detail-type
 * being the topic name. Taken from the registry so a new event is a topic without a change here.
 */
export const WEBHOOK_TOPICS = EVENT_DETAIL_TYPES;
export type WebhookTopic = (typeof WEBHOOK_TOPICS)[number];

/**
 * What an endpoint gets when it names no topics (contract: the default stays the sync result), so
 * a topic added later reaches only the endpoints that ask for it.
 */
export const DEFAULT_WEBHOOK_TOPICS: readonly WebhookTopic[] = [SYNC_RESULT_DETAIL_TYPE];

/** How long a rotated-out secret keeps signing next to the new one, so receivers can switch over. */
export const SECRET_ROTATION_WINDOW_SECONDS = 24 * 3600;

/** Delivery-log items expire (DynamoDB TTL) this long after the attempt. */
export const DELIVERY_LOG_RETENTION_SECONDS = 30 * 24 * 3600;

/** Why an endpoint stopped receiving: the receiver answered 410 Gone, or someone disabled it. */
export type DisabledReason = '410' | 'manual';

/** A publisher's webhook endpoint. Secrets are held by reference only (`file:…` locally, an ARN deployed). */
export interface WebhookEndpoint {
  publisherId: number;
  /** `ep_` + 16 url-safe characters. */
  endpointId: string;
  /** Never with userinfo (refused at registration); one stored before that is never sent to nor shown. */
  url: string;
  topics: WebhookTopic[];
  enabled: boolean;
  disabledReason?: DisabledReason;
  disabledAt?: string;
  /** The current signing secret. */
  secretRef: string;
  /** The secret before the last rotation, still signing until `previousSecretActiveUntil`. */
  previousSecretRef?: string;
  previousSecretActiveUntil?: string;
  /**
   * Secrets a rotation dropped while they were still the previous one (a second rotation within the
   * window): they sign nothing any more and wait, like an expired previous secret, for the delivery
   * to delete them (see `retiredSecretRefs` in the delivery use case).
   */
  retiredSecretRefs?: string[];
  createdAt: string;
  updatedAt: string;
}

/**
 * One webhook to one endpoint, as it travels through the queue. `webhookId` is the same for every
 * attempt and every replay; `attempt` counts from 1.
 */
export interface Delivery {
  webhookId: string;
  publisherId: number;
  endpointId: string;
  topic: WebhookTopic;
  /** The exact JSON text sent and signed (the contract's `{ broadcasterId, topic, data }`). */
  body: string;
  attempt: number;
  /** ISO time before which the attempt must not be made (a scheduled retry longer than one queue delay). */
  notBefore?: string;
}

/** An EventBridge event as a rule target receives it (only the fields the delivery reads). */
export interface EventEnvelopeMessage {
  id?: string;
  source: string;
  'detail-type': string;
  detail: unknown;
}

/** What the delivery queue carries: a new event from the rule, or a scheduled attempt. */
/** A replay asked for by an operator (`iap-sync webhook replay` on a deployed stack): same webhook-id, fresh signature. */
export type ReplayMessage =
  | { kind: 'replay'; webhookId: string }
  | { kind: 'replay-since'; publisherId: number; since: string; limit: number };

export type DeliveryMessage = EventEnvelopeMessage | { kind: 'attempt'; delivery: Delivery } | ReplayMessage;

/** What the use case decided after an attempt; `skipped` when the endpoint was gone or disabled. */
export type AttemptAction = NextAttempt['action'];

/** One attempt as the delivery log keeps it. */
export interface DeliveryAttemptRecord {
  webhookId: string;
  publisherId: number;
  endpointId: string;
  topic: WebhookTopic;
  /** The endpoint URL as it may be shown: userinfo masked (`https://***@host/…`). */
  url: string;
  attempt: number;
  /** ISO time the attempt was made. */
  at: string;
  status?: number;
  latencyMs: number;
  error?: NonNullable<DeliveryAttemptResult['error']>;
  /** What followed: done, retry (at `nextAttemptAt`), dead-letter, disable-endpoint. */
  next: AttemptAction;
  nextAttemptAt?: string;
  /** The body sent, so a delivery can be replayed from the log. */
  body: string;
}

/** A log entry as listed for a publisher (the body is left out). */
export type DeliveryAttemptSummary = Omit<DeliveryAttemptRecord, 'body'>;

/** Webhook endpoints of publishers. */
export interface WebhookEndpointRepository {
  /** Creates the endpoint; throws if one with this id exists. */
  put(endpoint: WebhookEndpoint): Promise<void>;
  get(publisherId: number, endpointId: string): Promise<WebhookEndpoint | undefined>;
  listByPublisher(publisherId: number): Promise<WebhookEndpoint[]>;
  /** Enables or disables the endpoint; answers the updated endpoint, undefined when it does not exist. */
  setEnabled(
    publisherId: number,
    endpointId: string,
    enabled: boolean,
    reason: DisabledReason | undefined,
    now: Date,
  ): Promise<WebhookEndpoint | undefined>;
  /**
   * Makes `secretRef` the current secret and keeps the current one as the previous secret until
   * `previousActiveUntil`. Answers the updated endpoint, undefined when it does not exist.
   */
  rotateSecret(
    publisherId: number,
    endpointId: string,
    secretRef: string,
    previousActiveUntil: Date,
    now: Date,
  ): Promise<WebhookEndpoint | undefined>;
  /**
   * Drops deleted secrets from the endpoint: each of `refs` leaves `retiredSecretRefs`, and the
   * previous secret is removed if it is one of them and its window has ended by `now` (a rotation
   * meanwhile made another secret the previous one: that one stays). Nothing for a missing endpoint.
   */
  forgetRetiredSecrets(publisherId: number, endpointId: string, refs: readonly string[], now: Date): Promise<void>;
}

export interface DeliveryLogQuery {
  /** ISO time; entries at or after it. Default: the retention period. */
  since?: string;
  /** At most this many entries, newest first. */
  limit: number;
}

/** Every delivery attempt, kept for DELIVERY_LOG_RETENTION_SECONDS. */
export interface DeliveryLog {
  append(record: DeliveryAttemptRecord): Promise<void>;
  /** A publisher's attempts, newest first. */
  listByPublisher(publisherId: number, query: DeliveryLogQuery): Promise<DeliveryAttemptSummary[]>;
  /** Every logged attempt of one delivery, oldest first (empty when unknown or expired). */
  get(webhookId: string): Promise<DeliveryAttemptRecord[]>;
}

/** The queue that feeds the delivery handler. */
export interface DeliveryQueue {
  /**
   * Sends `message` to the handler after `delaySeconds` (at most the queue's longest delay; SQS:
   * 900 s, whole seconds, so an adapter rounds up). Fractions of a second are kept for local runs.
   */
  enqueue(message: DeliveryMessage, delaySeconds: number): Promise<void>;
}

/** A queue message the delivery can never handle (not JSON, not an event or attempt it knows). */
export interface PoisonMessage {
  /** The queue's id of the message. */
  messageId: string;
  /** The message as it came. */
  body: string;
  /** Why it cannot be handled (the error's message). */
  reason: string;
}

/**
 * Where poison messages go at once, instead of coming back until the queue's redrive policy sets
 * them aside (5 receives, each a visibility timeout apart).
 */
export interface PoisonMessageQueue {
  put(message: PoisonMessage): Promise<void>;
}

/** Deliveries whose every attempt failed; kept until replayed. */
export interface DeadLetterQueue {
  put(delivery: Delivery): Promise<void>;
  list(): Promise<Delivery[]>;
  /** Removes the delivery with this id; answers whether there was one. */
  remove(webhookId: string): Promise<boolean>;
}

export interface WebhookSendRequest {
  url: string;
  /** The exact bytes that were signed. */
  body: string;
  headers: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

/** Sends one attempt; never throws for what the receiver or the network does (HttpWebhookSender). */
export interface WebhookSender {
  send(request: WebhookSendRequest): Promise<DeliveryAttemptResult>;
}
