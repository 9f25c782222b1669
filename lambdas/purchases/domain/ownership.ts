import type { AppleEnvironment } from '../../stores/apple/config';
import type { OwnershipPolicy } from '../../tenants';
import { grantsAccess, type Store, type SyncKind, type SyncResult } from '../../events/vocabulary';

/** What the store says of a purchase, as the ownership decision sees it. */
export type PurchaseState = 'active' | 'expired' | 'revoked';

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

export interface PurchaseDecision {
  result: SyncResult;
  accessGranted: boolean;
  offerId?: string;
  previousCustomerId?: number;
  /** The record to write, fenced on `expectedVersion` (0 = must not exist yet); absent when nothing changes. */
  purchaseWrite?: { next: PurchaseRecord; expectedVersion: number };
  entitlementChanges: EntitlementChange[];
  /** Version the event reports: the written one, or the unchanged current one (0 when no record exists). */
  ownershipVersion: number;
  /** What the store said, for the event: the purchase key, product and expiry. */
  facts?: PurchaseFacts;
}

/** A verified purchase, whatever the store: the facts the ownership decision needs. */
export interface PurchaseFacts {
  store: Store;
  /** Apple: originalTransactionId; Google: purchaseToken. */
  purchaseKey: string;
  productId: string;
  state: PurchaseState;
  expiresAt: string | null;
  environment?: AppleEnvironment;
  /** Apple: the latest transaction of the subscription. */
  lastTransactionId?: string;
  /** Google: not yet acknowledged (Google refunds it after three days unless we acknowledge). */
  needsAcknowledgement?: boolean;
}

/** The store's verdict, normalized; `undefined` means the workflow gave up (SYNCHRONIZATION_FAILED). */
export type StoreVerdict =
  | { outcome: 'verified'; facts: PurchaseFacts }
  | { outcome: 'not_found'; result: 'TRANSACTION_ID_NOT_FOUND' | 'PURCHASE_TOKEN_NOT_FOUND' }
  | { outcome: 'invalid' }
  /** Google transfers do not ask Google: the record this service keeps is the truth. */
  | { outcome: 'from_record' };

export interface DecisionInput {
  /** Register: the buyer asks for access. Transfer: the purchase moves to `customerId`. */
  kind: SyncKind;
  publisherId: number;
  customerId: number;
  policy: OwnershipPolicy;
  verdict: StoreVerdict | undefined;
  /** Offer mapped to the verified product, looked up by the caller. */
  offerId: string | undefined;
  existing: PurchaseRecord | undefined;
  now: Date;
}

const failed = (result: SyncResult, existing: PurchaseRecord | undefined): PurchaseDecision => ({
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

/** The result before any write: the store's verdict, then the offer, then who owns the purchase. */
function resultFor(
  input: DecisionInput,
  state: PurchaseState,
  mapped: boolean,
): { result: SyncResult; moves: boolean } {
  const { kind, existing, customerId, policy } = input;
  if (kind === 'transfer') {
    // Transfer-only semantics: only a purchase this service has synchronized, and that is active, moves.
    if (existing === undefined) return { result: 'PURCHASE_NOT_FOUND', moves: false };
    if (state !== 'active') return { result: 'PURCHASE_NOT_ACTIVE', moves: false };
    if (!mapped) return { result: 'OFFER_NOT_MAPPED', moves: false };
    if (existing.ownerCustomerId === customerId) return { result: 'PURCHASE_OWNERSHIP_UNCHANGED', moves: false };
    return { result: 'PURCHASE_OWNERSHIP_TRANSFERRED', moves: true };
  }
  if (state === 'revoked') return { result: 'PURCHASE_REVOKED', moves: false };
  if (state === 'expired') return { result: 'RECEIVED_EXPIRED_PURCHASE', moves: false };
  if (!mapped) return { result: 'OFFER_NOT_MAPPED', moves: false };
  if (existing === undefined || existing.ownerCustomerId === customerId) return { result: 'PURCHASE_SYNCHRONIZED', moves: false };
  // Another customer owns it: the publisher's policy decides (contract §7).
  if (policy === 'transfer') return { result: 'PURCHASE_OWNERSHIP_TRANSFERRED', moves: true };
  return { result: 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', moves: false };
}

/** The record's own facts, its state re-read against the clock (an expiry may have passed since). */
function factsFromRecord(record: PurchaseRecord, now: Date): PurchaseFacts {
  const lapsed = record.expiresAt !== null && Date.parse(record.expiresAt) <= now.getTime();
  return {
    store: record.store,
    purchaseKey: record.purchaseKey,
    productId: record.productId,
    state: record.state === 'active' && lapsed ? 'expired' : record.state,
    expiresAt: record.expiresAt,
    ...(record.environment ? { environment: record.environment } : {}),
    ...(record.lastTransactionId ? { lastTransactionId: record.lastTransactionId } : {}),
  };
}

/**
 * Decides the result of a register or transfer and the writes it implies. Pure: the caller reads
 * the current record, the offer mapping and the store's answer, and writes what this returns in one
 * transaction fenced on the version it read. Whatever the result, the record follows the store's
 * truth: a refund or expiry revokes its owner's entitlement whoever asked.
 */
export function decidePurchase(input: DecisionInput): PurchaseDecision {
  const { verdict, existing, now } = input;
  if (verdict === undefined) return failed('SYNCHRONIZATION_FAILED', existing);
  if (verdict.outcome === 'not_found') return failed(verdict.result, existing);
  if (verdict.outcome === 'invalid') return failed('VERIFICATION_FAILED', existing);
  if (verdict.outcome === 'from_record' && existing === undefined) return failed('PURCHASE_NOT_FOUND', existing);
  const facts = verdict.outcome === 'verified' ? verdict.facts : factsFromRecord(existing as PurchaseRecord, now);
  const { state } = facts;
  const mappedOffer = input.offerId ?? null;
  const { result, moves } = resultFor(input, state, mappedOffer !== null);
  const previousCustomerId = moves ? existing?.ownerCustomerId : undefined;
  const owner = moves || existing === undefined ? input.customerId : existing.ownerCustomerId;

  // Nothing to own: an inactive or unmapped purchase seen for the first time creates no record.
  if (existing === undefined && result !== 'PURCHASE_SYNCHRONIZED') {
    return { ...failed(result, existing), facts };
  }

  const entitled = state === 'active' && mappedOffer !== null;
  const next: PurchaseRecord = {
    publisherId: input.publisherId,
    store: facts.store,
    purchaseKey: facts.purchaseKey,
    ownerCustomerId: owner,
    ownershipVersion: (existing?.ownershipVersion ?? 0) + 1,
    productId: facts.productId,
    offerId: mappedOffer,
    state,
    entitled,
    expiresAt: facts.expiresAt,
    ...(facts.environment ? { environment: facts.environment } : {}),
    ...(facts.lastTransactionId ? { lastTransactionId: facts.lastTransactionId } : {}),
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
    facts,
  };
}
