import type { Synchronization } from '../../lambdas/purchases/domain/synchronization';

/** A Google register as accepted (processing, holding its token lock and claim). */
export function googleRegisterSync(synchronizationId: string): Synchronization {
  return {
    synchronizationId,
    publisherId: 1,
    store: 'google',
    kind: 'register',
    customerId: 101,
    purchaseToken: 'tok.en',
    packageName: 'com.example.iapsync',
    status: 'processing',
    requestHash: 'h',
    lockKeys: ['google#token#abc'],
    claimKey: 'google#claim#abc',
    client: {},
    attempts: 0,
    createdAt: '2026-11-23T10:00:00.000Z',
    updatedAt: '2026-11-23T10:00:00.000Z',
  };
}
