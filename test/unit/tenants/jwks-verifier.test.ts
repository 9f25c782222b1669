import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  UnsecuredJWT,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  type KeyLike,
} from 'jose';
import {
  JWKS_CACHE_MAX_AGE_MS,
  JWKS_COOLDOWN_MS,
  JWKS_FAILED_FETCH_BACKOFF_MS,
  JoseCustomerTokenVerifier,
  type CachedJwks,
} from '../../../lambdas/tenants/adapters/jose-customer-token-verifier';
import { DependencyUnavailableError } from '../../../lambdas/platform/errors';
import type { JwtSettings, Publisher } from '../../../lambdas/tenants/domain/publisher';

/**
 * Customer JWTs verified with a publisher's JWKS (issue 6), against a real JWKS HTTP server on a
 * loopback port. Only Date is faked (jose's cache and cooldown run on Date.now()); sockets and
 * their timers stay real, so no test waits for the clock.
 */

type Mode = 'ok' | 'status-500' | 'garbage' | 'not-a-key-set' | 'hang';

interface JwksServer {
  url: string;
  hits: number;
  keys: JWK[];
  mode: Mode;
  close(): Promise<void>;
}

const servers: JwksServer[] = [];

async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  const state = { hits: 0, keys, mode: 'ok' as Mode };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.hits += 1;
    if (state.mode === 'hang') return;
    if (state.mode === 'status-500') {
      res.writeHead(500).end('{"error":"down"}');
      return;
    }
    const body = state.mode === 'garbage' ? '<html>oops' : state.mode === 'not-a-key-set' ? '{"keys":"none"}' : JSON.stringify({ keys: state.keys });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const handle: JwksServer = {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get hits() {
      return state.hits;
    },
    get keys() {
      return state.keys;
    },
    set keys(value: JWK[]) {
      state.keys = value;
    },
    get mode() {
      return state.mode;
    },
    set mode(value: Mode) {
      state.mode = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyLike;
  publicKey: KeyLike;
  jwk: JWK;
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const T0 = new Date('2026-03-01T12:00:00.000Z');
const nowSeconds = () => Math.floor(Date.now() / 1000);
const HS256_SECRET = 'publisher-1-hs256-secret-of-at-least-32-bytes!';
const secrets = { get: async (ref: string) => (ref === 'file:jwt-1' ? HS256_SECRET : Promise.reject(new Error(`no secret ${ref}`))) };

function publisherWith(jwt: JwtSettings): Publisher {
  return {
    publisherId: 1,
    name: 'Acme',
    tokenHash: '00',
    jwt,
    storeKit: { activated: true, migrationInProgress: false },
    ownershipPolicy: 'keep',
  };
}

const CLAIMS = { customerId: 101, publisherId: 1 };

/** A token as the publisher's identity system would issue it, with whatever header a test needs. */
async function sign(
  key: { privateKey: KeyLike | Uint8Array; alg: string; kid?: string },
  overrides: { header?: Partial<JWTHeaderParameters>; payload?: JWTPayload; expSeconds?: number | null } = {},
): Promise<string> {
  const jwt = new SignJWT({ ...CLAIMS, ...overrides.payload })
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(key.kid !== undefined ? { kid: key.kid } : {}), ...overrides.header });
  if (overrides.payload?.iat === undefined) jwt.setIssuedAt();
  if (overrides.expSeconds !== null) jwt.setExpirationTime(nowSeconds() + (overrides.expSeconds ?? 600));
  return jwt.sign(key.privateKey);
}

let rsa1: SigningKey;
let rsa2: SigningKey;
let ec1: SigningKey;
let rotated: SigningKey;
let attacker: SigningKey;

beforeAll(async () => {
  [rsa1, rsa2, ec1, rotated, attacker] = await Promise.all([
    signingKey('RS256', 'rsa-1'),
    signingKey('RS256', 'rsa-2'),
    signingKey('ES256', 'ec-1'),
    signingKey('RS256', 'rsa-3'),
    // Same kid as the publisher's key: only the signature can tell them apart.
    signingKey('RS256', 'rsa-1'),
  ]);
});

let jwksCache: Map<string, CachedJwks>;
let jwks: JwksServer;

function verifier(options: { jwksTimeoutMs?: number } = {}) {
  return new JoseCustomerTokenVerifier(secrets, { jwksCache, ...options });
}

beforeEach(async () => {
  jest.useFakeTimers({
    now: T0,
    doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
  });
  jwksCache = new Map();
  jwks = await startJwksServer([rsa1.jwk, rsa2.jwk, ec1.jwk]);
});

afterEach(async () => {
  jest.useRealTimers();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const advance = (ms: number) => jest.setSystemTime(Date.now() + ms);

describe('RS256 and ES256 tokens from the publisher JWKS', () => {
  it.each(['rsa-2', 'ec-1'])('accepts a token signed by key %s, found by kid among several keys', async (kid) => {
    const key = [rsa1, rsa2, ec1].find((candidate) => candidate.kid === kid);
    if (!key) throw new Error(kid);
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(verifier().verify(publisher, await sign(key))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(1);
  });

  it('refuses a token whose kid names another key of the set', async () => {
    const token = await sign({ ...rsa2, kid: 'rsa-1' });
    await expect(verifier().verify(publisherWith({ jwksUrl: jwks.url }), token)).resolves.toBeUndefined();
  });

  it('accepts a token without kid when exactly one key of its type is in the set', async () => {
    jwks.keys = [rsa1.jwk, ec1.jwk];
    const token = await sign({ privateKey: ec1.privateKey, alg: 'ES256' });
    await expect(verifier().verify(publisherWith({ jwksUrl: jwks.url }), token)).resolves.toEqual(CLAIMS);
  });

  it('fetches the set once and verifies later tokens from the cache', async () => {
    const v = verifier();
    const publisher = publisherWith({ jwksUrl: jwks.url });
    const tokens = await Promise.all([rsa1, rsa2, ec1, rsa1, rsa2].map((key) => sign(key)));
    const results = await Promise.all(tokens.map((token) => v.verify(publisher, token)));
    expect(results).toEqual(tokens.map(() => CLAIMS));
    advance(JWKS_COOLDOWN_MS * 2);
    await expect(v.verify(publisher, await sign(rsa1))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(1);
  });

  it('shares the keys of one URL between verifier instances (container scope)', async () => {
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(verifier().verify(publisher, await sign(rsa1))).resolves.toEqual(CLAIMS);
    await expect(verifier().verify(publisher, await sign(ec1))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(1);
  });

  it('keeps the default container cache across instances built without options', async () => {
    // The handlers build `new JoseCustomerTokenVerifier(runtime.secrets)`: that must reuse keys too.
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(new JoseCustomerTokenVerifier(secrets).verify(publisher, await sign(rsa1))).resolves.toEqual(CLAIMS);
    await expect(new JoseCustomerTokenVerifier(secrets).verify(publisher, await sign(rsa2))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(1);
  });
});

describe('unknown kid, key rotation and cache age', () => {
  it('20 tokens with unknown kids cause at most one extra fetch, within the cooldown none', async () => {
    const v = verifier();
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(v.verify(publisher, await sign(rsa1))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(1);

    const unknown = () => Promise.all(Array.from({ length: 20 }, (_, i) => sign({ ...attacker, kid: `unknown-${i}` })));
    // Right after the fetch: cooling down, no refetch at all.
    for (const token of await unknown()) await expect(v.verify(publisher, token)).resolves.toBeUndefined();
    expect(jwks.hits).toBe(1);

    // Past the cooldown: one refetch, shared by concurrent requests and then cooling down again.
    advance(JWKS_COOLDOWN_MS + 1_000);
    const tokens = await unknown();
    await expect(Promise.all(tokens.slice(0, 10).map((token) => v.verify(publisher, token)))).resolves.toEqual(Array(10).fill(undefined));
    for (const token of tokens.slice(10)) await expect(v.verify(publisher, token)).resolves.toBeUndefined();
    expect(jwks.hits).toBe(2);
  });

  it('picks up a rotated-in key after the cooldown, not before', async () => {
    const v = verifier();
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(v.verify(publisher, await sign(rsa1))).resolves.toEqual(CLAIMS);
    jwks.keys = [rsa1.jwk, rotated.jwk];

    advance(10_000);
    await expect(v.verify(publisher, await sign(rotated))).resolves.toBeUndefined();
    expect(jwks.hits).toBe(1);

    advance(JWKS_COOLDOWN_MS);
    await expect(v.verify(publisher, await sign(rotated))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(2);
    await expect(v.verify(publisher, await sign(rotated))).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(2);
  });

  it('stops accepting a withdrawn key once the cached set is older than the cache age', async () => {
    const v = verifier();
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(v.verify(publisher, await sign(rsa2))).resolves.toEqual(CLAIMS);
    jwks.keys = [rsa1.jwk];
    advance(JWKS_CACHE_MAX_AGE_MS - 5_000);
    await expect(v.verify(publisher, await sign(rsa2))).resolves.toEqual(CLAIMS);
    advance(10_000);
    await expect(v.verify(publisher, await sign(rsa2))).resolves.toBeUndefined();
    expect(jwks.hits).toBe(2);
  });
});

describe('the token cannot choose its key', () => {
  let attackerServer: JwksServer;

  beforeEach(async () => {
    attackerServer = await startJwksServer([attacker.jwk]);
  });

  it.each<[string, (url: string) => Partial<JWTHeaderParameters>]>([
    ['jku', (url) => ({ jku: url })],
    ['x5u', (url) => ({ x5u: url })],
    ['jwk (embedded key)', () => ({ jwk: attacker.jwk })],
    ['jku, x5u and jwk together', (url) => ({ jku: url, x5u: url, jwk: attacker.jwk })],
  ])('a token signed by an attacker key with a %s header pointing at it is refused', async (_name, header) => {
    const publisher = publisherWith({ jwksUrl: jwks.url });
    for (const kid of ['rsa-1', 'attacker-own-kid']) {
      const token = await sign({ ...attacker, kid }, { header: header(attackerServer.url) });
      await expect(verifier().verify(publisher, token)).resolves.toBeUndefined();
    }
    expect(attackerServer.hits).toBe(0);
    // The same headers on a token the publisher's key signed do not hurt: they are simply not used.
    const honest = await sign(rsa1, { header: header(attackerServer.url) });
    await expect(verifier().verify(publisher, honest)).resolves.toEqual(CLAIMS);
    expect(attackerServer.hits).toBe(0);
  });
});

describe('algorithm confusion', () => {
  beforeEach(() => {
    // Many real key sets name no `alg` on their keys: then only the pinned list stops PS256/RS512.
    jwks.keys = [rsa1, rsa2, ec1].map(({ jwk: { alg: _alg, use: _use, ...bare } }) => bare);
  });

  const both = () => publisherWith({ hs256SecretRef: 'file:jwt-1', jwksUrl: jwks.url });
  const jwksOnly = () => publisherWith({ jwksUrl: jwks.url });
  const hsOnly = () => publisherWith({ hs256SecretRef: 'file:jwt-1' });
  const bytes = (text: string) => new TextEncoder().encode(text);

  it.each<[string, () => Promise<string>]>([
    ['HS256 keyed with the publisher public key (PEM)', async () => sign({ privateKey: bytes(await exportSPKI(rsa1.publicKey)), alg: 'HS256', kid: 'rsa-1' })],
    ['HS256 keyed with the publisher public key (JWK JSON)', async () => sign({ privateKey: bytes(JSON.stringify(rsa1.jwk)), alg: 'HS256', kid: 'rsa-1' })],
    ['HS256 keyed with the EC public key (PEM)', async () => sign({ privateKey: bytes(await exportSPKI(ec1.publicKey)), alg: 'HS256', kid: 'ec-1' })],
    ['alg none', async () => new UnsecuredJWT(CLAIMS).setIssuedAt().setExpirationTime(nowSeconds() + 600).encode()],
    ['alg NONE with a signature of the secret', async () => {
      const token = await sign({ privateKey: bytes(HS256_SECRET), alg: 'HS256' });
      const [, payload, signature] = token.split('.');
      return `${Buffer.from(JSON.stringify({ alg: 'NONE', typ: 'JWT' })).toString('base64url')}.${payload}.${signature}`;
    }],
    ['PS256 signed by the publisher RSA key (not a pinned algorithm)', async () => sign({ ...rsa1, alg: 'PS256' })],
    ['RS512 signed by the publisher RSA key', async () => sign({ ...rsa1, alg: 'RS512' })],
  ])('refuses %s, whatever keys the publisher has', async (_name, make) => {
    const token = await make();
    for (const publisher of [both(), jwksOnly(), hsOnly()]) {
      await expect(verifier().verify(publisher, token)).resolves.toBeUndefined();
    }
  });

  it('an RS256 token is never checked with the HS256 secret, an HS256 token never with the JWKS', async () => {
    const rs = await sign(rsa1);
    const hs = await sign({ privateKey: bytes(HS256_SECRET), alg: 'HS256' });
    await expect(verifier().verify(hsOnly(), rs)).resolves.toBeUndefined();
    await expect(verifier().verify(jwksOnly(), hs)).resolves.toBeUndefined();
    expect(jwks.hits).toBe(0);
    // A publisher with both accepts each through its own key.
    await expect(verifier().verify(both(), rs)).resolves.toEqual(CLAIMS);
    await expect(verifier().verify(both(), hs)).resolves.toEqual(CLAIMS);
  });

  it('refuses a JWKS over plain http on a non-loopback host without fetching it', async () => {
    const publisher = publisherWith({ jwksUrl: jwks.url.replace('127.0.0.1', 'jwks.example.com') });
    await expect(verifier().verify(publisher, await sign(rsa1))).resolves.toBeUndefined();
  });
});

describe('claims: the same checks for the secret and the JWKS', () => {
  const paths = [
    ['HS256 secret', () => ({ privateKey: new TextEncoder().encode(HS256_SECRET), alg: 'HS256' })],
    ['RS256 JWKS', () => rsa1],
    ['ES256 JWKS', () => ec1],
  ] as const;
  const publisher = (extra: Partial<JwtSettings> = {}) =>
    publisherWith({ hs256SecretRef: 'file:jwt-1', jwksUrl: jwks.url, issuer: 'https://id.acme.example', audience: 'iap-sync', ...extra });
  const good = { iss: 'https://id.acme.example', aud: 'iap-sync' };

  // Functions: times are read when the test runs, under the fake clock.
  const cases: [string, () => { payload?: JWTPayload; expSeconds?: number | null }, boolean][] = [
    ['iss and aud as configured', () => ({ payload: good }), true],
    ['aud as a list containing ours', () => ({ payload: { ...good, aud: ['other', 'iap-sync'] } }), true],
    ['no iss', () => ({ payload: { aud: 'iap-sync' } }), false],
    ['another iss', () => ({ payload: { ...good, iss: 'https://evil.example' } }), false],
    ['no aud', () => ({ payload: { iss: good.iss } }), false],
    ['another aud', () => ({ payload: { ...good, aud: 'other' } }), false],
    ['no exp', () => ({ payload: good, expSeconds: null }), false],
    ['exp 1 s ago (exp has no leeway)', () => ({ payload: good, expSeconds: -1 }), false],
    ['exp 30 s ago', () => ({ payload: good, expSeconds: -30 }), false],
    ['exp 90 s ago', () => ({ payload: good, expSeconds: -90 }), false],
    ['nbf 30 s ahead (within the leeway)', () => ({ payload: { ...good, nbf: nowSeconds() + 30 } }), true],
    ['nbf 90 s ahead', () => ({ payload: { ...good, nbf: nowSeconds() + 90 } }), false],
    ['iat 30 s ahead (within the leeway)', () => ({ payload: { ...good, iat: nowSeconds() + 30 } }), true],
    ['iat 90 s ahead', () => ({ payload: { ...good, iat: nowSeconds() + 90 } }), false],
    ['customerId as a string', () => ({ payload: { ...good, customerId: '101' } }), false],
    ['customerId 0', () => ({ payload: { ...good, customerId: 0 } }), false],
    ['no publisherId', () => ({ payload: { ...good, publisherId: undefined } }), false],
  ];

  it.each(paths.flatMap(([path, key]) => cases.map(([name, overrides, ok]) => [path, name, key, overrides, ok] as const)))(
    '%s: %s',
    async (_path, _name, key, overrides, ok) => {
      const token = await sign(key(), overrides());
      const result = await verifier().verify(publisher(), token);
      if (ok) expect(result).toEqual(CLAIMS);
      else expect(result).toBeUndefined();
    },
  );

  it('ignores iss and aud when the publisher configures none', async () => {
    const token = await sign(rsa1, { payload: { iss: 'anyone', aud: 'anything' } });
    await expect(verifier().verify(publisherWith({ jwksUrl: jwks.url }), token)).resolves.toEqual(CLAIMS);
  });

  it('checks expiry against the injected clock', async () => {
    const token = await sign(rsa1, { expSeconds: 600 });
    const later = new JoseCustomerTokenVerifier(secrets, { jwksCache, now: () => new Date(Date.now() + 700_000) });
    await expect(later.verify(publisherWith({ jwksUrl: jwks.url }), token)).resolves.toBeUndefined();
  });
});

describe('JWKS endpoint unreachable or answering garbage', () => {
  async function expectUnavailable(promise: Promise<unknown>, token: string) {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    const message = (error as Error).message;
    expect(message).toMatch(/^JWKS of publisher 1 unavailable: 127\.0\.0\.1:\d+: /);
    // Nothing of the token in what gets logged.
    for (const part of token.split('.')) expect(message).not.toContain(part);
  }

  it.each<[Mode]>([['status-500'], ['garbage'], ['not-a-key-set'], ['hang']])(
    'answers DependencyUnavailableError (503 S0002) when the endpoint answers %s',
    async (mode) => {
      jwks.mode = mode;
      const token = await sign(rsa1);
      await expectUnavailable(verifier({ jwksTimeoutMs: 200 }).verify(publisherWith({ jwksUrl: jwks.url }), token), token);
    },
  );

  it('answers DependencyUnavailableError when nothing listens on the port', async () => {
    const closed = jwks.url;
    await jwks.close();
    const token = await sign(rsa1);
    await expectUnavailable(verifier().verify(publisherWith({ jwksUrl: closed }), token), token);
  });

  it('after a failed fetch without cached keys, answers 503 at once for a few seconds, then tries again', async () => {
    jwks.mode = 'status-500';
    const v = verifier();
    const publisher = publisherWith({ jwksUrl: jwks.url });
    const token = await sign(rsa1);
    await expect(v.verify(publisher, token)).rejects.toBeInstanceOf(DependencyUnavailableError);
    await expect(v.verify(publisher, token)).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(jwks.hits).toBe(1);

    jwks.mode = 'ok';
    advance(JWKS_FAILED_FETCH_BACKOFF_MS + 1);
    await expect(v.verify(publisher, token)).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(2);
  });

  it('a failed unknown-kid refresh keeps known keys working and is not retried within the cooldown', async () => {
    const v = verifier();
    const publisher = publisherWith({ jwksUrl: jwks.url });
    await expect(v.verify(publisher, await sign(rsa1))).resolves.toEqual(CLAIMS);
    jwks.mode = 'status-500';
    advance(JWKS_COOLDOWN_MS + 1_000);

    const unknownKid = await sign(rotated);
    await expect(v.verify(publisher, unknownKid)).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(jwks.hits).toBe(2);
    await expect(v.verify(publisher, await sign(rsa2))).resolves.toEqual(CLAIMS);
    for (let i = 0; i < 5; i += 1) await expect(v.verify(publisher, unknownKid)).resolves.toBeUndefined();
    expect(jwks.hits).toBe(2);

    jwks.mode = 'ok';
    jwks.keys = [rsa1.jwk, rotated.jwk];
    advance(JWKS_COOLDOWN_MS + 1_000);
    await expect(v.verify(publisher, unknownKid)).resolves.toEqual(CLAIMS);
    expect(jwks.hits).toBe(3);
  });
});
