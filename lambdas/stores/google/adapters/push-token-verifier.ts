import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { errorReason, StoreUnavailableError } from '../../../platform/errors';
import { PushTokenRejectedError, type VerifiedPushToken } from '../notifications';

/**
 * The issuers of Google-signed ID tokens; Google documents both spellings.
 * https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions#validate_tokens
 */
export const GOOGLE_ID_TOKEN_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];
/** Google signs ID tokens with RS256 only; pinned so a token cannot choose how it is checked. */
const ALGORITHMS = ['RS256'];
/** Clock skew allowed on `exp`, `nbf` and `iat` (the same 60 s as customer JWTs). */
const CLOCK_TOLERANCE_SECONDS = 60;
/**
 * Google rotates these keys every few days and publishes the next one ahead of time: the set is
 * reused for an hour, and an unknown `kid` refetches it at most every 5 minutes, so junk tokens
 * cannot make us hammer Google.
 */
const JWKS_CACHE_MAX_AGE_MS = 60 * 60_000;
const JWKS_COOLDOWN_MS = 5 * 60_000;
/** The fetch runs inside a push request: fail fast and answer 503, which Pub/Sub retries. */
export const PUSH_JWKS_TIMEOUT_MS = 3_000;

export interface JosePushTokenVerifierOptions {
  /** GOOGLE_PUSH_JWKS_URL: Google's certificates, or the store simulator's locally. */
  jwksUrl: string;
  /** The time `exp`/`nbf`/`iat` are checked against; the wall clock by default. */
  now?: () => Date;
  /** Per-fetch timeout; PUSH_JWKS_TIMEOUT_MS by default. */
  timeoutMs?: number;
  /** Where keys come from instead of jwksUrl (tests: jose's createLocalJWKSet). */
  keys?: JWTVerifyGetKey;
}

/**
 * Verifies the OIDC ID token Google signs for an authenticated Pub/Sub push subscription, with
 * `jose`: RS256 with a key of Google's JWKS found by `kid`, `iss` Google's, `exp` required and
 * `nbf`/`iat` with 60 s of leeway. The audience and the service account are the publisher's, so
 * they are answered, not checked, here. Implements the lifecycle slice's GooglePushTokenVerifier.
 * https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 */
export class JosePushTokenVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly now: () => Date;

  constructor(options: JosePushTokenVerifierOptions) {
    this.now = options.now ?? (() => new Date());
    const source =
      options.keys ??
      createRemoteJWKSet(new URL(options.jwksUrl), {
        cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
        cooldownDuration: JWKS_COOLDOWN_MS,
        timeoutDuration: options.timeoutMs ?? PUSH_JWKS_TIMEOUT_MS,
        headers: { accept: 'application/jwk-set+json, application/json' },
      });
    this.keys = async (header, token) => {
      try {
        return await source(header, token);
      } catch (error) {
        // No key for this kid (after at most one refetch): the token is not Google's.
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        // Timeout, refused connection, non-200, not a key set: the token may well be genuine.
        throw new StoreUnavailableError(`Google push JWKS unavailable: ${errorReason(error)}`, { cause: error });
      }
    };
  }

  /**
   * The sender the token names.
   * @throws PushTokenRejectedError when it is not a genuine, current Google ID token with an `email`.
   * @throws StoreUnavailableError when Google's keys could not be fetched (the push should be retried).
   */
  async verify(token: string): Promise<VerifiedPushToken> {
    const now = this.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        algorithms: ALGORITHMS,
        issuer: GOOGLE_ID_TOKEN_ISSUERS,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: now,
      }));
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      throw new PushTokenRejectedError(errorReason(error));
    }
    // jose checks `iat` only against a maximum age; a token issued in the future is refused here.
    if (typeof payload.iat === 'number' && payload.iat > now.getTime() / 1000 + CLOCK_TOLERANCE_SECONDS) {
      throw new PushTokenRejectedError('issued in the future');
    }
    const { email, email_verified: emailVerified } = payload;
    if (typeof email !== 'string' || email === '') throw new PushTokenRejectedError('no email claim');
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    return { audiences, email, emailVerified: emailVerified === true };
  }
}
