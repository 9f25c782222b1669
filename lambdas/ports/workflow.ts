import type { SyncExecutionInput } from '../schemas/workflow';

/** Starts the synchronization workflow; the execution name is the synchronizationId, so a repeated start is harmless. */
export interface WorkflowStarter {
  start(input: SyncExecutionInput): Promise<void>;
}
