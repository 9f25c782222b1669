/**
 * `iap-sync webhook …`: webhook endpoints of a publisher, their delivery log, and replays (contract
 * §8). Plain functions like the other cli/commands/ groups: each takes the target stack and the
 * parsed options and answers what to print. A signing secret is printed once, when it is created,
 * and stored only through `target.storeSecret` (a file of the local stack, Secrets Manager when
 * deployed).
 */
import { randomBytes } from 'node:crypto';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbDeliveryLog, DynamoDbWebhookEndpointRepository } from '../../lambdas/webhooks/adapters/dynamodb-webhook-repository';
import { checkEndpointUrl, type ResolveAddresses } from '../../lambdas/webhooks/adapters/http-webhook-sender';
import { CREDENTIALS_IN_URL_MESSAGE, hasUrlCredentials, maskUrlCredentials } from '../../lambdas/webhooks/domain/endpoint-url';
import { generateWebhookSecret } from '../../lambdas/webhooks/domain/signature';
import {
  DEFAULT_WEBHOOK_TOPICS,
  SECRET_ROTATION_WINDOW_SECONDS,
  WEBHOOK_TOPICS,
  type DeliveryAttemptSummary,
  type WebhookEndpoint,
  type WebhookTopic,
} from '../../lambdas/webhooks/ports';
import { LOCAL_WEBHOOK_ROUTES, type ReplayRequest } from '../../local/webhook-queue';
import type { ReplayReport } from '../../lambdas/webhooks/domain/deliver-webhooks';
import { optionalString, parsePositiveInt32, requiredString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';

const MAX_URL_LENGTH = 2048;
const WEBHOOK_ID = /^msg_[A-Za-z0-9_-]{1,64}$/;
const ENDPOINT_ID = /^ep_[A-Za-z0-9_-]{1,61}$/;
const DEFAULT_DELIVERIES_LIMIT = 50;
const MAX_DELIVERIES_LIMIT = 1000;
const DEFAULT_REPLAY_LIMIT = 1000;
const MAX_REPLAY_LIMIT = 10_000;

/** What a command may be given instead of the real world, so tests stay offline and deterministic. */
export interface WebhookCommandIo {
  /** DNS for the URL check (default: the system resolver). */
  resolve?: ResolveAddresses;
  now?: () => Date;
  /** HTTP to the local stack's control route (default: global fetch). */
  fetch?: typeof fetch;
}

// ---------------------------------------------------------------------------------------------
// Option helpers (the shared ones are cli/args.ts')

function publisherOption(args: Args): number {
  return parsePositiveInt32('--publisher', optionalString(args, 'publisher'));
}

function endpointOption(args: Args): string {
  const endpointId = requiredString(args, 'endpoint');
  if (!ENDPOINT_ID.test(endpointId)) throw new UsageError(`--endpoint must be an endpoint id (ep_…), got ${JSON.stringify(endpointId)}`);
  return endpointId;
}

function isoOption(args: Args, name: string): string | undefined {
  const raw = optionalString(args, name);
  if (raw === undefined) return undefined;
  // A full ISO time with a zone, so "since" means the same instant on every machine.
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(ms)) throw new UsageError(`--${name} must be an ISO time with a zone, e.g. 2026-11-23T10:00:00Z, got ${JSON.stringify(raw)}`);
  return new Date(ms).toISOString();
}

function limitOption(args: Args, fallback: number, max: number): number {
  const raw = optionalString(args, 'limit');
  if (raw === undefined) return fallback;
  const value = /^[1-9][0-9]{0,5}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value > max) throw new UsageError(`--limit must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * `--topics a,b`: each one a detail-type of the event registry (WEBHOOK_TOPICS is EVENT_DETAIL_TYPES),
 * duplicates dropped. Absent: only the default, so an endpoint added before a topic existed, or
 * without asking, never starts receiving a body shape it does not expect.
 */
function parseTopics(raw: string | undefined): WebhookTopic[] {
  if (raw === undefined) return [...DEFAULT_WEBHOOK_TOPICS];
  const topics: WebhookTopic[] = [];
  for (const name of raw.split(',').map((part) => part.trim())) {
    const topic = WEBHOOK_TOPICS.find((candidate) => candidate === name);
    if (topic === undefined) throw new UsageError(`--topics must list ${WEBHOOK_TOPICS.join(', ')}, got ${JSON.stringify(name)}`);
    if (!topics.includes(topic)) topics.push(topic);
  }
  return topics;
}

function repositories(target: StackTarget, now: () => Date) {
  return {
    publishers: new DynamoDbPublisherRepository(target.db, target.tableName),
    endpoints: new DynamoDbWebhookEndpointRepository(target.db, target.tableName),
    log: new DynamoDbDeliveryLog(target.db, target.tableName, () => now().getTime()),
  };
}

async function requirePublisher(target: StackTarget, publishers: DynamoDbPublisherRepository, publisherId: number): Promise<void> {
  if (!(await publishers.getPublisher(publisherId))) throw new CommandError(`Publisher ${publisherId} not found in ${target.description}`);
}

/**
 * A new secret's name: unique per secret, so a cached old value is never mistaken for the new one. Its
 * prefix is the `webhook` scope of lib/secret-scopes.ts, which only the delivery function may read.
 */
export function secretPurpose(publisherId: number, endpointId: string, now: Date): string {
  return `webhook-secret-${publisherId}-${endpointId}-${now.getTime().toString(36)}`;
}

/** An endpoint as printed: never a secret, nor where secrets are kept. */
export interface WebhookEndpointView {
  endpointId: string;
  url: string;
  topics: WebhookTopic[];
  enabled: boolean;
  disabledReason?: string;
  disabledAt?: string;
  /** 2 during a rotation window (both secrets sign), else 1. */
  activeSecrets: number;
  previousSecretActiveUntil?: string;
  createdAt: string;
  updatedAt: string;
}

function viewOf(endpoint: WebhookEndpoint, nowMs: number): WebhookEndpointView {
  const rotating =
    endpoint.previousSecretRef !== undefined &&
    endpoint.previousSecretActiveUntil !== undefined &&
    Date.parse(endpoint.previousSecretActiveUntil) > nowMs;
  return {
    endpointId: endpoint.endpointId,
    // An endpoint stored with userinfo before it was refused: never printed with it.
    url: maskUrlCredentials(endpoint.url),
    topics: endpoint.topics,
    enabled: endpoint.enabled,
    ...(endpoint.disabledReason !== undefined ? { disabledReason: endpoint.disabledReason } : {}),
    ...(endpoint.disabledAt !== undefined ? { disabledAt: endpoint.disabledAt } : {}),
    activeSecrets: rotating ? 2 : 1,
    ...(rotating ? { previousSecretActiveUntil: endpoint.previousSecretActiveUntil } : {}),
    createdAt: endpoint.createdAt,
    updatedAt: endpoint.updatedAt,
  };
}

// ---------------------------------------------------------------------------------------------
// webhook add

export interface WebhookAddInput {
  publisherId: number;
  url: string;
  topics: WebhookTopic[];
}

export function parseWebhookAdd(args: Args): WebhookAddInput {
  const url = requiredString(args, 'url');
  if (url.length > MAX_URL_LENGTH || /[\s\x00-\x1F\x7F]/.test(url)) {
    throw new UsageError(`--url must be at most ${MAX_URL_LENGTH} characters without spaces or control characters`);
  }
  // Not echoed: the URL holds the password.
  if (hasUrlCredentials(url)) throw new UsageError(`--url: ${CREDENTIALS_IN_URL_MESSAGE}`);
  return { publisherId: publisherOption(args), url, topics: parseTopics(optionalString(args, 'topics')) };
}

export interface WebhookAdded {
  publisherId: number;
  endpointId: string;
  url: string;
  topics: WebhookTopic[];
  /** Shown once: only a reference to it is stored. */
  secret: string;
}

/**
 * Registers an endpoint. The URL is checked first: https and public addresses only on a deployed
 * stack (the sender checks the address again at every connect); anything http(s) locally.
 */
export async function webhookAdd(target: StackTarget, args: Args, io: WebhookCommandIo = {}): Promise<WebhookAdded> {
  const { publisherId, url, topics } = parseWebhookAdd(args);
  const now = io.now ?? (() => new Date());
  const { publishers, endpoints } = repositories(target, now);
  await requirePublisher(target, publishers, publisherId);
  const local = target.kind === 'local';
  const check = await checkEndpointUrl(url, {
    allowPrivateNetworks: local,
    requireHttps: !local,
    ...(io.resolve ? { resolve: io.resolve } : {}),
  });
  if (!check.ok) {
    if (check.reason === 'credentials-in-url') throw new UsageError(`--url: ${check.message}`);
    const message = `${check.message}${local ? '' : ` (${target.description} delivers only to public https endpoints)`}`;
    if (check.reason === 'invalid-url' || check.reason === 'https-required') throw new UsageError(`--url: ${message}`);
    throw new CommandError(message);
  }

  const endpointId = `ep_${randomBytes(12).toString('base64url')}`;
  const secret = generateWebhookSecret();
  const createdAt = now();
  const secretRef = await target.storeSecret(secretPurpose(publisherId, endpointId, createdAt), secret);
  await endpoints.put({
    publisherId,
    endpointId,
    url: check.url,
    topics,
    enabled: true,
    secretRef,
    createdAt: createdAt.toISOString(),
    updatedAt: createdAt.toISOString(),
  });
  return { publisherId, endpointId, url: check.url, topics, secret };
}

// ---------------------------------------------------------------------------------------------
// webhook list | disable | enable | rotate-secret

export function parseWebhookList(args: Args): { publisherId: number } {
  return { publisherId: publisherOption(args) };
}

export async function webhookList(
  target: StackTarget,
  args: Args,
  io: WebhookCommandIo = {},
): Promise<{ publisherId: number; endpoints: WebhookEndpointView[] }> {
  const { publisherId } = parseWebhookList(args);
  const now = io.now ?? (() => new Date());
  const { publishers, endpoints } = repositories(target, now);
  await requirePublisher(target, publishers, publisherId);
  const nowMs = now().getTime();
  return { publisherId, endpoints: (await endpoints.listByPublisher(publisherId)).map((endpoint) => viewOf(endpoint, nowMs)) };
}

export function parseWebhookEndpoint(args: Args): { publisherId: number; endpointId: string } {
  return { publisherId: publisherOption(args), endpointId: endpointOption(args) };
}

async function setEnabled(target: StackTarget, args: Args, enabled: boolean, io: WebhookCommandIo): Promise<WebhookEndpointView> {
  const { publisherId, endpointId } = parseWebhookEndpoint(args);
  const now = io.now ?? (() => new Date());
  const updated = await repositories(target, now).endpoints.setEnabled(publisherId, endpointId, enabled, enabled ? undefined : 'manual', now());
  if (!updated) throw new CommandError(`Webhook endpoint ${endpointId} of publisher ${publisherId} not found in ${target.description}`);
  return viewOf(updated, now().getTime());
}

/** Stops deliveries to the endpoint; scheduled retries to it are dropped when they come due. */
export function webhookDisable(target: StackTarget, args: Args, io: WebhookCommandIo = {}): Promise<WebhookEndpointView> {
  return setEnabled(target, args, false, io);
}

/** Resumes deliveries (after a 410 or a manual disable); events from the meantime can be replayed. */
export function webhookEnable(target: StackTarget, args: Args, io: WebhookCommandIo = {}): Promise<WebhookEndpointView> {
  return setEnabled(target, args, true, io);
}

export interface WebhookSecretRotated {
  publisherId: number;
  endpointId: string;
  /** Shown once: only a reference to it is stored. */
  secret: string;
  /** Until then the old secret signs too (a second `v1,` signature in webhook-signature). */
  previousSecretActiveUntil: string;
}

/**
 * A new signing secret. The old one stays active for SECRET_ROTATION_WINDOW_SECONDS (24 h), and
 * every delivery meanwhile carries a signature for each, so the receiver can switch at its pace.
 */
export async function webhookRotateSecret(target: StackTarget, args: Args, io: WebhookCommandIo = {}): Promise<WebhookSecretRotated> {
  const { publisherId, endpointId } = parseWebhookEndpoint(args);
  const now = io.now ?? (() => new Date());
  const { endpoints } = repositories(target, now);
  if (!(await endpoints.get(publisherId, endpointId))) {
    throw new CommandError(`Webhook endpoint ${endpointId} of publisher ${publisherId} not found in ${target.description}`);
  }
  const at = now();
  const secret = generateWebhookSecret();
  const secretRef = await target.storeSecret(secretPurpose(publisherId, endpointId, at), secret);
  const until = new Date(at.getTime() + SECRET_ROTATION_WINDOW_SECONDS * 1000);
  const updated = await endpoints.rotateSecret(publisherId, endpointId, secretRef, until, at);
  if (!updated) throw new CommandError(`Webhook endpoint ${endpointId} of publisher ${publisherId} not found in ${target.description}`);
  return { publisherId, endpointId, secret, previousSecretActiveUntil: until.toISOString() };
}

// ---------------------------------------------------------------------------------------------
// webhook deliveries

export function parseWebhookDeliveries(args: Args): { publisherId: number; since?: string; limit: number } {
  const since = isoOption(args, 'since');
  return {
    publisherId: publisherOption(args),
    ...(since !== undefined ? { since } : {}),
    limit: limitOption(args, DEFAULT_DELIVERIES_LIMIT, MAX_DELIVERIES_LIMIT),
  };
}

/** The publisher's delivery attempts, newest first (status, latency, error, what followed). */
export async function webhookDeliveries(
  target: StackTarget,
  args: Args,
  io: WebhookCommandIo = {},
): Promise<{ publisherId: number; deliveries: DeliveryAttemptSummary[] }> {
  const { publisherId, since, limit } = parseWebhookDeliveries(args);
  const { log } = repositories(target, io.now ?? (() => new Date()));
  const deliveries = await log.listByPublisher(publisherId, { ...(since !== undefined ? { since } : {}), limit });
  // Attempts logged before URLs were masked in the log may still hold userinfo.
  return { publisherId, deliveries: deliveries.map((entry) => ({ ...entry, url: maskUrlCredentials(entry.url) })) };
}

// ---------------------------------------------------------------------------------------------
// webhook replay

export function parseWebhookReplay(webhookId: string | undefined, args: Args): ReplayRequest {
  const hasPublisher = args.publisher !== undefined || args.since !== undefined;
  if (webhookId !== undefined) {
    if (hasPublisher) throw new UsageError('webhook replay takes a webhook id or --publisher N --since ISO, not both');
    if (!WEBHOOK_ID.test(webhookId)) throw new UsageError(`webhook replay needs a webhook id (msg_…), got ${JSON.stringify(webhookId)}`);
    return { webhookId };
  }
  if (!hasPublisher) throw new UsageError('webhook replay needs a webhook id, or --publisher N --since ISO');
  const since = isoOption(args, 'since');
  if (since === undefined) throw new UsageError('--since is required with --publisher');
  return { publisherId: publisherOption(args), since, limit: limitOption(args, DEFAULT_REPLAY_LIMIT, MAX_REPLAY_LIMIT) };
}

/**
 * Re-sends deliveries with their original webhook id, a fresh timestamp and signature, and a fresh
 * retry budget: from the dead-letter queue if there, else from the delivery log. Local stack only
 * for now: the replay runs in the `npm start` process, which owns the queue and dead-letter queue.
 */
export async function webhookReplay(
  target: StackTarget,
  webhookId: string | undefined,
  args: Args,
  io: WebhookCommandIo = {},
): Promise<{ replayed: ReplayReport[] } | { queued: object }> {
  const request = parseWebhookReplay(webhookId, args);
  if (target.kind !== 'local') {
    // Deployed: the delivery Lambda replays (it has the network position and the secrets); we queue it.
    if (!target.enqueueDelivery) throw new CommandError(`${target.description} has no WebhookQueueUrl output: deploy this version first`);
    const message =
      'webhookId' in request
        ? { kind: 'replay', webhookId: request.webhookId }
        : { kind: 'replay-since', publisherId: request.publisherId, since: request.since, limit: request.limit ?? 1000 };
    await target.enqueueDelivery(message);
    return { queued: message };
  }
  if (target.apiUrl === undefined) throw new CommandError(`${target.description} has no local.json with its API URL: is \`npm start\` running?`);
  const url = `${target.apiUrl}${LOCAL_WEBHOOK_ROUTES.replay}`;
  let response: Response;
  try {
    response = await (io.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
  } catch {
    throw new CommandError(`The local stack does not answer at ${target.apiUrl}: start it with \`npm start\` (same --data-dir)`);
  }
  const text = await response.text();
  let payload: unknown;
  try {
    payload = JSON.parse(text) as unknown;
  } catch {
    payload = undefined;
  }
  const message = typeof payload === 'object' && payload !== null && 'message' in payload ? String(payload.message) : text.slice(0, 200);
  if (response.status === 404) throw new CommandError(message || `Webhook ${webhookId ?? ''} not found`);
  if (!response.ok || typeof payload !== 'object' || payload === null || !('replayed' in payload) || !Array.isArray(payload.replayed)) {
    throw new CommandError(`Replay failed (HTTP ${response.status}): ${message}`);
  }
  return { replayed: payload.replayed as ReplayReport[] };
}
