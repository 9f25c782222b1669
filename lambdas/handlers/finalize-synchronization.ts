import { finalizeSynchronization, type FinalizeDeps } from '../domain/finalize-synchronization';
import { systemClock } from '../ports/clock';
import type { SyncResultDetail } from '../schemas/events';
import { FinalizeTaskInput } from '../schemas/workflow';
import type { Logger } from '../shared/logger';
import { createRuntime, lazyHandler } from '../shared/runtime';

/**
 * Tasks `FinalizeSynchronization` and `FinalizeFailure`: one transaction, then the event to publish
 * and, for a Google purchase to acknowledge, `acknowledge` (the workflow's AcknowledgeNeeded choice).
 */
export function makeFinalizeHandler(deps: FinalizeDeps & { logger: Logger }) {
  return async (event: unknown): Promise<{ event: SyncResultDetail; acknowledge?: { synchronizationId: string } }> => {
    const input = FinalizeTaskInput.parse(event);
    const outcome = await finalizeSynchronization(deps, {
      synchronizationId: input.synchronizationId,
      ...('verification' in input ? { verdict: input.verification } : {}),
    });
    const detail = outcome.event;
    deps.logger.info('synchronization finalized', {
      synchronizationId: detail.synchronizationId,
      publisherId: detail.broadcasterId,
      result: detail.result,
      accessGranted: detail.accessGranted,
      ownershipVersion: detail.ownershipVersion,
    });
    return { event: detail, ...(outcome.acknowledge ? { acknowledge: { synchronizationId: detail.synchronizationId } } : {}) };
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('finalize-synchronization');
  const finalize = makeFinalizeHandler({ ...runtime, clock: systemClock });
  return (event: unknown) => finalize(event);
});
