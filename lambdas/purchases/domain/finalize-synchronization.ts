import type { PublisherRepository } from '../../tenants';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import type { Clock } from '../../platform/clock';
import { toDetail, type SyncResultDetail } from '../../events/schemas';
import { SynchronizationMissingError } from '../../platform/errors';
import { decidePurchase, type PurchaseDecision, type StoreVerdict } from './ownership';
import type { Synchronization } from './synchronization';

export interface FinalizeDeps {
  publishers: PublisherRepository;
  syncs: SynchronizationRepository;
  clock: Clock;
}

export interface FinalizeOutcome {
  event: SyncResultDetail;
  /** Google: the purchase is entitled and not yet acknowledged; the workflow acknowledges it next. */
  acknowledge: boolean;
  /**
   * Finalized earlier and its event is already out (MarkPublished ran): a duplicate execution, which
   * EXPRESS workflows may run (at-least-once), must not publish it again.
   */
  published?: boolean;
}

function stored(sync: Synchronization): FinalizeOutcome {
  return {
    event: sync.eventDetail as unknown as SyncResultDetail,
    acknowledge: sync.acknowledge === true,
    ...(sync.publishState === 'published' ? { published: true } : {}),
  };
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
  if (sync.status === 'finalized' && sync.eventDetail) {
    return { outcome: stored(sync), written: false };
  }

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
    kind: sync.kind,
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
    if (!winner?.eventDetail) throw new SynchronizationMissingError('finalized without an event detail');
    return { outcome: stored(winner), written: false };
  }
  return { outcome: { event: detail, acknowledge }, written: true };
}
