import { appleRootCertificates } from '../platform/config';
import { AppleStoreVerifier } from '../stores/apple/adapters/apple-store-verifier';
import { GoogleAccessTokenProvider } from '../stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../stores/google/adapters/google-play-verifier';
import type { Store } from '../events/vocabulary';
import type { GooglePlayVerifier } from '../stores/google/ports';
import type { AppleVerifier } from '../stores/apple/ports';
import type { MetricsRecorder } from '../platform/metrics';
import type { Runtime } from './runtime';

/** Failures of the store itself (5xx, 429, timeouts, network, 401/403, other 4xx), not of our configuration or secrets. */
const STORE_ERRORS = new Set(['StoreUnavailableError', 'StoreCredentialsError', 'StoreRejectedError']);

/** Runs one store call, adding its duration to StoreLatency and, when the store failed, one StoreErrors. */
export async function measureStoreCall<R>(metrics: MetricsRecorder, store: Store, call: () => Promise<R>): Promise<R> {
  const started = performance.now();
  try {
    return await call();
  } catch (error) {
    if (error instanceof Error && STORE_ERRORS.has(error.name)) metrics.add('storeErrors', store);
    throw error;
  } finally {
    metrics.add('storeLatency', store, Math.round((performance.now() - started) * 10) / 10);
  }
}

/** The store ports with every call measured (StoreLatency, StoreErrors; dimension `store`). */
export function measuredVerifiers(metrics: MetricsRecorder, verifiers: { apple: AppleVerifier; google: GooglePlayVerifier }) {
  const { apple, google } = verifiers;
  return {
    apple: { verify: (...args: Parameters<AppleVerifier['verify']>) => measureStoreCall(metrics, 'apple', () => apple.verify(...args)) },
    google: {
      verify: (...args: Parameters<GooglePlayVerifier['verify']>) => measureStoreCall(metrics, 'google', () => google.verify(...args)),
      acknowledge: (...args: Parameters<GooglePlayVerifier['acknowledge']>) =>
        measureStoreCall(metrics, 'google', () => google.acknowledge(...args)),
      listVoided: (...args: Parameters<GooglePlayVerifier['listVoided']>) => measureStoreCall(metrics, 'google', () => google.listVoided(...args)),
    },
  } satisfies { apple: AppleVerifier; google: GooglePlayVerifier };
}

/** The store clients of the workflow functions, built once per container from configuration, measured. */
export function createStoreVerifiers(runtime: Runtime) {
  const { config, secrets } = runtime;
  const roots = appleRootCertificates(config);
  let apple: AppleStoreVerifier | undefined;
  const google = new GooglePlayStoreVerifier({
    secrets,
    tokens: new GoogleAccessTokenProvider({
      ...(config.GOOGLE_OAUTH_TOKEN_URL ? { tokenUrl: config.GOOGLE_OAUTH_TOKEN_URL } : {}),
      timeoutMs: config.GOOGLE_REQUEST_TIMEOUT_MS,
    }),
    ...(config.GOOGLE_API_ROOT_URL ? { rootUrl: config.GOOGLE_API_ROOT_URL } : {}),
    timeoutMs: config.GOOGLE_REQUEST_TIMEOUT_MS,
  });
  return measuredVerifiers(runtime.metrics, {
    // Built on first Apple use: it refuses to exist without trusted roots, which Google-only setups may lack.
    apple: {
      verify: (...args: Parameters<AppleStoreVerifier['verify']>) => {
        apple ??= new AppleStoreVerifier({
          secrets,
          rootCertificates: roots,
          onlineChecks: config.APPLE_ONLINE_CHECKS === 'true',
          baseUrls: { Production: config.APPLE_API_BASE_URL_PRODUCTION, Sandbox: config.APPLE_API_BASE_URL_SANDBOX },
          timeoutMs: config.APPLE_REQUEST_TIMEOUT_MS,
          onlineCheckTimeoutMs: config.APPLE_ONLINE_CHECK_TIMEOUT_MS,
        });
        return apple.verify(...args);
      },
    },
    google,
  });
}
