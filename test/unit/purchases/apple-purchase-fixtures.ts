import type { PurchaseRecord } from '../../../lambdas/purchases/domain/ownership';

/** Subscription 2000000000000001 of publisher 1, owned by customer 101, active and entitled to offer S1. */
export function applePurchaseRecord(overrides: Partial<PurchaseRecord> = {}): PurchaseRecord {
  return {
    publisherId: 1,
    store: 'apple',
    purchaseKey: '2000000000000001',
    ownerCustomerId: 101,
    ownershipVersion: 1,
    productId: 'premium_monthly',
    offerId: 'S1',
    state: 'active',
    entitled: true,
    expiresAt: '2026-12-23T10:00:00.000Z',
    updatedAt: '2026-11-23T10:00:00.000Z',
    ...overrides,
  };
}
