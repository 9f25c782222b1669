import {
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type UpdateCommandInput,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConcurrentUpdateError } from '../../platform/errors';
import { retainUntil } from '../../entitlements';
import { entitlementOf, snapshotOf, type EntitlementChange, type PurchaseRecord } from '../domain/ownership';
import type { Store } from '../../events/vocabulary';
import type { Synchronization, SyncRef } from '../domain/synchronization';
import type {
  AcceptOutcome,
  AcceptRequest,
  FinalizeRequest,
  OpenSynchronization,
  SynchronizationRepository,
} from '../ports/synchronization-repository';
import { callAws } from '../../platform/aws-errors';
import { keys, OPEN_SHARDS, openShardOf, reconcileIndexAttributes, synchronizationOfPk, TABLE_DEFINITION } from '../../platform/dynamodb-table';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** Synchronization records stay readable (status route, idempotent replay) for this long. */
const SYNC_RETENTION_SECONDS = 400 * 24 * 3600;
/** A lock item outlives its lease by a day, then TTL removes it; an expired lease is free before that. */
const LOCK_TTL_GRACE_SECONDS = 24 * 3600;

const { openIndex } = TABLE_DEFINITION;
const ITEM_ATTRIBUTES = new Set(['pk', 'sk', 'type', 'ttl', openIndex.partitionKey.name, openIndex.sortKey.name]);

function toSynchronization(item: Record<string, unknown>): Synchronization {
  const sync: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(item)) if (!ITEM_ATTRIBUTES.has(key)) sync[key] = value;
  return sync as unknown as Synchronization;
}

/**
 * The workflow's MarkPublished state makes exactly this update (statemachines/purchase-sync.asl.json;
 * a test holds the two together): `published`, and out of the open index.
 */
export const MARK_PUBLISHED = {
  UpdateExpression: `SET publishState = :published REMOVE ${openIndex.partitionKey.name}, ${openIndex.sortKey.name}`,
  ExpressionAttributeValues: { ':published': 'published' },
} as const;

/**
 * The stored record. `openShard`/`openSince` put it in the sparse open index while it is not
 * finalized, and after finalize until its event is known to be published (`publishState` claimed).
 * Every write of the record is a whole Put, so it enters and leaves the index in that same write.
 * `openSince` is the accept time, so the finalize Put leaves the index entry as it is (no index
 * write); MarkRetrying and a sweeper restart move it to when the sweeper should look again.
 */
function syncItem(sync: Synchronization): Record<string, unknown> {
  const ttl = Math.floor(Date.parse(sync.createdAt) / 1000) + SYNC_RETENTION_SECONDS;
  const open =
    sync.status !== 'finalized' || sync.publishState === 'claimed'
      ? { [openIndex.partitionKey.name]: openShardOf(sync.synchronizationId), [openIndex.sortKey.name]: sync.createdAt }
      : {};
  return { ...keys.synchronization(sync.publisherId, sync.synchronizationId), type: 'sync', ...sync, ...open, ttl };
}

interface CancellationReason {
  Code?: string;
  Item?: Record<string, unknown>;
}

function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if ((error as Error)?.name !== 'TransactionCanceledException') return undefined;
  return ((error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? []) as CancellationReason[];
}

/**
 * Locks follow the Powertools idempotency pattern: a conditional put that succeeds when the item is
 * absent or its lease has expired, the synchronizationId as owner token, and a release conditioned
 * on that owner.
 */
export class DynamoDbSynchronizationRepository implements SynchronizationRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly nowMs: () => number = Date.now,
  ) {}

  async accept({ sync, leaseExpiresAt, ipAddress, claimKey }: AcceptRequest): Promise<AcceptOutcome> {
    const now = this.nowMs();
    const customerKey = keys.customer(sync.publisherId, sync.customerId);
    const customerItem: TransactItem =
      ipAddress !== undefined
        ? {
            Update: {
              TableName: this.tableName,
              Key: customerKey,
              UpdateExpression: 'SET lastActivityIp = :ip, lastActivityAt = :at',
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeValues: { ':ip': ipAddress, ':at': sync.createdAt },
            },
          }
        : { ConditionCheck: { TableName: this.tableName, Key: customerKey, ConditionExpression: 'attribute_exists(pk)' } };
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: syncItem(sync),
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      customerItem,
      ...sync.lockKeys.map(
        (lockKey): TransactItem => ({
          Put: {
            TableName: this.tableName,
            Item: {
              ...keys.lock(sync.publisherId, lockKey),
              type: 'lock',
              owner: sync.synchronizationId,
              leaseExpiresAt,
              ttl: Math.floor(leaseExpiresAt / 1000) + LOCK_TTL_GRACE_SECONDS,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR leaseExpiresAt < :now',
            ExpressionAttributeValues: { ':now': now },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        }),
      ),
      // Last, so the lock reasons keep their positions: [sync, customer, ...locks, claim].
      ...(claimKey !== undefined
        ? [
            {
              Put: {
                TableName: this.tableName,
                Item: { ...keys.lock(sync.publisherId, claimKey), type: 'claim', owner: sync.synchronizationId },
                ConditionExpression: 'attribute_not_exists(pk)',
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            } satisfies TransactItem,
          ]
        : []),
    ];
    try {
      await callAws('accept synchronization', () => this.db.send(new TransactWriteCommand({ TransactItems: items })));
      return { outcome: 'accepted' };
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      const [syncReason, customerReason, ...rest] = reasons;
      const lockReasons = rest.slice(0, sync.lockKeys.length);
      const claimReason = claimKey !== undefined ? rest[sync.lockKeys.length] : undefined;
      if (syncReason?.Code === 'ConditionalCheckFailed') {
        const existing = await this.get(sync);
        if (existing) return { outcome: 'exists', existing };
      }
      if (customerReason?.Code === 'ConditionalCheckFailed') return { outcome: 'customer_missing' };
      if (claimKey !== undefined && (claimReason?.Code === 'ConditionalCheckFailed' || claimReason?.Code === 'TransactionConflict')) {
        const owner = await this.ownerOf(sync.publisherId, claimKey, claimReason.Item);
        if (owner !== undefined) return { outcome: 'claimed', synchronizationId: owner };
      }
      // A conflict means another request is claiming the same lock right now: it is, in effect, held.
      const heldAt = lockReasons.findIndex((r) => r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict');
      const held = lockReasons[heldAt];
      const heldKey = sync.lockKeys[heldAt];
      if (held && heldKey !== undefined) {
        const holder = await this.ownerOf(sync.publisherId, heldKey, held.Item);
        return { outcome: 'locked', lockKey: heldKey, ...(holder !== undefined ? { holder } : {}) };
      }
      if (syncReason?.Code === 'TransactionConflict') {
        // The same synchronizationId is being accepted concurrently (a replayed Correlation-Id).
        return { outcome: 'locked' };
      }
      throw error;
    }
  }

  /**
   * Who holds a lock or claim: from the cancellation reason when DynamoDB returned the item
   * (ReturnValuesOnConditionCheckFailure), else read back; undefined when it is already gone.
   */
  private async ownerOf(publisherId: number, lockKey: string, returned: Record<string, unknown> | undefined): Promise<string | undefined> {
    if (typeof returned?.owner === 'string') return returned.owner;
    const out = await callAws('read lock', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.lock(publisherId, lockKey), ConsistentRead: true })),
    );
    return typeof out.Item?.owner === 'string' ? out.Item.owner : undefined;
  }

  async acceptNotice(sync: Synchronization, notice: { store: Store; notificationId: string }): Promise<'accepted' | 'duplicate'> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              // The store's own id is the idempotency key: a redelivery finds it and changes nothing.
              Put: {
                TableName: this.tableName,
                Item: {
                  ...keys.notification(sync.publisherId, notice.store, notice.notificationId),
                  type: 'notification',
                  synchronizationId: sync.synchronizationId,
                  receivedAt: sync.createdAt,
                  ttl: Math.floor(this.nowMs() / 1000) + SYNC_RETENTION_SECONDS,
                },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            { Put: { TableName: this.tableName, Item: syncItem(sync), ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
      return 'accepted';
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (reasons?.[0]?.Code === 'ConditionalCheckFailed') return 'duplicate';
      return callAws('accept notification', () => Promise.reject(error));
    }
  }

  async abandon(sync: Synchronization): Promise<void> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.tableName,
                Key: keys.synchronization(sync.publisherId, sync.synchronizationId),
                ConditionExpression: '#status = :processing',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':processing': 'processing' },
              },
            },
            ...sync.lockKeys.map((lockKey) => this.releaseLock(sync, lockKey, '#owner = :owner')),
            // A Google register's claim goes too: the client's retry must not meet a 409 naming this undone id.
            ...(sync.claimKey !== undefined ? [this.releaseLock(sync, sync.claimKey, '#owner = :owner')] : []),
          ],
        }),
      );
    } catch (error) {
      if (!cancellationReasons(error)) throw error;
    }
  }

  async get(ref: SyncRef): Promise<Synchronization | undefined> {
    const out = await callAws('get synchronization', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.synchronization(ref.publisherId, ref.synchronizationId), ConsistentRead: true }),
      ),
    );
    return out.Item ? toSynchronization(out.Item) : undefined;
  }

  async findOriginalTransactionId(publisherId: number, transactionId: string): Promise<string | undefined> {
    const out = await callAws('get transaction link', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.transaction(publisherId, 'apple', transactionId) })),
    );
    return typeof out.Item?.originalTransactionId === 'string' ? out.Item.originalTransactionId : undefined;
  }

  async markRetrying(ref: SyncRef, attempts: number, now: Date, nextAttemptAt: Date, park?: { graceSeconds: number }): Promise<void> {
    // Waiting in the execution (STANDARD): the sweeper looks again once the attempt is due (plus its
    // grace). Parked (EXPRESS): the execution ends, so the entry is placed to be listed exactly when due.
    const lookAt = park ? new Date(nextAttemptAt.getTime() - park.graceSeconds * 1000) : nextAttemptAt;
    await this.updateIf('mark retrying', ref, {
      UpdateExpression:
        'SET #status = :retrying, attempts = :attempts, updatedAt = :now, #since = :lookAt' + (park ? ', parked = :true, retryAt = :next' : ''),
      ConditionExpression: 'attribute_exists(pk) AND #status <> :finalized',
      ExpressionAttributeNames: { '#status': 'status', '#since': openIndex.sortKey.name },
      ExpressionAttributeValues: {
        ':retrying': 'retrying',
        ':finalized': 'finalized',
        ':attempts': attempts,
        ':now': now.toISOString(),
        ':lookAt': lookAt.toISOString(),
        ...(park ? { ':true': true, ':next': nextAttemptAt.toISOString() } : {}),
      },
    });
  }

  async resumeParked(sync: Synchronization, now: Date): Promise<boolean> {
    return this.updateIf('resume parked synchronization', sync, {
      UpdateExpression: 'REMOVE parked, retryAt SET #since = :now, updatedAt = :now',
      ConditionExpression: 'parked = :true AND attempts = :attempts AND #status = :retrying',
      ExpressionAttributeNames: { '#status': 'status', '#since': openIndex.sortKey.name },
      ExpressionAttributeValues: { ':true': true, ':attempts': sync.attempts, ':retrying': 'retrying', ':now': now.toISOString() },
    });
  }

  async listOpen(olderThan: Date, limit: number): Promise<OpenSynchronization[]> {
    const cutoff = olderThan.toISOString();
    const found: OpenSynchronization[] = [];
    for (const shard of OPEN_SHARDS) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await callAws('list open synchronizations', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.tableName,
              IndexName: openIndex.indexName,
              KeyConditionExpression: '#shard = :shard AND #since < :cutoff',
              ExpressionAttributeNames: { '#shard': openIndex.partitionKey.name, '#since': openIndex.sortKey.name },
              ExpressionAttributeValues: { ':shard': shard, ':cutoff': cutoff },
              ExclusiveStartKey: startKey,
              Limit: limit - found.length,
            }),
          ),
        );
        for (const item of page.Items ?? []) {
          const ref = typeof item.pk === 'string' ? synchronizationOfPk(item.pk) : undefined;
          const since = item[openIndex.sortKey.name];
          if (ref && typeof since === 'string') found.push({ ...ref, openSince: since });
        }
        startKey = found.length < limit ? page.LastEvaluatedKey : undefined;
      } while (startKey);
      if (found.length >= limit) break;
    }
    return found;
  }

  async recordRecovery(sync: Synchronization, now: Date): Promise<boolean> {
    const recoveries = sync.recoveries ?? 0;
    return this.updateIf('record recovery', sync, {
      UpdateExpression: 'SET recoveries = :next, #since = :now, updatedAt = :now',
      ConditionExpression:
        'attribute_exists(pk) AND #status <> :finalized AND ' + (recoveries === 0 ? 'attribute_not_exists(recoveries)' : 'recoveries = :current'),
      ExpressionAttributeNames: { '#status': 'status', '#since': openIndex.sortKey.name },
      ExpressionAttributeValues: {
        ':next': recoveries + 1,
        ':now': now.toISOString(),
        ':finalized': 'finalized',
        ...(recoveries === 0 ? {} : { ':current': recoveries }),
      },
    });
  }

  /** A conditional update of a synchronization record: false, not an error, when its condition does not hold. */
  private async updateIf(
    operation: string,
    ref: SyncRef,
    update: Omit<UpdateCommandInput, 'TableName' | 'Key'> & { ConditionExpression: string },
  ): Promise<boolean> {
    try {
      await callAws(operation, () =>
        this.db.send(new UpdateCommand({ TableName: this.tableName, Key: keys.synchronization(ref.publisherId, ref.synchronizationId), ...update })),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async markPublished(ref: SyncRef): Promise<void> {
    await callAws('mark published', () =>
      this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.synchronization(ref.publisherId, ref.synchronizationId),
          ...MARK_PUBLISHED,
          ConditionExpression: 'attribute_exists(pk)',
        }),
      ),
    );
  }

  async getPurchase(publisherId: number, store: Store, purchaseKey: string): Promise<PurchaseRecord | undefined> {
    const out = await callAws('get purchase', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.purchase(publisherId, store, purchaseKey), ConsistentRead: true }),
      ),
    );
    return out.Item ? (out.Item.purchase as PurchaseRecord) : undefined;
  }

  async finalize(request: FinalizeRequest): Promise<boolean> {
    try {
      await this.writeFinal(request, true);
      return true;
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return false;
      const lockFailed = reasons.slice(1, 1 + request.sync.lockKeys.length).some((r) => r.Code === 'ConditionalCheckFailed');
      if (lockFailed) {
        // Our lease ended and someone else holds a lock now: finalize without touching the locks.
        try {
          await this.writeFinal(request, false);
          return true;
        } catch (retryError) {
          const retryReasons = cancellationReasons(retryError);
          if (retryReasons?.[0]?.Code === 'ConditionalCheckFailed') return false;
          if (retryReasons) throw new ConcurrentUpdateError('finalize lost a race', { cause: retryError });
          throw retryError;
        }
      }
      throw new ConcurrentUpdateError('finalize lost a race', { cause: error });
    }
  }

  /** A purchase record's Put, fenced on the version it was read at, and the entitlement items it changes. */
  private purchaseItems(sync: Synchronization, write: { next: PurchaseRecord; expectedVersion: number }, changes: EntitlementChange[]): TransactItem[] {
    const { next, expectedVersion } = write;
    const itemKey = keys.purchase(next.publisherId, next.store, next.purchaseKey);
    return [
      {
        Put: {
          TableName: this.tableName,
          // The whole item is replaced, so the reconcile index follows this write: placed anew, or left.
          Item: {
            ...itemKey,
            type: 'purchase',
            purchase: next,
            ownershipVersion: next.ownershipVersion,
            ...reconcileIndexAttributes(itemKey.pk, next.store, snapshotOf(next), new Date(this.nowMs())),
          },
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'ownershipVersion = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }),
        },
      },
      ...changes.map((change) => ({ Put: { TableName: this.tableName, Item: entitlementItem(sync, next, change, this.nowMs()) } })),
    ];
  }

  /** Deletes one of the synchronization's locks, conditioned on it still being the owner. */
  private releaseLock(sync: Synchronization, lockKey: string, condition: string): TransactItem {
    return {
      Delete: {
        TableName: this.tableName,
        Key: keys.lock(sync.publisherId, lockKey),
        ConditionExpression: condition,
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': sync.synchronizationId },
      },
    };
  }

  private async writeFinal({ sync, purchaseWrite, entitlementChanges, transactionLinks, releaseClaim, supersededWrite }: FinalizeRequest, releaseLock: boolean) {
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: syncItem(sync),
          ConditionExpression: 'attribute_exists(pk) AND #status <> :finalized',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':finalized': 'finalized' },
        },
      },
    ];
    // A lock already gone (TTL) is fine; one taken by someone else is not ours to delete.
    if (releaseLock) {
      for (const lockKey of sync.lockKeys) items.push(this.releaseLock(sync, lockKey, 'attribute_not_exists(pk) OR #owner = :owner'));
    }
    if (releaseClaim && sync.claimKey !== undefined) {
      items.push({ Delete: { TableName: this.tableName, Key: keys.lock(sync.publisherId, sync.claimKey) } });
    }
    for (const link of transactionLinks ?? []) {
      items.push({
        Put: {
          TableName: this.tableName,
          Item: { ...keys.transaction(sync.publisherId, sync.store, link.transactionId), type: 'transaction', ...link },
        },
      });
    }
    if (purchaseWrite) items.push(...this.purchaseItems(sync, purchaseWrite, entitlementChanges));
    if (supersededWrite) items.push(...this.purchaseItems(sync, supersededWrite, supersededWrite.entitlementChanges));
    await callAws('finalize synchronization', () => this.db.send(new TransactWriteCommand({ TransactItems: items })));
  }
}

/**
 * The customer's entitlement item (contract §10), a projection of the purchase record written in
 * the same transaction. An entitlement that no longer gives access carries a TTL: history is kept
 * 90 days after access ended.
 */
function entitlementItem(sync: Synchronization, next: PurchaseRecord, change: EntitlementChange, nowMs: number) {
  const entitlement = entitlementOf(next, change, sync.packageName);
  const ended = change.state === 'transferred' ? { state: 'expired' as const, expiresAt: null, gracePeriodExpiresAt: null } : snapshotOf(next);
  const ttl = change.active ? undefined : retainUntil(ended, new Date(nowMs));
  return { ...keys.entitlement(next.publisherId, change.customerId, next.store, next.purchaseKey), type: 'entitlement', ...entitlement, active: change.active, ...(ttl !== undefined ? { ttl } : {}) };
}
