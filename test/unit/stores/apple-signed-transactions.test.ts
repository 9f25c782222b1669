import type { JWSTransactionDecodedPayload } from '@apple/app-store-server-library';
import { ConfigurationError } from '../../../lambdas/platform/errors';
import { appleVerdict } from '../../../lambdas/purchases/domain/store-verdicts';
import { VerdictOutput } from '../../../lambdas/purchases/workflow-schemas';
import { toFacts } from '../../../lambdas/stores/apple/adapters/apple-store-verifier';
import { appAccountTokenFor, sameAppAccountToken, uuidV5 } from '../../../lambdas/stores/apple/app-account-token';
import { AppleSignedTransactionDecoder } from '../../../lambdas/stores/apple/signed-transactions';
import type { ApplePki } from '../../../local/simulator/apple-pki';
import { APP_APPLE_ID, appleConfig, newPki, signedOutsideTheChain, tamperedPayload, transactionPayload, type TransactionClaims } from '../lifecycle/apple-notification-fixtures';

const TOKEN = 'c379ee08-22b8-59b4-a38e-573738a14d61';

let pki: ApplePki;
let decoder: AppleSignedTransactionDecoder;

beforeAll(async () => {
  pki = await newPki();
  decoder = new AppleSignedTransactionDecoder({ rootCertificates: [pki.rootCertificateDer], onlineChecks: false });
});

const jws = (claims: TransactionClaims, extra: Record<string, unknown> = {}) => pki.signJws({ ...transactionPayload(claims), ...extra });

describe('AppleSignedTransactionDecoder (the device JWS, proof of possession)', () => {
  it('answers the ids, the environment and the appAccountToken of a genuine transaction', async () => {
    const signed = jws({ transactionId: '2000000000000009', originalTransactionId: '2000000000000001' }, { appAccountToken: TOKEN });
    expect(await decoder.verify(appleConfig(), signed)).toEqual({
      outcome: 'verified',
      claims: { transactionId: '2000000000000009', originalTransactionId: '2000000000000001', environment: 'Sandbox', appAccountToken: TOKEN },
    });
  });

  it('tries each configured environment: a Production transaction verifies for a publisher with both', async () => {
    const signed = jws({ environment: 'Production' });
    const check = await decoder.verify(appleConfig({ environments: ['Sandbox', 'Production'], appAppleId: APP_APPLE_ID }), signed);
    expect(check).toMatchObject({ outcome: 'verified', claims: { environment: 'Production' } });
    expect(check.outcome === 'verified' && 'appAccountToken' in check.claims).toBe(false);
  });

  it.each<[string, () => string, Parameters<typeof appleConfig>[0]]>([
    ['signed outside the trusted chain', () => signedOutsideTheChain(jws({})), {}],
    ['a payload changed after signing', () => tamperedPayload(jws({}), (payload) => (payload.originalTransactionId = '2000000000000777')), {}],
    ['another app', () => jws({ bundleId: 'com.example.other' }), {}],
    ['an environment the publisher has not configured', () => jws({ environment: 'Production' }), { environments: ['Sandbox'] }],
    ['Production without the app Apple id configured', () => jws({ environment: 'Production' }), { environments: ['Production'], appAppleId: undefined }],
    ['not a JWS', () => 'a.b.c', {}],
  ])('rejects %s', async (_name, signed, config) => {
    expect(await decoder.verify(appleConfig(config), signed())).toMatchObject({ outcome: 'rejected', reason: expect.any(String) });
  });

  it('refuses to exist without trusted roots', () => {
    expect(() => new AppleSignedTransactionDecoder({ rootCertificates: [], onlineChecks: false })).toThrow(ConfigurationError);
  });
});

describe('appAccountTokenFor (UUID v5 of the decimal customer id under the publisher namespace)', () => {
  it.each([
    // RFC 9562 / Python uuid.uuid5(NAMESPACE_DNS, ...) vectors.
    ['6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com', '2ed6657d-e927-568b-95e1-2665a8aea6a2'],
  ])('uuidV5 matches the standard vector under %s for %s', (namespace, name, expected) => {
    expect(uuidV5(namespace, name)).toBe(expected);
  });

  it.each([
    ['9f3c2d4e-1b2a-4c5d-8e6f-7a8b9c0d1e2f', 101, 'c379ee08-22b8-59b4-a38e-573738a14d61'],
    ['6BA7B810-9DAD-11D1-80B4-00C04FD430C8', 0, '6af613b6-569c-5c22-9c37-2ed93f31d3af'],
  ])('under %s, customer %i → %s', (namespace, customerId, expected) => {
    expect(appAccountTokenFor(namespace, customerId)).toBe(expected);
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => appAccountTokenFor('not-a-uuid', 1)).toThrow(/UUID/);
  });

  it.each([
    [TOKEN, true],
    [TOKEN.toUpperCase(), true],
    ['6af613b6-569c-5c22-9c37-2ed93f31d3af', false],
    [undefined, false],
  ])('sameAppAccountToken(%s) → %s', (token, same) => {
    expect(sameAppAccountToken(token, TOKEN)).toBe(same);
  });
});

describe('appAccountToken from Apple to the finalize', () => {
  const decoded = (extra: Partial<JWSTransactionDecodedPayload>): JWSTransactionDecodedPayload =>
    ({ ...transactionPayload({ transactionId: '2000000000000002', originalTransactionId: '2000000000000001' }), ...extra }) as JWSTransactionDecodedPayload;

  it.each([
    ['set', TOKEN, { appAccountToken: TOKEN }],
    ['absent', undefined, {}],
    ['empty', undefined, { appAccountToken: '' }],
  ])('Get Transaction Info with the token %s → facts.appAccountToken %s', (_name, expected, extra) => {
    expect(toFacts('Sandbox', decoded(extra)).appAccountToken).toBe(expected);
  });

  it('the verdict carries it across the workflow (VerdictOutput keeps it)', () => {
    const verdict = appleVerdict({ outcome: 'verified', facts: toFacts('Sandbox', decoded({ appAccountToken: TOKEN })) }, new Date());
    expect(verdict).toMatchObject({ outcome: 'verified', facts: { appAccountToken: TOKEN } });
    expect(VerdictOutput.parse(verdict)).toEqual(verdict);
  });
});
