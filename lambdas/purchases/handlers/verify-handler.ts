import type { Store } from '../../events/vocabulary';
import type { StoreVerdict } from '../domain/ownership';
import type { SyncRef } from '../domain/synchronization';
import { VerdictOutput, VerifyTaskInput } from '../workflow-schemas';
import { withKeys, type Logger } from '../../platform/logger';
import { withTimeout } from '../../platform/deadline';
import { StoreUnavailableError } from '../../platform/errors';

/** What every verify Task handler needs besides its store's verification. */
export interface VerifyHandlerDeps {
  logger: Logger;
  /** VERIFY_TIMEOUT_MS: the whole verification (records, secret, store), below the Task state's timeout. */
  timeoutMs: number;
}

/**
 * Tasks `VerifyApplePurchase` and `VerifyGooglePurchase` (one function per store, so each bundle
 * carries one store's library; the workflow's `VerifyStore` Choice picks by the execution's `store`).
 * Answers the store's verdict; throws StoreUnavailableError (the workflow marks the synchronization
 * `retrying` and waits) or a permanent error (the workflow finalizes). The store port `verify` uses
 * is measured (StoreLatency, StoreErrors: lambdas/purchases/store-metrics.ts).
 */
export function makeVerifyHandler(store: Store, verify: (ref: SyncRef) => Promise<StoreVerdict | undefined>, deps: VerifyHandlerDeps) {
  return async (event: unknown): Promise<VerdictOutput> => {
    const ref = VerifyTaskInput.parse(event);
    const logger = withKeys(deps.logger, { synchronizationId: ref.synchronizationId, publisherId: ref.publisherId, store });
    try {
      // Bounded as a whole (VERIFY_TIMEOUT_MS), below the Task state's and the function's timeouts:
      // a slow store or table becomes the retry path, not a Lambda timeout. It only reads.
      const verdict = await withTimeout(
        verify(ref),
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
