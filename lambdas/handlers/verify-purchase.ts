import { verifyPurchase, type VerifyDeps } from '../domain/verify-purchase';
import { systemClock } from '../ports/clock';
import { VerdictOutput, VerifyTaskInput } from '../schemas/workflow';
import type { Logger } from '../shared/logger';
import { createRuntime, lazyHandler } from '../shared/runtime';
import { createStoreVerifiers } from '../shared/store-verifiers';

/**
 * Task `VerifyPurchase`. Answers the store's verdict; throws StoreUnavailableError (the workflow
 * marks the synchronization `retrying` and waits) or a permanent error (the workflow finalizes).
 */
export function makeVerifyPurchaseHandler(deps: VerifyDeps & { logger: Logger }) {
  return async (event: unknown): Promise<VerdictOutput> => {
    const { synchronizationId } = VerifyTaskInput.parse(event);
    try {
      const verdict = await verifyPurchase(deps, synchronizationId);
      if (verdict === undefined) throw new Error('no verdict');
      deps.logger.info('verified with store', { synchronizationId, outcome: verdict.outcome });
      return VerdictOutput.parse(verdict);
    } catch (error) {
      // StoreCredentialsError is the alarmable line: the store refuses our key.
      const level = (error as Error).name === 'StoreCredentialsError' ? 'error' : 'warn';
      deps.logger[level]('store verification failed', { synchronizationId, error });
      throw error;
    }
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('verify-purchase');
  const verify = makeVerifyPurchaseHandler({ ...runtime, ...createStoreVerifiers(runtime), clock: systemClock });
  return (event: unknown) => verify(event);
});
