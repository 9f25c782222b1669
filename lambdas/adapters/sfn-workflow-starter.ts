import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { WorkflowStarter } from '../ports/workflow';
import type { SyncExecutionInput } from '../schemas/workflow';
import { callAws } from '../shared/aws-errors';

/** Starts the purchase-sync state machine; the endpoint comes from AWS_ENDPOINT_URL_SFN when set (local). */
export class SfnWorkflowStarter implements WorkflowStarter {
  constructor(
    private readonly stateMachineArn: string,
    private readonly client: SFNClient = new SFNClient({}),
  ) {}

  async start(input: SyncExecutionInput): Promise<void> {
    try {
      await callAws('start workflow', () =>
        this.client.send(
          new StartExecutionCommand({
            stateMachineArn: this.stateMachineArn,
            // The name makes a repeated start of the same synchronization a no-op (STANDARD).
            name: input.synchronizationId,
            input: JSON.stringify(input),
          }),
        ),
      );
    } catch (error) {
      if ((error as Error).name === 'ExecutionAlreadyExists') return;
      throw error;
    }
  }
}
