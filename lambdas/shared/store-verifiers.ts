import { AppleStoreVerifier } from '../adapters/apple-store-verifier';
import { GoogleAccessTokenProvider } from '../adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../adapters/google-play-verifier';
import type { Runtime } from './runtime';

/** The store clients of the workflow functions, built once per container from configuration. */
export function createStoreVerifiers(runtime: Runtime) {
  const { config, secrets } = runtime;
  const roots = (config.APPLE_ROOT_CERTIFICATES ?? '')
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean)
    .map((value) => Buffer.from(value, 'base64'));
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
  return {
    // Built on first Apple use: it refuses to exist without trusted roots, which Google-only setups may lack.
    apple: {
      verify: (...args: Parameters<AppleStoreVerifier['verify']>) => {
        apple ??= new AppleStoreVerifier({
          secrets,
          rootCertificates: roots,
          onlineChecks: config.APPLE_ONLINE_CHECKS === 'true',
          baseUrls: { Production: config.APPLE_API_BASE_URL_PRODUCTION, Sandbox: config.APPLE_API_BASE_URL_SANDBOX },
          timeoutMs: config.APPLE_REQUEST_TIMEOUT_MS,
        });
        return apple.verify(...args);
      },
    },
    google,
  };
}
