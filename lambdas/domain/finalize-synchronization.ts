import type { PublisherRepository } from '../ports/publisher-repository';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import type { Clock } from '../ports/clock';
import { toDetail, type SyncResultDetail } from '../schemas/events';
import type { AppleVerification } from './apple-purchase';
import { SynchronizationMissingError } from './errors';
import { decideApplePurchase } from './ownership';

export interface FinalizeDeps {
  publishers: PublisherRepository;
  syncs: SynchronizationRepository;
  clock: Clock;
}

/**
 * Workflow step (registers and transfers alike): decides result and ownership, then writes everything in one transaction and
 * answers the event to publish. Idempotent: a repeated call after success answers the stored event.
 * `verification` undefined means the workflow gave up (SYNCHRONIZATION_FAILED).
 */
export async function finalizeSynchronization(
  deps: FinalizeDeps,
  input: { synchronizationId: string; verification?: AppleVerification },
): Promise<SyncResultDetail> {
  const sync = await deps.syncs.get(input.synchronizationId);
  if (!sync) throw new SynchronizationMissingError(`no synchronization ${input.synchronizationId}`);
  if (sync.status === 'finalized' && sync.eventDetail) return sync.eventDetail as unknown as SyncResultDetail;

  const now = deps.clock.now();
  const { verification } = input;
  const facts = verification?.outcome === 'verified' ? verification.facts : undefined;
  const [publisher, offerId, existing] = await Promise.all([
    deps.publishers.getPublisher(sync.publisherId),
    facts ? deps.publishers.getOfferId(sync.publisherId, 'apple', facts.productId) : Promise.resolve(undefined),
    facts ? deps.syncs.getPurchase(sync.publisherId, 'apple', facts.originalTransactionId) : Promise.resolve(undefined),
  ]);
  const decision = decideApplePurchase({
    kind: sync.kind,
    publisherId: sync.publisherId,
    customerId: sync.customerId,
    policy: publisher?.ownershipPolicy ?? 'keep',
    verification,
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
    transactionId: sync.transactionId ?? null,
    originalTransactionId: decision.facts?.originalTransactionId ?? null,
    purchaseToken: null,
    packageName: null,
    productId: decision.facts?.productId ?? null,
    expiresAt: decision.facts?.expiresAt ?? null,
    ...(sync.correlationId !== undefined ? { correlationId: sync.correlationId } : {}),
    ownershipVersion: decision.ownershipVersion,
    finalizedAt,
  });
  const written = await deps.syncs.finalize({
    sync: {
      ...sync,
      status: 'finalized',
      result: decision.result,
      accessGranted: decision.accessGranted,
      ...(decision.offerId !== undefined ? { offerId: decision.offerId } : {}),
      finalizedAt,
      updatedAt: finalizedAt,
      eventDetail: detail as unknown as Record<string, unknown>,
    },
    ...(decision.purchaseWrite ? { purchaseWrite: decision.purchaseWrite } : {}),
    entitlementChanges: decision.entitlementChanges,
    // Remember which subscription these transactions belong to: later requests lock it too.
    ...(facts
      ? {
          transactionLinks: [...new Set([sync.transactionId ?? facts.transactionId, facts.transactionId])].map((transactionId) => ({
            transactionId,
            originalTransactionId: facts.originalTransactionId,
          })),
        }
      : {}),
  });
  if (written) return detail;
  // Another attempt finalized first: answer what it wrote, so the event is the one on record.
  const winner = await deps.syncs.get(input.synchronizationId);
  if (!winner?.eventDetail) throw new SynchronizationMissingError('finalized without an event detail');
  return winner.eventDetail as unknown as SyncResultDetail;
}
