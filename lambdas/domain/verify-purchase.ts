import type { PublisherRepository } from '../ports/publisher-repository';
import type { AppleVerifier } from '../ports/store-verifier';
import type { AppleVerification } from './apple-purchase';
import { ConfigurationError } from './errors';

/** Workflow step: asks Apple about the transaction with the publisher's Apple configuration. */
export async function verifyApplePurchase(
  deps: { publishers: PublisherRepository; apple: AppleVerifier },
  input: { publisherId: number; transactionId: string },
): Promise<AppleVerification> {
  const publisher = await deps.publishers.getPublisher(input.publisherId);
  if (!publisher?.apple) throw new ConfigurationError('publisher has no Apple configuration');
  return deps.apple.verify(publisher.apple, input.transactionId);
}
