import { finalizeSynchronization } from '../../../lambdas/purchases/domain/finalize-synchronization';
import type { StoreVerdict } from '../../../lambdas/purchases/domain/ownership';
import type { Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import { FakePublisherRepository, FakeSynchronizationRepository, FixedClock } from '../../support/fakes';
import { googleRegisterSync } from '../../support/synchronizations';

const ID = '11111111-2222-4333-8444-555555555555';

function world(sync: Synchronization) {
  const syncs = new FakeSynchronizationRepository([sync]);
  const publishers = new FakePublisherRepository().addOffer(sync.publisherId, sync.store, 'premium_monthly', 'S1');
  return { deps: { syncs, publishers, clock: new FixedClock('2026-11-23T10:00:00Z'), eventBusName: 'bus' }, writes: syncs.finalized };
}

const googleSync = googleRegisterSync(ID);

const verified = (needsAcknowledgement: boolean, state: 'active' | 'expired' = 'active'): StoreVerdict => ({
  outcome: 'verified',
  facts: { store: 'google', purchaseKey: 'tok.en', productId: 'premium_monthly', state, expiresAt: '2026-12-23T10:00:00.000Z', needsAcknowledgement },
});

describe('finalizeSynchronization (Google)', () => {
  it.each([
    ['entitled and unacknowledged', verified(true), true],
    ['already acknowledged', verified(false), false],
    ['not entitled (expired)', verified(true, 'expired'), false],
  ])('%s → acknowledge %s', async (_name, verdict, acknowledge) => {
    const { deps } = world(googleSync);
    expect((await finalizeSynchronization(deps, { synchronizationId: ID, verdict })).acknowledge).toBe(acknowledge);
  });

  it('a retried finalize (the first one wrote) answers the same event and still asks for the acknowledgement', async () => {
    const { deps, writes } = world(googleSync);
    const first = await finalizeSynchronization(deps, { synchronizationId: ID, verdict: verified(true) });
    const again = await finalizeSynchronization(deps, { synchronizationId: ID, verdict: verified(true) });
    expect(writes).toHaveLength(1);
    expect(again).toEqual(first);
    expect(again.acknowledge).toBe(true);
    expect(first.event).toMatchObject({ store: 'google', purchaseToken: 'tok.en', packageName: 'com.example.iapsync', transactionId: null });
  });

  it('releases the token claim only when the synchronization failed', async () => {
    const failed = world(googleSync);
    await finalizeSynchronization(failed.deps, { synchronizationId: ID });
    expect(failed.writes[0]?.releaseClaim).toBe(true);
    const ok = world(googleSync);
    await finalizeSynchronization(ok.deps, { synchronizationId: ID, verdict: verified(false) });
    expect(ok.writes[0]?.releaseClaim).toBeUndefined();
  });
});
