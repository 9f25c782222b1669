import { verifyPurchase, type VerifyDeps } from '../domain/verify-purchase';
import { systemClock } from '../../platform/clock';
import { VerdictOutput, VerifyTaskInput } from '../workflow-schemas';
import { withKeys, type Logger } from '../../platform/logger';
import { createRuntime } from '../runtime';
import { createStoreVerifiers } from '../store-verifiers';
import { createTracing } from '../../platform/tracer';
import { instrument, lazyHandler } from '../../platform/handler';
import { withTimeout } from '../../platform/deadline';
import { StoreUnavailableError } from '../../platform/errors';

/**
 * Task `VerifyPurchase`. Answers the store's verdict; throws StoreUnavailableError (the workflow
 * marks the synchronization `retrying` and waits) or a permanent error (the workflow finalizes).
 * The store ports it is given are measured (StoreLatency, StoreErrors: createStoreVerifiers).
 */
export function makeVerifyPurchaseHandler(deps: VerifyDeps & { logger: Logger; timeoutMs: number }) {
  return async (event: unknown): Promise<VerdictOutput> => {
    const ref = VerifyTaskInput.parse(event);
    const logger = withKeys(deps.logger, { synchronizationId: ref.synchronizationId, publisherId: ref.publisherId });
    try {
      // Bounded as a whole (VERIFY_TIMEOUT_MS), below the Task state's and the function's timeouts:
      // a slow store or table becomes the retry path, not a Lambda timeout. It only reads.
      const verdict = await withTimeout(
        verifyPurchase(deps, ref),
        deps.timeoutMs,
        () => new StoreUnavailableError(`the verification did not finish within ${deps.timeoutMs} ms`),
      );
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
  const deps = { ...runtime, ...createStoreVerifiers(runtime), clock: systemClock, timeoutMs: runtime.config.VERIFY_TIMEOUT_MS };
  return tracing.wrap(instrument(runtime, makeVerifyPurchaseHandler(deps)));
});
