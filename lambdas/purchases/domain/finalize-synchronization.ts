import type { PublisherRepository } from '../../tenants';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import type { Clock } from '../../platform/clock';
import {
  ENTITLEMENT_CHANGED_DETAIL_TYPE,
  EVENT_SOURCE,
  SYNC_RESULT_DETAIL_TYPE,
  toDetail,
  type EntitlementChangedDetail,
  type EventDetailType,
  type EventEntry,
  type SyncResultDetail,
} from '../../events/schemas';
import type { SyncKind } from '../../events/vocabulary';
import type { AppleConfig } from '../../stores/apple/config';
import { SynchronizationMissingError } from '../../platform/errors';
import {
  decidePurchase,
  decideRefresh,
  entitlementOf,
  inheritedRecord,
  supersede,
  type EntitlementChange,
  type PurchaseDecision,
  type PurchaseFacts,
  type PurchaseRecord,
  type StoreVerdict,
  type SupersededWrite,
} from './ownership';
import { requiredAppAccountToken, type Synchronization, type SyncRef } from './synchronization';

export interface FinalizeDeps {
  publishers: PublisherRepository;
  syncs: SynchronizationRepository;
  clock: Clock;
  /** The bus the workflow's PublishEvents state sends the entries to. */
  eventBusName: string;
}

export interface FinalizeOutcome {
  synchronizationId: string;
  /** `inappPurchaseSyncResult` of a register or transfer; absent for a store notification's refresh. */
  event?: SyncResultDetail;
  /** Every event to publish, in one PutEvents: the result, then one `inappEntitlementChanged` per customer whose entitlement changed. */
  entries: EventEntry[];
  /** Google: the purchase is entitled and not yet acknowledged; the workflow acknowledges it next. */
  acknowledge: boolean;
  /**
   * Finalized earlier and its event is already out (MarkPublished ran): a duplicate execution, which
   * EXPRESS workflows may run (at-least-once), must not publish it again.
   */
  published?: boolean;
}

/** The PutEvents entries of a finalized synchronization, from what its record keeps. */
export function eventEntries(sync: Synchronization, eventBusName: string): EventEntry[] {
  const entry = (DetailType: EventDetailType, Detail: SyncResultDetail | EntitlementChangedDetail): EventEntry => ({
    Source: EVENT_SOURCE,
    DetailType,
    EventBusName: eventBusName,
    Detail,
  });
  return [
    ...(sync.eventDetail ? [entry(SYNC_RESULT_DETAIL_TYPE, sync.eventDetail as unknown as SyncResultDetail)] : []),
    ...(sync.entitlementEvents ?? []).map((detail) => entry(ENTITLEMENT_CHANGED_DETAIL_TYPE, detail)),
  ];
}

function stored(sync: Synchronization, eventBusName: string): FinalizeOutcome {
  return {
    synchronizationId: sync.synchronizationId,
    ...(sync.eventDetail ? { event: sync.eventDetail as unknown as SyncResultDetail } : {}),
    entries: eventEntries(sync, eventBusName),
    acknowledge: sync.acknowledge === true,
    ...(sync.publishState === 'published' ? { published: true } : {}),
  };
}

/** One `inappEntitlementChanged` per change a customer could notice (contract §11). */
function entitlementEvents(
  sync: Synchronization,
  decision: { entitlementChanges: EntitlementChange[]; purchaseWrite?: { next: PurchaseRecord } },
  changedAt: string,
): EntitlementChangedDetail[] {
  const next = decision.purchaseWrite?.next;
  if (!next) return [];
  return decision.entitlementChanges.flatMap((change) => {
    if (change.reason === null) return [];
    const { publisherId, customerId, purchaseKey: _purchaseKey, updatedAt: _updatedAt, gracePeriodExpiresAt: _grace, ...entitlement } = entitlementOf(next, change, sync.packageName);
    return [
      {
        ...entitlement,
        broadcasterId: publisherId,
        cleengCustomerId: customerId,
        appAccountToken: next.appAccountToken ?? null,
        reason: change.reason,
        active: change.active,
        previousExpiresAt: change.previousExpiresAt,
        synchronizationId: sync.kind === 'refresh' ? null : sync.synchronizationId,
        changedAt,
      },
    ];
  });
}

/** Contract §8: Apple fills transactionId/originalTransactionId, Google purchaseToken/packageName. */
function storeFields(sync: Synchronization, decision: PurchaseDecision) {
  if (sync.store === 'google') {
    return { transactionId: null, originalTransactionId: null, purchaseToken: sync.purchaseToken ?? null, packageName: sync.packageName ?? null };
  }
  return {
    transactionId: sync.transactionId ?? null,
    originalTransactionId: decision.facts?.purchaseKey ?? null,
    purchaseToken: null,
    packageName: null,
  };
}

/** The appAccountToken an Apple register by a customer must carry, as a decision input (none when not required). */
function withRequiredAppAccountToken(sync: Synchronization, apple: AppleConfig | undefined): { requiredAppAccountToken?: string } {
  const required = requiredAppAccountToken(sync, apple);
  return required !== undefined ? { requiredAppAccountToken: required } : {};
}

/**
 * Workflow step (both stores, registers and transfers): decides result and ownership, then writes
 * everything in one transaction and answers the event to publish. Idempotent: a repeated call after
 * success answers the stored event. `verdict` undefined means the workflow gave up
 * (SYNCHRONIZATION_FAILED).
 */
export async function finalizeSynchronization(
  deps: FinalizeDeps,
  input: SyncRef & { verdict?: StoreVerdict },
): Promise<FinalizeOutcome> {
  return (await finalizeAndReport(deps, input)).outcome;
}

/**
 * `finalizeSynchronization`, also telling whether this call wrote the result: false when an earlier
 * call (a workflow retry, a restarted execution) had finalized it and its event is answered again,
 * so the handler counts each synchronization's result once.
 */
export async function finalizeAndReport(
  deps: FinalizeDeps,
  input: SyncRef & { verdict?: StoreVerdict },
): Promise<{ outcome: FinalizeOutcome; written: boolean }> {
  const sync = await deps.syncs.get(input);
  if (!sync) throw new SynchronizationMissingError(`no synchronization ${input.synchronizationId}`);
  if (sync.status === 'finalized' && sync.publishState !== undefined) {
    return { outcome: stored(sync, deps.eventBusName), written: false };
  }
  if (sync.kind === 'refresh') return finalizeRefresh(deps, sync, input.verdict);

  const now = deps.clock.now();
  const { verdict } = input;
  const facts = verdict?.outcome === 'verified' ? verdict.facts : undefined;
  // Google transfers decide on the record this service keeps: it is keyed by the purchase token.
  const purchaseKey = facts?.purchaseKey ?? (verdict?.outcome === 'from_record' ? sync.purchaseToken : undefined);
  const [publisher, ownRecord] = await Promise.all([
    deps.publishers.getPublisher(sync.publisherId),
    purchaseKey !== undefined ? deps.syncs.getPurchase(sync.publisherId, sync.store, purchaseKey) : Promise.resolve(undefined),
  ]);
  const { existing, linked } = await planChangeBase(deps, sync, facts, ownRecord);
  const productId = facts?.productId ?? existing?.productId;
  const offerId = productId !== undefined ? await deps.publishers.getOfferId(sync.publisherId, sync.store, productId) : undefined;
  const { decision, supersededWrite } = withPlanChange(
    decidePurchase({
      kind: sync.kind as SyncKind,
      publisherId: sync.publisherId,
      customerId: sync.customerId,
      policy: publisher?.ownershipPolicy ?? 'keep',
      verdict,
      offerId,
      existing,
      now,
      ...(sync.proof !== undefined ? { proof: sync.proof } : {}),
      ...withRequiredAppAccountToken(sync, publisher?.apple),
    }),
    linked,
    now,
  );
  const finalizedAt = now.toISOString();
  const detail = toDetail(sync.publisherId, {
    synchronizationId: sync.synchronizationId,
    store: sync.store,
    kind: sync.kind,
    status: 'finalized',
    result: decision.result,
    accessGranted: decision.accessGranted,
    ...(decision.offerId !== undefined ? { offerId: decision.offerId } : {}),
    cleengCustomerId: sync.customerId,
    ...(decision.previousCustomerId !== undefined ? { previousCustomerId: decision.previousCustomerId } : {}),
    ...storeFields(sync, decision),
    productId: decision.facts?.productId ?? null,
    appAccountToken: decision.facts?.appAccountToken ?? null,
    expiresAt: decision.facts?.expiresAt ?? null,
    ...(sync.correlationId !== undefined ? { correlationId: sync.correlationId } : {}),
    ownershipVersion: decision.ownershipVersion,
    finalizedAt,
  });
  // Acknowledge only once the entitlement is saved, and only what Google says is unacknowledged. A
  // transfer only moves a purchase (the seed's transfer-only semantics): it never acknowledges.
  const entitledNow = decision.purchaseWrite ? decision.purchaseWrite.next.entitled : (existing?.entitled ?? false);
  const acknowledge = sync.kind !== 'transfer' && facts?.needsAcknowledgement === true && entitledNow;
  const events = [...entitlementEvents(sync, decision, finalizedAt), ...supersededEvents(sync, supersededWrite, finalizedAt)];
  const written = await deps.syncs.finalize({
    sync: {
      ...sync,
      ...(acknowledge ? { acknowledge } : {}),
      status: 'finalized',
      result: decision.result,
      accessGranted: decision.accessGranted,
      ...(decision.offerId !== undefined ? { offerId: decision.offerId } : {}),
      finalizedAt,
      updatedAt: finalizedAt,
      eventDetail: detail as unknown as Record<string, unknown>,
      entitlementEvents: events,
      // Keeps it in the open index until the workflow's MarkPublished state (or the sweeper) publishes.
      publishState: 'claimed',
    },
    ...(decision.purchaseWrite ? { purchaseWrite: decision.purchaseWrite } : {}),
    entitlementChanges: decision.entitlementChanges,
    ...(supersededWrite ? { supersededWrite } : {}),
    // Remember which subscription Apple transactions belong to: later requests lock it too.
    ...(facts?.store === 'apple'
      ? {
          transactionLinks: [...new Set([sync.transactionId ?? facts.purchaseKey, facts.lastTransactionId ?? facts.purchaseKey])].map(
            (transactionId) => ({ transactionId, originalTransactionId: facts.purchaseKey }),
          ),
        }
      : {}),
    // A Google purchase that could not be synchronized may be registered again (see README).
    ...(sync.store === 'google' && sync.kind === 'register' && decision.result === 'SYNCHRONIZATION_FAILED' ? { releaseClaim: true } : {}),
  });
  if (!written) {
    // Another attempt finalized first: answer what it wrote, so the event is the one on record.
    const winner = await deps.syncs.get(input);
    if (!winner || winner.status !== 'finalized') throw new SynchronizationMissingError('finalized without a record');
    return { outcome: stored(winner, deps.eventBusName), written: false };
  }
  const final = { ...sync, eventDetail: detail as unknown as Record<string, unknown>, entitlementEvents: events };
  return { outcome: { synchronizationId: sync.synchronizationId, event: detail, entries: eventEntries(final, deps.eventBusName), acknowledge }, written: true };
}

/**
 * A store notification's refresh: the purchase follows what the store says now, its owner stays.
 * Publishes only `inappEntitlementChanged`, and only when a customer's entitlement changed.
 */
async function finalizeRefresh(
  deps: FinalizeDeps,
  sync: Synchronization,
  verdict: StoreVerdict | undefined,
): Promise<{ outcome: FinalizeOutcome; written: boolean }> {
  const now = deps.clock.now();
  const facts = verdict?.outcome === 'verified' ? verdict.facts : undefined;
  const purchaseKey = facts?.purchaseKey ?? sync.purchaseKey;
  const ownRecord = purchaseKey !== undefined ? await deps.syncs.getPurchase(sync.publisherId, sync.store, purchaseKey) : undefined;
  const { existing, linked } = await planChangeBase(deps, sync, facts, ownRecord);
  const productId = facts?.productId ?? existing?.productId;
  const offerId = productId !== undefined ? await deps.publishers.getOfferId(sync.publisherId, sync.store, productId) : undefined;
  const { decision, supersededWrite } = withPlanChange(decideRefresh({ publisherId: sync.publisherId, verdict, offerId, existing, now }), linked, now);
  const finalizedAt = now.toISOString();
  const events = [...entitlementEvents(sync, decision, finalizedAt), ...supersededEvents(sync, supersededWrite, finalizedAt)];
  // Google refunds a purchase left unacknowledged for three days: whatever made us read it (a
  // notification, the reconciliation), a purchase someone owns and Google says is unacknowledged is
  // acknowledged now. What the acknowledgement step needs is kept on the record.
  const owned = decision.purchaseWrite?.next ?? existing;
  const acknowledge = facts?.needsAcknowledgement === true && owned?.entitled === true;
  const final: Synchronization = {
    ...sync,
    status: 'finalized',
    ...(decision.unchanged ? { refreshOutcome: decision.unchanged } : { refreshOutcome: 'changed' }),
    ...(acknowledge && facts ? { acknowledge, productId: facts.productId, ...(facts.packageName !== undefined ? { packageName: facts.packageName } : {}) } : {}),
    finalizedAt,
    updatedAt: finalizedAt,
    entitlementEvents: events,
    publishState: 'claimed',
  };
  const written = await deps.syncs.finalize({
    sync: final,
    ...(decision.purchaseWrite ? { purchaseWrite: decision.purchaseWrite } : {}),
    entitlementChanges: decision.entitlementChanges,
    ...(supersededWrite ? { supersededWrite } : {}),
  });
  if (!written) {
    const winner = await deps.syncs.get(sync);
    if (!winner || winner.status !== 'finalized') throw new SynchronizationMissingError('finalized without a record');
    return { outcome: stored(winner, deps.eventBusName), written: false };
  }
  return { outcome: { synchronizationId: sync.synchronizationId, entries: eventEntries(final, deps.eventBusName), acknowledge }, written: true };
}

/**
 * A Google purchase that replaces another (`linkedPurchaseToken`) and has no record of its own yet is
 * decided against the replaced purchase's record under the new token: it inherits the owner, and the
 * replaced purchase ends in the same write (see withPlanChange). A record of its own, or an unknown
 * replaced purchase, changes nothing here.
 */
async function planChangeBase(
  deps: Pick<FinalizeDeps, 'syncs'>,
  sync: Synchronization,
  facts: PurchaseFacts | undefined,
  ownRecord: PurchaseRecord | undefined,
): Promise<{ existing: PurchaseRecord | undefined; linked?: PurchaseRecord }> {
  if (ownRecord !== undefined || facts?.store !== 'google' || facts.linkedPurchaseToken === undefined) return { existing: ownRecord };
  const linked = await deps.syncs.getPurchase(sync.publisherId, 'google', facts.linkedPurchaseToken);
  if (linked === undefined) return { existing: undefined };
  return { existing: inheritedRecord(linked, facts.purchaseKey), linked };
}

/**
 * Completes a decision made against an inherited record: the new purchase's record is created (it
 * must not exist yet), its owner hears PRODUCT_CHANGED, and the replaced purchase is ended, each
 * record fenced on the version it was read at.
 */
function withPlanChange<D extends { purchaseWrite?: { next: PurchaseRecord; expectedVersion: number }; entitlementChanges: EntitlementChange[] }>(
  decision: D,
  linked: PurchaseRecord | undefined,
  now: Date,
): { decision: D; supersededWrite?: SupersededWrite } {
  if (linked === undefined || decision.purchaseWrite === undefined) return { decision };
  const { next } = decision.purchaseWrite;
  const changes = decision.entitlementChanges.map((change) =>
    change.customerId === linked.ownerCustomerId && change.active && change.state !== 'transferred' && change.reason !== 'TRANSFERRED_IN'
      ? { ...change, reason: 'PRODUCT_CHANGED' as const, previousExpiresAt: linked.expiresAt }
      : change,
  );
  const supersededWrite = supersede(linked, next.purchaseKey, now);
  return {
    decision: { ...decision, purchaseWrite: { next, expectedVersion: 0 }, entitlementChanges: changes },
    ...(supersededWrite ? { supersededWrite } : {}),
  };
}

/** The `inappEntitlementChanged` events of the replaced purchase of a plan change. */
function supersededEvents(sync: Synchronization, write: SupersededWrite | undefined, changedAt: string): EntitlementChangedDetail[] {
  return write ? entitlementEvents(sync, { entitlementChanges: write.entitlementChanges, purchaseWrite: write }, changedAt) : [];
}
