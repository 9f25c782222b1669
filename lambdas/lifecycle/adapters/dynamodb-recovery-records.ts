import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { callAws } from '../../platform/aws-errors';
import { keys, TABLE_DEFINITION } from '../../platform/dynamodb-table';
import type { ExecutionStarted, RecoveryRecords } from '../ports';

type Ref = { publisherId: number; synchronizationId: string };

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
}
