/**
 * One lifecycle model for Apple and Google purchases.
 *
 * The service re-reads a purchase from the store after every notification and decides the
 * entitlement from that *current* answer, never from the notification alone: notifications
 * arrive late, twice, or out of order, while the store's answer is its source of truth
 * (Google: https://developer.android.com/google/play/billing/lifecycle/subscriptions ,
 * Apple: https://developer.apple.com/documentation/appstoreserverapi/get-all-subscription-statuses ).
 *
 * Everything here is pure: the clock is a parameter, so a decision can be replayed in a test.
 */
import { ENTITLEMENT_REASONS, type EntitlementReason } from '../../events/vocabulary';

/** Store-neutral lifecycle states. Only `active` and `grace_period` can give access (see {@link isActiveAt}). */
export const LIFECYCLE_STATES = ['active', 'grace_period', 'billing_retry', 'on_hold', 'paused', 'expired', 'revoked'] as const;

/** One of {@link LIFECYCLE_STATES}. */
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/** Where the purchase was made; test purchases must never be mistaken for paid ones. */
export type Environment = 'Production' | 'Sandbox';

/** What the store says about one subscription/purchase now, store-neutral. */
export interface LifecycleSnapshot {
  state: LifecycleState;
  productId: string;
  /** ISO 8601 end of the current period; null = never expires (non-consumable). */
  expiresAt: string | null;
  /** ISO 8601 end of the billing grace period; only set while the state is `grace_period`. */
  gracePeriodExpiresAt: string | null;
  /** Whether the store will charge again at `expiresAt` without a new purchase. */
  willRenew: boolean;
  environment?: Environment;
  /** Apple: latest transaction of the subscription. */
  transactionId?: string;
  /**
   * When the store produced this answer (Apple: the newest signedDate among the signed
   * transaction/renewal info; Google: the time we read it). Fences out-of-order writes.
   */
  observedAt: string;
  /** Why it was revoked, when state is 'revoked': 'refund' | 'revoke' (Apple Family Sharing ended / Google revoked). */
  revocation?: 'refund' | 'revoke';
}

/** The Apple facts a snapshot is made of: the latest signed transaction and renewal info of one purchase. */
export interface AppleLifecycleInput {
  /**
   * Get All Subscription Statuses `status` for auto-renewables: 1 active, 2 expired, 3 billing retry,
   * 4 grace period, 5 revoked; undefined for other product types.
   * https://developer.apple.com/documentation/appstoreserverapi/status
   */
  status?: number;
  /**
   * The decoded JWSTransaction (for a subscription: its latest transaction).
   * https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload
   * Dates are UNIX milliseconds, as Apple signs them.
   */
  transaction: {
    transactionId: string;
    originalTransactionId: string;
    productId: string;
    /** https://developer.apple.com/documentation/appstoreserverapi/type */
    type: 'Auto-Renewable Subscription' | 'Non-Consumable' | 'Consumable' | 'Non-Renewing Subscription';
    /** https://developer.apple.com/documentation/appstoreserverapi/expiresdate */
    expiresDate?: number;
    /** Set when Apple refunded or revoked the transaction: https://developer.apple.com/documentation/appstoreserverapi/revocationdate */
    revocationDate?: number;
    /** https://developer.apple.com/documentation/appstoreserverapi/revocationreason */
    revocationReason?: number;
    /** https://developer.apple.com/documentation/appstoreserverapi/signeddate */
    signedDate: number;
    /** https://developer.apple.com/documentation/appstoreserverapi/environment */
    environment: Environment;
  };
  /**
   * The decoded JWSRenewalInfo of an auto-renewable subscription.
   * https://developer.apple.com/documentation/appstoreserverapi/jwsrenewalinfodecodedpayload
   */
  renewal?: {
    /** 1 on, 0 off: https://developer.apple.com/documentation/appstoreserverapi/autorenewstatus */
    autoRenewStatus?: number;
    /** https://developer.apple.com/documentation/appstoreserverapi/isinbillingretryperiod */
    isInBillingRetryPeriod?: boolean;
    /** https://developer.apple.com/documentation/appstoreserverapi/graceperiodexpiresdate */
    gracePeriodExpiresDate?: number;
    /** https://developer.apple.com/documentation/appstoreserverapi/signeddate */
    signedDate?: number;
    /** https://developer.apple.com/documentation/appstoreserverapi/autorenewproductid */
    autoRenewProductId?: string;
  };
  /**
   * The notification that prompted the re-read, as a hint only (e.g. 'REVOKE' tells Family Sharing
   * ended from a refund). https://developer.apple.com/documentation/appstoreservernotifications/notificationtype
   */
  hintType?: string;
}

/** The Google facts a snapshot is made of: one line item of a SubscriptionPurchaseV2. */
export interface GoogleLifecycleInput {
  /**
   * SubscriptionPurchaseV2.subscriptionState, as sent (`SUBSCRIPTION_STATE_ACTIVE`) or without its
   * prefix (`ACTIVE`). https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionState
   */
  subscriptionState: string;
  productId: string;
  /**
   * The line item's `expiryTime` (ISO 8601).
   * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionPurchaseLineItem
   */
  expiryTime: string | null;
  /**
   * `lineItems[].autoRenewingPlan.autoRenewEnabled`; absent for prepaid plans.
   * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#AutoRenewingPlan
   */
  autoRenewEnabled?: boolean;
  /**
   * Found in the Voided Purchases list, or the notification was SUBSCRIPTION_REVOKED (Google reads a
   * revoked subscription as EXPIRED afterwards).
   * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.voidedpurchases
   */
  voided?: boolean;
  /** `testPurchase` is present for license testers → environment 'Sandbox', else 'Production'. */
  testPurchase?: boolean;
  /** When we read the purchase (ISO 8601); becomes `observedAt`. */
  readAt: string;
}

export { ENTITLEMENT_REASONS, type EntitlementReason };

/** How long an entitlement that ended stays readable as history before DynamoDB's TTL removes it. */
export const HISTORY_RETENTION_DAYS = 90;

/** The fields that decide access; a stored entitlement and a snapshot both have them. */
export interface AccessWindow {
  state: LifecycleState;
  expiresAt: string | null;
  gracePeriodExpiresAt: string | null;
}

const DAY_SECONDS = 86_400;

/** States the store leaves on its own (payment recovered, pause ends) and that always end with a further notification. */
const RECOVERABLE_STATES: ReadonlySet<LifecycleState> = new Set<LifecycleState>(['grace_period', 'billing_retry', 'on_hold', 'paused']);

/** Google's documented enum values carry this prefix; callers may pass either spelling. */
const GOOGLE_STATE_PREFIX = 'SUBSCRIPTION_STATE_';

/**
 * Apple's answer as a snapshot.
 *
 * Revocation wins over the status because a refunded transaction keeps its other fields
 * (https://developer.apple.com/documentation/appstoreserverapi/revocationdate). Apple does not tell
 * a Family Sharing revoke from a refund in the transaction, only in the notification type, so the
 * `REVOKE` hint decides (https://developer.apple.com/documentation/appstoreservernotifications/notificationtype).
 * Non-auto-renewables have no status: their optional expiry decides, and a non-consumable never expires.
 * An auto-renewable without `expiresDate` (which Apple always signs) reads expired rather than
 * never-ending, so a malformed answer cannot grant access forever.
 *
 * @param now - only used for products without a status (expiry in the past, or exactly now, is expired).
 * @throws RangeError when a signed date is not a finite number of milliseconds.
 */
export function appleSnapshot(input: AppleLifecycleInput, now: Date): LifecycleSnapshot {
  const { transaction, renewal, status } = input;
  const autoRenewable = transaction.type === 'Auto-Renewable Subscription';
  const expiresAt =
    transaction.type === 'Non-Consumable' || transaction.expiresDate === undefined
      ? null
      : isoFromMillis(transaction.expiresDate, 'expiresDate');
  const state = appleState(input, expiresAt, now);
  const observedAt = isoFromMillis(
    Math.max(transaction.signedDate, renewal?.signedDate ?? Number.NEGATIVE_INFINITY),
    'signedDate',
  );
  // Apple omits renewal info only when it has none to sign; an active status then means it renews.
  const willRenew = autoRenewable && (renewal === undefined ? status === 1 : renewal.autoRenewStatus === 1);
  // The renewal info may keep a stale grace end after recovery; only the grace state may show one.
  const gracePeriodExpiresAt =
    state === 'grace_period' && renewal?.gracePeriodExpiresDate !== undefined
      ? isoFromMillis(renewal.gracePeriodExpiresDate, 'gracePeriodExpiresDate')
      : null;
  return {
    state,
    productId: transaction.productId,
    expiresAt,
    gracePeriodExpiresAt,
    willRenew,
    environment: transaction.environment,
    transactionId: transaction.transactionId,
    observedAt,
    ...(state === 'revoked' ? { revocation: input.hintType === 'REVOKE' ? 'revoke' : 'refund' } : {}),
  };
}

function appleState(input: AppleLifecycleInput, expiresAt: string | null, now: Date): LifecycleState {
  const { transaction, status } = input;
  if (transaction.revocationDate !== undefined || status === 5) return 'revoked';
  const autoRenewable = transaction.type === 'Auto-Renewable Subscription';
  if (autoRenewable && expiresAt === null) return 'expired';
  if (autoRenewable && status !== undefined) {
    switch (status) {
      case 1:
        return 'active';
      case 2:
        return 'expired';
      case 3:
        return 'billing_retry';
      case 4:
        return 'grace_period';
      default:
        // Apple may add statuses; one we do not know grants nothing until we do.
        return 'expired';
    }
  }
  if (expiresAt !== null && Date.parse(expiresAt) <= now.getTime()) return 'expired';
  return 'active';
}

/**
 * Google's answer as a snapshot, following the SubscriptionState definitions
 * (https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionState).
 *
 * - A voided or SUBSCRIPTION_REVOKED purchase is revoked whatever the state says, because Google
 *   reports it as EXPIRED afterwards and the refund would otherwise look like a plain expiry.
 * - CANCELED only means auto-renew is off: access lasts until `expiryTime`.
 * - IN_GRACE_PERIOD: Google moves `expiryTime` to the end of the grace period, so it is both ends.
 * - PENDING, PENDING_PURCHASE_CANCELED, UNSPECIFIED and values Google may add are not entitled.
 * - An ACTIVE or CANCELED purchase whose expiry passed (or is missing) reads expired: a missing
 *   expiry must not mean "never expires" for a subscription.
 *
 * `autoRenewEnabled` defaults to true for ACTIVE, IN_GRACE_PERIOD, ON_HOLD and PAUSED, which Google
 * defines for auto-renewing plans with auto-renew on; a prepaid plan must pass false.
 *
 * @throws RangeError when `readAt` or `expiryTime` is not a date.
 */
export function googleSnapshot(input: GoogleLifecycleInput, now: Date): LifecycleSnapshot {
  const expiresAt = input.expiryTime === null ? null : normalizeIso(input.expiryTime, 'expiryTime');
  const current = expiresAt !== null && Date.parse(expiresAt) > now.getTime();
  const renewing = input.autoRenewEnabled ?? true;
  const base = {
    productId: input.productId,
    expiresAt,
    gracePeriodExpiresAt: null,
    environment: input.testPurchase === true ? ('Sandbox' as const) : ('Production' as const),
    observedAt: normalizeIso(input.readAt, 'readAt'),
  };
  if (input.voided === true) return { ...base, state: 'revoked', willRenew: false, revocation: 'revoke' };
  const stateName = input.subscriptionState.startsWith(GOOGLE_STATE_PREFIX)
    ? input.subscriptionState.slice(GOOGLE_STATE_PREFIX.length)
    : input.subscriptionState;
  switch (stateName) {
    case 'ACTIVE':
      return current ? { ...base, state: 'active', willRenew: renewing } : { ...base, state: 'expired', willRenew: false };
    case 'CANCELED':
      return { ...base, state: current ? 'active' : 'expired', willRenew: false };
    case 'IN_GRACE_PERIOD':
      return { ...base, state: 'grace_period', gracePeriodExpiresAt: expiresAt, willRenew: renewing };
    case 'ON_HOLD':
      return { ...base, state: 'on_hold', willRenew: renewing };
    case 'PAUSED':
      return { ...base, state: 'paused', willRenew: renewing };
    default:
      // EXPIRED, PENDING, PENDING_PURCHASE_CANCELED, UNSPECIFIED and unknown values: not entitled, and
      // none of them renews without a new purchase.
      return { ...base, state: 'expired', willRenew: false };
  }
}

/**
 * Whether the entitlement gives access at `now`, decided at read time so that an entitlement
 * nobody re-read since its expiry does not keep granting access.
 *
 * True for `active` with no expiry or an expiry after `now`, and for `grace_period` whose grace end
 * (or, without one, `expiresAt`) is after `now`. An end equal to `now` has passed. An unreadable
 * date grants nothing.
 */
export function isActiveAt(e: AccessWindow, now: Date): boolean {
  const at = now.getTime();
  if (e.state === 'active') return e.expiresAt === null || Date.parse(e.expiresAt) > at;
  if (e.state === 'grace_period') {
    const end = e.gracePeriodExpiresAt ?? e.expiresAt;
    return end !== null && Date.parse(end) > at;
  }
  return false;
}

/**
 * The reason to announce for the move from `previous` to `next`, or null when nothing a customer
 * could notice changed (state, expiresAt, gracePeriodExpiresAt, willRenew and productId are the same;
 * a new transactionId or observedAt alone is not news).
 *
 * Precedence, first match wins:
 * 1. no previous → PURCHASED when it starts active, else the state's own reason (e.g. REFUNDED, EXPIRED);
 * 2. revoked now, not before → REFUNDED (revocation 'refund' or unknown) or REVOKED ('revoke');
 * 3. revoked before, not now → REFUND_REVERSED;
 * 4. expired now, not before → EXPIRED;
 * 5. grace_period / billing_retry / on_hold / paused now, not before → GRACE_PERIOD / BILLING_RETRY / ON_HOLD / PAUSED;
 * 6. grace_period / billing_retry / on_hold / paused before, active now → RECOVERED;
 * 7. expired before, active now → RENEWED;
 *    (the state is now unchanged)
 * 8. productId changed → PRODUCT_CHANGED;
 * 9. active and expiresAt later → RENEWED;
 * 10. only willRenew changed → RENEWAL_STATUS_CHANGED;
 * 11. any other noticeable change (an earlier expiry, a moved grace end, a later expiry in a state
 *     without access) → the state's own reason, RENEWED for active, so consumers re-read it.
 *
 * Dates are compared as instants, so `…00Z` and `…00.000Z` are the same expiry.
 */
export function changeReason(previous: LifecycleSnapshot | undefined, next: LifecycleSnapshot): EntitlementReason | null {
  if (previous === undefined) return next.state === 'active' ? 'PURCHASED' : stateReason(next);
  if (next.state !== previous.state) {
    if (next.state === 'revoked') return stateReason(next);
    if (previous.state === 'revoked') return 'REFUND_REVERSED';
    if (next.state === 'active') return previous.state === 'expired' ? 'RENEWED' : 'RECOVERED';
    // expired, grace_period, billing_retry, on_hold, paused: each announces itself.
    return stateReason(next);
  }
  if (next.productId !== previous.productId) return 'PRODUCT_CHANGED';
  const sameExpiry = sameInstant(previous.expiresAt, next.expiresAt);
  const sameGrace = sameInstant(previous.gracePeriodExpiresAt, next.gracePeriodExpiresAt);
  if (next.state === 'active' && !sameExpiry && instantOrForever(next.expiresAt) > instantOrForever(previous.expiresAt)) {
    return 'RENEWED';
  }
  if (sameExpiry && sameGrace) return next.willRenew === previous.willRenew ? null : 'RENEWAL_STATUS_CHANGED';
  return next.state === 'active' ? 'RENEWED' : stateReason(next);
}

/** The reason a snapshot announces by its state alone. */
function stateReason(s: LifecycleSnapshot): EntitlementReason {
  switch (s.state) {
    case 'active':
      return 'PURCHASED';
    case 'grace_period':
      return 'GRACE_PERIOD';
    case 'billing_retry':
      return 'BILLING_RETRY';
    case 'on_hold':
      return 'ON_HOLD';
    case 'paused':
      return 'PAUSED';
    case 'expired':
      return 'EXPIRED';
    case 'revoked':
      // Apple's default for a revocation without the REVOKE hint is a refund, so unknown reads as one.
      return s.revocation === 'revoke' ? 'REVOKED' : 'REFUNDED';
  }
}

/**
 * The out-of-order fence: true when `next` was observed strictly before what is stored, so a
 * delayed or duplicate worker's read never moves an entitlement backwards. Equal is not stale:
 * re-applying the same answer yields no change anyway. Nothing stored is never stale.
 *
 * @throws RangeError when either observedAt is not a date, because a fence that cannot compare must not let the write through silently.
 */
export function isStale(stored: { observedAt: string } | undefined, next: { observedAt: string }): boolean {
  if (stored === undefined) return false;
  return epochMillis(next.observedAt, 'next.observedAt') < epochMillis(stored.observedAt, 'stored.observedAt');
}

/**
 * The DynamoDB TTL (epoch seconds, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html)
 * of an entitlement that ended: {@link HISTORY_RETENTION_DAYS} after the end of access.
 *
 * The end of access is the latest of `endedAt` (when the service saw access end, e.g. the refund)
 * and the entitlement's own expiry and grace end, so history is never dropped sooner than 90 days
 * after either. Undefined (keep, no TTL) while the entitlement still gives access at `endedAt`,
 * including purchases that never expire, and while it is in grace_period, billing_retry, on_hold or
 * paused: the store can restore those on its own and always follows up with a notification (the
 * TTL is set when that read reports the end).
 *
 * @throws RangeError when `endedAt` is not a valid date.
 */
export function retainUntil(e: AccessWindow, endedAt: Date): number | undefined {
  if (isActiveAt(e, endedAt) || RECOVERABLE_STATES.has(e.state)) return undefined;
  const ended = endedAt.getTime();
  if (!Number.isFinite(ended)) throw new RangeError('endedAt is not a valid date');
  const ends = [ended, e.expiresAt, e.gracePeriodExpiresAt]
    .map((end) => (typeof end === 'string' ? Date.parse(end) : end))
    .filter((end): end is number => end !== null && Number.isFinite(end));
  return Math.floor(Math.max(...ends) / 1000) + HISTORY_RETENTION_DAYS * DAY_SECONDS;
}

function sameInstant(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  const left = Date.parse(a);
  const right = Date.parse(b);
  return Number.isNaN(left) || Number.isNaN(right) ? a === b : left === right;
}

/** null means the purchase never expires, which is later than any date. */
function instantOrForever(iso: string | null): number {
  return iso === null ? Number.POSITIVE_INFINITY : Date.parse(iso);
}

function epochMillis(iso: string, field: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`${field} is not a date: ${iso}`);
  return ms;
}

/** Stored dates in one spelling, so the same instant is the same string in the table. */
function normalizeIso(iso: string, field: string): string {
  return new Date(epochMillis(iso, field)).toISOString();
}

function isoFromMillis(ms: number, field: string): string {
  if (!Number.isFinite(ms)) throw new RangeError(`${field} is not a time in milliseconds: ${String(ms)}`);
  return new Date(ms).toISOString();
}
