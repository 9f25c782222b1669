import type { Clock } from '../../platform/clock';
import type { GooglePlayVerifier } from '../../stores/google/ports';
import type { PublisherRepository } from '../../tenants';
import type { AppleVerifier } from '../../stores/apple/ports';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import { ConfigurationError, SynchronizationMissingError } from '../../platform/errors';
import { appleVerdict, googleVerdict } from './store-verdicts';
import type { StoreVerdict } from './ownership';

export interface VerifyDeps {
  publishers: PublisherRepository;
  syncs: SynchronizationRepository;
  apple: AppleVerifier;
  google: GooglePlayVerifier;
  clock: Clock;
}

/**
 * Workflow step: asks the store about the synchronization's purchase with the publisher's
 * configuration and answers the verdict. Google transfers do not call Google (transfer-only
 * semantics): the ownership record decides. Retryable store failures are thrown.
 */
export async function verifyPurchase(deps: VerifyDeps, synchronizationId: string): Promise<StoreVerdict | undefined> {
  const sync = await deps.syncs.get(synchronizationId);
  if (!sync) throw new SynchronizationMissingError(`no synchronization ${synchronizationId}`);
  const publisher = await deps.publishers.getPublisher(sync.publisherId);
  if (sync.store === 'apple') {
    if (!publisher?.apple || sync.transactionId === undefined) throw new ConfigurationError('publisher has no Apple configuration');
    // A refresh passes its notification's type: only the notification tells Apple's Family Sharing REVOKE from a refund.
    return appleVerdict(await deps.apple.verify(publisher.apple, sync.transactionId), deps.clock.now(), sync.notice?.type);
  }
  if (sync.kind === 'transfer') return { outcome: 'from_record' };
  const profile = publisher?.google?.profiles.find((candidate) => candidate.packageName === sync.packageName);
  if (!profile || sync.purchaseToken === undefined) throw new ConfigurationError('no Google Play profile for this package');
  const verification = await deps.google.verify(profile, sync.purchaseToken, sync.productId);
  return googleVerdict(verification, deps.clock.now());
}

/** Workflow step (Google): acknowledges a purchase whose entitlement is saved. */
export async function acknowledgePurchase(
  deps: Pick<VerifyDeps, 'publishers' | 'syncs' | 'google'>,
  synchronizationId: string,
): Promise<void> {
  const sync = await deps.syncs.get(synchronizationId);
  if (!sync) throw new SynchronizationMissingError(`no synchronization ${synchronizationId}`);
  const publisher = await deps.publishers.getPublisher(sync.publisherId);
  const profile = publisher?.google?.profiles.find((candidate) => candidate.packageName === sync.packageName);
  const productId = typeof sync.eventDetail?.productId === 'string' ? sync.eventDetail.productId : sync.productId;
  if (!profile || sync.purchaseToken === undefined || productId === undefined) {
    throw new ConfigurationError('nothing to acknowledge for this synchronization');
  }
  await deps.google.acknowledge(profile, sync.purchaseToken, productId);
}
