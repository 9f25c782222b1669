import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { callAws } from '../../platform/aws-errors';
import { keys, PENDING_ACKNOWLEDGEMENT_SHARD, TABLE_DEFINITION } from '../../platform/dynamodb-table';
import type { PendingAcknowledgement, PendingAcknowledgementInput, PendingAcknowledgementRepository } from '../ports/pending-acknowledgements';

const { reconcileIndex } = TABLE_DEFINITION;
const SHARD = reconcileIndex.partitionKey.name;
const DUE_AT = reconcileIndex.sortKey.name;
/** The index projects this attribute; here it counts the reconciliation's attempts. */
const ATTEMPTS = reconcileIndex.nonKeyAttributes[0];
/** An acknowledged or given-up item stays this long after Google's three days, for support (`sync show`). */
const KEEP_AFTER_DEADLINE_SECONDS = 30 * 86_400;
/** Error text kept on the item: enough to tell a 503 from a refused service account. */
const MAX_ERROR_LENGTH = 300;

const NAMES: Record<string, string> = { '#state': 'state', '#shard': SHARD, '#dueAt': DUE_AT, '#attempts': ATTEMPTS };
/** The attribute names an expression uses (DynamoDB refuses unused ones). */
const namesIn = (...expressions: string[]) => Object.fromEntries(Object.entries(NAMES).filter(([name]) => expressions.some((e) => e.includes(name))));
/** `ACKNOWLEDGE#<publisherId>#google#`: the start of every key of one publisher's pending acknowledgements. */
const publisherPrefix = (publisherId: number) => keys.pendingAcknowledgement(publisherId, '').pk.slice(0, -64);

const ttlOf = (acknowledgeBy: Date) => Math.floor(acknowledgeBy.getTime() / 1000) + KEEP_AFTER_DEADLINE_SECONDS;
const clip = (text: string) => (text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text);

function isConditionFailure(error: unknown): boolean {
  return (error as Error)?.name === 'ConditionalCheckFailedException';
}

function toPending(item: Record<string, unknown>): PendingAcknowledgement | undefined {
  const { publisherId, purchaseToken, productId, state, acknowledgeBy, synchronizationId, recordedAt, updatedAt } = item;
  if (typeof publisherId !== 'number' || typeof purchaseToken !== 'string' || typeof productId !== 'string') return undefined;
  if (state !== 'pending' && state !== 'acknowledged' && state !== 'given_up') return undefined;
  if (typeof acknowledgeBy !== 'string' || typeof synchronizationId !== 'string' || typeof recordedAt !== 'string') return undefined;
  const attempts = item[ATTEMPTS];
  const text = (name: string) => (typeof item[name] === 'string' ? { [name]: item[name] as string } : {});
  return {
    publisherId,
    purchaseToken,
    productId,
    ...text('packageName'),
    state,
    acknowledgeBy,
    synchronizationId,
    recordedAt,
    updatedAt: typeof updatedAt === 'string' ? updatedAt : recordedAt,
    attempts: typeof attempts === 'number' ? attempts : 0,
    ...text('lastError'),
    ...(typeof item[DUE_AT] === 'string' && state === 'pending' ? { dueAt: item[DUE_AT] as string } : {}),
    ...text('acknowledgedAt'),
    ...text('givenUpAt'),
    ...text('givenUpReason'),
  };
}

/**
 * Pending Google acknowledgements in the iap-sync table: one small item per purchase token
 * (`keys.pendingAcknowledgement`), in the reconcile-due index under PENDING_ACKNOWLEDGEMENT_SHARD
 * while pending, so the reconciliation lists the due ones with one Query and never scans.
 */
export class DynamoDbPendingAcknowledgements implements PendingAcknowledgementRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async record(input: PendingAcknowledgementInput, now: Date): Promise<'recorded' | 'already_acknowledged'> {
    const key = keys.pendingAcknowledgement(input.publisherId, input.purchaseToken);
    const at = now.toISOString();
    try {
      await callAws('record pending acknowledgement', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: key,
            // A purchase already pending keeps its deadline (the earliest synchronization's) and its count.
            UpdateExpression:
              'SET #type = :type, publisherId = :publisherId, purchaseToken = :token, productId = :productId, #state = :pending, ' +
              'synchronizationId = :sync, updatedAt = :now, #shard = :shard, #dueAt = :now, ' +
              'acknowledgeBy = if_not_exists(acknowledgeBy, :by), recordedAt = if_not_exists(recordedAt, :now), ' +
              '#attempts = if_not_exists(#attempts, :zero), #ttl = if_not_exists(#ttl, :ttl)' +
              (input.packageName !== undefined ? ', packageName = :packageName' : '') +
              (input.lastError !== undefined ? ', lastError = :error' : ''),
            ConditionExpression: 'attribute_not_exists(pk) OR #state = :pending',
            ExpressionAttributeNames: { ...NAMES, '#type': 'type', '#ttl': TABLE_DEFINITION.timeToLiveAttribute },
            ExpressionAttributeValues: {
              ':type': 'acknowledgement',
              ':publisherId': input.publisherId,
              ':token': input.purchaseToken,
              ':productId': input.productId,
              ':pending': 'pending',
              ':sync': input.synchronizationId,
              ':now': at,
              ':shard': PENDING_ACKNOWLEDGEMENT_SHARD,
              ':by': input.acknowledgeBy.toISOString(),
              ':zero': 0,
              ':ttl': ttlOf(input.acknowledgeBy),
              ...(input.packageName !== undefined ? { ':packageName': input.packageName } : {}),
              ...(input.lastError !== undefined ? { ':error': clip(input.lastError) } : {}),
            },
          }),
        ),
      );
      return 'recorded';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.find(input.publisherId, input.purchaseToken);
    if (existing?.state === 'acknowledged') return 'already_acknowledged';
    // Given up before, and a synchronization has found it unacknowledged again: a fresh start.
    try {
      await callAws('record pending acknowledgement again', () =>
        this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...key,
              type: 'acknowledgement',
              publisherId: input.publisherId,
              purchaseToken: input.purchaseToken,
              productId: input.productId,
              ...(input.packageName !== undefined ? { packageName: input.packageName } : {}),
              state: 'pending',
              acknowledgeBy: input.acknowledgeBy.toISOString(),
              synchronizationId: input.synchronizationId,
              recordedAt: at,
              updatedAt: at,
              [ATTEMPTS]: 0,
              ...(input.lastError !== undefined ? { lastError: clip(input.lastError) } : {}),
              [SHARD]: PENDING_ACKNOWLEDGEMENT_SHARD,
              [DUE_AT]: at,
              [TABLE_DEFINITION.timeToLiveAttribute]: ttlOf(input.acknowledgeBy),
            },
            ConditionExpression: '#state = :givenUp',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: { ':givenUp': 'given_up' },
          }),
        ),
      );
      return 'recorded';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Someone else moved it meanwhile (pending again, or acknowledged): what they wrote stands.
      return (await this.find(input.publisherId, input.purchaseToken))?.state === 'acknowledged' ? 'already_acknowledged' : 'recorded';
    }
  }

  async listDue(now: Date, limit: number, publisherId?: number): Promise<PendingAcknowledgement[]> {
    if (limit <= 0) return [];
    const keysDue: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query({ dueBy: now, publisherId, startKey, ...(publisherId === undefined ? { limit: limit - keysDue.length } : {}) });
      keysDue.push(...(page.Items ?? []).slice(0, limit - keysDue.length));
      startKey = keysDue.length < limit ? page.LastEvaluatedKey : undefined;
    } while (startKey);
    const found: PendingAcknowledgement[] = [];
    for (const indexed of keysDue) {
      const out = await callAws('get pending acknowledgement', () =>
        this.db.send(new GetCommand({ TableName: this.tableName, Key: { pk: indexed.pk, sk: indexed.sk }, ConsistentRead: true })),
      );
      const entry = out.Item ? toPending(out.Item) : undefined;
      // The index lags the table a moment: only what is still pending and due.
      if (entry?.state === 'pending' && entry.dueAt !== undefined && entry.dueAt <= now.toISOString()) found.push(entry);
    }
    return found;
  }

  async countPending(publisherId?: number): Promise<number> {
    let count = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query({ publisherId, startKey, count: true });
      count += page.Count ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return count;
  }

  private query(options: { dueBy?: Date; publisherId: number | undefined; startKey: Record<string, unknown> | undefined; limit?: number; count?: boolean }) {
    const byPublisher = options.publisherId !== undefined;
    return callAws('list pending acknowledgements', () =>
      this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: reconcileIndex.indexName,
          KeyConditionExpression: '#shard = :shard' + (options.dueBy ? ' AND #dueAt <= :now' : ''),
          // A filter applies after Limit: with one, pages are read whole and cut by the caller.
          ...(byPublisher ? { FilterExpression: 'begins_with(pk, :prefix)' } : {}),
          ExpressionAttributeNames: { '#shard': SHARD, ...(options.dueBy ? { '#dueAt': DUE_AT } : {}) },
          ExpressionAttributeValues: {
            ':shard': PENDING_ACKNOWLEDGEMENT_SHARD,
            ...(options.dueBy ? { ':now': options.dueBy.toISOString() } : {}),
            ...(byPublisher ? { ':prefix': publisherPrefix(options.publisherId ?? 0) } : {}),
          },
          ExclusiveStartKey: options.startKey,
          ...(options.limit !== undefined ? { Limit: options.limit } : {}),
          ...(options.count ? { Select: 'COUNT' as const } : {}),
        }),
      ),
    );
  }

  async find(publisherId: number, purchaseToken: string): Promise<PendingAcknowledgement | undefined> {
    const out = await callAws('get pending acknowledgement', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.pendingAcknowledgement(publisherId, purchaseToken), ConsistentRead: true })),
    );
    return out.Item ? toPending(out.Item) : undefined;
  }

  async settle(
    entry: PendingAcknowledgement,
    outcome: { kind: 'retry'; nextAt: Date; error: string } | { kind: 'acknowledged' } | { kind: 'given_up'; reason: string },
    now: Date,
  ): Promise<boolean> {
    const at = now.toISOString();
    const condition = '#state = :pending AND #dueAt = :seen';
    const update =
      outcome.kind === 'retry'
        ? { expression: 'SET #dueAt = :next, #attempts = #attempts + :one, lastError = :error, updatedAt = :now', values: { ':next': outcome.nextAt.toISOString(), ':one': 1, ':error': clip(outcome.error) } }
        : outcome.kind === 'acknowledged'
          ? { expression: 'SET #state = :done, acknowledgedAt = :now, #attempts = #attempts + :one, updatedAt = :now REMOVE #shard, #dueAt', values: { ':done': 'acknowledged', ':one': 1 } }
          : { expression: 'SET #state = :done, givenUpAt = :now, givenUpReason = :reason, updatedAt = :now REMOVE #shard, #dueAt', values: { ':done': 'given_up', ':reason': clip(outcome.reason) } };
    try {
      await callAws('settle pending acknowledgement', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.pendingAcknowledgement(entry.publisherId, entry.purchaseToken),
            UpdateExpression: update.expression,
            ConditionExpression: condition,
            ExpressionAttributeNames: namesIn(update.expression, condition),
            ExpressionAttributeValues: { ...update.values, ':now': at, ':pending': 'pending', ':seen': entry.dueAt ?? '' },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}
