import { nextCheck } from '../../../lambdas/lifecycle/domain/reconcile-purchases';
import {
  keys,
  purchaseOfPk,
  RECONCILE_MARGIN_SECONDS,
  RECONCILE_SHARDS,
  reconcileIndexAttributes,
  reconcileShardOf,
  TABLE_DEFINITION,
} from '../../../lambdas/platform/dynamodb-table';

/* Which purchase items the reconcile index holds, and when they are due. */

const NOW = new Date('2026-03-01T12:00:00.000Z');
const PK = keys.purchase(1, 'apple', '2000000000000001').pk;
const MARGIN_MS = RECONCILE_MARGIN_SECONDS * 1000;
const at = (ms: number) => new Date(ms).toISOString();

describe('reconcile index attributes of a purchase item', () => {
  it('an active subscription is due a margin after its period ends', () => {
    const expiresAt = '2026-03-31T12:00:00.000Z';
    expect(reconcileIndexAttributes(PK, 'apple', { state: 'active', expiresAt, gracePeriodExpiresAt: null }, NOW)).toEqual({
      reconcileShard: reconcileShardOf(PK),
      reconcileAt: at(Date.parse(expiresAt) + MARGIN_MS),
    });
  });

  it('a Google subscription too, keyed by its purchase token', () => {
    const pk = keys.purchase(1, 'google', 'abcdefghijklmnopqrstuvwx.AO-J1Oz').pk;
    const expiresAt = '2026-03-31T12:00:00.000Z';
    expect(reconcileIndexAttributes(pk, 'google', { state: 'active', expiresAt, gracePeriodExpiresAt: null }, NOW)).toEqual({
      reconcileShard: reconcileShardOf(pk),
      reconcileAt: at(Date.parse(expiresAt) + MARGIN_MS),
    });
  });

  it('in a grace period, a margin after the grace period ends', () => {
    const attributes = reconcileIndexAttributes(
      PK,
      'apple',
      { state: 'grace_period', expiresAt: '2026-02-28T12:00:00.000Z', gracePeriodExpiresAt: '2026-03-14T12:00:00.000Z' },
      NOW,
    );
    expect(attributes).toMatchObject({ reconcileAt: at(Date.parse('2026-03-14T12:00:00.000Z') + MARGIN_MS) });
  });

  it('written already past its end (billing retry), a margin after now rather than at once', () => {
    const attributes = reconcileIndexAttributes(PK, 'apple', { state: 'billing_retry', expiresAt: '2026-02-01T00:00:00.000Z', gracePeriodExpiresAt: null }, NOW);
    expect(attributes).toMatchObject({ reconcileAt: at(NOW.getTime() + MARGIN_MS) });
  });

  it.each([
    ['revoked', { state: 'revoked', expiresAt: '2026-03-31T12:00:00.000Z', gracePeriodExpiresAt: null }, 'apple'],
    ['confirmed expired', { state: 'expired', expiresAt: '2026-02-01T00:00:00.000Z', gracePeriodExpiresAt: null }, 'apple'],
    ['without an expiry (non-consumable)', { state: 'active', expiresAt: null, gracePeriodExpiresAt: null }, 'apple'],
    ['of a store the reconciliation does not know', { state: 'active', expiresAt: '2026-03-31T12:00:00.000Z', gracePeriodExpiresAt: null }, 'amazon'],
  ])('a purchase %s stays out of the index', (_name, lifecycle, store) => {
    expect(reconcileIndexAttributes(PK, store, lifecycle, NOW)).toEqual({});
  });

  it('spreads purchases over the sixteen shards by a hash, not by the purchase key\'s leading digits', () => {
    const shards = new Set(Array.from({ length: 200 }, (_, i) => reconcileShardOf(keys.purchase(1, 'apple', String(2000000000000000 + i)).pk)));
    expect(shards.size).toBe(16);
    expect([...shards].every((shard) => RECONCILE_SHARDS.includes(shard))).toBe(true);
    expect(reconcileShardOf(PK)).toBe(reconcileShardOf(PK));
  });

  it('names the index attributes of TABLE_DEFINITION and reads a purchase key back from the item key', () => {
    const attributes = reconcileIndexAttributes(PK, 'apple', { state: 'active', expiresAt: '2026-03-31T12:00:00.000Z', gracePeriodExpiresAt: null }, NOW);
    const { reconcileIndex } = TABLE_DEFINITION;
    expect(Object.keys(attributes).sort()).toEqual([reconcileIndex.partitionKey.name, reconcileIndex.sortKey.name].sort());
    expect(purchaseOfPk(PK)).toEqual({ publisherId: 1, store: 'apple', purchaseKey: '2000000000000001' });
    expect(purchaseOfPk(keys.purchase(7, 'google', 'tok#en.1').pk)).toEqual({ publisherId: 7, store: 'google', purchaseKey: 'tok#en.1' });
    expect(purchaseOfPk(keys.synchronization(7, 'x').pk)).toBeUndefined();
  });
});

describe('back-off of a purchase the store keeps unchanged', () => {
  const settings = { retryBaseSeconds: 3600, retryMaxSeconds: 86_400 };
  it('doubles per attempt up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((attempts) => (nextCheck(NOW, attempts, settings).getTime() - NOW.getTime()) / 3600_000)).toEqual([
      1, 2, 4, 8, 16, 24, 24, 24,
    ]);
  });
});
