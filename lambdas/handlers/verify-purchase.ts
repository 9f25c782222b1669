import { AppleStoreVerifier } from '../adapters/apple-store-verifier';
import { verifyApplePurchase } from '../domain/verify-purchase';
import type { PublisherRepository } from '../ports/publisher-repository';
import type { AppleVerifier } from '../ports/store-verifier';
import { type VerificationOutput, VerifyTaskInput } from '../schemas/workflow';
import type { Logger } from '../shared/logger';
import { createRuntime, lazyHandler } from '../shared/runtime';

/**
 * Task `VerifyPurchase`. Answers the store's verdict; throws StoreUnavailableError (the workflow
 * marks the synchronization `retrying` and waits) or a permanent error (the workflow finalizes).
 */
export function makeVerifyPurchaseHandler(deps: { publishers: PublisherRepository; apple: AppleVerifier; logger: Logger }) {
  return async (event: unknown): Promise<VerificationOutput> => {
    const input = VerifyTaskInput.parse(event);
    try {
      const verification = await verifyApplePurchase(deps, input);
      deps.logger.info('verified with store', {
        synchronizationId: input.synchronizationId,
        publisherId: input.publisherId,
        transactionId: input.transactionId,
        outcome: verification.outcome,
        ...(verification.outcome === 'invalid' ? { reason: verification.reason } : {}),
      });
      return verification;
    } catch (error) {
      const level = (error as Error).name === 'StoreCredentialsError' ? 'error' : 'warn';
      // StoreCredentialsError is the alarmable line: our Apple key is refused.
      deps.logger[level]('store verification failed', { synchronizationId: input.synchronizationId, error });
      throw error;
    }
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('verify-purchase');
  const { config } = runtime;
  const roots = (config.APPLE_ROOT_CERTIFICATES ?? '')
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean)
    .map((value) => Buffer.from(value, 'base64'));
  const apple = new AppleStoreVerifier({
    secrets: runtime.secrets,
    rootCertificates: roots,
    onlineChecks: config.APPLE_ONLINE_CHECKS === 'true',
    baseUrls: { Production: config.APPLE_API_BASE_URL_PRODUCTION, Sandbox: config.APPLE_API_BASE_URL_SANDBOX },
    timeoutMs: config.APPLE_REQUEST_TIMEOUT_MS,
  });
  const verify = makeVerifyPurchaseHandler({ ...runtime, apple });
  return (event: unknown) => verify(event);
});
