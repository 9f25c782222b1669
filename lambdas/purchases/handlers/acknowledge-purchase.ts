import * as z from 'zod';
import { acknowledgePurchase, type VerifyDeps } from '../domain/verify-purchase';
import { pendingAcknowledgementOf } from '../domain/pending-acknowledgement';
import type { PendingAcknowledgementRepository } from '../ports/pending-acknowledgements';
import { DynamoDbPendingAcknowledgements } from '../adapters/dynamodb-pending-acknowledgements';
import { AcknowledgeTaskInput } from '../workflow-schemas';
import { withKeys, type Logger } from '../../platform/logger';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { systemClock, type Clock } from '../../platform/clock';
import { required } from '../../platform/config';
import { createDocumentClient } from '../../platform/dynamodb-client';
import { SynchronizationMissingError } from '../../platform/errors';
import { createRuntime } from '../runtime';
import { createGoogleVerifier } from '../google-verifier';
import { createTracing } from '../../platform/tracer';
import { instrument, lazyHandler } from '../../platform/handler';

/**
 * What the two Task states send: `AcknowledgePurchase` the synchronization; `AcknowledgeLater`
 * (its Catch, once the attempts are spent) also `later: true` and the name of the last error.
 */
const AcknowledgeEvent = AcknowledgeTaskInput.extend({
  later: z.literal(true).optional(),
  error: z.string().max(256).optional(),
});

export interface AcknowledgeHandlerDeps extends Pick<VerifyDeps, 'publishers' | 'syncs' | 'google'> {
  logger: Logger;
  metrics?: MetricsRecorder;
  /** Where an acknowledgement the workflow could not get through waits for the reconciliation. */
  pending: Pick<PendingAcknowledgementRepository, 'record'>;
  clock?: Clock;
}

/**
 * Task `AcknowledgePurchase` (Google): runs after FinalizeSynchronization saved the entitlement.
 * Google refunds a subscription left unacknowledged for three days, so every failed attempt is
 * logged as an error and counted (AcknowledgeFailures). The workflow retries a few times within
 * about a minute (EXPRESS executions end at five); then its `AcknowledgeLater` state calls this
 * handler with `later`, which records the purchase as pending (one small item, only on this path)
 * for the scheduled reconciliation to acknowledge until Google confirms or the three days are over.
 * The Google port it is given is measured (StoreLatency, StoreErrors).
 */
export function makeAcknowledgePurchaseHandler(deps: AcknowledgeHandlerDeps) {
  const metrics = deps.metrics ?? noMetrics;
  const clock = deps.clock ?? systemClock;
  return async (event: unknown): Promise<{ acknowledged: true } | { pending: true } | { pending: false; reason: string }> => {
    const input = AcknowledgeEvent.parse(event);
    const ref = { synchronizationId: input.synchronizationId, publisherId: input.publisherId };
    const logger = withKeys(deps.logger, { ...ref, store: 'google' });
    if (input.later) {
      const sync = await deps.syncs.get(ref);
      if (!sync) throw new SynchronizationMissingError(`no synchronization ${ref.synchronizationId}`);
      const pending = pendingAcknowledgementOf(sync, input.error);
      if (!pending) {
        logger.error('acknowledgement failed and nothing can be recorded to retry it', { lastError: input.error });
        return { pending: false, reason: 'nothing to acknowledge on this synchronization' };
      }
      const recorded = await deps.pending.record(pending, clock.now());
      logger.warn('acknowledgement left to the reconciliation', { lastError: input.error, recorded, acknowledgeBy: pending.acknowledgeBy.toISOString() });
      return recorded === 'recorded' ? { pending: true } : { pending: false, reason: 'already acknowledged' };
    }
    try {
      await acknowledgePurchase(deps, ref);
    } catch (error) {
      logger.error('acknowledgement failed', { error });
      metrics.add('acknowledgeFailures', undefined);
      throw error;
    }
    logger.info('purchase acknowledged');
    return { acknowledged: true };
  };
}

export const handler = lazyHandler(() => {
  const tracing = createTracing();
  const runtime = createRuntime('acknowledge-purchase', process.env, { captureClient: tracing.captureClient });
  let pending: DynamoDbPendingAcknowledgements | undefined;
  return tracing.wrap(
    instrument(
      runtime,
      makeAcknowledgePurchaseHandler({
        ...runtime,
        // Google's client only: the function's bundle carries nothing of Apple's.
        google: createGoogleVerifier(runtime),
        // Built on first use: only a failed acknowledgement needs it.
        pending: { record: (...args) => (pending ??= new DynamoDbPendingAcknowledgements(createDocumentClient(), required(runtime.config, 'TABLE_NAME'))).record(...args) },
      }),
    ),
  );
});
