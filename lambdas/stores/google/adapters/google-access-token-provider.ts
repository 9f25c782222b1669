import { createHash } from 'node:crypto';
import { importPKCS8, SignJWT } from 'jose';
import * as z from 'zod';
import { ConfigurationError, StoreCredentialsError, StoreUnavailableError } from '../../../platform/errors';
import type { AccessTokenProvider } from '../ports';

export const ANDROID_PUBLISHER_SCOPE = 'https://www.googleapis.com/auth/androidpublisher';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// Google refuses assertions that live longer than an hour.
const ASSERTION_LIFETIME_SECONDS = 3600;
// Renew a minute early so a token never expires between the cache check and Google's.
const REFRESH_MARGIN_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/** The fields of a service account key file this grant needs; the rest (project_id, client_id…) is ignored. */
const serviceAccountSchema = z.object({
  type: z.literal('service_account').optional(),
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().optional(),
  token_uri: z.string().min(1).optional(),
});

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
  token_type: z.string().optional(),
});

export interface GoogleAccessTokenProviderOptions {
  /** Overrides the key file's `token_uri` (GOOGLE_OAUTH_TOKEN_URL; the simulator's endpoint locally). */
  tokenUrl?: string;
  /** Per token request; default 10 s. */
  timeoutMs?: number;
  now?: () => number;
}

interface CachedToken {
  accessToken: string;
  refreshAt: number;
}

/**
 * Access tokens for a Google service account through the OAuth 2.0 JWT bearer grant (RFC 7523),
 * as Google's own libraries do: an RS256 assertion signed with the key file's `private_key`
 * (`iss` client_email, `scope` androidpublisher, `aud` the token URL, at most an hour long),
 * exchanged at the token URL.
 * https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
 * google-auth-library's JWT client is not used: its gtoken always posts to Google's URL, which
 * the local runtime must replace with the simulator's.
 */
export class GoogleAccessTokenProvider implements AccessTokenProvider {
  private readonly cache = new Map<string, CachedToken>();
  // Concurrent verifications with a cold cache share one token request.
  private readonly pending = new Map<string, Promise<CachedToken>>();

  constructor(private readonly options: GoogleAccessTokenProviderOptions = {}) {}

  async getAccessToken(serviceAccountJson: string): Promise<string> {
    const account = parseServiceAccount(serviceAccountJson);
    const tokenUrl = this.options.tokenUrl ?? account.token_uri ?? GOOGLE_TOKEN_URL;
    const key = createHash('sha256').update(tokenUrl).update('\n').update(serviceAccountJson).digest('hex');
    const cached = this.cache.get(key);
    if (cached && cached.refreshAt > this.now()) return cached.accessToken;
    let request = this.pending.get(key);
    if (!request) {
      request = this.requestToken(account, tokenUrl).finally(() => this.pending.delete(key));
      this.pending.set(key, request);
    }
    const token = await request;
    this.cache.set(key, token);
    return token.accessToken;
  }

  private async requestToken(account: z.infer<typeof serviceAccountSchema>, tokenUrl: string): Promise<CachedToken> {
    const assertion = await this.signAssertion(account, tokenUrl);
    let response: Response;
    try {
      response = await fetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
        redirect: 'error',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
    } catch (error) {
      // Connection refused, DNS, timeout: Google may answer later.
      throw new StoreUnavailableError(`Google token endpoint could not be reached: ${errorName(error)}`, { cause: error });
    }
    const status = response.status;
    if (status === 408 || status === 429 || status >= 500) {
      throw new StoreUnavailableError(`Google token endpoint answered ${status}`);
    }
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) {
      // 400 invalid_grant (bad signature, deleted key, clock), 401 invalid_client, 403…: our credentials.
      throw new StoreCredentialsError(`Google refused the service account (${status} ${oauthError(body)})`);
    }
    const parsed = tokenResponseSchema.safeParse(body);
    if (!parsed.success) throw new StoreUnavailableError('Google token endpoint answered an unreadable token');
    return {
      accessToken: parsed.data.access_token,
      refreshAt: this.now() + parsed.data.expires_in * 1000 - REFRESH_MARGIN_MS,
    };
  }

  private async signAssertion(account: z.infer<typeof serviceAccountSchema>, tokenUrl: string): Promise<string> {
    let privateKey: Awaited<ReturnType<typeof importPKCS8>>;
    try {
      privateKey = await importPKCS8(account.private_key, 'RS256');
    } catch {
      throw new ConfigurationError('the Google service account private_key is not an RSA PKCS#8 PEM key');
    }
    const issuedAt = Math.floor(this.now() / 1000);
    const header = account.private_key_id ? { alg: 'RS256', typ: 'JWT', kid: account.private_key_id } : { alg: 'RS256', typ: 'JWT' };
    return new SignJWT({ scope: ANDROID_PUBLISHER_SCOPE })
      .setProtectedHeader(header)
      .setIssuer(account.client_email)
      .setAudience(tokenUrl)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ASSERTION_LIFETIME_SECONDS)
      .sign(privateKey);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

function parseServiceAccount(json: string): z.infer<typeof serviceAccountSchema> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new ConfigurationError('the Google service account is not valid JSON');
  }
  const parsed = serviceAccountSchema.safeParse(value);
  // Never echo the file: it holds the private key.
  if (!parsed.success) throw new ConfigurationError('the Google service account JSON lacks client_email or private_key');
  return parsed.data;
}

/** Google's OAuth error code (`invalid_grant`…), never its description, which may quote our claims. */
function oauthError(body: unknown): string {
  const parsed = z.object({ error: z.string().max(64) }).safeParse(body);
  return parsed.success ? parsed.data.error : 'no error code';
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'unknown error';
}
