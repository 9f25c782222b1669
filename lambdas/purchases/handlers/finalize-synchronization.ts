import { finalizeAndReport, type FinalizeDeps } from '../domain/finalize-synchronization';
import { systemClock } from '../../platform/clock';
import type { EventEntry } from '../../events/schemas';
import { required } from '../../platform/config';
import { FinalizeTaskInput } from '../workflow-schemas';
import type { Logger } from '../../platform/logger';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { createRuntime } from '../runtime';
import { instrument, lazyHandler } from '../../platform/handler';

/**
 * Tasks `FinalizeSynchronization` and `FinalizeFailure`: one transaction, then the event to publish
 * and, for a Google purchase to acknowledge, `acknowledge` (the workflow's AcknowledgeNeeded choice).
 * Counts SynchronizationsFinalized by result once per synchronization (not when a retried call
 * answers the stored event again).
 */
export function makeFinalizeHandler(deps: FinalizeDeps & { logger: Logger; metrics?: MetricsRecorder }) {
  const metrics = deps.metrics ?? noMetrics;
  return async (event: unknown): Promise<FinalizeTaskOutput> => {
    const input = FinalizeTaskInput.parse(event);
    const { outcome, written } = await finalizeAndReport(deps, {
      synchronizationId: input.synchronizationId,
      publisherId: input.publisherId,
      ...('verification' in input ? { verdict: input.verification } : {}),
    });
    const detail = outcome.event;
    if (written && detail) metrics.add('finalized', detail.result);
    deps.logger.info(written ? 'synchronization finalized' : 'synchronization was already finalized', {
      synchronizationId: outcome.synchronizationId,
      ...(detail
        ? {
            publisherId: detail.broadcasterId,
            store: detail.store,
            kind: detail.kind,
            result: detail.result,
            accessGranted: detail.accessGranted,
            ownershipVersion: detail.ownershipVersion,
          }
        : { kind: 'refresh' }),
      entitlementEvents: outcome.entries.length - (detail ? 1 : 0),
    });
    const ref = { synchronizationId: outcome.synchronizationId, publisherId: input.publisherId };
    return {
      ...ref,
      entries: outcome.entries,
      publish: outcome.entries.length > 0,
      ...(outcome.acknowledge ? { acknowledge: ref } : {}),
      ...(outcome.published ? { published: true as const } : {}),
    };
  };
}

/** What the workflow reads: `entries` for PublishEvents (skipped when `publish` is false), `synchronizationId` for MarkPublished. */
export interface FinalizeTaskOutput {
  synchronizationId: string;
  /** With the id, the synchronization's key (MarkPublished, AcknowledgePurchase). */
  publisherId: number;
  entries: EventEntry[];
  publish: boolean;
  acknowledge?: { synchronizationId: string; publisherId: number };
  published?: true;
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('finalize-synchronization');
  return instrument(runtime, makeFinalizeHandler({ ...runtime, clock: systemClock, eventBusName: required(runtime.config, 'EVENT_BUS_NAME') }));
});
