import { hashPublisherToken } from '../../../lambdas/tenants/domain/authenticate';
import type { Publisher } from '../../../lambdas/tenants/domain/publisher';
import type { SyncKind } from '../../../lambdas/events/vocabulary';
import { makePurchaseHandler } from '../../../lambdas/purchases/handlers/purchase-handler';
import { MAX_SIGNED_TRANSACTION_INFO } from '../../../lambdas/purchases/schemas';
import { StoreUnavailableError } from '../../../lambdas/platform/errors';
import { createLogger } from '../../../lambdas/platform/logger';
import { AppleSignedTransactionDecoder } from '../../../lambdas/stores/apple/signed-transactions';
import type { AppleSignedTransactionVerifier } from '../../../lambdas/stores/apple/ports';
import type { ApplePki } from '../../../local/simulator/apple-pki';
import { apiEvent, testContext } from '../../support/api-events';
import { FakeCustomerTokenVerifier, FakePublisherRepository, FakeSynchronizationRepository, FakeWorkflowStarter, FixedClock } from '../../support/fakes';
import { applePurchaseRecord } from './apple-purchase-fixtures';
import { appleConfig, newPki, signedOutsideTheChain, transactionPayload, type TransactionClaims } from '../lifecycle/apple-notification-fixtures';

/*
 * Contract §5, proof of possession, at accept time: the register and transfer handlers on fakes of
 * the repositories, with Apple's real SignedDataVerifier over the store simulator's chain. Customer
 * 101 owns subscription S (transaction T, renewal R); customer 103 tries to take it.
 */

const PUBLISHER_TOKEN = 'pt_test_token';
const JWT_103 = 'jwt.customer.103';
const S = '2000000000000001';
const T = '2000000000000002';
const R = '2000000000000005';
/** A transaction of 103's own subscription O. */
const OWN = '2000000000000100';
const O = '2000000000000099';
/** A transaction this service has never seen (no known subscription). */
const UNSEEN = '2000000000000200';

let pki: ApplePki;
let decoder: AppleSignedTransactionDecoder;

beforeAll(async () => {
  pki = await newPki();
  decoder = new AppleSignedTransactionDecoder({ rootCertificates: [pki.rootCertificateDer], onlineChecks: false });
});

const jws = (claims: TransactionClaims) => pki.signJws(transactionPayload(claims));

function publisherWith(policy: Publisher['ownershipPolicy']): Publisher {
  return {
    publisherId: 7,
    name: 'P',
    tokenHash: hashPublisherToken(PUBLISHER_TOKEN),
    jwt: {},
    storeKit: { activated: true, migrationInProgress: false },
    apple: appleConfig({ environments: ['Sandbox'] }),
    ownershipPolicy: policy,
  };
}

interface Setup {
  kind?: SyncKind;
  policy?: Publisher['ownershipPolicy'];
  owner?: number;
  verifier?: AppleSignedTransactionVerifier | null;
}

function setup({ kind = 'transfer', policy = 'keep', owner = 101, verifier }: Setup = {}) {
  const syncs = new FakeSynchronizationRepository().link(7, T, S).link(7, R, S).link(7, OWN, O);
  syncs.purchases.set(`7#apple#${S}`, applePurchaseRecord({ publisherId: 7, purchaseKey: S, ownerCustomerId: owner }));
  const workflow = new FakeWorkflowStarter();
  const handler = makePurchaseHandler('apple', kind, {
    publishers: new FakePublisherRepository([publisherWith(policy)]),
    customerTokens: new FakeCustomerTokenVerifier({ [JWT_103]: { customerId: 103, publisherId: 7 } }),
    syncs,
    workflow,
    clock: new FixedClock('2026-11-23T10:00:00Z'),
    logger: createLogger('test', 'silent'),
    leaseSeconds: 7800,
    retryAfterSeconds: 5,
    newId: () => '11111111-2222-4333-8444-555555555555',
    ...(verifier === null ? {} : { signedTransactions: verifier ?? decoder }),
  });
  const call = async (body: Record<string, unknown>, headers: Record<string, string> = asCustomer) => {
    const path = kind === 'transfer' ? '/storekit2/purchases/transfers' : '/storekit2/purchases';
    const result = await handler(apiEvent({ path, headers, body: JSON.stringify(body) }), testContext);
    return { status: result.statusCode, code: (JSON.parse(result.body ?? '{}') as { code?: string }).code };
  };
  return { call, accepted: syncs.accepted, started: workflow.started };
}

const asCustomer = { 'content-type': 'application/json', 'x-publisher-id': '7', authorization: `Bearer ${JWT_103}` };
const asPublisher = { 'content-type': 'application/json', 'x-publisher-id': '7', 'x-publisher-token': PUBLISHER_TOKEN };

describe('an Apple transfer with a customer JWT needs the device signed transaction', () => {
  it.each<[string, () => string | undefined]>([
    ['missing', () => undefined],
    ['forged (the chain is genuine, the signature is not)', () => signedOutsideTheChain(jws({ transactionId: T, originalTransactionId: S }))],
    ["naming the customer's own other purchase", () => jws({ transactionId: OWN, originalTransactionId: O })],
    ['of another app (bundle id)', () => jws({ transactionId: T, originalTransactionId: S, bundleId: 'com.example.other' })],
    ["of an environment the publisher has not configured", () => jws({ transactionId: T, originalTransactionId: S, environment: 'Production' })],
    ['not a JWS at all', () => 'not-a-jws'],
  ])('%s → 403 AUTH0004, nothing accepted, nothing locked', async (_name, proof) => {
    const { call, accepted, started } = setup();
    const signed = proof();
    const reply = await call({ cleengCustomerId: 103, transactionId: T, ...(signed !== undefined ? { signedTransactionInfo: signed } : {}) });
    expect(reply).toEqual({ status: 403, code: 'AUTH0004' });
    expect(accepted).toHaveLength(0);
    expect(started).toHaveLength(0);
  });

  it.each([
    ['of the same transaction', T, S],
    ['of a sibling renewal of the same subscription', R, S],
  ])('a verified signed transaction %s is accepted and recorded as the proof', async (_name, transactionId, originalTransactionId) => {
    const { call, accepted, started } = setup();
    const reply = await call({ cleengCustomerId: 103, transactionId: T, signedTransactionInfo: jws({ transactionId, originalTransactionId }) });
    expect(reply.status).toBe(202);
    expect(accepted[0]?.sync.proof).toEqual({ kind: 'signedTransaction', transactionId, originalTransactionId });
    expect(accepted[0]?.sync.lockKeys).toEqual([`apple#txn#${T}`, `apple#sub#${S}`]);
    expect(started).toHaveLength(1);
  });

  it('for a transaction this service has not seen, only the signed transaction of that very transaction proves it', async () => {
    const same = setup();
    expect((await same.call({ cleengCustomerId: 103, transactionId: UNSEEN, signedTransactionInfo: jws({ transactionId: UNSEEN, originalTransactionId: S }) })).status).toBe(202);
    const sibling = setup();
    const reply = await sibling.call({ cleengCustomerId: 103, transactionId: UNSEEN, signedTransactionInfo: jws({ transactionId: R, originalTransactionId: S }) });
    expect(reply).toEqual({ status: 403, code: 'AUTH0004' });
    expect(sibling.accepted).toHaveLength(0);
  });

  it('a publisher token needs no proof (trusted), and its synchronization says so', async () => {
    const { call, accepted } = setup();
    const reply = await call({ cleengCustomerId: 103, transactionId: T, ipAddress: '203.0.113.7' }, asPublisher);
    expect(reply.status).toBe(202);
    expect(accepted[0]?.sync.proof).toEqual({ kind: 'trusted' });
  });

  it('Apple certificate status that cannot be checked (online checks) is 503 S0002, not a refusal', async () => {
    const unavailable: AppleSignedTransactionVerifier = {
      verify: async () => {
        throw new StoreUnavailableError('OCSP responder unreachable');
      },
    };
    const { call, accepted } = setup({ verifier: unavailable });
    expect(await call({ cleengCustomerId: 103, transactionId: T, signedTransactionInfo: jws({ transactionId: T, originalTransactionId: S }) })).toEqual({ status: 503, code: 'S0002' });
    expect(accepted).toHaveLength(0);
  });

  it('fails closed (500 S0001) when no verifier is wired', async () => {
    const { call, accepted } = setup({ verifier: null });
    expect(await call({ cleengCustomerId: 103, transactionId: T, signedTransactionInfo: jws({ transactionId: T, originalTransactionId: S }) })).toEqual({ status: 500, code: 'S0001' });
    expect(accepted).toHaveLength(0);
  });

  it.each([
    ['at the limit', MAX_SIGNED_TRANSACTION_INFO, 403, 'AUTH0004'],
    ['one character over 8 KiB', MAX_SIGNED_TRANSACTION_INFO + 1, 400, 'REQ0001'],
    ['empty', 0, 400, 'REQ0001'],
  ])('signedTransactionInfo %s (%i characters) → %i %s', async (_name, length, status, code) => {
    const { call } = setup();
    expect(await call({ cleengCustomerId: 103, transactionId: T, signedTransactionInfo: 'x'.repeat(length) })).toEqual({ status, code });
  });
});

describe('an Apple register with a customer JWT needs the proof only when it would move ownership', () => {
  it.each<[string, number, string | undefined, Setup]>([
    ['`transfer` policy, owned by another customer', 403, 'AUTH0004', { kind: 'register', policy: 'transfer', owner: 101 }],
    ['`keep` policy, owned by another customer', 202, undefined, { kind: 'register', policy: 'keep', owner: 101 }],
    ['`transfer` policy, already its own', 202, undefined, { kind: 'register', policy: 'transfer', owner: 103 }],
  ])('without a signed transaction, %s → %i', async (_name, status, code, options) => {
    const { call, accepted } = setup(options);
    const reply = await call({ cleengCustomerId: 103, transactionId: T });
    expect(reply.status).toBe(status);
    expect(reply.code).toBe(code);
    expect(accepted.map((request) => request.sync.proof)).toEqual(status === 202 ? [{ kind: 'none' }] : []);
  });

  it('`transfer` policy, purchase not known here yet: accepted without proof (the finalize will not move it without one)', async () => {
    const { call, accepted } = setup({ kind: 'register', policy: 'transfer' });
    expect((await call({ cleengCustomerId: 103, transactionId: UNSEEN })).status).toBe(202);
    expect(accepted[0]?.sync.proof).toEqual({ kind: 'none' });
  });

  it('`transfer` policy, owned by another customer, with the signed transaction → accepted with the proof', async () => {
    const { call, accepted } = setup({ kind: 'register', policy: 'transfer' });
    expect((await call({ cleengCustomerId: 103, transactionId: T, signedTransactionInfo: jws({ transactionId: T, originalTransactionId: S }) })).status).toBe(202);
    expect(accepted[0]?.sync.proof).toEqual({ kind: 'signedTransaction', transactionId: T, originalTransactionId: S });
  });

  it('a signed transaction sent though not needed is still checked: a bad one is refused, not ignored', async () => {
    const { call, accepted } = setup({ kind: 'register', policy: 'keep' });
    const reply = await call({ cleengCustomerId: 103, transactionId: T, signedTransactionInfo: jws({ transactionId: OWN, originalTransactionId: O }) });
    expect(reply).toEqual({ status: 403, code: 'AUTH0004' });
    expect(accepted).toHaveLength(0);
  });

  it('a publisher token under the `transfer` policy needs none', async () => {
    const { call, accepted } = setup({ kind: 'register', policy: 'transfer' });
    expect((await call({ cleengCustomerId: 103, transactionId: T, ipAddress: '203.0.113.7' }, asPublisher)).status).toBe(202);
    expect(accepted[0]?.sync.proof).toEqual({ kind: 'trusted' });
  });
});
