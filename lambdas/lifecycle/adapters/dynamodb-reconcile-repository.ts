import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { callAws } from '../../platform/aws-errors';
import { keys, purchaseOfPk, RECONCILE_SHARDS, RECONCILED_STORES, TABLE_DEFINITION } from '../../platform/dynamodb-table';
import type { CursorScope, DuePurchase, HistoryCursor, ReconcileRepository } from '../ports';

const { reconcileIndex } = TABLE_DEFINITION;
const SHARD = reconcileIndex.partitionKey.name;
const DUE_AT = reconcileIndex.sortKey.name;
/** The projected attribute that counts the re-checks since the purchase was last written. */
const ATTEMPTS = reconcileIndex.nonKeyAttributes[0];

/**
 * The reconciliation's state in the iap-sync table: one small cursor item per publisher, store and
 * Apple environment or Google app, and the sparse `reconcile-due` index over the purchase items
 * (written by the finalize's purchase Put; postponed here).
 */
export class DynamoDbReconcileRepository implements ReconcileRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async getCursor(publisherId: number, scope: CursorScope): Promise<HistoryCursor | undefined> {
    const out = await callAws('get reconcile cursor', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.reconcileCursor(publisherId, scope), ConsistentRead: true })),
    );
    const item = out.Item;
    if (typeof item?.startDate !== 'string' || typeof item.endDate !== 'string') return undefined;
    return {
      startDate: item.startDate,
      endDate: item.endDate,
      ...(typeof item.paginationToken === 'string' ? { paginationToken: item.paginationToken } : {}),
    };
  }

  async saveCursor(publisherId: number, scope: CursorScope, cursor: HistoryCursor): Promise<void> {
    // Unconditional: whichever run writes last, what its cursor says was handed over is true, so at
    // worst a concurrent run makes the next one read some notifications twice (duplicates).
    await callAws('save reconcile cursor', () =>
      this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...keys.reconcileCursor(publisherId, scope),
            type: 'reconcileCursor',
            publisherId,
            ...scope,
            ...cursor,
          },
        }),
      ),
    );
  }

  async listDue(now: Date, limit: number, publisherId?: number): Promise<DuePurchase[]> {
    if (limit <= 0) return [];
    // An equal share per shard, so a shard with a long backlog cannot keep the others waiting.
    const quota = Math.ceil(limit / RECONCILE_SHARDS.length);
    const filter = publisherId !== undefined ? publisherFilter(publisherId) : undefined;
    const found: DuePurchase[] = [];
    for (const shard of RECONCILE_SHARDS) {
      const fromShard: DuePurchase[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await callAws('list due purchases', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.tableName,
              IndexName: reconcileIndex.indexName,
              KeyConditionExpression: '#shard = :shard AND #dueAt <= :now',
              ...(filter !== undefined ? { FilterExpression: filter.expression } : {}),
              ExpressionAttributeNames: { '#shard': SHARD, '#dueAt': DUE_AT },
              ExpressionAttributeValues: { ':shard': shard, ':now': now.toISOString(), ...filter?.values },
              ExclusiveStartKey: startKey,
              // A filter applies after Limit: with one, read whole pages and stop at the quota below.
              ...(filter === undefined ? { Limit: quota - fromShard.length } : {}),
            }),
          ),
        );
        for (const item of page.Items ?? []) {
          const purchase = toDuePurchase(item);
          if (purchase && fromShard.length < quota) fromShard.push(purchase);
        }
        startKey = fromShard.length < quota ? page.LastEvaluatedKey : undefined;
      } while (startKey);
      found.push(...fromShard);
      if (found.length >= limit) break;
    }
    return found.slice(0, limit);
  }

  async postpone(due: DuePurchase, until: Date): Promise<boolean> {
    try {
      await callAws('postpone due purchase', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.purchase(due.publisherId, due.store, due.purchaseKey),
            UpdateExpression: 'SET #dueAt = :until, #attempts = :attempts',
            // Only the entry as listed: a finalize that rewrote the purchase since placed it anew.
            ConditionExpression: '#dueAt = :seen',
            ExpressionAttributeNames: { '#dueAt': DUE_AT, '#attempts': ATTEMPTS },
            ExpressionAttributeValues: { ':until': until.toISOString(), ':attempts': due.attempts + 1, ':seen': due.reconcileAt },
          }),
        ),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}

/** Keeps one publisher's purchases of every reconciled store: their keys begin with `PURCHASE#<id>#<store>#`. */
function publisherFilter(publisherId: number): { expression: string; values: Record<string, string> } {
  const values = Object.fromEntries(RECONCILED_STORES.map((store, index) => [`:prefix${index}`, keys.purchase(publisherId, store, '').pk]));
  return { expression: Object.keys(values).map((name) => `begins_with(pk, ${name})`).join(' OR '), values };
}

function toDuePurchase(item: Record<string, unknown>): DuePurchase | undefined {
  const parts = typeof item.pk === 'string' ? purchaseOfPk(item.pk) : undefined;
  const reconcileAt = item[DUE_AT];
  if (!parts || typeof reconcileAt !== 'string') return undefined;
  if (parts.store !== 'apple' && parts.store !== 'google') return undefined;
  const attempts = item[ATTEMPTS];
  return {
    publisherId: parts.publisherId,
    store: parts.store,
    purchaseKey: parts.purchaseKey,
    reconcileAt,
    attempts: typeof attempts === 'number' && Number.isInteger(attempts) && attempts >= 0 ? attempts : 0,
  };
}
