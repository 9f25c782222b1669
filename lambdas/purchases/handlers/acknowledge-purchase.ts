import { acknowledgePurchase, type VerifyDeps } from '../domain/verify-purchase';
import { AcknowledgeTaskInput } from '../workflow-schemas';
import { withKeys, type Logger } from '../../platform/logger';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { createRuntime } from '../runtime';
import { createStoreVerifiers } from '../store-verifiers';
import { createTracing } from '../../platform/tracer';
import { instrument, lazyHandler } from '../../platform/handler';

/**
 * Task `AcknowledgePurchase` (Google): runs after FinalizeSynchronization saved the entitlement.
 * Google refunds a subscription left unacknowledged for three days, so a failure here is logged as
 * an error and counted (AcknowledgeFailures, which alarms) at every failed attempt. The Google port it is given is measured (StoreLatency, StoreErrors).
 */
export function makeAcknowledgePurchaseHandler(deps: Pick<VerifyDeps, 'publishers' | 'syncs' | 'google'> & { logger: Logger; metrics?: MetricsRecorder }) {
  const metrics = deps.metrics ?? noMetrics;
  return async (event: unknown): Promise<{ acknowledged: true }> => {
    const ref = AcknowledgeTaskInput.parse(event);
    const logger = withKeys(deps.logger, { synchronizationId: ref.synchronizationId, publisherId: ref.publisherId, store: 'google' });
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
  return tracing.wrap(instrument(runtime, makeAcknowledgePurchaseHandler({ ...runtime, google: createStoreVerifiers(runtime).google })));
});
