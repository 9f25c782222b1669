import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { hashPublisherToken } from '../../lambdas/tenants/domain/authenticate';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { startTestStack, type LocalClient, type Reply } from '../support/local-client';

/**
 * Issue 6: a customer JWT signed with a key of the publisher's JWKS, end to end on the local stack.
 * The publisher's identity system is a JWKS endpoint on a loopback port (plain http is allowed there only).
 */

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let jwksServer: Server;
let jwksUrl: string;
let jwksHits = 0;

interface Key {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyLike;
  jwk: JWK;
}

async function newKey(alg: 'RS256' | 'ES256', kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

let rsa: Key;
let ec: Key;
let stranger: Key;

function customerJwt(key: Key, customerId: number, publisherId = 1, kid = key.kid): Promise<string> {
  return new SignJWT({ customerId, publisherId })
    .setProtectedHeader({ alg: key.alg, kid, typ: 'JWT' })
    .setIssuedAt()
    .setIssuer('https://id.example.test')
    .setExpirationTime('10m')
    .sign(key.privateKey);
}

function bearer(jwt: string, publisherId = 1) {
  return { 'content-type': 'application/json', 'x-publisher-id': String(publisherId), authorization: `Bearer ${jwt}` };
}

function expectError(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, code: reply.body.code }).toEqual({ status, code });
  expect(Object.keys(reply.body).sort()).toEqual(['code', 'message']);
}

beforeAll(async () => {
  [rsa, ec, stranger] = await Promise.all([newKey('RS256', 'e2e-rs-1'), newKey('ES256', 'e2e-es-1'), newKey('RS256', 'e2e-rs-1')]);
  jwksServer = createServer((_req, res) => {
    jwksHits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;

  env = await startTestStack();
  api = env.client;
  const publishers = new DynamoDbPublisherRepository(createDocumentClient(env.stack.dynamodb.client), LOCAL_TABLE_NAME);
  const demo = await publishers.getPublisher(1);
  if (!demo) throw new Error('demo publisher missing');
  // The demo publisher keeps its HS256 secret and gains a JWKS: both kinds of token verify. (No
  // issuer: it would apply to both, and local.json's HS256 tokens carry none.)
  await publishers.putPublisher({ ...demo, jwt: { ...demo.jwt, jwksUrl } });
  // A publisher whose identity system is down: nothing listens on port 9 of loopback.
  await publishers.putPublisher({
    ...demo,
    publisherId: 2,
    name: 'JWKS down',
    tokenHash: hashPublisherToken('pt_jwks_down'),
    jwt: { jwksUrl: 'http://127.0.0.1:9/jwks.json' },
  });
  await publishers.putCustomer(2, 101);
});

afterAll(async () => {
  await env?.stop();
  await new Promise<void>((resolve) => {
    jwksServer.closeAllConnections();
    jwksServer.close(() => resolve());
  });
});

describe('customer JWTs verified with the publisher JWKS, over HTTP', () => {
  it('registers with an RS256 JWT: 202, and the same JWT reads the finalized synchronization', async () => {
    const jwt = await customerJwt(rsa, 101);
    const { transactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    const accepted = await api.register({ cleengCustomerId: 101, transactionId }, bearer(jwt));
    expect(accepted.status).toBe(202);
    const { final } = await api.waitFinalized(String(accepted.body.synchronizationId), bearer(jwt));
    expect(final).toMatchObject({ status: 'finalized', accessGranted: true, result: 'PURCHASE_SYNCHRONIZED' });
  });

  it('registers with an ES256 JWT, and the HS256 JWT of local.json still works for the same publisher', async () => {
    for (const headers of [bearer(await customerJwt(ec, 102)), api.customerHeaders(102)]) {
      const { transactionId } = await api.createTransaction({ productId: 'premium_yearly' });
      const accepted = await api.register({ cleengCustomerId: 102, transactionId }, headers);
      expect(accepted.status).toBe(202);
    }
    // Keys are cached across requests (container scope).
    expect(jwksHits).toBe(1);
  });

  it.each<[string, () => Promise<string>]>([
    ['another key under the same kid', () => customerJwt(stranger, 101)],
    ['another key under an unknown kid', () => customerJwt(stranger, 101, 1, 'e2e-unknown')],
  ])('a token signed with %s → 401 AUTH0002', async (_name, make) => {
    const { transactionId } = await api.createTransaction({ productId: 'premium_monthly' });
    expectError(await api.register({ cleengCustomerId: 101, transactionId }, bearer(await make())), 401, 'AUTH0002');
  });

  it.each<[string, number, number]>([
    ['customer 101 registering for customer 103', 101, 1],
    ['customer 101 naming publisher 2 in its claims', 101, 2],
  ])('a valid JWKS JWT of %s → 403 AUTH0003', async (_name, customerId, claimedPublisher) => {
    const jwt = await customerJwt(rsa, customerId, claimedPublisher);
    expectError(await api.register({ cleengCustomerId: 103, transactionId: '1' }, bearer(jwt)), 403, 'AUTH0003');
  });

  it('an unreachable JWKS endpoint → 503 S0002 (the token may be valid: retry later)', async () => {
    const reply = await api.register({ cleengCustomerId: 101, transactionId: '1' }, bearer(await customerJwt(rsa, 101, 2), 2));
    expectError(reply, 503, 'S0002');
  });
});
