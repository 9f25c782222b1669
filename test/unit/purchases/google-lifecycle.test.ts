import { finalizeSynchronization } from '../../../lambdas/purchases/domain/finalize-synchronization';
import { decidePurchase, decideRefresh, type PurchaseRecord } from '../../../lambdas/purchases/domain/ownership';
import { googleVerdict } from '../../../lambdas/purchases/domain/store-verdicts';
import type { Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import { verifyGooglePurchase } from '../../../lambdas/purchases/domain/verify-purchase';
import { VerdictOutput } from '../../../lambdas/purchases/workflow-schemas';
import type { GoogleFacts, GoogleVerification, VoidedPurchasesPage } from '../../../lambdas/stores/google/facts';
import type { GooglePlayVerifier, GoogleProfile } from '../../../lambdas/stores/google/ports';
import type { Publisher } from '../../../lambdas/tenants';
import { FakePublisherRepository, FakeSynchronizationRepository, FixedClock } from '../../support/fakes';
import { googleRegisterSync } from '../../support/synchronizations';

// Google Play purchases on the lifecycle model: what a re-read of subscriptionsv2 (and, for
// revocations, the Voided Purchases list) makes of the entitlement.
const T0 = Date.parse('2026-12-07T10:00:00.000Z');
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const NOW = new Date(T0);
const PACKAGE = 'com.example.iapsync';
const TOKEN = 'tok.en';

function facts(overrides: Partial<GoogleFacts> = {}): GoogleFacts {
  return {
    packageName: PACKAGE,
    purchaseToken: TOKEN,
    productId: 'premium_monthly',
    subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
    expiresAt: iso(T0 + 30 * DAY),
    acknowledged: true,
    testPurchase: true,
    autoRenewEnabled: true,
    ...overrides,
  };
}

const verified = (overrides: Partial<GoogleFacts> = {}): GoogleVerification => ({ outcome: 'verified', facts: facts(overrides) });

/** The record a register of `facts()` a day ago wrote: owned by 101, entitled. */
function registered(overrides: Partial<GoogleFacts> = {}): PurchaseRecord {
  const at = new Date(T0 - DAY);
  const decision = decidePurchase({
    kind: 'register',
    publisherId: 1,
    customerId: 101,
    policy: 'keep',
    verdict: googleVerdict(verified({ expiresAt: iso(T0 + 29 * DAY), ...overrides }), at),
    offerId: 'S1',
    existing: undefined,
    now: at,
  });
  const next = decision.purchaseWrite?.next;
  if (!next) throw new Error('the register wrote no record');
  return next;
}

function refresh(overrides: Partial<GoogleFacts>, voided = false, existing: PurchaseRecord = registered()) {
  return decideRefresh({ publisherId: 1, verdict: googleVerdict(verified(overrides), NOW, voided), offerId: 'S1', existing, now: NOW });
}

describe('a Google notification re-reads the subscription and the entitlement follows Google', () => {
  it.each([
    ['renewed: later expiry', { expiresAt: iso(T0 + 60 * DAY) }, 'RENEWED', true, 'active', true],
    ['in grace period (expiry moved to the grace end)', { subscriptionState: 'SUBSCRIPTION_STATE_IN_GRACE_PERIOD', expiresAt: iso(T0 + 16 * DAY) }, 'GRACE_PERIOD', true, 'grace_period', true],
    ['on hold', { subscriptionState: 'SUBSCRIPTION_STATE_ON_HOLD', expiresAt: iso(T0 - 1000) }, 'ON_HOLD', false, 'on_hold', true],
    ['paused', { subscriptionState: 'SUBSCRIPTION_STATE_PAUSED', expiresAt: iso(T0 - 1000) }, 'PAUSED', false, 'paused', true],
    ['canceled: access until expiry, no renewal', { subscriptionState: 'SUBSCRIPTION_STATE_CANCELED', autoRenewEnabled: false, expiresAt: iso(T0 + 29 * DAY) }, 'RENEWAL_STATUS_CHANGED', true, 'active', false],
    ['expired', { subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', autoRenewEnabled: false, expiresAt: iso(T0 - 1000) }, 'EXPIRED', false, 'expired', false],
  ])('%s', (_name, overrides, reason, active, state, willRenew) => {
    const decision = refresh(overrides);
    expect(decision.entitlementChanges).toEqual([expect.objectContaining({ customerId: 101, reason, active, state })]);
    expect(decision.purchaseWrite?.next.lifecycle?.willRenew).toBe(willRenew);
  });

  it('recovered from hold reads RECOVERED with access again', () => {
    const onHold = refresh({ subscriptionState: 'SUBSCRIPTION_STATE_ON_HOLD', expiresAt: iso(T0 - 1000) }).purchaseWrite?.next;
    if (!onHold) throw new Error('no hold written');
    const decision = refresh({ expiresAt: iso(T0 + 30 * DAY) }, false, onHold);
    expect(decision.entitlementChanges).toEqual([expect.objectContaining({ reason: 'RECOVERED', active: true, state: 'active' })]);
  });

  it('revoked (Google reads EXPIRED, the voiding tells it from a lapse) removes access at once as REVOKED', () => {
    const decision = refresh({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }, true);
    expect(decision.entitlementChanges).toEqual([expect.objectContaining({ reason: 'REVOKED', active: false, state: 'revoked' })]);
    expect(decision.purchaseWrite?.next).toMatchObject({ state: 'revoked', entitled: false });
  });

  it('a voided earlier order of a subscription Google still reads ACTIVE revokes nothing', () => {
    const decision = refresh({ expiresAt: iso(T0 + 30 * DAY) }, true);
    expect(decision.purchaseWrite?.next.lifecycle?.state).toBe('active');
  });

  it('a revocation stays: a later read of the same EXPIRED subscription without the voiding in sight changes nothing', () => {
    const revoked = refresh({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }, true).purchaseWrite?.next;
    if (!revoked) throw new Error('no revocation written');
    const later = decideRefresh({
      publisherId: 1,
      verdict: googleVerdict(verified({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }), new Date(T0 + DAY)),
      offerId: 'S1',
      existing: revoked,
      now: new Date(T0 + DAY),
    });
    expect(later.unchanged).toBe('no_change');
    expect(later.entitlementChanges).toEqual([]);
  });

  it('the verdict crosses the workflow (VerdictOutput) without losing a field: package name and linked token included', () => {
    const verdict = googleVerdict(verified({ linkedPurchaseToken: 'old.tok.en', acknowledged: false }), NOW);
    expect(VerdictOutput.parse(verdict)).toEqual(verdict);
    expect(verdict).toMatchObject({ facts: { packageName: PACKAGE, linkedPurchaseToken: 'old.tok.en', needsAcknowledgement: true } });
  });

  it('a test purchase is a Sandbox entitlement', () => {
    expect(refresh({ expiresAt: iso(T0 + 60 * DAY) }).purchaseWrite?.next.lifecycle?.environment).toBe('Sandbox');
    expect(refresh({ expiresAt: iso(T0 + 60 * DAY), testPurchase: false }).purchaseWrite?.next.lifecycle?.environment).toBe('Production');
  });
});

// ------------------------------------------------------------------------------------------------
// The workflow steps, on fakes of the repositories and of Google.

const NEW_TOKEN = 'new.tok.en';

class FakeGoogle implements GooglePlayVerifier {
  readonly verifyCalls: { purchaseToken: string; expectedProductId?: string; packageName: string }[] = [];
  readonly listCalls: { startTime: Date; endTime: Date }[] = [];
  constructor(
    private readonly answers: Record<string, GoogleVerification>,
    private readonly voided: string[] = [],
  ) {}
  async verify(profile: GoogleProfile, purchaseToken: string, expectedProductId?: string): Promise<GoogleVerification> {
    this.verifyCalls.push({ purchaseToken, packageName: profile.packageName, ...(expectedProductId !== undefined ? { expectedProductId } : {}) });
    return this.answers[purchaseToken] ?? { outcome: 'not_found' };
  }
  async acknowledge(): Promise<void> {
    throw new Error('not used');
  }
  async listVoided(_profile: GoogleProfile, window: { startTime: Date; endTime: Date }): Promise<VoidedPurchasesPage> {
    this.listCalls.push(window);
    return { purchases: this.voided.map((purchaseToken) => ({ purchaseToken, orderId: 'GPA.1', voidedAt: iso(T0 - 2000) })) };
  }
}

const PUBLISHER: Publisher = {
  publisherId: 1,
  name: 'Demo',
  tokenHash: '0'.repeat(64),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  google: { profiles: [{ packageName: PACKAGE, serviceAccountRef: 'file:sa.json' }] },
  ownershipPolicy: 'keep',
};

function refreshSync(purchaseKey: string, type: string, packageName: string | undefined = PACKAGE): Synchronization {
  return {
    synchronizationId: `refresh-${purchaseKey}`,
    publisherId: 1,
    store: 'google',
    kind: 'refresh',
    customerId: 0,
    purchaseToken: purchaseKey,
    ...(packageName !== undefined ? { packageName } : {}),
    purchaseKey,
    notice: { id: `m-${purchaseKey}`, type },
    status: 'processing',
    requestHash: '',
    lockKeys: [],
    client: {},
    attempts: 0,
    createdAt: iso(T0),
    updatedAt: iso(T0),
  };
}

function world(sync: Synchronization, google: FakeGoogle, records: PurchaseRecord[] = []) {
  const syncs = new FakeSynchronizationRepository([sync]);
  for (const record of records) syncs.purchases.set(`1#google#${record.purchaseKey}`, record);
  const publishers = new FakePublisherRepository([PUBLISHER]).addOffer(1, 'google', 'premium_monthly', 'S1').addOffer(1, 'google', 'premium_yearly', 'S2');
  const clock = new FixedClock(iso(T0));
  return { syncs, deps: { syncs, publishers, google, apple: { verify: async () => ({ outcome: 'not_found' as const }) }, clock, eventBusName: 'bus' } };
}

async function verifyThenFinalize(sync: Synchronization, google: FakeGoogle, records: PurchaseRecord[] = []) {
  const { deps, syncs } = world(sync, google, records);
  const verdict = await verifyGooglePurchase(deps, sync);
  const outcome = await finalizeSynchronization(deps, { ...sync, ...(verdict ? { verdict } : {}) });
  return { verdict, outcome, syncs };
}

describe('Google in the workflow', () => {
  it('a plan change (linkedPurchaseToken) gives the new token to the old owner and ends the old one, both PRODUCT_CHANGED', async () => {
    const old = registered();
    const google = new FakeGoogle({ [NEW_TOKEN]: verified({ purchaseToken: NEW_TOKEN, productId: 'premium_yearly', expiresAt: iso(T0 + 365 * DAY), linkedPurchaseToken: TOKEN, acknowledged: false }) });
    const { outcome, syncs } = await verifyThenFinalize(refreshSync(NEW_TOKEN, 'SUBSCRIPTION_PURCHASED'), google, [old]);
    const write = syncs.finalized[0];
    expect(write?.purchaseWrite).toMatchObject({ expectedVersion: 0, next: { purchaseKey: NEW_TOKEN, ownerCustomerId: 101, ownershipVersion: old.ownershipVersion + 1, offerId: 'S2', entitled: true, packageName: PACKAGE } });
    expect(write?.supersededWrite).toMatchObject({ expectedVersion: old.ownershipVersion, next: { purchaseKey: TOKEN, entitled: false, state: 'expired', replacedBy: NEW_TOKEN, expiresAt: iso(T0) } });
    const details = outcome.entries.map((entry) => entry.Detail as unknown as Record<string, unknown>);
    expect(details).toEqual([
      expect.objectContaining({ cleengCustomerId: 101, purchaseToken: NEW_TOKEN, offerId: 'S2', reason: 'PRODUCT_CHANGED', active: true, packageName: PACKAGE }),
      expect.objectContaining({ cleengCustomerId: 101, purchaseToken: TOKEN, offerId: 'S1', reason: 'PRODUCT_CHANGED', active: false, state: 'expired', expiresAt: iso(T0), previousExpiresAt: old.expiresAt }),
    ]);
    // The new purchase is Google's to refund unless acknowledged: the refresh acknowledges it.
    expect(outcome.acknowledge).toBe(true);
    expect(syncs.records.get(`refresh-${NEW_TOKEN}`)).toMatchObject({ acknowledge: true, productId: 'premium_yearly', packageName: PACKAGE });
  });

  it('a chain of plan changes whose middle push was lost (A → B → C, only A known) gives C to A\'s owner and ends A', async () => {
    const old = registered();
    const middle = 'middle.tok.en';
    const google = new FakeGoogle({
      [NEW_TOKEN]: verified({ purchaseToken: NEW_TOKEN, productId: 'premium_yearly', expiresAt: iso(T0 + 365 * DAY), linkedPurchaseToken: middle }),
      [middle]: verified({ purchaseToken: middle, subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - DAY), linkedPurchaseToken: TOKEN }),
    });
    const { syncs } = await verifyThenFinalize(refreshSync(NEW_TOKEN, 'SUBSCRIPTION_PURCHASED'), google, [old]);
    expect(syncs.finalized[0]?.purchaseWrite?.next).toMatchObject({ purchaseKey: NEW_TOKEN, ownerCustomerId: 101, entitled: true });
    expect(syncs.finalized[0]?.supersededWrite?.next).toMatchObject({ purchaseKey: TOKEN, replacedBy: NEW_TOKEN, entitled: false });
    expect(google.verifyCalls.map((call) => call.purchaseToken)).toEqual([NEW_TOKEN, middle]);
  });

  it('a register of the new token by its owner after the plan change finds the purchase synchronized, unchanged', async () => {
    const old = registered();
    const answer = verified({ purchaseToken: NEW_TOKEN, productId: 'premium_yearly', expiresAt: iso(T0 + 365 * DAY), linkedPurchaseToken: TOKEN });
    const first = await verifyThenFinalize(refreshSync(NEW_TOKEN, 'SUBSCRIPTION_PURCHASED'), new FakeGoogle({ [NEW_TOKEN]: answer }), [old]);
    const records = [...first.syncs.purchases.values()];
    const register = { ...googleRegisterSync('reg-new'), purchaseToken: NEW_TOKEN };
    const { outcome } = await verifyThenFinalize(register, new FakeGoogle({ [NEW_TOKEN]: answer }), records);
    expect(outcome.event).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED', accessGranted: true, offerId: 'S2' });
  });

  it('a notification about a token nobody registered, and that replaces nothing known, grants nothing', async () => {
    const google = new FakeGoogle({ [NEW_TOKEN]: verified({ purchaseToken: NEW_TOKEN }) });
    const { outcome, syncs } = await verifyThenFinalize(refreshSync(NEW_TOKEN, 'SUBSCRIPTION_PURCHASED'), google);
    expect(syncs.finalized[0]?.purchaseWrite).toBeUndefined();
    expect(outcome).toMatchObject({ entries: [], acknowledge: false });
  });

  it('a refresh acknowledges an owned purchase Google still reads unacknowledged, even when nothing else changed', async () => {
    const record = registered();
    const google = new FakeGoogle({ [TOKEN]: verified({ expiresAt: record.expiresAt ?? undefined, acknowledged: false }) });
    const { outcome } = await verifyThenFinalize(refreshSync(TOKEN, 'RECONCILE', undefined), google, [record]);
    expect(outcome.entries).toEqual([]);
    expect(outcome.acknowledge).toBe(true);
    // Without a package name on the notice (a reconciliation's), the record's package is asked.
    expect(google.verifyCalls).toEqual([{ purchaseToken: TOKEN, packageName: PACKAGE }]);
  });

  it('SUBSCRIPTION_REVOKED revokes without listing voided purchases', async () => {
    const google = new FakeGoogle({ [TOKEN]: verified({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }) });
    const { outcome } = await verifyThenFinalize(refreshSync(TOKEN, 'SUBSCRIPTION_REVOKED'), google, [registered()]);
    expect(outcome.entries.map((entry) => entry.Detail)).toEqual([expect.objectContaining({ reason: 'REVOKED', active: false, state: 'revoked' })]);
    expect(google.listCalls).toEqual([]);
  });

  it('registering a revoked token finalizes PURCHASE_REVOKED (found in the Voided Purchases list around its end)', async () => {
    const google = new FakeGoogle({ [TOKEN]: verified({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }) }, [TOKEN]);
    const { outcome } = await verifyThenFinalize(googleRegisterSync('reg'), google);
    expect(outcome.event).toMatchObject({ result: 'PURCHASE_REVOKED', accessGranted: false });
    expect(google.listCalls).toEqual([{ startTime: new Date(T0 - 1000 - 3_600_000), endTime: NOW }]);
  });

  it('registering a lapsed token that Google did not void finalizes RECEIVED_EXPIRED_PURCHASE', async () => {
    const google = new FakeGoogle({ [TOKEN]: verified({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }) }, ['another.token']);
    const { outcome } = await verifyThenFinalize(googleRegisterSync('reg'), google);
    expect(outcome.event).toMatchObject({ result: 'RECEIVED_EXPIRED_PURCHASE' });
  });

  describe('transfers', () => {
    const transfer = (): Synchronization => ({ ...googleRegisterSync('xfer'), kind: 'transfer', customerId: 202, lockKeys: [], claimKey: undefined } as Synchronization);

    it('decide from the record while it still gives access: Google is not asked', async () => {
      const google = new FakeGoogle({});
      const { outcome } = await verifyThenFinalize(transfer(), google, [registered()]);
      expect(outcome.event).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true, previousCustomerId: 101 });
      expect(google.verifyCalls).toEqual([]);
    });

    it('read Google first once the record lapsed: a renewal whose notification was lost still transfers, without acknowledging', async () => {
      const lapsed = registered({ expiresAt: iso(T0 - 1000) });
      const google = new FakeGoogle({ [TOKEN]: verified({ expiresAt: iso(T0 + 30 * DAY), acknowledged: false }) });
      const { outcome, syncs } = await verifyThenFinalize(transfer(), google, [lapsed]);
      expect(google.verifyCalls).toHaveLength(1);
      expect(outcome.event).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true, expiresAt: iso(T0 + 30 * DAY) });
      expect(outcome.acknowledge).toBe(false);
      expect(syncs.purchases.get(`1#google#${TOKEN}`)).toMatchObject({ ownerCustomerId: 202, expiresAt: iso(T0 + 30 * DAY) });
    });

    it('a revoked record is not active, and Google is not asked', async () => {
      const revoked = refresh({ subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED', expiresAt: iso(T0 - 1000) }, true).purchaseWrite?.next;
      if (!revoked) throw new Error('no revocation written');
      const google = new FakeGoogle({});
      const { outcome } = await verifyThenFinalize(transfer(), google, [revoked]);
      expect(outcome.event).toMatchObject({ result: 'PURCHASE_NOT_ACTIVE', accessGranted: false });
      expect(google.verifyCalls).toEqual([]);
    });
  });
});
