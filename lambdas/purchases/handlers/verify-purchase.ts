import { verifyPurchase, type VerifyDeps } from '../domain/verify-purchase';
import { systemClock } from '../../platform/clock';
import { VerdictOutput, VerifyTaskInput } from '../workflow-schemas';
import { withKeys, type Logger } from '../../platform/logger';
import { createRuntime } from '../runtime';
import { createStoreVerifiers } from '../store-verifiers';
import { createTracing } from '../../platform/tracer';
import { instrument, lazyHandler } from '../../platform/handler';

/**
 * Task `VerifyPurchase`. Answers the store's verdict; throws StoreUnavailableError (the workflow
 * marks the synchronization `retrying` and waits) or a permanent error (the workflow finalizes).
 * The store ports it is given are measured (StoreLatency, StoreErrors: createStoreVerifiers).
 */
export function makeVerifyPurchaseHandler(deps: VerifyDeps & { logger: Logger }) {
  return async (event: unknown): Promise<VerdictOutput> => {
    const ref = VerifyTaskInput.parse(event);
    const logger = withKeys(deps.logger, { synchronizationId: ref.synchronizationId, publisherId: ref.publisherId });
    try {
      const verdict = await verifyPurchase(deps, ref);
      if (verdict === undefined) throw new Error('no verdict');
      logger.info('verified with store', { outcome: verdict.outcome });
      return VerdictOutput.parse(verdict);
    } catch (error) {
      // StoreCredentialsError is the alarmable line: the store refuses our key.
      const level = (error as Error).name === 'StoreCredentialsError' ? 'error' : 'warn';
      logger[level]('store verification failed', { error });
      throw error;
    }
  };
}

export const handler = lazyHandler(() => {
  const tracing = createTracing();
  const runtime = createRuntime('verify-purchase', process.env, { captureClient: tracing.captureClient });
  return tracing.wrap(instrument(runtime, makeVerifyPurchaseHandler({ ...runtime, ...createStoreVerifiers(runtime), clock: systemClock })));
});
