import type { SyncExecutionInput } from '../workflow-schemas';

/** Starts the synchronization workflow; the execution name is the synchronizationId, so a repeated start is harmless. */
export interface WorkflowStarter {
  /** `executionName` defaults to `executionName(input)` (`<publisherId>-<id>`); the recovery sweeper passes `….r<n>`. */
  start(input: SyncExecutionInput, executionName?: string): Promise<void>;
}

/**
 * What the recovery sweeper needs to know of an execution: `running`, `ended` (succeeded, failed,
 * timed out or aborted), `missing` (never started, or lost with a local process), or `unknown`
 * (EXPRESS executions cannot be described; the sweeper then judges by age).
 */
export type ExecutionState = 'running' | 'ended' | 'missing' | 'unknown';

export interface WorkflowInspector {
  state(executionName: string): Promise<ExecutionState>;
}
