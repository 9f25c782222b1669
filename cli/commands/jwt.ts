/** `iap-sync jwt issue | configure`: customer JWTs of a publisher, issued locally and how they are verified. */
import { SignJWT } from 'jose';
import { ReferenceSecretStore } from '../../lambdas/platform/reference-secret-store';
import type { JwtSettings } from '../../lambdas/tenants/domain/publisher';
import { jwksUrlProblem } from '../../lambdas/tenants/ports/credential-verifier';
import { issueCustomerJwt } from '../../local/seed';
import { MAX_JWT_CLAIM, boundedText, flag, idOption, optionalString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

const DEFAULT_JWT_TTL_SECONDS = 3600;
const MAX_JWT_TTL_SECONDS = 30 * 24 * 3600;

// ---------------------------------------------------------------------------------------------
// jwt issue

/**
 * A customer JWT signed with the publisher's HS256 secret, as the publisher's identity system
 * would issue it (local only: a deployed stack's secret stays in Secrets Manager).
 */
export function parseJwtIssue(args: Args): { publisherId: number; customerId: number; ttl: number } {
  const publisherId = idOption(args, 'publisher');
  const customerId = idOption(args, 'customer');
  const ttlRaw = optionalString(args, 'ttl');
  const ttl = ttlRaw === undefined ? DEFAULT_JWT_TTL_SECONDS : /^[1-9][0-9]{0,7}$/.test(ttlRaw) ? Number(ttlRaw) : NaN;
  if (!Number.isInteger(ttl) || ttl > MAX_JWT_TTL_SECONDS) {
    throw new UsageError(`--ttl must be a number of seconds from 1 to ${MAX_JWT_TTL_SECONDS}, got ${JSON.stringify(ttlRaw)}`);
  }
  return { publisherId, customerId, ttl };
}

export async function jwtIssue(target: StackTarget, args: Args): Promise<string> {
  const { publisherId, customerId, ttl } = parseJwtIssue(args);
  if (target.kind !== 'local' || target.secretsDir === undefined) {
    throw new UsageError(`jwt issue works only with the local stack: ${target.description} keeps its JWT secrets in Secrets Manager`);
  }
  const publisher = await requirePublisher(target, publishersOf(target), publisherId);
  const ref = publisher.jwt.hs256SecretRef;
  if (!ref?.startsWith('file:')) throw new CommandError(`Publisher ${publisherId} has no local HS256 JWT secret`);
  let secret: string;
  try {
    // The same reader the API uses, so the token is signed with exactly the bytes it verifies with.
    secret = await new ReferenceSecretStore({ localDir: target.secretsDir, cacheSeconds: 0 }).get(ref);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CommandError(`Cannot read the JWT secret ${ref} of publisher ${publisherId}: ${code ?? (error as Error).message}`);
  }
  const { issuer, audience } = publisher.jwt;
  if (issuer === undefined && audience === undefined) return issueCustomerJwt(secret, publisherId, customerId, ttl);
  // The API checks iss/aud when the publisher configures them, so the token must carry them.
  const jwt = new SignJWT({ customerId, publisherId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
  if (issuer !== undefined) jwt.setIssuer(issuer);
  if (audience !== undefined) jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

// ---------------------------------------------------------------------------------------------
// jwt configure

export interface JwtConfigureInput {
  publisherId: number;
  jwksUrl?: string;
  removeJwksUrl: boolean;
  issuer?: string;
  clearIssuer: boolean;
  audience?: string;
  clearAudience: boolean;
  disableHs256: boolean;
}

export interface JwtConfigured {
  publisherId: number;
  jwt: JwtSettings;
}

/** One of a pair of options that set and clear the same setting. */
function exclusive(args: Args, set: string, clear: string): void {
  if (args[set] !== undefined && args[clear] !== undefined) throw new UsageError(`--${set} and --${clear} cannot be combined`);
}

export function parseJwtConfigure(args: Args): JwtConfigureInput {
  const publisherId = idOption(args, 'publisher');
  exclusive(args, 'jwks-url', 'remove-jwks-url');
  exclusive(args, 'issuer', 'clear-issuer');
  exclusive(args, 'audience', 'clear-audience');
  const jwksUrl = optionalString(args, 'jwks-url');
  if (jwksUrl !== undefined) {
    // The same rule the repository enforces, said here before anything is written.
    const problem = jwksUrlProblem(jwksUrl);
    if (problem !== undefined) throw new UsageError(`--jwks-url ${problem}, got ${JSON.stringify(jwksUrl)}`);
  }
  const issuer = optionalString(args, 'issuer');
  const audience = optionalString(args, 'audience');
  if (issuer !== undefined) boundedText('--issuer', issuer, MAX_JWT_CLAIM);
  if (audience !== undefined) boundedText('--audience', audience, MAX_JWT_CLAIM);
  const input: JwtConfigureInput = {
    publisherId,
    ...(jwksUrl !== undefined ? { jwksUrl } : {}),
    removeJwksUrl: flag(args, 'remove-jwks-url'),
    ...(issuer !== undefined ? { issuer } : {}),
    clearIssuer: flag(args, 'clear-issuer'),
    ...(audience !== undefined ? { audience } : {}),
    clearAudience: flag(args, 'clear-audience'),
    disableHs256: flag(args, 'disable-hs256'),
  };
  const changes =
    jwksUrl !== undefined || issuer !== undefined || audience !== undefined || input.removeJwksUrl || input.clearIssuer || input.clearAudience || input.disableHs256;
  if (!changes) {
    throw new UsageError('Nothing to change: give --jwks-url, --issuer, --audience, --remove-jwks-url, --clear-issuer, --clear-audience or --disable-hs256');
  }
  return input;
}

/**
 * Changes how a publisher's customer JWTs are verified (contract §5): a JWKS URL of RS256/ES256
 * keys (https; http only on a loopback host), the required `iss`/`aud`, and whether the HS256
 * secret made by `publisher create` is still accepted. Settings not named are kept. Disabling HS256
 * only drops the reference: the secret stays where it was stored (a file locally, Secrets Manager
 * when deployed) and no longer verifies anything.
 */
export async function jwtConfigure(target: StackTarget, args: Args): Promise<JwtConfigured> {
  const input = parseJwtConfigure(args);
  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, input.publisherId);
  const { hs256SecretRef, jwksUrl, issuer, audience } = publisher.jwt;
  const next = {
    hs256SecretRef: input.disableHs256 ? undefined : hs256SecretRef,
    jwksUrl: input.removeJwksUrl ? undefined : (input.jwksUrl ?? jwksUrl),
    issuer: input.clearIssuer ? undefined : (input.issuer ?? issuer),
    audience: input.clearAudience ? undefined : (input.audience ?? audience),
  };
  const jwt: JwtSettings = {
    ...(next.hs256SecretRef !== undefined ? { hs256SecretRef: next.hs256SecretRef } : {}),
    ...(next.jwksUrl !== undefined ? { jwksUrl: next.jwksUrl } : {}),
    ...(next.issuer !== undefined ? { issuer: next.issuer } : {}),
    ...(next.audience !== undefined ? { audience: next.audience } : {}),
  };
  await publishers.putPublisher({ ...publisher, jwt });
  return { publisherId: input.publisherId, jwt };
}
