import type { AppleFacts, AppleVerification } from '../../../lambdas/stores/apple/facts';
import { decidePurchase, type DecisionInput, type PurchaseRecord } from '../../../lambdas/purchases/domain/ownership';
import type { PossessionProof } from '../../../lambdas/purchases/domain/synchronization';
import { appleVerdict } from '../../../lambdas/purchases/domain/store-verdicts';

/** What the workflow does for Apple: VerifyApplePurchase turns the verification into a verdict, Finalize decides. */
function decideApplePurchase(input: Omit<DecisionInput, 'verdict'> & { verification: AppleVerification | undefined }) {
  const { verification, ...rest } = input;
  return decidePurchase({ ...rest, verdict: appleVerdict(verification, input.now) });
}

const NOW = new Date('2026-11-23T10:00:00.000Z');
const FUTURE = '2026-12-23T10:00:00.000Z';
const PAST = '2026-11-01T10:00:00.000Z';

function facts(overrides: Partial<AppleFacts> = {}): AppleFacts {
  return {
    environment: 'Sandbox',
    transactionId: '2000000000000002',
    originalTransactionId: '2000000000000001',
    productId: 'premium_monthly',
    type: 'Auto-Renewable Subscription',
    expiresAt: FUTURE,
    revokedAt: null,
    subscriptionStatus: 1,
    ...overrides,
  };
}

const verified = (overrides: Partial<AppleFacts> = {}): AppleVerification => ({ outcome: 'verified', facts: facts(overrides) });

function record(overrides: Partial<PurchaseRecord> = {}): PurchaseRecord {
  return {
    publisherId: 1,
    store: 'apple',
    purchaseKey: '2000000000000001',
    ownerCustomerId: 101,
    ownershipVersion: 3,
    productId: 'premium_monthly',
    offerId: 'S1',
    state: 'active',
    entitled: true,
    expiresAt: FUTURE,
    environment: 'Sandbox',
    lastTransactionId: '2000000000000002',
    updatedAt: NOW.toISOString(),
    ...overrides,
  };
}

const base = { kind: 'register' as const, publisherId: 1, customerId: 101, policy: 'keep' as const, offerId: 'S1' as string | undefined, now: NOW };

describe('decideApplePurchase, register', () => {
  it.each([
    ['store gave up (no verification)', undefined, undefined, 'SYNCHRONIZATION_FAILED', false],
    ['unknown transaction', { outcome: 'not_found' } as AppleVerification, undefined, 'TRANSACTION_ID_NOT_FOUND', false],
    ['bad signature or bundle', { outcome: 'invalid', reason: 'INVALID_APP_IDENTIFIER' } as AppleVerification, undefined, 'VERIFICATION_FAILED', false],
    ['active and mapped, first time', verified(), undefined, 'PURCHASE_SYNCHRONIZED', true],
    ['refunded', verified({ revokedAt: PAST }), undefined, 'PURCHASE_REVOKED', false],
    ['subscription status revoked', verified({ subscriptionStatus: 5 }), undefined, 'PURCHASE_REVOKED', false],
    ['subscription expired', verified({ subscriptionStatus: 2, expiresAt: PAST }), undefined, 'RECEIVED_EXPIRED_PURCHASE', false],
    ['billing retry grants nothing', verified({ subscriptionStatus: 3 }), undefined, 'RECEIVED_EXPIRED_PURCHASE', false],
    ['grace period grants access', verified({ subscriptionStatus: 4 }), undefined, 'PURCHASE_SYNCHRONIZED', true],
    ['non-renewing past its term', verified({ type: 'Non-Renewing Subscription', subscriptionStatus: undefined, expiresAt: PAST }), undefined, 'RECEIVED_EXPIRED_PURCHASE', false],
    ['non-consumable without expiry', verified({ type: 'Non-Consumable', subscriptionStatus: undefined, expiresAt: null }), undefined, 'PURCHASE_SYNCHRONIZED', true],
    ['owned by another customer (keep)', verified(), record({ ownerCustomerId: 999 }), 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', false],
    ['already owned by this customer', verified(), record(), 'PURCHASE_SYNCHRONIZED', true],
  ])('%s → %s', (_name, verification, existing, result, access) => {
    const decision = decideApplePurchase({ ...base, verification, existing });
    expect(decision.result).toBe(result);
    expect(decision.accessGranted).toBe(access);
    expect(decision.offerId).toBe(access ? 'S1' : undefined);
  });

  it('reports OFFER_NOT_MAPPED for a verified, active product without an offer', () => {
    const decision = decideApplePurchase({ ...base, offerId: undefined, verification: verified(), existing: undefined });
    expect(decision.result).toBe('OFFER_NOT_MAPPED');
    expect(decision.purchaseWrite).toBeUndefined();
  });

  it('creates the ownership record at version 1, fenced on absence, and grants the entitlement', () => {
    const decision = decideApplePurchase({ ...base, verification: verified(), existing: undefined });
    expect(decision.purchaseWrite?.expectedVersion).toBe(0);
    expect(decision.purchaseWrite?.next).toMatchObject({ ownerCustomerId: 101, ownershipVersion: 1, entitled: true, purchaseKey: '2000000000000001' });
    expect(decision.entitlementChanges).toEqual([
      { customerId: 101, active: true, offerId: 'S1', expiresAt: FUTURE, state: 'active', reason: 'PURCHASED', previousExpiresAt: null },
    ]);
    expect(decision.ownershipVersion).toBe(1);
  });

  it('writes nothing and keeps the version when nothing changed', () => {
    const decision = decideApplePurchase({ ...base, verification: verified(), existing: record() });
    expect(decision.purchaseWrite).toBeUndefined();
    expect(decision.entitlementChanges).toEqual([]);
    expect(decision.ownershipVersion).toBe(3);
  });

  it('bumps the version by one when a renewal extends the expiry', () => {
    const renewed = '2027-01-23T10:00:00.000Z';
    const decision = decideApplePurchase({ ...base, verification: verified({ expiresAt: renewed }), existing: record() });
    expect(decision.purchaseWrite).toMatchObject({ expectedVersion: 3, next: { ownershipVersion: 4, expiresAt: renewed } });
  });

  it('revokes the owner entitlement when the store reports a refund, whoever registers', () => {
    const decision = decideApplePurchase({ ...base, customerId: 555, verification: verified({ revokedAt: PAST }), existing: record() });
    expect(decision.result).toBe('PURCHASE_REVOKED');
    expect(decision.purchaseWrite?.next).toMatchObject({ ownerCustomerId: 101, entitled: false, state: 'revoked', ownershipVersion: 4 });
    expect(decision.entitlementChanges).toEqual([
      { customerId: 101, active: false, offerId: 'S1', expiresAt: FUTURE, state: 'revoked', reason: 'REFUNDED', previousExpiresAt: FUTURE },
    ]);
  });

  it('leaves the owner untouched under the keep policy', () => {
    const decision = decideApplePurchase({ ...base, customerId: 102, verification: verified(), existing: record() });
    expect(decision.purchaseWrite).toBeUndefined();
    expect(decision.previousCustomerId).toBeUndefined();
  });

  it('moves ownership under the transfer policy and revokes the previous owner', () => {
    const decision = decideApplePurchase({ ...base, customerId: 102, policy: 'transfer', verification: verified(), existing: record() });
    expect(decision.result).toBe('PURCHASE_OWNERSHIP_TRANSFERRED');
    expect(decision.previousCustomerId).toBe(101);
    expect(decision.purchaseWrite).toMatchObject({ expectedVersion: 3, next: { ownerCustomerId: 102, ownershipVersion: 4 } });
    expect(decision.entitlementChanges).toEqual([
      { customerId: 102, active: true, offerId: 'S1', expiresAt: FUTURE, state: 'active', reason: 'TRANSFERRED_IN', previousExpiresAt: null },
      { customerId: 101, active: false, offerId: 'S1', expiresAt: FUTURE, state: 'transferred', reason: 'TRANSFERRED_OUT', previousExpiresAt: FUTURE },
    ]);
  });
});

describe('decideApplePurchase, transfer', () => {
  const transfer = { ...base, kind: 'transfer' as const, customerId: 102 };

  it.each([
    ['store gave up', undefined, record(), 'SYNCHRONIZATION_FAILED'],
    ['Apple does not know the transaction', { outcome: 'not_found' } as AppleVerification, record(), 'TRANSACTION_ID_NOT_FOUND'],
    ['never synchronized here', verified(), undefined, 'PURCHASE_NOT_FOUND'],
    ['expired', verified({ subscriptionStatus: 2, expiresAt: PAST }), record(), 'PURCHASE_NOT_ACTIVE'],
    ['refunded', verified({ revokedAt: PAST }), record(), 'PURCHASE_NOT_ACTIVE'],
    ['target already owns it', verified(), record({ ownerCustomerId: 102 }), 'PURCHASE_OWNERSHIP_UNCHANGED'],
  ])('%s → %s', (_name, verification, existing, result) => {
    const decision = decideApplePurchase({ ...transfer, verification, existing });
    expect(decision.result).toBe(result);
    expect(decision.previousCustomerId).toBeUndefined();
    expect(decision.accessGranted).toBe(result === 'PURCHASE_OWNERSHIP_UNCHANGED');
  });

  it('moves an active purchase: new owner entitled, previous owner revoked, version + 1, fenced on the read version', () => {
    const decision = decideApplePurchase({ ...transfer, verification: verified(), existing: record() });
    expect(decision).toMatchObject({
      result: 'PURCHASE_OWNERSHIP_TRANSFERRED',
      accessGranted: true,
      offerId: 'S1',
      previousCustomerId: 101,
      ownershipVersion: 4,
      purchaseWrite: { expectedVersion: 3, next: { ownerCustomerId: 102, ownershipVersion: 4, entitled: true } },
    });
    expect(decision.entitlementChanges).toEqual([
      { customerId: 102, active: true, offerId: 'S1', expiresAt: FUTURE, state: 'active', reason: 'TRANSFERRED_IN', previousExpiresAt: null },
      { customerId: 101, active: false, offerId: 'S1', expiresAt: FUTURE, state: 'transferred', reason: 'TRANSFERRED_OUT', previousExpiresAt: FUTURE },
    ]);
  });

  it('a refunded purchase does not move but its owner loses the entitlement', () => {
    const decision = decideApplePurchase({ ...transfer, verification: verified({ revokedAt: PAST }), existing: record() });
    expect(decision.purchaseWrite?.next).toMatchObject({ ownerCustomerId: 101, entitled: false, state: 'revoked' });
    expect(decision.entitlementChanges).toEqual([
      { customerId: 101, active: false, offerId: 'S1', expiresAt: FUTURE, state: 'revoked', reason: 'REFUNDED', previousExpiresAt: FUTURE },
    ]);
  });
});

describe('decideApplePurchase, proof of possession (defence in depth)', () => {
  const SUBSCRIPTION = '2000000000000001';
  const proofs: [string, boolean, PossessionProof | undefined][] = [
    ['a publisher token (trusted)', true, { kind: 'trusted' }],
    ['a record from before proofs (no field: trusted)', true, undefined],
    ['a signed transaction of the subscription Apple reports', true, { kind: 'signedTransaction', transactionId: '2000000000000009', originalTransactionId: SUBSCRIPTION }],
    ['a signed transaction of another subscription than Apple reports', false, { kind: 'signedTransaction', transactionId: '2000000000000002', originalTransactionId: '2000000000000777' }],
    ['a customer JWT without proof', false, { kind: 'none' }],
  ];

  it.each(proofs)('register under the `transfer` policy by %s: moves %s', (_name, moves, proof) => {
    const decision = decideApplePurchase({ ...base, customerId: 102, policy: 'transfer', verification: verified(), existing: record(), ...(proof ? { proof } : {}) });
    expect(decision.result).toBe(moves ? 'PURCHASE_OWNERSHIP_TRANSFERRED' : 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER');
    expect(decision.accessGranted).toBe(moves);
    expect(decision.previousCustomerId).toBe(moves ? 101 : undefined);
    expect(decision.purchaseWrite?.next.ownerCustomerId ?? 101).toBe(moves ? 102 : 101);
  });

  it.each(proofs)('transfer by %s: moves %s (else PURCHASE_OWNED_BY_ANOTHER_CUSTOMER, the owner keeps it)', (_name, moves, proof) => {
    const decision = decideApplePurchase({ ...base, kind: 'transfer', customerId: 102, verification: verified(), existing: record(), ...(proof ? { proof } : {}) });
    expect(decision.result).toBe(moves ? 'PURCHASE_OWNERSHIP_TRANSFERRED' : 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER');
    expect(decision.accessGranted).toBe(moves);
    expect(decision.entitlementChanges.map((change) => change.customerId)).toEqual(moves ? [102, 101] : []);
  });

  it('an unproven register still records what the store says (a refund revokes the owner)', () => {
    const decision = decideApplePurchase({ ...base, customerId: 102, policy: 'transfer', verification: verified({ revokedAt: PAST }), existing: record(), proof: { kind: 'none' } });
    expect(decision.result).toBe('PURCHASE_REVOKED');
    expect(decision.purchaseWrite?.next).toMatchObject({ ownerCustomerId: 101, state: 'revoked' });
  });

  it('without proof a customer still registers a purchase nobody owns, or its own', () => {
    expect(decideApplePurchase({ ...base, verification: verified(), existing: undefined, proof: { kind: 'none' } }).result).toBe('PURCHASE_SYNCHRONIZED');
    expect(decideApplePurchase({ ...base, verification: verified(), existing: record(), proof: { kind: 'none' } }).result).toBe('PURCHASE_SYNCHRONIZED');
  });
});

describe('decideApplePurchase, appAccountToken', () => {
  const MINE = 'c379ee08-22b8-59b4-a38e-573738a14d61';
  const OTHER = '6af613b6-569c-5c22-9c37-2ed93f31d3af';

  it('keeps the appAccountToken Apple reports on the purchase record', () => {
    const decision = decideApplePurchase({ ...base, verification: verified({ appAccountToken: MINE }), existing: undefined });
    expect(decision.purchaseWrite?.next.appAccountToken).toBe(MINE);
    expect(decision.facts?.appAccountToken).toBe(MINE);
  });

  it('a record keeps its appAccountToken when a later answer has none', () => {
    const decision = decideApplePurchase({ ...base, verification: verified({ expiresAt: '2027-01-23T10:00:00.000Z' }), existing: record({ appAccountToken: MINE }) });
    expect(decision.purchaseWrite?.next.appAccountToken).toBe(MINE);
  });

  const proven: PossessionProof = { kind: 'signedTransaction', transactionId: '1', originalTransactionId: '2000000000000001' };
  it.each<[string, string, string | undefined, PurchaseRecord | undefined, DecisionInput['policy'], PossessionProof | undefined]>([
    ['first claim, its own token', 'PURCHASE_SYNCHRONIZED', MINE, undefined, 'keep', undefined],
    ['first claim, its own token in upper case', 'PURCHASE_SYNCHRONIZED', MINE.toUpperCase(), undefined, 'keep', undefined],
    ["first claim, another customer's token", 'VERIFICATION_FAILED', OTHER, undefined, 'keep', undefined],
    ['first claim, no token', 'VERIFICATION_FAILED', undefined, undefined, 'keep', undefined],
    ['already its own, whatever the token', 'PURCHASE_SYNCHRONIZED', OTHER, record({ ownerCustomerId: 102 }), 'keep', undefined],
    ['owned by another, `keep` policy (gains nothing)', 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', OTHER, record(), 'keep', undefined],
    ['owned by another, `transfer` policy, proven, its own token', 'PURCHASE_OWNERSHIP_TRANSFERRED', MINE, record(), 'transfer', proven],
    ["owned by another, `transfer` policy, proven, another's token", 'VERIFICATION_FAILED', OTHER, record(), 'transfer', proven],
  ])('required for customer 102: %s → %s', (_name, result, appAccountToken, existing, policy, proof) => {
    const decision = decideApplePurchase({
      ...base,
      customerId: 102,
      policy,
      verification: verified(appAccountToken !== undefined ? { appAccountToken } : {}),
      existing,
      requiredAppAccountToken: MINE,
      ...(proof ? { proof } : {}),
    });
    expect(decision.result).toBe(result);
    if (result === 'VERIFICATION_FAILED') {
      expect(decision.accessGranted).toBe(false);
      expect(decision.purchaseWrite?.next.ownerCustomerId ?? 101).toBe(existing?.ownerCustomerId ?? 101);
      expect(decision.entitlementChanges.filter((change) => change.customerId === 102)).toEqual([]);
    }
  });
});
