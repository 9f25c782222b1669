import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { callAws } from '../../platform/aws-errors';
import { keys, TABLE_DEFINITION } from '../../platform/dynamodb-table';
import type { ExecutionStarted, RecoveryRecords } from '../ports';

type Ref = { publisherId: number; synchronizationId: string };
type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const OPEN_SINCE = TABLE_DEFINITION.openIndex.sortKey.name;
/** The result a synchronization ends with when its store stayed unreachable: the only one an operator may retry. */
const RETRYABLE_RESULT = 'SYNCHRONIZATION_FAILED';

function isConditionFailure(error: unknown): boolean {
  return (error as Error)?.name === 'ConditionalCheckFailedException';
}

/**
 * The recovery-only writes on synchronization records and their locks (RecoveryRecords): separate
 * UpdateItems on attributes no other write sets, so the accept and finalize writes stay as they are.
 */
export class DynamoDbRecoveryRecords implements RecoveryRecords {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async executionStarted(ref: Ref, started: ExecutionStarted): Promise<void> {
    try {
      await callAws('record execution', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.synchronization(ref.publisherId, ref.synchronizationId),
            UpdateExpression: 'SET executions = list_append(if_not_exists(executions, :none), :started)',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':none': [], ':started': [started] },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async claimRetry(ref: Ref, retryId: string, now: Date): Promise<boolean> {
    try {
      await callAws('claim retry', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.synchronization(ref.publisherId, ref.synchronizationId),
            UpdateExpression: 'SET retriedAs = :retry, retriedAt = :now',
            ConditionExpression: '#status = :finalized AND #result = :failed AND attribute_not_exists(retriedAs)',
            ExpressionAttributeNames: { '#status': 'status', '#result': 'result' },
            ExpressionAttributeValues: { ':retry': retryId, ':now': now.toISOString(), ':finalized': 'finalized', ':failed': RETRYABLE_RESULT },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async releaseRetry(ref: Ref, retryId: string): Promise<void> {
    try {
      await callAws('release retry', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: keys.synchronization(ref.publisherId, ref.synchronizationId),
            UpdateExpression: 'REMOVE retriedAs, retriedAt',
            ConditionExpression: 'retriedAs = :retry',
            ExpressionAttributeValues: { ':retry': retryId },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async openSince(ref: Ref): Promise<string | undefined> {
    const out = await callAws('get open since', () =>
      this.db.send(
        new GetCommand({
          TableName: this.tableName,
          Key: keys.synchronization(ref.publisherId, ref.synchronizationId),
          ProjectionExpression: '#since',
          ExpressionAttributeNames: { '#since': OPEN_SINCE },
          ConsistentRead: true,
        }),
      ),
    );
    const since = out.Item?.[OPEN_SINCE];
    return typeof since === 'string' ? since : undefined;
  }

  async renewLocks(
    sync: { publisherId: number; synchronizationId: string; lockKeys: string[] },
    leaseExpiresAt: number,
    now: Date,
  ): Promise<{ lockKey: string; holder: string; leaseExpiresAt?: number } | undefined> {
    if (sync.lockKeys.length === 0) return undefined;
    const takeOver = new Map<string, string>();
    // Twice at most: the second time taking over the locks whose holders were found to be done.
    for (let round = 0; round < 2; round += 1) {
      try {
        await callAws('renew locks', () => this.db.send(new TransactWriteCommand({ TransactItems: sync.lockKeys.map((lockKey) => this.lockUpdate(sync, lockKey, leaseExpiresAt, now, takeOver.get(lockKey))) })));
        return undefined;
      } catch (error) {
        const reasons = (error as { name?: string; CancellationReasons?: { Code?: string }[] }).name === 'TransactionCanceledException'
          ? ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [])
          : undefined;
        if (!reasons) throw error;
        let held: { lockKey: string; holder: string; leaseExpiresAt?: number } | undefined;
        for (const [index, reason] of reasons.entries()) {
          const lockKey = sync.lockKeys[index];
          if (lockKey === undefined || (reason.Code !== 'ConditionalCheckFailed' && reason.Code !== 'TransactionConflict')) continue;
          const lock = await this.readLock(sync.publisherId, lockKey);
          const holder = lock?.owner ?? 'another request';
          if (round === 0 && lock?.owner !== undefined && (await this.holderIsDone(sync.publisherId, lock.owner))) takeOver.set(lockKey, lock.owner);
          else held ??= { lockKey, holder, ...(lock?.leaseExpiresAt !== undefined ? { leaseExpiresAt: lock.leaseExpiresAt } : {}) };
        }
        if (held) return held;
      }
    }
    return { lockKey: sync.lockKeys[0] ?? '', holder: 'another request' };
  }

  /** Owner, fresh lease; free when unowned, ours, expired, or (take-over) still held by a holder known to be done. */
  private lockUpdate(sync: Ref, lockKey: string, leaseExpiresAt: number, now: Date, doneHolder: string | undefined): TransactItem {
    return {
      Update: {
        TableName: this.tableName,
        Key: keys.lock(sync.publisherId, lockKey),
        // An Update, not a Put: the lock item may carry more than the lease.
        UpdateExpression: 'SET #type = :lock, #owner = :me, leaseExpiresAt = :lease',
        ConditionExpression: doneHolder !== undefined ? '#owner = :holder' : 'attribute_not_exists(#owner) OR #owner = :me OR leaseExpiresAt < :now',
        ExpressionAttributeNames: { '#type': 'type', '#owner': 'owner' },
        ExpressionAttributeValues: {
          ':lock': 'lock',
          ':me': sync.synchronizationId,
          ':lease': leaseExpiresAt,
          ...(doneHolder !== undefined ? { ':holder': doneHolder } : { ':now': now.getTime() }),
        },
      },
    };
  }

  private async readLock(publisherId: number, lockKey: string): Promise<{ owner?: string; leaseExpiresAt?: number } | undefined> {
    const out = await callAws('read lock', () => this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.lock(publisherId, lockKey), ConsistentRead: true })));
    if (!out.Item) return undefined;
    return {
      ...(typeof out.Item.owner === 'string' ? { owner: out.Item.owner } : {}),
      ...(typeof out.Item.leaseExpiresAt === 'number' ? { leaseExpiresAt: out.Item.leaseExpiresAt } : {}),
    };
  }

  /** A lock's holder no longer needs it once its synchronization is finalized or gone. */
  private async holderIsDone(publisherId: number, holder: string): Promise<boolean> {
    const out = await callAws('read lock holder', () =>
      this.db.send(
        new GetCommand({
          TableName: this.tableName,
          Key: keys.synchronization(publisherId, holder),
          ProjectionExpression: '#status',
          ExpressionAttributeNames: { '#status': 'status' },
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item === undefined || out.Item.status === 'finalized';
  }
}
