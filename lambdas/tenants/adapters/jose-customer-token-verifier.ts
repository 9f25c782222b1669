import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import * as z from 'zod';
import { DependencyUnavailableError, errorReason } from '../../platform/errors';
import type { Publisher } from '../domain/publisher';
import { jwksUrlProblem, type CustomerClaims, type CustomerTokenVerifier } from '../ports/credential-verifier';
import type { SecretStore } from '../../platform/secret-store';
import { positiveInt32 } from '../../platform/schema-primitives';

const Claims = z.object({ customerId: positiveInt32, publisherId: positiveInt32 });

/**
 * Contract §5: `nbf`/`iat` honoured with at most 60 s of clock skew; `exp` gets none. jose applies
 * one `clockTolerance` to all three, so it is given this leeway and `exp` is checked again after it.
 */
const CLOCK_TOLERANCE_SECONDS = 60;

/**
 * Algorithms are pinned per key source, so a token can never choose how it is checked: an HS256
 * token is only ever checked with the publisher's secret (never with a public key used as an HMAC
 * secret), an RS256/ES256 token only with a key of the publisher's JWKS, and `none` never.
 */
const SECRET_ALGORITHMS = ['HS256'];
const JWKS_ALGORITHMS = ['RS256', 'ES256'];

/** An unknown `kid` refreshes the set at most once per minute (issue 6), so junk tokens cannot hammer the publisher's endpoint. */
export const JWKS_COOLDOWN_MS = 60_000;
/**
 * Keys are reused for 10 minutes (jose's default): a key the publisher withdraws stops verifying
 * within that time; a new key is picked up at once through the unknown-`kid` refresh.
 */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
/** The fetch runs inside an API request (API Gateway gives up at 29 s): fail fast, answer 503. */
export const JWKS_TIMEOUT_MS = 3_000;
/** After a failed fetch with no usable keys, answer 503 at once for this long instead of fetching per request. */
export const JWKS_FAILED_FETCH_BACKOFF_MS = 5_000;
/** Publishers per container are few; the bound only keeps a misconfiguration from growing the map. */
const MAX_CACHED_SETS = 100;

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

/** One remote key set per JWKS URL and its fetch-failure state. */
export interface CachedJwks {
  remote: RemoteJwks;
  /** Epoch ms before which no new fetch is attempted after a failed one. */
  retryAt: number;
}

/**
 * Container scope (module level): a warm Lambda reuses the keys it fetched on earlier invocations,
 * whatever verifier instance a handler builds.
 */
const containerJwksCache = new Map<string, CachedJwks>();

export interface JoseCustomerTokenVerifierOptions {
  /** The time `exp`/`nbf`/`iat` are checked against (jose's JWKS cache itself runs on Date.now()). */
  now?: () => Date;
  /** Remote key sets by URL; the container-wide one by default (tests pass their own). */
  jwksCache?: Map<string, CachedJwks>;
  /** Per-fetch timeout; JWKS_TIMEOUT_MS by default. */
  jwksTimeoutMs?: number;
}

/** The token's `alg` header, or undefined when the header is not a JWS header at all. */
function algorithmOf(token: string): string | undefined {
  try {
    const { alg } = decodeProtectedHeader(token);
    return typeof alg === 'string' ? alg : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Customer JWTs signed by the publisher's identity system, verified with `jose` (contract §5):
 * HS256 with the publisher's secret, or RS256/ES256 with a key of the publisher's JWKS found by
 * `kid`. The token's `alg` header picks the key source among those the publisher configured; the
 * algorithm list of that source is pinned. Key-locating headers of the token (`jku`, `x5u`, `jwk`,
 * `x5c`) are never used: keys come only from the configured URL. For both sources `exp` is
 * required and has no leeway, `nbf`/`iat` get 60 s and `iss`/`aud` are checked when configured, in one place.
 */
export class JoseCustomerTokenVerifier implements CustomerTokenVerifier {
  private readonly now: () => Date;
  private readonly jwksCache: Map<string, CachedJwks>;
  private readonly jwksTimeoutMs: number;

  constructor(
    private readonly secrets: SecretStore,
    options: JoseCustomerTokenVerifierOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.jwksCache = options.jwksCache ?? containerJwksCache;
    this.jwksTimeoutMs = options.jwksTimeoutMs ?? JWKS_TIMEOUT_MS;
  }

  async verify(publisher: Publisher, token: string): Promise<CustomerClaims | undefined> {
    const { hs256SecretRef, jwksUrl } = publisher.jwt;
    const alg = algorithmOf(token);
    if (alg !== undefined && SECRET_ALGORITHMS.includes(alg) && hs256SecretRef) {
      const secret = new TextEncoder().encode(await this.secrets.get(hs256SecretRef));
      return this.verifyWith(publisher, token, () => secret, SECRET_ALGORITHMS);
    }
    // The repository already drops a URL that breaks the rule; checked again so no other source of
    // a Publisher can make us fetch keys over plain HTTP.
    if (alg !== undefined && JWKS_ALGORITHMS.includes(alg) && jwksUrl && jwksUrlProblem(jwksUrl) === undefined) {
      return this.verifyWith(publisher, token, this.keysAt(new URL(jwksUrl)), JWKS_ALGORITHMS);
    }
    return undefined;
  }

  /** Signature, algorithm and standard claims by jose; then the checks jose leaves to us. */
  private async verifyWith(
    publisher: Publisher,
    token: string,
    key: JWTVerifyGetKey,
    algorithms: string[],
  ): Promise<CustomerClaims | undefined> {
    const now = this.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: now,
        ...(publisher.jwt.issuer ? { issuer: publisher.jwt.issuer } : {}),
        ...(publisher.jwt.audience ? { audience: publisher.jwt.audience } : {}),
      }));
    } catch (error) {
      if (error instanceof DependencyUnavailableError) {
        // Logged by the API's error middleware (warn, with the request id); the token is not in it.
        throw new DependencyUnavailableError(`JWKS of publisher ${publisher.publisherId} unavailable: ${error.message}`, { cause: error });
      }
      return undefined;
    }
    // jose checked `exp` with the leeway meant for `nbf`/`iat`: without it, a token is expired from
    // its `exp` second on (RFC 7519 §4.1.4; jose's own comparison, in whole seconds). jose made sure
    // `exp` is present and a number.
    const nowSeconds = Math.floor(now.getTime() / 1000);
    if (typeof payload.exp !== 'number' || payload.exp <= nowSeconds) return undefined;
    // jose checks `iat` only against a maximum age; a token issued in the future is refused here.
    if (typeof payload.iat === 'number' && payload.iat > now.getTime() / 1000 + CLOCK_TOLERANCE_SECONDS) return undefined;
    const claims = Claims.safeParse(payload);
    return claims.success ? claims.data : undefined;
  }

  /**
   * The key resolver of one JWKS URL. jose caches the set (JWKS_CACHE_MAX_AGE_MS), refetches on an
   * unknown `kid` at most once per JWKS_COOLDOWN_MS and shares one in-flight fetch between
   * concurrent requests. What jose does not do is hold back after a failed fetch: here a failure
   * answers DependencyUnavailableError (503, the token may be valid) and for a while no new fetch
   * is attempted: keys still fresh keep verifying from the cache; without them the answer is 503 at once.
   */
  private keysAt(url: URL): JWTVerifyGetKey {
    const entry = this.cachedJwks(url);
    return async (header, token) => {
      try {
        if (Date.now() < entry.retryAt) {
          const known = entry.remote.fresh ? entry.remote.jwks() : undefined;
          if (!known) throw new DependencyUnavailableError('an earlier fetch failed; not retried yet');
          return await createLocalJWKSet(known)(header, token);
        }
        return await entry.remote(header, token);
      } catch (error) {
        // No key for this kid/alg (after at most one refresh): the token does not verify.
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        if (error instanceof DependencyUnavailableError) throw error;
        // Timeout, refused connection, non-200, not JSON, not a key set, or a key jose cannot import.
        entry.retryAt = Date.now() + (entry.remote.fresh ? JWKS_COOLDOWN_MS : JWKS_FAILED_FETCH_BACKOFF_MS);
        throw new DependencyUnavailableError(`${url.host}: ${errorReason(error)}`, { cause: error });
      }
    };
  }

  private cachedJwks(url: URL): CachedJwks {
    const hit = this.jwksCache.get(url.href);
    if (hit) return hit;
    if (this.jwksCache.size >= MAX_CACHED_SETS) {
      const oldest = this.jwksCache.keys().next();
      if (!oldest.done) this.jwksCache.delete(oldest.value);
    }
    const entry: CachedJwks = {
      remote: createRemoteJWKSet(url, {
        cooldownDuration: JWKS_COOLDOWN_MS,
        cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
        timeoutDuration: this.jwksTimeoutMs,
        headers: { accept: 'application/jwk-set+json, application/json' },
      }),
      retryAt: 0,
    };
    this.jwksCache.set(url.href, entry);
    return entry;
  }
}
