import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { executionInput } from '../lambdas/domain/accept-purchase';
import type { Synchronization } from '../lambdas/domain/synchronization';
import type { LocalStepFunctions } from './step-functions';

/**
 * `npm start` keeps its executions in memory: a synchronization accepted before the process stopped
 * would stay `processing` (its lock held for the whole lease). At start-up its workflow is started
 * again — the same ASL, so it verifies, finalizes, releases the lock and publishes as usual.
 * (Deployed stacks get a scheduled sweeper with its own issue.)
 */
export async function restartOpenSynchronizations(
  db: DynamoDBDocumentClient,
  tableName: string,
  stepFunctions: LocalStepFunctions,
  stateMachineArn: string,
): Promise<string[]> {
  const restarted: string[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: '#type = :sync AND #status <> :finalized',
        ExpressionAttributeNames: { '#type': 'type', '#status': 'status' },
        ExpressionAttributeValues: { ':sync': 'sync', ':finalized': 'finalized' },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const sync = item as unknown as Synchronization;
      await stepFunctions.call('StartExecution', {
        stateMachineArn,
        name: sync.synchronizationId,
        input: JSON.stringify(executionInput(sync)),
      });
      restarted.push(sync.synchronizationId);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return restarted;
}
