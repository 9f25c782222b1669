import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  DELIVERY_LOG_RETENTION_SECONDS,
  WEBHOOK_TOPICS,
  type DeliveryAttemptRecord,
  type DeliveryAttemptSummary,
  type DeliveryLog,
  type DeliveryLogQuery,
  type DisabledReason,
  type WebhookEndpoint,
  type WebhookEndpointRepository,
} from '../ports';
import { callAws } from '../../platform/aws-errors';
import { ConcurrentUpdateError } from '../../platform/errors';
import { TRANSPORT_FAILURES } from '../domain/delivery-policy';
import { CREDENTIALS_IN_URL_MESSAGE, hasUrlCredentials } from '../domain/endpoint-url';

/**
 * Webhook endpoints and the delivery log in the iap-sync table (single-table design, same pk/sk
 * conventions as dynamodb-table.ts):
 *
 * - endpoint: pk `PUBLISHER#<publisherId>`, sk `WEBHOOK#<endpointId>` (next to the publisher's
 *   profile, so listing a publisher's endpoints is one Query);
 * - attempt: pk `DELIVERY#<webhookId>`, sk `ATTEMPT#<at>#<nn>` (every attempt of one delivery,
 *   replays included, in time order; carries the body for replay);
 * - the same attempt, without the body, under pk `DELIVERYLOG#<publisherId>#<yyyy-mm-dd>`, sk
 *   `<at>#<webhookId>#<nn>`: the table has no secondary index, and a partition per publisher and
 *   day keeps log writes off the publisher partition every API call reads.
 *
 * Both log items carry `ttl` (epoch seconds, 30 days after the attempt).
 */
export const webhookKeys = {
  endpoint: (publisherId: number, endpointId: string) => ({ pk: `PUBLISHER#${publisherId}`, sk: `WEBHOOK#${endpointId}` }),
  endpointPrefix: 'WEBHOOK#',
  attempt: (webhookId: string, at: string, attempt: number) => ({
    pk: `DELIVERY#${webhookId}`,
    sk: `ATTEMPT#${at}#${String(attempt).padStart(2, '0')}`,
  }),
  publisherLogPartition: (publisherId: number, day: string) => `DELIVERYLOG#${publisherId}#${day}`,
  publisherLog: (publisherId: number, at: string, webhookId: string, attempt: number) => ({
    pk: `DELIVERYLOG#${publisherId}#${at.slice(0, 10)}`,
    sk: `${at}#${webhookId}#${String(attempt).padStart(2, '0')}`,
  }),
} as const;

const isoTime = z.iso.datetime();

const EndpointItem = z.object({
  publisherId: z.number().int().positive(),
  endpointId: z.string().min(1),
  url: z.string().min(1),
  topics: z.array(z.enum(WEBHOOK_TOPICS)),
  enabled: z.boolean(),
  disabledReason: z.enum(['410', 'manual']).optional(),
  disabledAt: isoTime.optional(),
  secretRef: z.string().min(1),
  previousSecretRef: z.string().min(1).optional(),
  previousSecretActiveUntil: isoTime.optional(),
  // A DynamoDB string set (ADD/DELETE keep concurrent rotations and deletions apart), read as a list.
  retiredSecretRefs: z
    .set(z.string().min(1))
    .transform((refs) => [...refs].sort())
    .optional(),
  createdAt: isoTime,
  updatedAt: isoTime,
});

const AttemptSummaryItem = z.object({
  webhookId: z.string(),
  publisherId: z.number().int().positive(),
  endpointId: z.string(),
  topic: z.enum(WEBHOOK_TOPICS),
  url: z.string(),
  attempt: z.number().int().min(1),
  at: isoTime,
  status: z.number().int().optional(),
  latencyMs: z.number().min(0),
  error: z.enum(TRANSPORT_FAILURES).optional(),
  next: z.enum(['done', 'retry', 'dead-letter', 'disable-endpoint']),
  nextAttemptAt: isoTime.optional(),
});

const AttemptItem = AttemptSummaryItem.extend({ body: z.string() });

function toEndpoint(item: Record<string, unknown>): WebhookEndpoint {
  return EndpointItem.parse(item);
}

function isConditionFailure(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

/** Webhook endpoints of publishers. */
export class DynamoDbWebhookEndpointRepository implements WebhookEndpointRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async put(endpoint: WebhookEndpoint): Promise<void> {
    // The CLI refuses such a URL first; checked here too so no writer can store one.
    if (hasUrlCredentials(endpoint.url)) throw new RangeError(CREDENTIALS_IN_URL_MESSAGE);
    const { retiredSecretRefs, ...fields } = endpoint;
    await callAws('put webhook endpoint', () =>
      this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...webhookKeys.endpoint(endpoint.publisherId, endpoint.endpointId),
            type: 'webhookEndpoint',
            ...fields,
            // Stored as a string set, as rotateSecret adds to it.
            ...(retiredSecretRefs !== undefined && retiredSecretRefs.length > 0 ? { retiredSecretRefs: new Set(retiredSecretRefs) } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  async get(publisherId: number, endpointId: string): Promise<WebhookEndpoint | undefined> {
    const out = await callAws('get webhook endpoint', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: webhookKeys.endpoint(publisherId, endpointId) })),
    );
    return out.Item ? toEndpoint(out.Item) : undefined;
  }

  async listByPublisher(publisherId: number): Promise<WebhookEndpoint[]> {
    const endpoints: WebhookEndpoint[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await callAws('list webhook endpoints', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: { ':pk': `PUBLISHER#${publisherId}`, ':prefix': webhookKeys.endpointPrefix },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of out.Items ?? []) endpoints.push(toEndpoint(item));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return endpoints.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.endpointId.localeCompare(b.endpointId));
  }

  async setEnabled(
    publisherId: number,
    endpointId: string,
    enabled: boolean,
    reason: DisabledReason | undefined,
    now: Date,
  ): Promise<WebhookEndpoint | undefined> {
    const update = enabled
      ? {
          UpdateExpression: 'SET enabled = :enabled, updatedAt = :now REMOVE disabledReason, disabledAt',
          ExpressionAttributeValues: { ':enabled': true, ':now': now.toISOString() },
        }
      : {
          UpdateExpression: 'SET enabled = :enabled, updatedAt = :now, disabledReason = :reason, disabledAt = :now',
          ExpressionAttributeValues: { ':enabled': false, ':now': now.toISOString(), ':reason': reason ?? 'manual' },
        };
    try {
      const out = await callAws('update webhook endpoint', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: webhookKeys.endpoint(publisherId, endpointId),
            ConditionExpression: 'attribute_exists(pk)',
            ReturnValues: 'ALL_NEW',
            ...update,
          }),
        ),
      );
      return out.Attributes ? toEndpoint(out.Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async rotateSecret(
    publisherId: number,
    endpointId: string,
    secretRef: string,
    previousActiveUntil: Date,
    now: Date,
  ): Promise<WebhookEndpoint | undefined> {
    // Read, then write conditioned on the secret read: two rotations at once cannot both keep
    // "the previous" secret and lose one of the new ones silently.
    const current = await this.get(publisherId, endpointId);
    if (!current) return undefined;
    // The previous secret this rotation replaces is not referenced any more: kept as retired, so the
    // delivery deletes it like an expired one instead of leaving it in Secrets Manager for ever.
    const dropped = current.previousSecretRef;
    try {
      const out = await callAws('rotate webhook secret', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: webhookKeys.endpoint(publisherId, endpointId),
            UpdateExpression:
              'SET secretRef = :new, previousSecretRef = :old, previousSecretActiveUntil = :until, updatedAt = :now' +
              (dropped !== undefined ? ' ADD retiredSecretRefs :dropped' : ''),
            ConditionExpression: 'secretRef = :old',
            ExpressionAttributeValues: {
              ':new': secretRef,
              ':old': current.secretRef,
              ':until': previousActiveUntil.toISOString(),
              ':now': now.toISOString(),
              ...(dropped !== undefined ? { ':dropped': new Set([dropped]) } : {}),
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return out.Attributes ? toEndpoint(out.Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) throw new ConcurrentUpdateError(`The secret of webhook endpoint ${endpointId} changed meanwhile; rotate again.`);
      throw error;
    }
  }

  async forgetRetiredSecrets(publisherId: number, endpointId: string, refs: readonly string[], now: Date): Promise<void> {
    if (refs.length === 0) return;
    const Key = webhookKeys.endpoint(publisherId, endpointId);
    // Two writes, each conditioned on what it removes: a rotation between them is kept intact.
    const updates = [
      new UpdateCommand({
        TableName: this.tableName,
        Key,
        UpdateExpression: 'DELETE retiredSecretRefs :refs',
        ConditionExpression: 'attribute_exists(retiredSecretRefs)',
        ExpressionAttributeValues: { ':refs': new Set(refs) },
      }),
      new UpdateCommand({
        TableName: this.tableName,
        Key,
        UpdateExpression: 'REMOVE previousSecretRef, previousSecretActiveUntil',
        ConditionExpression: `previousSecretRef IN (${refs.map((_ref, index) => `:r${index}`).join(', ')}) AND previousSecretActiveUntil <= :now`,
        ExpressionAttributeValues: { ...Object.fromEntries(refs.map((ref, index) => [`:r${index}`, ref])), ':now': now.toISOString() },
      }),
    ];
    for (const update of updates) {
      try {
        await callAws('forget deleted webhook secrets', () => this.db.send(update));
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
  }
}

const DAY_MS = 86_400_000;

/** The UTC days from `sinceMs` to `untilMs`, newest first (`yyyy-mm-dd`). */
function daysBetween(sinceMs: number, untilMs: number): string[] {
  const days: string[] = [];
  for (let day = Math.floor(untilMs / DAY_MS); day >= Math.floor(sinceMs / DAY_MS); day -= 1) {
    days.push(new Date(day * DAY_MS).toISOString().slice(0, 10));
  }
  return days;
}

/** Every delivery attempt, kept 30 days (DynamoDB TTL). */
export class DynamoDbDeliveryLog implements DeliveryLog {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  async append(record: DeliveryAttemptRecord): Promise<void> {
    const ttl = Math.floor(Date.parse(record.at) / 1000) + DELIVERY_LOG_RETENTION_SECONDS;
    const { body, ...summary } = record;
    // Two independent puts: both are idempotent, and a retried attempt rewrites the same keys.
    await Promise.all([
      callAws('log webhook attempt', () =>
        this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { ...webhookKeys.attempt(record.webhookId, record.at, record.attempt), type: 'webhookAttempt', ...summary, body, ttl },
          }),
        ),
      ),
      callAws('index webhook attempt', () =>
        this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...webhookKeys.publisherLog(record.publisherId, record.at, record.webhookId, record.attempt),
              type: 'webhookAttemptIndex',
              ...summary,
              ttl,
            },
          }),
        ),
      ),
    ]);
  }

  async listByPublisher(publisherId: number, query: DeliveryLogQuery): Promise<DeliveryAttemptSummary[]> {
    const nowMs = this.now();
    const oldestMs = nowMs - DELIVERY_LOG_RETENTION_SECONDS * 1000 - DAY_MS;
    const askedMs = query.since !== undefined ? Date.parse(query.since) : oldestMs;
    if (Number.isNaN(askedMs)) throw new RangeError(`Not an ISO time: ${query.since ?? ''}`);
    // Nothing older than the retention is kept: no need to look at the days before it.
    const sinceMs = Math.max(askedMs, oldestMs);
    const since = new Date(sinceMs).toISOString();
    const entries: DeliveryAttemptSummary[] = [];
    for (const day of daysBetween(sinceMs, nowMs)) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const remaining = query.limit - entries.length;
        if (remaining <= 0) return entries;
        const out = await callAws('list webhook attempts', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.tableName,
              KeyConditionExpression: 'pk = :pk AND sk >= :since',
              ExpressionAttributeValues: { ':pk': webhookKeys.publisherLogPartition(publisherId, day), ':since': since },
              ScanIndexForward: false,
              Limit: remaining,
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        for (const item of out.Items ?? []) entries.push(AttemptSummaryItem.parse(item));
        startKey = out.LastEvaluatedKey;
      } while (startKey);
    }
    return entries.slice(0, query.limit);
  }

  async get(webhookId: string): Promise<DeliveryAttemptRecord[]> {
    const records: DeliveryAttemptRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await callAws('get webhook attempts', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: { ':pk': `DELIVERY#${webhookId}`, ':prefix': 'ATTEMPT#' },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of out.Items ?? []) records.push(AttemptItem.parse(item));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return records;
  }
}
