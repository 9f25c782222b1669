import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { JoseCustomerTokenVerifier } from '../../lambdas/tenants/adapters/jose-customer-token-verifier';
import { ReferenceSecretStore } from '../../lambdas/platform/reference-secret-store';
import type { Publisher } from '../../lambdas/tenants/domain/publisher';
import type { Args } from '../../cli/args';
import { CommandError, UsageError } from '../../cli/errors';
import { jwtConfigure, parseJwtConfigure } from '../../cli/commands/jwt';
import { publisherCreate } from '../../cli/commands/publisher';
import { localTarget, type StackTarget } from '../../cli/target';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local';
import { LOCAL_TABLE_NAME } from '../../local/stack';

/** `iap-sync jwt configure`: a publisher's JWKS URL, iss/aud and HS256 switch (issue 6). */

let dynamodb: DynamoDbLocal;
let dataDir: string;
let target: StackTarget;
let publishers: DynamoDbPublisherRepository;

async function stored(publisherId: number): Promise<Publisher> {
  const publisher = await publishers.getPublisher(publisherId);
  if (!publisher) throw new Error(`publisher ${publisherId} missing`);
  return publisher;
}

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: LOCAL_TABLE_NAME });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-cli-jwt-'));
  writeFileSync(path.join(dataDir, 'runtime.json'), JSON.stringify({ dynamodbEndpoint: dynamodb.endpoint, tableName: LOCAL_TABLE_NAME }));
  writeFileSync(path.join(dataDir, 'local.json'), JSON.stringify({ apiUrl: 'http://127.0.0.1:3999', publisherId: 1 }));
  target = localTarget(dataDir);
  publishers = new DynamoDbPublisherRepository(target.db, target.tableName);
  await publisherCreate(target, { id: '21', name: 'JWKS publisher', 'jwt-issuer': 'https://id.acme.example' });
  await publisherCreate(target, { id: '22', name: 'Another' });
}, 90_000);

afterAll(async () => {
  target?.close();
  await dynamodb?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('jwt configure: options', () => {
  it.each<[string, Args, RegExp]>([
    ['no publisher', { 'jwks-url': 'https://id.acme.example/jwks.json' }, /--publisher is required/],
    ['nothing to change', { publisher: '21' }, /Nothing to change/],
    ['a plain-http JWKS URL', { publisher: '21', 'jwks-url': 'http://id.acme.example/jwks.json' }, /--jwks-url must use https/],
    ['a JWKS URL with credentials', { publisher: '21', 'jwks-url': 'https://u:p@id.acme.example/jwks.json' }, /must not carry credentials/],
    ['a relative JWKS URL', { publisher: '21', 'jwks-url': '/jwks.json' }, /not an absolute URL/],
    ['set and remove the JWKS URL together', { publisher: '21', 'jwks-url': 'https://id.acme.example/jwks.json', 'remove-jwks-url': true }, /cannot be combined/],
    ['set and clear the issuer together', { publisher: '21', issuer: 'a', 'clear-issuer': true }, /cannot be combined/],
    ['an audience with a control character', { publisher: '21', audience: 'iap\nsync' }, /--audience must be 1 to 256 characters/],
    ['a flag given a value', { publisher: '21', 'disable-hs256': 'yes' }, /--disable-hs256 takes no value/],
  ])('refuses %s before contacting the stack', (_name, args, message) => {
    expect(() => parseJwtConfigure(args)).toThrow(UsageError);
    expect(() => parseJwtConfigure(args)).toThrow(message);
  });

  it.each(['https://id.acme.example/.well-known/jwks.json', 'http://127.0.0.1:8080/jwks.json', 'http://localhost:8080/jwks.json'])(
    'accepts --jwks-url %s',
    (url) => {
      expect(parseJwtConfigure({ publisher: '21', 'jwks-url': url })).toMatchObject({ publisherId: 21, jwksUrl: url });
    },
  );
});

describe('jwt configure: the stored settings', () => {
  it('adds a JWKS URL and keeps the HS256 secret and the issuer', async () => {
    const before = await stored(21);
    const out = await jwtConfigure(target, { publisher: '21', 'jwks-url': 'https://id.acme.example/.well-known/jwks.json', audience: 'iap-sync' });
    const expected = {
      hs256SecretRef: before.jwt.hs256SecretRef,
      jwksUrl: 'https://id.acme.example/.well-known/jwks.json',
      issuer: 'https://id.acme.example',
      audience: 'iap-sync',
    };
    expect(out).toEqual({ publisherId: 21, jwt: expected });
    expect((await stored(21)).jwt).toEqual(expected);
    // Nothing else of the publisher changed.
    expect({ ...(await stored(21)), jwt: undefined }).toEqual({ ...before, jwt: undefined });
  });

  it('clears the audience and removes the JWKS URL', async () => {
    await jwtConfigure(target, { publisher: '21', 'clear-audience': true, 'remove-jwks-url': true });
    const { jwt } = await stored(21);
    expect(jwt.audience).toBeUndefined();
    expect(jwt.jwksUrl).toBeUndefined();
    expect(jwt.issuer).toBe('https://id.acme.example');
    expect(jwt.hs256SecretRef).toBe('file:jwt-hs256-publisher-21');
  });

  it('refuses an unknown publisher', async () => {
    const attempt = jwtConfigure(target, { publisher: '404', 'jwks-url': 'https://id.acme.example/jwks.json' });
    await expect(attempt).rejects.toBeInstanceOf(CommandError);
  });

  it('configures a publisher the API then verifies RS256 tokens for, and HS256 no longer once disabled', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
      const out = await jwtConfigure(target, { publisher: '22', 'jwks-url': url, 'disable-hs256': true, issuer: 'https://id.other.example' });
      expect(out.jwt).toEqual({ jwksUrl: url, issuer: 'https://id.other.example' });

      const verifier = new JoseCustomerTokenVerifier(new ReferenceSecretStore({ localDir: path.join(dataDir, 'secrets'), cacheSeconds: 0 }), {
        jwksCache: new Map(),
      });
      const sign = (key: Parameters<SignJWT['sign']>[0], alg: string) =>
        new SignJWT({ customerId: 5, publisherId: 22 })
          .setProtectedHeader({ alg, kid: 'k1' })
          .setIssuer('https://id.other.example')
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(key);
      await expect(verifier.verify(await stored(22), await sign(privateKey, 'RS256'))).resolves.toEqual({ customerId: 5, publisherId: 22 });
      // The HS256 secret `publisher create` made still exists but no longer verifies anything.
      const secret = await new ReferenceSecretStore({ localDir: path.join(dataDir, 'secrets'), cacheSeconds: 0 }).get('file:jwt-hs256-publisher-22');
      await expect(verifier.verify(await stored(22), await sign(new TextEncoder().encode(secret), 'HS256'))).resolves.toBeUndefined();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
