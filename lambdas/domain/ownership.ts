import { applePurchaseState, type AppleVerification, type PurchaseState } from './apple-purchase';
import type { AppleEnvironment, OwnershipPolicy } from './publisher';
import { grantsAccess, type Store, type SyncResult } from './results';

/**
 * The ownership record: one per purchase (Apple: per originalTransactionId, so renewals stay with
 * their owner). `ownershipVersion` grows by one at every change of owner or entitlement and fences
 * every write, so a delayed or duplicated workflow step cannot overwrite newer state.
 */
export interface PurchaseRecord {
  publisherId: number;
  store: Store;
  /** Apple: originalTransactionId; Google: purchaseToken. */
  purchaseKey: string;
  ownerCustomerId: number;
  ownershipVersion: number;
  productId: string;
  offerId: string | null;
  state: PurchaseState;
  entitled: boolean;
  expiresAt: string | null;
  environment?: AppleEnvironment;
  lastTransactionId?: string;
  updatedAt: string;
}

export interface EntitlementChange {
  customerId: number;
  active: boolean;
  offerId: string | null;
  expiresAt: string | null;
}

export interface RegisterDecision {
  result: SyncResult;
  accessGranted: boolean;
  offerId?: string;
  previousCustomerId?: number;
  /** The record to write, fenced on `expectedVersion` (0 = must not exist yet); absent when nothing changes. */
  purchaseWrite?: { next: PurchaseRecord; expectedVersion: number };
  entitlementChanges: EntitlementChange[];
  /** Version the event reports: the written one, or the unchanged current one (0 when no record exists). */
  ownershipVersion: number;
  facts?: { transactionId: string; originalTransactionId: string; productId: string; expiresAt: string | null };
}

export interface RegisterInput {
  publisherId: number;
  customerId: number;
  policy: OwnershipPolicy;
  verification: AppleVerification | undefined;
  /** Offer mapped to the verified product, looked up by the caller. */
  offerId: string | undefined;
  existing: PurchaseRecord | undefined;
  now: Date;
}

const failed = (result: SyncResult, existing: PurchaseRecord | undefined): RegisterDecision => ({
  result,
  accessGranted: false,
  entitlementChanges: [],
  ownershipVersion: existing?.ownershipVersion ?? 0,
});

function sameEntitlement(a: PurchaseRecord, b: PurchaseRecord): boolean {
  return (
    a.ownerCustomerId === b.ownerCustomerId &&
    a.entitled === b.entitled &&
    a.offerId === b.offerId &&
    a.expiresAt === b.expiresAt &&
    a.state === b.state
  );
}

/**
 * Decides the result of an Apple register and the writes it implies. Pure: the caller reads the
 * current record, the offer mapping and the store's answer, and writes what this returns in one
 * transaction fenced on the version it read.
 */
export function decideAppleRegister(input: RegisterInput): RegisterDecision {
  const { verification, existing, now } = input;
  if (verification === undefined) return failed('SYNCHRONIZATION_FAILED', existing);
  if (verification.outcome === 'not_found') return failed('TRANSACTION_ID_NOT_FOUND', existing);
  if (verification.outcome === 'invalid') return failed('VERIFICATION_FAILED', existing);

  const { facts } = verification;
  const state = applePurchaseState(facts, now);
  const mappedOffer = input.offerId ?? null;
  const factSummary = {
    transactionId: facts.transactionId,
    originalTransactionId: facts.originalTransactionId,
    productId: facts.productId,
    expiresAt: facts.expiresAt,
  };

  let owner = existing?.ownerCustomerId ?? input.customerId;
  let previousCustomerId: number | undefined;
  let result: SyncResult;
  if (state === 'revoked') result = 'PURCHASE_REVOKED';
  else if (state === 'expired') result = 'RECEIVED_EXPIRED_PURCHASE';
  else if (mappedOffer === null) result = 'OFFER_NOT_MAPPED';
  else if (owner === input.customerId) result = 'PURCHASE_SYNCHRONIZED';
  else if (input.policy === 'transfer') {
    previousCustomerId = owner;
    owner = input.customerId;
    result = 'PURCHASE_OWNERSHIP_TRANSFERRED';
  } else result = 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER';

  // Nothing to own: an inactive or unmapped purchase seen for the first time creates no record.
  if (existing === undefined && result !== 'PURCHASE_SYNCHRONIZED') {
    return { ...failed(result, existing), facts: factSummary };
  }

  const entitled = state === 'active' && mappedOffer !== null;
  const next: PurchaseRecord = {
    publisherId: input.publisherId,
    store: 'apple',
    purchaseKey: facts.originalTransactionId,
    ownerCustomerId: owner,
    ownershipVersion: (existing?.ownershipVersion ?? 0) + 1,
    productId: facts.productId,
    offerId: mappedOffer,
    state,
    entitled,
    expiresAt: facts.expiresAt,
    environment: facts.environment,
    lastTransactionId: facts.transactionId,
    updatedAt: now.toISOString(),
  };
  const changed = existing === undefined || !sameEntitlement(existing, next);
  const entitlementChanges: EntitlementChange[] = [];
  if (changed) {
    entitlementChanges.push({ customerId: owner, active: entitled, offerId: mappedOffer, expiresAt: facts.expiresAt });
    if (previousCustomerId !== undefined) {
      entitlementChanges.push({ customerId: previousCustomerId, active: false, offerId: existing?.offerId ?? null, expiresAt: null });
    }
  }
  const accessGranted = grantsAccess(result);
  return {
    result,
    accessGranted,
    ...(accessGranted && mappedOffer !== null ? { offerId: mappedOffer } : {}),
    ...(previousCustomerId !== undefined ? { previousCustomerId } : {}),
    ...(changed ? { purchaseWrite: { next, expectedVersion: existing?.ownershipVersion ?? 0 } } : {}),
    entitlementChanges,
    ownershipVersion: changed ? next.ownershipVersion : (existing?.ownershipVersion ?? 0),
    facts: factSummary,
  };
}
