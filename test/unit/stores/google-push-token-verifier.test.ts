import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, UnsecuredJWT } from 'jose';
import { StoreUnavailableError } from '../../../lambdas/platform/errors';
import { JosePushTokenVerifier } from '../../../lambdas/stores/google/adapters/push-token-verifier';
import { PushTokenRejectedError } from '../../../lambdas/stores/google/notifications';
import { newPushSigner, PUSH_SERVICE_ACCOUNT, pushClaims, signToken, type PushSigner } from '../lifecycle/google-notification-fixtures';

/*
 * Pub/Sub push OIDC tokens verified with jose: claims against a local key set, and Google's JWKS
 * fetched over HTTP from a key server on a loopback port. Time is passed in (`now`), never waited for.
 */

const AUDIENCE = 'https://iap-sync.example.com/google-play/notifications/7';
const NOW = new Date('2026-12-07T10:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;

let signer: PushSigner;
beforeAll(async () => {
  signer = await newPushSigner();
});

/** A verifier over the signer's key alone, checking against NOW. */
const local = () => new JosePushTokenVerifier({ jwksUrl: 'https://unused.invalid/certs', keys: signer.keys, now: () => NOW });
/** A token dated NOW, for AUDIENCE, with `overrides`. */
const token = (overrides: Record<string, unknown> = {}) => signToken(signer.privateKey, signer.kid, { ...pushClaims(AUDIENCE, NOW_SECONDS), ...overrides });

async function rejection(verify: Promise<unknown>): Promise<string> {
  const error: unknown = await verify.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof PushTokenRejectedError)) throw new Error(`expected PushTokenRejectedError, got ${String(error)}`);
  return error.reason;
}

describe('JosePushTokenVerifier: claims', () => {
  it('answers the audiences, the email and email_verified of a genuine token', async () => {
    expect(await local().verify(await token())).toEqual({ audiences: [AUDIENCE], email: PUSH_SERVICE_ACCOUNT, emailVerified: true });
  });

  it.each([
    ['several audiences', { aud: [AUDIENCE, 'https://other.example.com'] }, { audiences: [AUDIENCE, 'https://other.example.com'] }],
    ['the issuer without scheme, as Google also writes it', { iss: 'accounts.google.com' }, { audiences: [AUDIENCE] }],
    ['no aud at all', { aud: null }, { audiences: [] }],
    ['email_verified false', { email_verified: false }, { emailVerified: false }],
    ['email_verified as the string "true"', { email_verified: 'true' }, { emailVerified: false }],
    ['no email_verified', { email_verified: null }, { emailVerified: false }],
    ['an expiry 59 s ago (clock skew)', { exp: NOW_SECONDS - 59 }, { emailVerified: true }],
    ['an iat 59 s ahead (clock skew)', { iat: NOW_SECONDS + 59 }, { emailVerified: true }],
  ])('reads a token with %s', async (_name, overrides, expected) => {
    expect(await local().verify(await token(overrides))).toMatchObject(expected);
  });

  it.each([
    ['expired beyond the skew', { exp: NOW_SECONDS - 61 }, /ERR_JWT_EXPIRED/],
    ['without exp', { exp: null }, /ERR_JWT_CLAIM_VALIDATION_FAILED: missing required "exp" claim/],
    ['not valid yet', { nbf: NOW_SECONDS + 120 }, /ERR_JWT_CLAIM_VALIDATION_FAILED/],
    ['issued in the future', { iat: NOW_SECONDS + 120 }, /issued in the future/],
    ['another issuer', { iss: 'https://evil.example.com' }, /ERR_JWT_CLAIM_VALIDATION_FAILED: unexpected "iss" claim value/],
    ['no issuer', { iss: null }, /ERR_JWT_CLAIM_VALIDATION_FAILED/],
    ['no email', { email: null }, /no email claim/],
    ['an empty email', { email: '' }, /no email claim/],
  ])('refuses a token %s', async (_name, overrides, reason) => {
    expect(await rejection(local().verify(await token(overrides)))).toMatch(reason);
  });

  it('refuses a token signed by another key under the same kid', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await signToken(privateKey, signer.kid, pushClaims(AUDIENCE, NOW_SECONDS));
    expect(await rejection(local().verify(forged))).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it('refuses a token whose kid is not in the key set', async () => {
    const forged = await signToken(signer.privateKey, 'not-a-google-kid', pushClaims(AUDIENCE, NOW_SECONDS));
    expect(await rejection(local().verify(forged))).toMatch(/ERR_JWKS_NO_MATCHING_KEY/);
  });

  it('refuses HS256 (even keyed with the public key) and unsigned tokens: RS256 only', async () => {
    const hs = await signToken(new TextEncoder().encode(JSON.stringify(signer.jwk)), signer.kid, pushClaims(AUDIENCE, NOW_SECONDS), { alg: 'HS256' });
    expect(await rejection(local().verify(hs))).toMatch(/ERR_JOSE_ALG_NOT_ALLOWED/);
    const unsecured = new UnsecuredJWT(pushClaims(AUDIENCE, NOW_SECONDS)).encode();
    expect(await rejection(local().verify(unsecured))).toMatch(/ERR_JOSE_ALG_NOT_ALLOWED|ERR_JWS_INVALID/);
  });

  it.each(['', 'abc', 'a.b.c', 'eyJhbGciOiJSUzI1NiJ9..'])('refuses the malformed token %j', async (malformed) => {
    await expect(local().verify(malformed)).rejects.toBeInstanceOf(PushTokenRejectedError);
  });

  it('never puts the token in the rejection', async () => {
    const expired = await token({ exp: NOW_SECONDS - 3600 });
    const error = await local().verify(expired).catch((e: unknown) => e);
    expect(JSON.stringify({ message: (error as Error).message, reason: (error as PushTokenRejectedError).reason })).not.toContain(expired.split('.')[1]);
  });
});

// ---------------------------------------------------------------------------------------------

type Mode = 'ok' | 'status-500' | 'not-json' | 'hang';

interface KeyServer {
  url: string;
  hits: number;
  mode: Mode;
  close(): Promise<void>;
}

const servers: Server[] = [];
afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

async function keyServer(): Promise<KeyServer> {
  const state: KeyServer = { url: '', hits: 0, mode: 'ok', close: async () => undefined };
  const server = createServer((_req, res) => {
    state.hits += 1;
    if (state.mode === 'hang') return;
    if (state.mode === 'status-500') return void res.writeHead(500).end('{}');
    res.writeHead(200, { 'content-type': 'application/json' }).end(state.mode === 'not-json' ? '<html>' : JSON.stringify({ keys: [signer.jwk] }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/v3/certs`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

describe('JosePushTokenVerifier: Google\'s key set over HTTP', () => {
  it('fetches the key set once and verifies from it afterwards', async () => {
    const server = await keyServer();
    const verifier = new JosePushTokenVerifier({ jwksUrl: server.url, now: () => NOW });
    expect(await verifier.verify(await token())).toMatchObject({ email: PUSH_SERVICE_ACCOUNT });
    expect(await verifier.verify(await token({ aud: 'https://again.example.com' }))).toMatchObject({ audiences: ['https://again.example.com'] });
    expect(server.hits).toBe(1);
  });

  it.each([
    ['answers 500', 'status-500'],
    ['answers something that is not a key set', 'not-json'],
  ] as const)('is unavailable (503 for the route) when the key server %s', async (_name, mode) => {
    const server = await keyServer();
    server.mode = mode;
    const verifier = new JosePushTokenVerifier({ jwksUrl: server.url, now: () => NOW });
    await expect(verifier.verify(await token())).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('is unavailable when nothing listens, and when the key server does not answer in time', async () => {
    const gone = await keyServer();
    await gone.close();
    await expect(new JosePushTokenVerifier({ jwksUrl: gone.url, now: () => NOW }).verify(await token())).rejects.toBeInstanceOf(StoreUnavailableError);
    const slow = await keyServer();
    slow.mode = 'hang';
    await expect(new JosePushTokenVerifier({ jwksUrl: slow.url, now: () => NOW, timeoutMs: 100 }).verify(await token())).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('does not fetch keys for a token that is not even a JWS', async () => {
    const server = await keyServer();
    await expect(new JosePushTokenVerifier({ jwksUrl: server.url, now: () => NOW }).verify('not-a-token')).rejects.toBeInstanceOf(PushTokenRejectedError);
    expect(server.hits).toBe(0);
  });
});
