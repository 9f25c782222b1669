import { SignJWT, type JWTPayload } from 'jose';
import { ApiError, ERROR_CODES } from '../../../lambdas/platform/errors';
import { JoseCustomerTokenVerifier } from '../../../lambdas/tenants/adapters/jose-customer-token-verifier';
import { authenticate } from '../../../lambdas/tenants/domain/authenticate';
import type { Publisher } from '../../../lambdas/tenants/domain/publisher';
import { FakePublisherRepository, FakeSecretStore } from '../../support/fakes';

/**
 * Contract §5: `exp` has no leeway, `nbf`/`iat` up to 60 s. Checked end to end through
 * `authenticate` (the answer a client gets) with a real HS256 token and a fixed verifier clock.
 */

const NOW = new Date('2026-03-01T12:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;
const SECRET = 'publisher-1-hs256-secret-of-at-least-32-bytes!';
const PUBLISHER: Publisher = {
  publisherId: 1,
  name: 'Acme',
  tokenHash: '00',
  jwt: { hs256SecretRef: 'file:jwt-1' },
  storeKit: { activated: true, migrationInProgress: false },
  ownershipPolicy: 'keep',
};

async function token(claims: JWTPayload): Promise<string> {
  return new SignJWT({ customerId: 101, publisherId: 1, iat: NOW_SECONDS - 10, exp: NOW_SECONDS + 600, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

async function answerTo(claims: JWTPayload): Promise<string> {
  const deps = {
    publishers: new FakePublisherRepository([PUBLISHER]),
    customerTokens: new JoseCustomerTokenVerifier(new FakeSecretStore({ 'file:jwt-1': SECRET }), { now: () => NOW }),
  };
  try {
    const { caller } = await authenticate(deps, { publisherId: 1, authorization: `Bearer ${await token(claims)}` });
    return `ok ${caller.kind}`;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return `${ERROR_CODES[error.code].status} ${error.code}`;
  }
}

describe('customer JWT time claims', () => {
  it.each<[string, string, JWTPayload]>([
    ['exp 1 s ago', '401 AUTH0002', { exp: NOW_SECONDS - 1 }],
    ['exp this very second', '401 AUTH0002', { exp: NOW_SECONDS }],
    ['exp 30 s ago (once inside jose’s shared leeway)', '401 AUTH0002', { exp: NOW_SECONDS - 30 }],
    ['exp 1 s ahead', 'ok customer', { exp: NOW_SECONDS + 1 }],
    ['nbf 30 s in the future', 'ok customer', { nbf: NOW_SECONDS + 30 }],
    ['nbf 60 s in the future (the edge of the leeway)', 'ok customer', { nbf: NOW_SECONDS + 60 }],
    ['nbf 90 s in the future', '401 AUTH0002', { nbf: NOW_SECONDS + 90 }],
    ['iat 30 s in the future', 'ok customer', { iat: NOW_SECONDS + 30 }],
    ['iat 90 s in the future', '401 AUTH0002', { iat: NOW_SECONDS + 90 }],
  ])('%s: %s', async (_name, expected, claims) => {
    await expect(answerTo(claims)).resolves.toBe(expected);
  });
});
