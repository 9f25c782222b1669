import type { Store } from '../../events/vocabulary';
import { isActiveAt, type Environment, type LifecycleState } from './lifecycle';

/** An entitlement's state: the purchase's lifecycle state, or `transferred` once ownership moved to another customer. */
export type EntitlementState = LifecycleState | 'transferred';

/**
 * One customer's entitlement to one purchase (contract §10): Apple per originalTransactionId,
 * Google per purchase token. Stored as its own item in the customer's partition
 * (`keys.entitlement`), written in the same transaction as the purchase record it projects, so a
 * finalized synchronization is already visible here (read your writes).
 */
export interface Entitlement {
  publisherId: number;
  customerId: number;
  store: Store;
  /** Apple: originalTransactionId; Google: purchaseToken. */
  purchaseKey: string;
  offerId: string | null;
  productId: string;
  state: EntitlementState;
  expiresAt: string | null;
  gracePeriodExpiresAt: string | null;
  willRenew: boolean;
  environment: Environment | null;
  /** Apple: the latest transaction of the subscription. */
  transactionId: string | null;
  originalTransactionId: string | null;
  purchaseToken: string | null;
  packageName: string | null;
  ownershipVersion: number;
  updatedAt: string;
  /** Epoch seconds after which DynamoDB may delete an ended entitlement (history kept 90 days). */
  ttl?: number;
}

/**
 * Whether the entitlement gives access at `now`: decided when read, so an entitlement past its
 * expiry (or grace end) reads inactive before any notification or reconciliation has run.
 */
export function entitlementActive(entitlement: Entitlement, now: Date): boolean {
  if (entitlement.state === 'transferred' || entitlement.offerId === null) return false;
  return isActiveAt({ state: entitlement.state, expiresAt: entitlement.expiresAt, gracePeriodExpiresAt: entitlement.gracePeriodExpiresAt }, now);
}
