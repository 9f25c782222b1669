import type { Clock } from '../../platform/clock';
import type { GooglePlayVerifier, GoogleProfile } from '../../stores/google/ports';
import { GOOGLE_VOIDED_WINDOW_DAYS, type GoogleVerification } from '../../stores/google/facts';
import { GOOGLE_REVOKING_NOTICE_TYPES } from '../../stores/google/notice-types';
import { isActiveAt } from '../../entitlements';
import type { Publisher } from '../../tenants';
import type { Synchronization, SyncRef } from './synchronization';
import type { PublisherRepository } from '../../tenants';
import type { AppleVerifier } from '../../stores/apple/ports';
import type { Store } from '../../events/vocabulary';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import { ConfigurationError, SynchronizationMissingError } from '../../platform/errors';
import { appleVerdict, googleLifecycle, googleVerdict } from './store-verdicts';
import { snapshotOf, type PurchaseRecord, type StoreVerdict } from './ownership';

export interface VerifyDeps {
  publishers: PublisherRepository;
  syncs: SynchronizationRepository;
  apple: AppleVerifier;
  google: GooglePlayVerifier;
  clock: Clock;
}

/** What the Apple verification needs: no Google client (VerifyApplePurchase's bundle carries none). */
export type AppleVerifyDeps = Pick<VerifyDeps, 'publishers' | 'syncs' | 'apple' | 'clock'>;

/** What the Google verification needs: no Apple client (VerifyGooglePurchase's bundle carries none). */
export type GoogleVerifyDeps = Pick<VerifyDeps, 'publishers' | 'syncs' | 'google' | 'clock'>;

/**
 * The synchronization and its publisher, for the verification of one store. The workflow chooses the
 * verify state by the execution input's `store`, which comes from this record; a record of the other
 * store means a wrong definition, and no retry can fix it.
 */
async function synchronizationOf(deps: Pick<VerifyDeps, 'publishers' | 'syncs'>, ref: SyncRef, store: Store) {
  const sync = await deps.syncs.get(ref);
  if (!sync) throw new SynchronizationMissingError(`no synchronization ${ref.synchronizationId}`);
  if (sync.store !== store) throw new ConfigurationError(`synchronization ${ref.synchronizationId} is for store ${sync.store}, not ${store}`);
  return { sync, publisher: await deps.publishers.getPublisher(sync.publisherId) };
}

/**
 * Workflow step (Apple): asks Apple about the synchronization's transaction with the publisher's
 * configuration and answers the verdict. Retryable store failures are thrown.
 */
export async function verifyApplePurchase(deps: AppleVerifyDeps, ref: SyncRef): Promise<StoreVerdict | undefined> {
  const { sync, publisher } = await synchronizationOf(deps, ref, 'apple');
  if (!publisher?.apple || sync.transactionId === undefined) throw new ConfigurationError('publisher has no Apple configuration');
  // A refresh passes its notification's type: only the notification tells Apple's Family Sharing REVOKE from a refund.
  return appleVerdict(await deps.apple.verify(publisher.apple, sync.transactionId), deps.clock.now(), sync.notice?.type);
}

/**
 * Workflow step (Google): asks Google about the synchronization's purchase token with the
 * publisher's configuration and answers the verdict. Retryable store failures are thrown.
 *
 * Google transfers keep the seed's transfer-only semantics (nothing is registered or acknowledged)
 * and decide from the record this service keeps while it still gives access; a record whose access
 * ended (its expiry passed and no notification said more) is read from Google first, so a renewal
 * whose notification was lost does not make a paying subscription look lapsed.
 */
export async function verifyGooglePurchase(deps: GoogleVerifyDeps, ref: SyncRef): Promise<StoreVerdict | undefined> {
  const { sync, publisher } = await synchronizationOf(deps, ref, 'google');
  if (sync.purchaseToken === undefined) throw new ConfigurationError('a Google synchronization without a purchase token');
  const now = deps.clock.now();
  let record: PurchaseRecord | undefined;
  if (sync.kind === 'transfer' || sync.packageName === undefined) {
    record = await deps.syncs.getPurchase(sync.publisherId, 'google', sync.purchaseToken);
  }
  if (sync.kind === 'transfer' && (record === undefined || record.state === 'revoked' || isActiveAt(snapshotOf(record), now))) {
    return { outcome: 'from_record' };
  }
  const profile = googleProfileOf(publisher, sync, record);
  if (!profile) throw new ConfigurationError('no Google Play profile for this package');
  // A refresh reads whatever the token is now (a plan change moves it to another product).
  const read = await deps.google.verify(profile, sync.purchaseToken, sync.kind === 'refresh' ? undefined : sync.productId);
  const verification = await withKnownAncestor(deps, profile, sync, read, record);
  return googleVerdict(verification, now, await isVoided(deps, profile, sync, verification, now));
}

/** Plan changes followed back at most this many tokens to one this service knows. */
const MAX_PLAN_CHANGE_HOPS = 5;

/**
 * A purchase this service has no record of, replacing one it does not know either, may be the end of
 * a chain of plan changes whose middle pushes were lost (A → B → C, only A registered): Google is
 * asked for each replaced token's own `linkedPurchaseToken` until one with a record is found, and the
 * new purchase is then decided against that one (it inherits its owner, and that one ends). Without
 * a known ancestor within MAX_PLAN_CHANGE_HOPS, the answer is left as it is (nothing is inherited).
 */
async function withKnownAncestor(
  deps: Pick<VerifyDeps, 'google' | 'syncs'>,
  profile: GoogleProfile,
  sync: Synchronization,
  verification: GoogleVerification,
  record: PurchaseRecord | undefined,
): Promise<GoogleVerification> {
  if (verification.outcome !== 'verified' || verification.facts.linkedPurchaseToken === undefined) return verification;
  const own = record ?? (await deps.syncs.getPurchase(sync.publisherId, 'google', verification.facts.purchaseToken));
  if (own !== undefined) return verification;
  let linked: string | undefined = verification.facts.linkedPurchaseToken;
  for (let hop = 0; linked !== undefined && hop < MAX_PLAN_CHANGE_HOPS; hop += 1) {
    if ((await deps.syncs.getPurchase(sync.publisherId, 'google', linked)) !== undefined) {
      return { ...verification, facts: { ...verification.facts, linkedPurchaseToken: linked } };
    }
    const previous = await deps.google.verify(profile, linked);
    linked = previous.outcome === 'verified' ? previous.facts.linkedPurchaseToken : undefined;
  }
  return verification;
}

/**
 * The app profile of a Google synchronization: the package the request or notification named, else
 * the one on the purchase record (a reconciliation's notice names none), else the publisher's only app.
 */
function googleProfileOf(publisher: Publisher | undefined, sync: Synchronization, record: PurchaseRecord | undefined): GoogleProfile | undefined {
  const profiles = publisher?.google?.profiles ?? [];
  const packageName = sync.packageName ?? record?.packageName;
  if (packageName === undefined) return profiles.length === 1 ? profiles[0] : undefined;
  return profiles.find((candidate) => candidate.packageName === packageName);
}

/** Pages of the Voided Purchases list one verification reads at most (1000 entries each). */
const MAX_VOIDED_PAGES = 5;
/** How far before the subscription's end a voiding is looked for: Google revokes at the moment it voids. */
const VOIDED_LOOKBEHIND_MS = 3_600_000;
/** …and how long after its end (a refund may come after a period ended). */
const VOIDED_LOOKAHEAD_MS = 86_400_000;

/**
 * Whether Google took the purchase back. Google reads a revoked subscription as plain EXPIRED, so:
 * a notification that says so (SUBSCRIPTION_REVOKED, voidedPurchaseNotification, a Voided Purchases
 * entry found by the reconciliation) decides; otherwise a subscription Google no longer entitles is
 * looked up in the Voided Purchases list around its end (so registering a revoked token finalizes
 * PURCHASE_REVOKED). Google keeps that list for 30 days; an older end reads as a lapse.
 */
async function isVoided(
  deps: Pick<VerifyDeps, 'google'>,
  profile: GoogleProfile,
  sync: Synchronization,
  verification: GoogleVerification,
  now: Date,
): Promise<boolean> {
  if (verification.outcome !== 'verified') return false;
  if (sync.notice !== undefined && GOOGLE_REVOKING_NOTICE_TYPES.has(sync.notice.type)) return true;
  const { facts } = verification;
  if (facts.expiresAt === null || isActiveAt(googleLifecycle(facts, now), now)) return false;
  const endedAt = Date.parse(facts.expiresAt);
  const oldest = now.getTime() - GOOGLE_VOIDED_WINDOW_DAYS * 86_400_000 + 60_000;
  const window = { startTime: new Date(Math.max(endedAt - VOIDED_LOOKBEHIND_MS, oldest)), endTime: new Date(Math.min(endedAt + VOIDED_LOOKAHEAD_MS, now.getTime())) };
  if (window.startTime.getTime() >= window.endTime.getTime()) return false;
  let pageToken: string | undefined;
  for (let page = 0; page < MAX_VOIDED_PAGES; page += 1) {
    const answer = await deps.google.listVoided(profile, window, pageToken);
    if (answer.purchases.some((voided) => voided.purchaseToken === facts.purchaseToken)) return true;
    pageToken = answer.nextPageToken;
    if (pageToken === undefined) return false;
  }
  return false;
}

/** Workflow step (Google): acknowledges a purchase whose entitlement is saved. */
export async function acknowledgePurchase(
  deps: Pick<VerifyDeps, 'publishers' | 'syncs' | 'google'>,
  ref: SyncRef,
): Promise<void> {
  const sync = await deps.syncs.get(ref);
  if (!sync) throw new SynchronizationMissingError(`no synchronization ${ref.synchronizationId}`);
  const publisher = await deps.publishers.getPublisher(sync.publisherId);
  const profile = googleProfileOf(publisher, sync, undefined);
  const productId = typeof sync.eventDetail?.productId === 'string' ? sync.eventDetail.productId : sync.productId;
  if (!profile || sync.purchaseToken === undefined || productId === undefined) {
    throw new ConfigurationError('nothing to acknowledge for this synchronization');
  }
  await deps.google.acknowledge(profile, sync.purchaseToken, productId);
}
