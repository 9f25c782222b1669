import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { ExecutionState, WorkflowInspector, WorkflowStarter } from '../ports/workflow';
import type { SyncExecutionInput } from '../workflow-schemas';
import { callAws } from '../../platform/aws-errors';
import { awsClientConfig } from '../../platform/aws-client-config';
import { executionName } from '../domain/synchronization';

/** Starts the purchase-sync state machine; the endpoint comes from AWS_ENDPOINT_URL_SFN when set (local). */
export class SfnWorkflowStarter implements WorkflowStarter {
  constructor(
    private readonly stateMachineArn: string,
    private readonly client: SFNClient = new SFNClient(awsClientConfig()),
  ) {}

  async start(input: SyncExecutionInput, name: string = executionName(input)): Promise<void> {
    try {
      await callAws('start workflow', () =>
        this.client.send(
          new StartExecutionCommand({
            stateMachineArn: this.stateMachineArn,
            // The name makes a repeated start of the same synchronization a no-op (STANDARD).
            name,
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

/** DescribeExecution by name (STANDARD). EXPRESS executions cannot be described: always `unknown`. */
export class SfnWorkflowInspector implements WorkflowInspector {
  constructor(
    private readonly stateMachineArn: string,
    private readonly workflowType: 'STANDARD' | 'EXPRESS',
    private readonly client: SFNClient = new SFNClient(awsClientConfig()),
  ) {}

  async state(executionName: string): Promise<ExecutionState> {
    if (this.workflowType === 'EXPRESS') return 'unknown';
    const executionArn = `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
    try {
      const out = await callAws('describe workflow execution', () =>
        this.client.send(new DescribeExecutionCommand({ executionArn })),
      );
      return out.status === 'RUNNING' || out.status === 'PENDING_REDRIVE' ? 'running' : 'ended';
    } catch (error) {
      if ((error as Error).name === 'ExecutionDoesNotExist') return 'missing';
      throw error;
    }
  }
}
