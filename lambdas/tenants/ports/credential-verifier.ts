import { classifyAddress, InvalidIpAddressError } from '../../platform/ssrf';
import type { Publisher } from '../domain/publisher';

/** Claims of a verified customer JWT (contract §5). */
export interface CustomerClaims {
  customerId: number;
  publisherId: number;
}

/**
 * Verifies a customer JWT with the publisher's configured key (HS256 secret and/or JWKS URL).
 * Answers undefined when the token does not verify (AUTH0002). Throws `DependencyUnavailableError`
 * when the answer cannot be known now (the publisher's JWKS endpoint is unreachable or answers
 * garbage): the credential may be valid, so the caller sees 503 S0002 and may retry.
 */
export interface CustomerTokenVerifier {
  verify(publisher: Publisher, token: string): Promise<CustomerClaims | undefined>;
}

/** Long enough for any real JWKS address, short enough to keep a stored publisher record small. */
export const MAX_JWKS_URL_LENGTH = 2048;

function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost') return true;
  try {
    return classifyAddress(hostname) === 'loopback';
  } catch (error) {
    if (error instanceof InvalidIpAddressError) return false;
    throw error;
  }
}

/**
 * The rule for a publisher's JWKS URL, shared by every writer (command line, repository) and the
 * verifier: `https:` only, because the keys it serves decide who is a customer and a plain-HTTP
 * answer could be swapped on the way; plain `http:` only on a loopback host (the local runtime and
 * tests serve their JWKS there). No credentials in the URL (they would end up in logs) and no
 * fragment. Answers what is wrong, or undefined when the URL is acceptable.
 */
export function jwksUrlProblem(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_JWKS_URL_LENGTH) return `must be 1 to ${MAX_JWKS_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (url.hash !== '' || raw.includes('#')) return 'must not have a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname) ? undefined : 'must use https (plain http is allowed only on a loopback host)';
  }
  return 'must use https';
}
