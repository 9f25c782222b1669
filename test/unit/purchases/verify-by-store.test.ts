import { ConfigurationError, SynchronizationMissingError } from '../../../lambdas/platform/errors';
import { createLogger } from '../../../lambdas/platform/logger';
import { verifyApplePurchase, verifyGooglePurchase } from '../../../lambdas/purchases/domain/verify-purchase';
import { makeVerifyApplePurchaseHandler } from '../../../lambdas/purchases/handlers/verify-apple-purchase';
import { makeVerifyGooglePurchaseHandler } from '../../../lambdas/purchases/handlers/verify-google-purchase';
import type { Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import type { GooglePlayVerifier } from '../../../lambdas/stores/google/ports';
import type { AppleVerifier } from '../../../lambdas/stores/apple/ports';
import type { Publisher } from '../../../lambdas/tenants';
import { FakePublisherRepository, FakeSynchronizationRepository, FixedClock } from '../../support/fakes';
import { googleRegisterSync } from '../../support/synchronizations';
import { appleConfig } from '../lifecycle/apple-notification-fixtures';

// One verify function per store (VerifyApplePurchase, VerifyGooglePurchase): each asks its own store
// only, and refuses a synchronization of the other store instead of guessing.

const T0 = Date.parse('2026-12-07T10:00:00.000Z');
const PUBLISHER: Publisher = {
  publisherId: 1,
  name: 'Demo',
  tokenHash: '0'.repeat(64),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  google: { profiles: [{ packageName: 'com.example.iapsync', serviceAccountRef: 'file:sa.json' }] },
  apple: appleConfig({ environments: ['Production', 'Sandbox'] }),
  ownershipPolicy: 'keep',
};
const GOOGLE_SYNC = googleRegisterSync('11111111-2222-4333-8444-555555555555');
const APPLE_SYNC: Synchronization = {
  ...googleRegisterSync('22222222-2222-4333-8444-555555555555'),
  store: 'apple',
  transactionId: '2000000000000001',
  purchaseToken: undefined,
  packageName: undefined,
};

function stores() {
  const asked: string[] = [];
  const apple: AppleVerifier = {
    verify: async (_config, transactionId) => {
      asked.push(`apple ${transactionId}`);
      return { outcome: 'not_found' };
    },
  };
  const google: GooglePlayVerifier = {
    verify: async (_profile, token) => {
      asked.push(`google ${token}`);
      return { outcome: 'not_found' };
    },
    acknowledge: async () => undefined,
    listVoided: async () => ({ purchases: [] }),
  };
  const deps = { publishers: new FakePublisherRepository([PUBLISHER]), syncs: new FakeSynchronizationRepository([APPLE_SYNC, GOOGLE_SYNC]), clock: new FixedClock(T0) };
  return { asked, apple, google, deps };
}

describe('verification by store', () => {
  it('the Apple verification asks Apple about the record\'s transaction', async () => {
    const { asked, apple, deps } = stores();
    await expect(verifyApplePurchase({ ...deps, apple }, APPLE_SYNC)).resolves.toEqual({ outcome: 'not_found', result: 'TRANSACTION_ID_NOT_FOUND' });
    expect(asked).toEqual(['apple 2000000000000001']);
  });

  it('the Google verification asks Google about the record\'s purchase token', async () => {
    const { asked, google, deps } = stores();
    await expect(verifyGooglePurchase({ ...deps, google }, GOOGLE_SYNC)).resolves.toEqual({ outcome: 'not_found', result: 'PURCHASE_TOKEN_NOT_FOUND' });
    expect(asked).toEqual(['google tok.en']);
  });

  it.each([
    ['the Apple verification', 'a Google synchronization', GOOGLE_SYNC, /is for store google, not apple/],
    ['the Google verification', 'an Apple synchronization', APPLE_SYNC, /is for store apple, not google/],
  ])('%s refuses %s (permanent: the workflow finalizes it failed) without asking any store', async (_verification, _record, sync, message) => {
    const { asked, apple, google, deps } = stores();
    const attempt = sync.store === 'google' ? verifyApplePurchase({ ...deps, apple }, sync) : verifyGooglePurchase({ ...deps, google }, sync);
    await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
    await expect(attempt).rejects.toThrow(message);
    expect(asked).toEqual([]);
  });

  it('a synchronization that does not exist is SynchronizationMissingError for either store', async () => {
    const { apple, google, deps } = stores();
    const ref = { synchronizationId: '33333333-2222-4333-8444-555555555555', publisherId: 1 };
    await expect(verifyApplePurchase({ ...deps, apple }, ref)).rejects.toBeInstanceOf(SynchronizationMissingError);
    await expect(verifyGooglePurchase({ ...deps, google }, ref)).rejects.toBeInstanceOf(SynchronizationMissingError);
  });

  it.each([
    ['VerifyApplePurchase', APPLE_SYNC, 'apple 2000000000000001'],
    ['VerifyGooglePurchase', GOOGLE_SYNC, 'google tok.en'],
  ])('the %s handler parses the Task input and answers its store\'s verdict', async (id, sync, question) => {
    const { asked, apple, google, deps } = stores();
    const common = { ...deps, logger: createLogger('t', 'silent'), timeoutMs: 1_000 };
    const handler = id === 'VerifyApplePurchase' ? makeVerifyApplePurchaseHandler({ ...common, apple }) : makeVerifyGooglePurchaseHandler({ ...common, google });
    await expect(handler({ synchronizationId: sync.synchronizationId, publisherId: 1 })).resolves.toMatchObject({ outcome: 'not_found' });
    expect(asked).toEqual([question]);
  });
});
