import { acknowledgePurchase, type VerifyDeps } from '../domain/verify-purchase';
import { AcknowledgeTaskInput } from '../schemas/workflow';
import type { Logger } from '../shared/logger';
import { createRuntime, lazyHandler } from '../shared/runtime';
import { createStoreVerifiers } from '../shared/store-verifiers';

/**
 * Task `AcknowledgePurchase` (Google): runs after FinalizeSynchronization saved the entitlement.
 * Google refunds a subscription left unacknowledged for three days, so a failure here is logged as
 * an error after the workflow's retries.
 */
export function makeAcknowledgePurchaseHandler(deps: Pick<VerifyDeps, 'publishers' | 'syncs' | 'google'> & { logger: Logger }) {
  return async (event: unknown): Promise<{ acknowledged: true }> => {
    const { synchronizationId } = AcknowledgeTaskInput.parse(event);
    try {
      await acknowledgePurchase(deps, synchronizationId);
    } catch (error) {
      deps.logger.error('acknowledgement failed', { synchronizationId, error });
      throw error;
    }
    deps.logger.info('purchase acknowledged', { synchronizationId });
    return { acknowledged: true };
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('acknowledge-purchase');
  const acknowledge = makeAcknowledgePurchaseHandler({ ...runtime, google: createStoreVerifiers(runtime).google });
  return (event: unknown) => acknowledge(event);
});
