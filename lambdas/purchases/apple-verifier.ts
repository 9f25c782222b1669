import { appleRootCertificates } from '../platform/config';
import { AppleStoreVerifier } from '../stores/apple/adapters/apple-store-verifier';
import type { AppleVerifier } from '../stores/apple/ports';
import type { Runtime } from './runtime';
import { measuredApple } from './store-metrics';

/**
 * The Apple client of the workflow functions, built once per container from configuration and
 * measured (StoreLatency, StoreErrors). Nothing of Google's: VerifyApplePurchase's bundle stays Apple's.
 */
export function createAppleVerifier(runtime: Runtime): AppleVerifier {
  const { config, secrets } = runtime;
  let apple: AppleStoreVerifier | undefined;
  return measuredApple(runtime.metrics, {
    // Built on first use: it refuses to exist without trusted roots, which Google-only setups may lack.
    verify: (...args) => {
      apple ??= new AppleStoreVerifier({
        secrets,
        rootCertificates: appleRootCertificates(config),
        onlineChecks: config.APPLE_ONLINE_CHECKS === 'true',
        baseUrls: { Production: config.APPLE_API_BASE_URL_PRODUCTION, Sandbox: config.APPLE_API_BASE_URL_SANDBOX },
        timeoutMs: config.APPLE_REQUEST_TIMEOUT_MS,
        onlineCheckTimeoutMs: config.APPLE_ONLINE_CHECK_TIMEOUT_MS,
      });
      return apple.verify(...args);
    },
  });
}
