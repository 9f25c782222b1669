/** Results of a finalized synchronization (contract §7), with the access each one grants. */
export const RESULTS = {
  PURCHASE_SYNCHRONIZED: true,
  PURCHASE_OWNERSHIP_TRANSFERRED: true,
  PURCHASE_OWNERSHIP_UNCHANGED: true,
  PURCHASE_OWNED_BY_ANOTHER_CUSTOMER: false,
  RECEIVED_EXPIRED_PURCHASE: false,
  PURCHASE_REVOKED: false,
  TRANSACTION_ID_NOT_FOUND: false,
  PURCHASE_TOKEN_NOT_FOUND: false,
  PURCHASE_NOT_FOUND: false,
  PURCHASE_NOT_ACTIVE: false,
  OFFER_NOT_MAPPED: false,
  VERIFICATION_FAILED: false,
  SYNCHRONIZATION_FAILED: false,
} as const;

export type SyncResult = keyof typeof RESULTS;
export const SYNC_RESULTS = Object.keys(RESULTS) as [SyncResult, ...SyncResult[]];

export const SYNC_STATUSES = ['processing', 'retrying', 'finalized'] as const;
export type SyncStatus = (typeof SYNC_STATUSES)[number];

export const STORES = ['apple', 'google'] as const;
export type Store = (typeof STORES)[number];

export const SYNC_KINDS = ['register', 'transfer'] as const;
export type SyncKind = (typeof SYNC_KINDS)[number];

export function grantsAccess(result: SyncResult): boolean {
  return RESULTS[result];
}

/** Why an entitlement changed (contract §11 `reason`). */
export const ENTITLEMENT_REASONS = [
  'PURCHASED',
  'RENEWED',
  'EXPIRED',
  'REFUNDED',
  'REFUND_REVERSED',
  'REVOKED',
  'GRACE_PERIOD',
  'BILLING_RETRY',
  'ON_HOLD',
  'PAUSED',
  'RECOVERED',
  'PRODUCT_CHANGED',
  'RENEWAL_STATUS_CHANGED',
  'TRANSFERRED_IN',
  'TRANSFERRED_OUT',
] as const;
export type EntitlementReason = (typeof ENTITLEMENT_REASONS)[number];

/** An entitlement's `state` (contract §10): the purchase's lifecycle state, or `transferred`. */
export const ENTITLEMENT_STATES = ['active', 'grace_period', 'billing_retry', 'on_hold', 'paused', 'expired', 'revoked', 'transferred'] as const;
export type EntitlementStateName = (typeof ENTITLEMENT_STATES)[number];
