import { GoogleAccessTokenProvider } from '../stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../stores/google/adapters/google-play-verifier';
import type { GooglePlayVerifier } from '../stores/google/ports';
import type { Runtime } from './runtime';
import { measuredGoogle } from './store-metrics';

/**
 * The Google client of the workflow functions, built once per container from configuration and
 * measured (StoreLatency, StoreErrors). Nothing of Apple's: VerifyGooglePurchase's bundle stays Google's.
 */
export function createGoogleVerifier(runtime: Runtime): GooglePlayVerifier {
  const { config, secrets } = runtime;
  return measuredGoogle(
    runtime.metrics,
    new GooglePlayStoreVerifier({
      secrets,
      tokens: new GoogleAccessTokenProvider({
        ...(config.GOOGLE_OAUTH_TOKEN_URL ? { tokenUrl: config.GOOGLE_OAUTH_TOKEN_URL } : {}),
        timeoutMs: config.GOOGLE_REQUEST_TIMEOUT_MS,
      }),
      ...(config.GOOGLE_API_ROOT_URL ? { rootUrl: config.GOOGLE_API_ROOT_URL } : {}),
      timeoutMs: config.GOOGLE_REQUEST_TIMEOUT_MS,
    }),
  );
}
