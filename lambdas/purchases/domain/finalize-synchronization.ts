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
import { SynchronizationMissingError } from '../../platform/errors';
import { decidePurchase, decideRefresh, entitlementOf, type EntitlementChange, type PurchaseDecision, type PurchaseRecord, type StoreVerdict } from './ownership';
import type { Synchronization } from './synchronization';

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

/**
 * Workflow step (both stores, registers and transfers): decides result and ownership, then writes
 * everything in one transaction and answers the event to publish. Idempotent: a repeated call after
 * success answers the stored event. `verdict` undefined means the workflow gave up
 * (SYNCHRONIZATION_FAILED).
 */
export async function finalizeSynchronization(
  deps: FinalizeDeps,
  input: { synchronizationId: string; verdict?: StoreVerdict },
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
  input: { synchronizationId: string; verdict?: StoreVerdict },
): Promise<{ outcome: FinalizeOutcome; written: boolean }> {
  const sync = await deps.syncs.get(input.synchronizationId);
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
  const [publisher, existing] = await Promise.all([
    deps.publishers.getPublisher(sync.publisherId),
    purchaseKey !== undefined ? deps.syncs.getPurchase(sync.publisherId, sync.store, purchaseKey) : Promise.resolve(undefined),
  ]);
  const productId = facts?.productId ?? existing?.productId;
  const offerId = productId !== undefined ? await deps.publishers.getOfferId(sync.publisherId, sync.store, productId) : undefined;
  const decision = decidePurchase({
    kind: sync.kind as SyncKind,
    publisherId: sync.publisherId,
    customerId: sync.customerId,
    policy: publisher?.ownershipPolicy ?? 'keep',
    verdict,
    offerId,
    existing,
    now,
  });
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
    expiresAt: decision.facts?.expiresAt ?? null,
    ...(sync.correlationId !== undefined ? { correlationId: sync.correlationId } : {}),
    ownershipVersion: decision.ownershipVersion,
    finalizedAt,
  });
  // Acknowledge only once the entitlement is saved, and only what Google says is unacknowledged.
  const entitledNow = decision.purchaseWrite ? decision.purchaseWrite.next.entitled : (existing?.entitled ?? false);
  const acknowledge = facts?.needsAcknowledgement === true && entitledNow;
  const events = entitlementEvents(sync, decision, finalizedAt);
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
    const winner = await deps.syncs.get(input.synchronizationId);
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
  const purchaseKey = verdict?.outcome === 'verified' ? verdict.facts.purchaseKey : sync.purchaseKey;
  const existing = purchaseKey !== undefined ? await deps.syncs.getPurchase(sync.publisherId, sync.store, purchaseKey) : undefined;
  const productId = verdict?.outcome === 'verified' ? verdict.facts.productId : existing?.productId;
  const offerId = productId !== undefined ? await deps.publishers.getOfferId(sync.publisherId, sync.store, productId) : undefined;
  const decision = decideRefresh({ publisherId: sync.publisherId, verdict, offerId, existing, now });
  const finalizedAt = now.toISOString();
  const events = entitlementEvents(sync, decision, finalizedAt);
  const final: Synchronization = {
    ...sync,
    status: 'finalized',
    ...(decision.unchanged ? { refreshOutcome: decision.unchanged } : { refreshOutcome: 'changed' }),
    finalizedAt,
    updatedAt: finalizedAt,
    entitlementEvents: events,
    publishState: 'claimed',
  };
  const written = await deps.syncs.finalize({
    sync: final,
    ...(decision.purchaseWrite ? { purchaseWrite: decision.purchaseWrite } : {}),
    entitlementChanges: decision.entitlementChanges,
  });
  if (!written) {
    const winner = await deps.syncs.get(sync.synchronizationId);
    if (!winner || winner.status !== 'finalized') throw new SynchronizationMissingError('finalized without a record');
    return { outcome: stored(winner, deps.eventBusName), written: false };
  }
  return { outcome: { synchronizationId: sync.synchronizationId, entries: eventEntries(final, deps.eventBusName), acknowledge: false }, written: true };
}
