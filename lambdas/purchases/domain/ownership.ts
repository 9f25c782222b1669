import type { AppleEnvironment } from '../../stores/apple/config';
import type { OwnershipPolicy } from '../../tenants';
import { changeReason, isStale, type Entitlement, type EntitlementReason, type EntitlementState, type LifecycleSnapshot, type LifecycleState } from '../../entitlements';
import { grantsAccess, type Store, type SyncKind, type SyncResult } from '../../events/vocabulary';
import { sameAppAccountToken } from '../../stores/apple/app-account-token';
import type { PossessionProof } from './synchronization';

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
  /** Google: the app the purchase token belongs to (absent on records written before it was kept). */
  packageName?: string;
  /** Google: the purchase token that replaced this one (a plan change ended it). */
  replacedBy?: string;
  /** Apple: the `appAccountToken` the app set on the purchase, when it set one. */
  appAccountToken?: string;
  updatedAt: string;
  /** What the store said last (state, expiry, grace end, auto-renew, when); absent on records written before the lifecycle model. */
  lifecycle?: LifecycleSnapshot;
}

/** One customer's entitlement to the purchase changes with this write. */
export interface EntitlementChange {
  customerId: number;
  active: boolean;
  offerId: string | null;
  expiresAt: string | null;
  /** `transferred` for the previous owner of a transfer; else the purchase's lifecycle state. */
  state: EntitlementState;
  /** The reason published in `inappEntitlementChanged`; null when nothing a customer could notice changed (no event). */
  reason: EntitlementReason | null;
  previousExpiresAt: string | null;
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
  /** Google: the app the purchase token belongs to. */
  packageName?: string;
  /** Google: the purchase this one replaces (upgrade, downgrade, re-signup). */
  linkedPurchaseToken?: string;
  /** Apple: the `appAccountToken` the app set on the purchase, when it set one. */
  appAccountToken?: string;
  /** The store's answer in the lifecycle model (absent for facts re-read from a record). */
  lifecycle?: LifecycleSnapshot;
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
  /** How the caller showed it holds the purchase (contract §5); absent: a record from before the rule, trusted. */
  proof?: PossessionProof;
  /** Apple register by a customer JWT of a publisher that requires it: the appAccountToken the purchase must carry. */
  requiredAppAccountToken?: string;
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
    a.state === b.state &&
    changeReason(snapshotOf(a), snapshotOf(b)) === null
  );
}

/**
 * The record's lifecycle: what the store said last, or, for a record written before the lifecycle
 * model, the same facts in its terms (auto-renew unknown: assumed on while active).
 */
export function snapshotOf(record: PurchaseRecord): LifecycleSnapshot {
  if (record.lifecycle) return record.lifecycle;
  return {
    state: record.state,
    productId: record.productId,
    expiresAt: record.expiresAt,
    gracePeriodExpiresAt: null,
    willRenew: record.state === 'active',
    observedAt: record.updatedAt,
  };
}

/** The lifecycle of facts without a store answer (re-read from a record): the record's own. */
function lifecycleOf(facts: PurchaseFacts, existing: PurchaseRecord | undefined, now: Date): LifecycleSnapshot {
  if (facts.lifecycle) return facts.lifecycle;
  if (existing) return snapshotOf(existing);
  return { state: facts.state, productId: facts.productId, expiresAt: facts.expiresAt, gracePeriodExpiresAt: null, willRenew: false, observedAt: now.toISOString() };
}

/** The record's lifecycle state as an entitlement state (`active` for legacy records with access). */
function entitlementStateOf(record: PurchaseRecord): LifecycleState {
  return snapshotOf(record).state;
}

/**
 * Whether the caller may move the purchase to another customer (contract §5): a publisher token or
 * a Google purchase token, or a device's signed transaction of this very subscription as the store
 * reports it now. The accept checked the signed transaction against what this service knew then;
 * this holds it against the store's own answer. A customer JWT without proof never moves a purchase.
 * A record without `proof` was accepted before the rule and does not say who called: trusted.
 */
function provesPossession(proof: PossessionProof | undefined, facts: PurchaseFacts): boolean {
  switch (proof?.kind) {
    case undefined:
    case 'trusted':
    case 'purchaseToken':
      return true;
    case 'signedTransaction':
      return proof.originalTransactionId === facts.purchaseKey;
    case 'none':
      return false;
  }
}

/** The result before any write: the store's verdict, then the offer, then who owns the purchase and what the caller proved. */
function resultFor(input: DecisionInput, facts: PurchaseFacts, mapped: boolean): { result: SyncResult; moves: boolean } {
  const { kind, existing, customerId, policy } = input;
  const { state } = facts;
  const proven = provesPossession(input.proof, facts);
  if (kind === 'transfer') {
    // Transfer-only semantics: only a purchase this service has synchronized, and that is active, moves.
    if (existing === undefined) return { result: 'PURCHASE_NOT_FOUND', moves: false };
    if (state !== 'active') return { result: 'PURCHASE_NOT_ACTIVE', moves: false };
    if (!mapped) return { result: 'OFFER_NOT_MAPPED', moves: false };
    if (existing.ownerCustomerId === customerId) return { result: 'PURCHASE_OWNERSHIP_UNCHANGED', moves: false };
    // Defence in depth: the accept refuses such a transfer (403 AUTH0004); should one get this far, the owner keeps it.
    if (!proven) return { result: 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', moves: false };
    return { result: 'PURCHASE_OWNERSHIP_TRANSFERRED', moves: true };
  }
  if (state === 'revoked') return { result: 'PURCHASE_REVOKED', moves: false };
  if (state === 'expired') return { result: 'RECEIVED_EXPIRED_PURCHASE', moves: false };
  if (!mapped) return { result: 'OFFER_NOT_MAPPED', moves: false };
  if (existing !== undefined && existing.ownerCustomerId === customerId) return { result: 'PURCHASE_SYNCHRONIZED', moves: false };
  // Another customer owns it: the publisher's policy decides (contract §7), and only a caller who proved possession moves it.
  const moves = existing !== undefined && policy === 'transfer' && proven;
  // A publisher that binds purchases to accounts: a customer gains (first, or by moving it) only a purchase its app bought for it.
  const required = input.requiredAppAccountToken;
  if ((existing === undefined || moves) && required !== undefined && !sameAppAccountToken(facts.appAccountToken, required)) {
    return { result: 'VERIFICATION_FAILED', moves: false };
  }
  if (existing === undefined) return { result: 'PURCHASE_SYNCHRONIZED', moves: false };
  return moves ? { result: 'PURCHASE_OWNERSHIP_TRANSFERRED', moves: true } : { result: 'PURCHASE_OWNED_BY_ANOTHER_CUSTOMER', moves: false };
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
  const { result, moves } = resultFor(input, facts, mappedOffer !== null);
  const previousCustomerId = moves ? existing?.ownerCustomerId : undefined;
  const owner = moves || existing === undefined ? input.customerId : existing.ownerCustomerId;
  const appAccountToken = facts.appAccountToken ?? existing?.appAccountToken;

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
    ...packageNameOf(facts, existing),
    ...(appAccountToken !== undefined ? { appAccountToken } : {}),
    updatedAt: now.toISOString(),
    lifecycle: lifecycleOf(facts, existing, now),
  };
  const changed = existing === undefined || !sameEntitlement(existing, next);
  const entitlementChanges: EntitlementChange[] = [];
  if (changed) {
    const previousExpiresAt = existing?.expiresAt ?? null;
    entitlementChanges.push({
      customerId: owner,
      active: entitled,
      offerId: mappedOffer,
      expiresAt: facts.expiresAt,
      state: entitlementStateOf(next),
      reason: ownerReason(existing, next, previousCustomerId !== undefined),
      previousExpiresAt: previousCustomerId !== undefined ? null : previousExpiresAt,
    });
    if (previousCustomerId !== undefined) {
      entitlementChanges.push({
        customerId: previousCustomerId,
        active: false,
        offerId: existing?.offerId ?? null,
        expiresAt: facts.expiresAt,
        state: 'transferred',
        reason: 'TRANSFERRED_OUT',
        previousExpiresAt,
      });
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

/**
 * Why the owner's entitlement changed: a new owner by transfer or first purchase, else what the
 * store's lifecycle says moved (renewal, refund, ...). Null when only internal fields moved.
 */
function ownerReason(existing: PurchaseRecord | undefined, next: PurchaseRecord, transferred: boolean): EntitlementReason | null {
  if (transferred) return 'TRANSFERRED_IN';
  if (existing === undefined) return next.entitled ? 'PURCHASED' : changeReason(undefined, snapshotOf(next));
  const reason = changeReason(snapshotOf(existing), snapshotOf(next));
  if (reason !== null) return reason;
  // An offer mapped (or unmapped) since: the customer's access changes though the store's answer did not.
  if (existing.entitled !== next.entitled) return next.entitled ? 'PURCHASED' : 'EXPIRED';
  return null;
}

export interface RefreshInput {
  publisherId: number;
  /** What the store says now; undefined when the workflow gave up. */
  verdict: StoreVerdict | undefined;
  /** Offer mapped to the store's product. */
  offerId: string | undefined;
  existing: PurchaseRecord | undefined;
  now: Date;
}

export interface RefreshDecision {
  /** The record to write, fenced on `expectedVersion`; absent when nothing changes. */
  purchaseWrite?: { next: PurchaseRecord; expectedVersion: number };
  entitlementChanges: EntitlementChange[];
  /** Why nothing was written, for the log. */
  unchanged?: 'never_synchronized' | 'store_gave_no_answer' | 'stale' | 'no_change';
}

/**
 * A store notification asked us to re-read a purchase: the store's answer now decides, the owner
 * stays. Never grants a purchase nobody registered (the register will ask the store itself), and a
 * store answer older than the one on record (a delayed or duplicated worker) changes nothing, so
 * notifications in any order cannot move an entitlement backwards.
 */
export function decideRefresh(input: RefreshInput): RefreshDecision {
  const { verdict, existing, now } = input;
  if (existing === undefined) return { entitlementChanges: [], unchanged: 'never_synchronized' };
  if (verdict === undefined || verdict.outcome !== 'verified' || !verdict.facts.lifecycle) {
    return { entitlementChanges: [], unchanged: 'store_gave_no_answer' };
  }
  const { facts } = verdict;
  const lifecycle = stickyRevocation(existing, verdict.facts.lifecycle);
  if (isStale(existing.lifecycle, lifecycle)) return { entitlementChanges: [], unchanged: 'stale' };
  const offerId = input.offerId ?? null;
  const next: PurchaseRecord = {
    ...existing,
    ownershipVersion: existing.ownershipVersion + 1,
    productId: facts.productId,
    offerId,
    state: lifecycle.state === 'revoked' ? 'revoked' : facts.state,
    entitled: lifecycle.state !== 'revoked' && facts.state === 'active' && offerId !== null,
    expiresAt: facts.expiresAt,
    ...(facts.environment ? { environment: facts.environment } : {}),
    ...(facts.lastTransactionId ? { lastTransactionId: facts.lastTransactionId } : {}),
    ...packageNameOf(facts, existing),
    updatedAt: now.toISOString(),
    lifecycle,
  };
  const reason = ownerReason(existing, next, false);
  const sameRecord =
    reason === null &&
    existing.offerId === next.offerId &&
    existing.lastTransactionId === next.lastTransactionId &&
    existing.expiresAt === next.expiresAt &&
    existing.state === next.state &&
    existing.packageName === next.packageName;
  if (sameRecord) return { entitlementChanges: [], unchanged: 'no_change' };
  return {
    purchaseWrite: { next, expectedVersion: existing.ownershipVersion },
    entitlementChanges: [
      {
        customerId: existing.ownerCustomerId,
        active: next.entitled,
        offerId,
        expiresAt: next.expiresAt,
        state: lifecycle.state,
        reason,
        previousExpiresAt: existing.expiresAt,
      },
    ],
  };
}

/**
 * The customer's entitlement that `change` writes (contract §10): one projection of the purchase
 * record, used for the stored entitlement item and for the `inappEntitlementChanged` event alike.
 * A previous owner's (`transferred`) keeps no grace end and no renewal.
 */
export function entitlementOf(next: PurchaseRecord, change: EntitlementChange, packageName: string | undefined): Entitlement {
  const lifecycle = snapshotOf(next);
  const apple = next.store === 'apple';
  const transferred = change.state === 'transferred';
  return {
    publisherId: next.publisherId,
    customerId: change.customerId,
    store: next.store,
    purchaseKey: next.purchaseKey,
    offerId: change.offerId,
    productId: next.productId,
    state: change.state,
    expiresAt: change.expiresAt,
    gracePeriodExpiresAt: transferred ? null : lifecycle.gracePeriodExpiresAt,
    willRenew: transferred ? false : lifecycle.willRenew,
    environment: next.environment ?? lifecycle.environment ?? null,
    transactionId: apple ? (next.lastTransactionId ?? null) : null,
    originalTransactionId: apple ? next.purchaseKey : null,
    purchaseToken: apple ? null : next.purchaseKey,
    packageName: apple ? null : (next.packageName ?? packageName ?? null),
    ownershipVersion: next.ownershipVersion,
    updatedAt: next.updatedAt,
  };
}

/** The package name a Google record keeps: the store's answer, else what the record had. */
function packageNameOf(facts: PurchaseFacts, existing: PurchaseRecord | undefined): { packageName?: string } {
  const packageName = facts.packageName ?? existing?.packageName;
  return packageName !== undefined ? { packageName } : {};
}

/**
 * Google never gives back what it voided, but reads a revoked subscription as plain EXPIRED
 * afterwards: once the record says revoked, a later read without the voiding in sight (a reconcile,
 * a late notification) must not turn it into a lapse or a REFUND_REVERSED. Apple does reverse
 * refunds (REFUND_REVERSED), so its answers are taken as they are.
 */
function stickyRevocation(existing: PurchaseRecord, next: LifecycleSnapshot): LifecycleSnapshot {
  const stored = existing.lifecycle;
  if (existing.store !== 'google' || stored?.state !== 'revoked' || next.state === 'revoked') return next;
  return { ...next, state: 'revoked', willRenew: false, gracePeriodExpiresAt: null, ...(stored.revocation ? { revocation: stored.revocation } : {}) };
}

/** The old purchase of a Google plan change, ended in the same write that starts the new one. */
export interface SupersededWrite {
  next: PurchaseRecord;
  expectedVersion: number;
  entitlementChanges: EntitlementChange[];
}

/**
 * The record a purchase that replaces `linked` (Google `linkedPurchaseToken`: upgrade, downgrade,
 * re-signup) is decided against before it has its own: the old purchase's owner and version under
 * the new token, so the new purchase inherits the owner and the version keeps growing.
 * https://developer.android.com/google/play/billing/subscriptions#handle-upgrade-downgrade
 */
export function inheritedRecord(linked: PurchaseRecord, purchaseKey: string): PurchaseRecord {
  const { replacedBy: _replacedBy, ...rest } = linked;
  const before = snapshotOf(linked);
  // A revocation belongs to the old token: the new purchase is paid for anew, so it starts from a lapse.
  return before.state === 'revoked'
    ? { ...rest, purchaseKey, state: 'expired', entitled: false, lifecycle: { ...before, state: 'expired', willRenew: false } }
    : { ...rest, purchaseKey };
}

/**
 * Ends the replaced purchase of a plan change: no access from now, `replacedBy` the new token, its
 * owner told PRODUCT_CHANGED when it had access. Undefined when it already names that replacement.
 */
export function supersede(linked: PurchaseRecord, replacedBy: string, now: Date): SupersededWrite | undefined {
  if (linked.replacedBy === replacedBy) return undefined;
  const before = snapshotOf(linked);
  const state: LifecycleState = before.state === 'revoked' ? 'revoked' : 'expired';
  // Google ends the replaced purchase when the new one starts: its access ends now, not at its old expiry.
  const endedAt = linked.expiresAt !== null && Date.parse(linked.expiresAt) < now.getTime() ? linked.expiresAt : now.toISOString();
  const lifecycle: LifecycleSnapshot = { ...before, state, expiresAt: endedAt, willRenew: false, gracePeriodExpiresAt: null, observedAt: now.toISOString() };
  const next: PurchaseRecord = {
    ...linked,
    expiresAt: endedAt,
    ownershipVersion: linked.ownershipVersion + 1,
    state: state === 'revoked' ? 'revoked' : 'expired',
    entitled: false,
    replacedBy,
    updatedAt: now.toISOString(),
    lifecycle,
  };
  return {
    next,
    expectedVersion: linked.ownershipVersion,
    entitlementChanges: [
      {
        customerId: linked.ownerCustomerId,
        active: false,
        offerId: linked.offerId,
        expiresAt: endedAt,
        state,
        reason: linked.entitled ? 'PRODUCT_CHANGED' : null,
        previousExpiresAt: linked.expiresAt,
      },
    ],
  };
}
