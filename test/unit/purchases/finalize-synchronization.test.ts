import { finalizeSynchronization } from '../../../lambdas/purchases/domain/finalize-synchronization';
import type { StoreVerdict } from '../../../lambdas/purchases/domain/ownership';
import type { PossessionProof, Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import { EntitlementChangedDetail, SyncResultDetail, type EventEntry } from '../../../lambdas/events/schemas';
import { appAccountTokenFor } from '../../../lambdas/stores/apple/app-account-token';
import type { Publisher } from '../../../lambdas/tenants';
import { FakePublisherRepository, FakeSynchronizationRepository, FixedClock } from '../../support/fakes';
import { googleRegisterSync } from '../../support/synchronizations';
import { applePurchaseRecord } from './apple-purchase-fixtures';

const ID = '11111111-2222-4333-8444-555555555555';

function world(sync: Synchronization) {
  const syncs = new FakeSynchronizationRepository([sync]);
  const publishers = new FakePublisherRepository().addOffer(sync.publisherId, sync.store, 'premium_monthly', 'S1');
  return { deps: { syncs, publishers, clock: new FixedClock('2026-11-23T10:00:00Z'), eventBusName: 'bus' }, writes: syncs.finalized };
}

const googleSync = googleRegisterSync(ID);

const verified = (needsAcknowledgement: boolean, state: 'active' | 'expired' = 'active'): StoreVerdict => ({
  outcome: 'verified',
  facts: { store: 'google', purchaseKey: 'tok.en', productId: 'premium_monthly', state, expiresAt: '2026-12-23T10:00:00.000Z', needsAcknowledgement },
});

describe('finalizeSynchronization (Google)', () => {
  it.each([
    ['entitled and unacknowledged', verified(true), true],
    ['already acknowledged', verified(false), false],
    ['not entitled (expired)', verified(true, 'expired'), false],
  ])('%s → acknowledge %s', async (_name, verdict, acknowledge) => {
    const { deps } = world(googleSync);
    expect((await finalizeSynchronization(deps, { synchronizationId: ID, publisherId: 1, verdict })).acknowledge).toBe(acknowledge);
  });

  it('a retried finalize (the first one wrote) answers the same event and still asks for the acknowledgement', async () => {
    const { deps, writes } = world(googleSync);
    const first = await finalizeSynchronization(deps, { synchronizationId: ID, publisherId: 1, verdict: verified(true) });
    const again = await finalizeSynchronization(deps, { synchronizationId: ID, publisherId: 1, verdict: verified(true) });
    expect(writes).toHaveLength(1);
    expect(again).toEqual(first);
    expect(again.acknowledge).toBe(true);
    expect(first.event).toMatchObject({ store: 'google', purchaseToken: 'tok.en', packageName: 'com.example.iapsync', transactionId: null });
  });

  it('releases the token claim only when the synchronization failed', async () => {
    const failed = world(googleSync);
    await finalizeSynchronization(failed.deps, { synchronizationId: ID, publisherId: 1 });
    expect(failed.writes[0]?.releaseClaim).toBe(true);
    const ok = world(googleSync);
    await finalizeSynchronization(ok.deps, { synchronizationId: ID, publisherId: 1, verdict: verified(false) });
    expect(ok.writes[0]?.releaseClaim).toBeUndefined();
  });
});

describe('finalizeSynchronization (Apple): proof of possession and appAccountToken', () => {
  const NAMESPACE = '9f3c2d4e-1b2a-4c5d-8e6f-7a8b9c0d1e2f';
  const TOKEN_101 = appAccountTokenFor(NAMESPACE, 101);
  const TOKEN_102 = appAccountTokenFor(NAMESPACE, 102);
  const SUBSCRIPTION = '2000000000000001';

  function appleSync(overrides: Partial<Synchronization> = {}): Synchronization {
    return {
      synchronizationId: ID,
      publisherId: 1,
      store: 'apple',
      kind: 'register',
      customerId: 101,
      transactionId: '2000000000000002',
      status: 'processing',
      requestHash: 'h',
      lockKeys: ['apple#txn#2000000000000002'],
      client: {},
      attempts: 0,
      createdAt: '2026-11-23T10:00:00.000Z',
      updatedAt: '2026-11-23T10:00:00.000Z',
      ...overrides,
    };
  }

  function appleWorld(sync: Synchronization, options: { namespace?: string; policy?: Publisher['ownershipPolicy']; owner?: number } = {}) {
    const syncs = new FakeSynchronizationRepository([sync]);
    if (options.owner !== undefined) syncs.purchases.set(`1#apple#${SUBSCRIPTION}`, applePurchaseRecord({ purchaseKey: SUBSCRIPTION, ownerCustomerId: options.owner }));
    const publisher: Publisher = {
      publisherId: 1,
      name: 'P',
      tokenHash: '0'.repeat(64),
      jwt: {},
      storeKit: { activated: true, migrationInProgress: false },
      apple: {
        bundleId: 'com.example.iapsync',
        issuerId: 'i',
        keyId: 'k',
        privateKeyRef: 'file:k',
        environments: ['Sandbox'],
        ...(options.namespace !== undefined ? { appAccountTokenNamespace: options.namespace } : {}),
      },
      ownershipPolicy: options.policy ?? 'keep',
    };
    const publishers = new FakePublisherRepository([publisher]).addOffer(1, 'apple', 'premium_monthly', 'S1');
    return { deps: { syncs, publishers, clock: new FixedClock('2026-11-23T10:00:00Z'), eventBusName: 'bus' }, syncs };
  }

  const appleVerified = (appAccountToken?: string): StoreVerdict => ({
    outcome: 'verified',
    facts: {
      store: 'apple',
      purchaseKey: SUBSCRIPTION,
      productId: 'premium_monthly',
      state: 'active',
      expiresAt: '2026-12-23T10:00:00.000Z',
      environment: 'Sandbox',
      lastTransactionId: '2000000000000002',
      ...(appAccountToken !== undefined ? { appAccountToken } : {}),
    },
  });

  const entitlementDetails = (entries: EventEntry[]) =>
    entries.filter((entry) => entry.DetailType === 'inappEntitlementChanged').map((entry) => EntitlementChangedDetail.parse(entry.Detail));

  it('puts the appAccountToken in inappPurchaseSyncResult and inappEntitlementChanged, and keeps it on the purchase record', async () => {
    const { deps, syncs } = appleWorld(appleSync({ proof: { kind: 'none' } }), { namespace: NAMESPACE });
    const outcome = await finalizeSynchronization(deps, { synchronizationId: ID, publisherId: 1, verdict: appleVerified(TOKEN_101) });
    expect(SyncResultDetail.parse(outcome.event)).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED', appAccountToken: TOKEN_101 });
    expect(entitlementDetails(outcome.entries)).toEqual([expect.objectContaining({ cleengCustomerId: 101, reason: 'PURCHASED', appAccountToken: TOKEN_101 })]);
    expect(syncs.purchases.get(`1#apple#${SUBSCRIPTION}`)?.appAccountToken).toBe(TOKEN_101);
  });

  it('null in both events when Apple reports none (and for Google)', async () => {
    const apple = appleWorld(appleSync({ proof: { kind: 'trusted' } }));
    const outcome = await finalizeSynchronization(apple.deps, { synchronizationId: ID, publisherId: 1, verdict: appleVerified() });
    expect(outcome.event?.appAccountToken).toBeNull();
    expect(entitlementDetails(outcome.entries).map((detail) => detail.appAccountToken)).toEqual([null]);
    const google = world(googleSync);
    const googleOutcome = await finalizeSynchronization(google.deps, { synchronizationId: ID, publisherId: 1, verdict: verified(false) });
    expect(googleOutcome.event?.appAccountToken).toBeNull();
    expect(entitlementDetails(googleOutcome.entries).map((detail) => detail.appAccountToken)).toEqual([null]);
  });

  it.each<[string, string, PossessionProof | undefined, string | undefined]>([
    ["a customer JWT register whose purchase carries another customer's token", 'VERIFICATION_FAILED', { kind: 'none' }, TOKEN_102],
    ['a customer JWT register whose purchase carries no token', 'VERIFICATION_FAILED', { kind: 'none' }, undefined],
    ['a customer JWT register with a signed transaction, its own token', 'PURCHASE_SYNCHRONIZED', { kind: 'signedTransaction', transactionId: '2000000000000002', originalTransactionId: SUBSCRIPTION }, TOKEN_101],
    ["a publisher token register, another customer's token (trusted: not checked)", 'PURCHASE_SYNCHRONIZED', { kind: 'trusted' }, TOKEN_102],
    ['a record from before the field (who called is unknown: trusted)', 'PURCHASE_SYNCHRONIZED', undefined, TOKEN_102],
  ])('publisher requiring appAccountToken, %s → %s', async (_name, result, proof, appAccountToken) => {
    const { deps, syncs } = appleWorld(appleSync(proof ? { proof } : {}), { namespace: NAMESPACE });
    const outcome = await finalizeSynchronization(deps, { synchronizationId: ID, publisherId: 1, verdict: appleVerified(appAccountToken) });
    expect(outcome.event?.result).toBe(result);
    expect(syncs.purchases.has(`1#apple#${SUBSCRIPTION}`)).toBe(result === 'PURCHASE_SYNCHRONIZED');
  });

  it('a customer JWT register without proof never moves a purchase under the `transfer` policy; a publisher token does', async () => {
    const unproven = appleWorld(appleSync({ proof: { kind: 'none' } }), { policy: 'transfer', owner: 102 });
    const refused = await finalizeSynchronization(unproven.deps, { synchronizationId: ID, publisherId: 1, verdict: appleVerified() });
    expect(refused.event).toMatchObject({ result: 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', accessGranted: false });
    expect(unproven.syncs.purchases.get(`1#apple#${SUBSCRIPTION}`)?.ownerCustomerId).toBe(102);
    const trusted = appleWorld(appleSync({ proof: { kind: 'trusted' } }), { policy: 'transfer', owner: 102 });
    const moved = await finalizeSynchronization(trusted.deps, { synchronizationId: ID, publisherId: 1, verdict: appleVerified() });
    expect(moved.event).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', previousCustomerId: 102 });
    expect(trusted.syncs.purchases.get(`1#apple#${SUBSCRIPTION}`)?.ownerCustomerId).toBe(101);
  });

  it('a transfer whose signed transaction names another subscription than Apple reports does not move it', async () => {
    const proof: PossessionProof = { kind: 'signedTransaction', transactionId: '2000000000000002', originalTransactionId: '2000000000000777' };
    const { deps, syncs } = appleWorld(appleSync({ kind: 'transfer', proof }), { owner: 102 });
    const outcome = await finalizeSynchronization(deps, { synchronizationId: ID, publisherId: 1, verdict: appleVerified() });
    expect(outcome.event).toMatchObject({ kind: 'transfer', result: 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', accessGranted: false });
    expect(syncs.purchases.get(`1#apple#${SUBSCRIPTION}`)?.ownerCustomerId).toBe(102);
  });
});
