import type { PendingAcknowledgementInput } from '../ports/pending-acknowledgements';
import type { Synchronization } from './synchronization';

/**
 * Google refunds a purchase not acknowledged within three days of the purchase
 * (https://developer.android.com/google/play/billing/integrate#process).
 */
export const GOOGLE_ACKNOWLEDGEMENT_WINDOW_SECONDS = 3 * 86_400;

/**
 * The pending acknowledgement of a Google synchronization whose finalize asked for one
 * (`acknowledge`), or undefined when there is nothing to acknowledge. Google does not tell this
 * service when the purchase was made, so the window is counted from the synchronization's creation:
 * the purchase came first, so the deadline errs late (an attempt Google refuses then ends it), never early.
 */
export function pendingAcknowledgementOf(sync: Synchronization, lastError?: string): PendingAcknowledgementInput | undefined {
  if (sync.store !== 'google' || sync.acknowledge !== true || sync.purchaseToken === undefined) return undefined;
  // The product Google answered (a refresh may read another one than the register named).
  const productId = typeof sync.eventDetail?.productId === 'string' ? sync.eventDetail.productId : sync.productId;
  if (productId === undefined) return undefined;
  return {
    publisherId: sync.publisherId,
    purchaseToken: sync.purchaseToken,
    productId,
    ...(sync.packageName !== undefined ? { packageName: sync.packageName } : {}),
    synchronizationId: sync.synchronizationId,
    acknowledgeBy: new Date(Date.parse(sync.createdAt) + GOOGLE_ACKNOWLEDGEMENT_WINDOW_SECONDS * 1000),
    ...(lastError !== undefined ? { lastError } : {}),
  };
}
