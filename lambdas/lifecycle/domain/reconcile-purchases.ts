import type { Clock } from '../../platform/clock';
import { ApiError, StoreRejectedError, StoreUnavailableError } from '../../platform/errors';
import type { Logger } from '../../platform/logger';
import type { AppleConfig, AppleEnvironment } from '../../stores/apple/config';
import { PaginationTokenRejectedError } from '../../stores/apple/notification-history';
import { GOOGLE_VOIDED_WINDOW_DAYS, type VoidedPurchase } from '../../stores/google/facts';
import { GOOGLE_VOIDED_NOTICE_TYPE } from '../../stores/google/notice-types';
import type { GooglePlayVerifier, GoogleProfile } from '../../stores/google/ports';
import type { Publisher, PublisherRepository } from '../../tenants';
import type {
  AppleNotificationHistory,
  AppleNotificationVerifier,
  CursorScope,
  DuePurchase,
  HistoryCursor,
  NoticeIntake,
  PublisherDirectory,
  PurchaseChangeNotice,
  ReconcileRepository,
} from '../ports';
import { receiveAppleNotification } from './receive-apple-notification';
import { acknowledgePending, DEFAULT_ACKNOWLEDGE_SETTINGS, type AcknowledgePendingDeps, type AcknowledgementReport } from './acknowledge-pending';

/** The notificationType of the notices the reconciliation makes up for due purchases (no store sent them). */
export const RECONCILE_NOTICE_TYPE = 'RECONCILE';

/**
 * Apple keeps 180 days of notification history and refuses an older start date (4000012).
 * https://developer.apple.com/documentation/appstoreserverapi/get-notification-history
 */
export const APPLE_HISTORY_DAYS = 180;
/**
 * A catch-up starts an hour inside what the store keeps (Apple 180 days, Google's voided purchases
 * 30), so a request is never refused for a clock difference.
 */
const HISTORY_START_SAFETY_MS = 3600_000;

type ReconciledStore = DuePurchase['store'];

/**
 * Store calls one started refresh costs the publisher's app, counted against the store's rate when
 * the refresh is started, since the workflow makes them moments later. Apple: Get Transaction Info
 * and Get All Subscription Statuses (AppleStoreVerifier). Google: `purchases.subscriptionsv2.get`
 * and, for a purchase that may have been refunded, the Voided Purchases check.
 */
export const REFRESH_STORE_CALLS: Readonly<Record<ReconciledStore, number>> = { apple: 2, google: 2 };

/** What the reconciliation needs. */
export interface ReconcileDeps {
  /** Publishers by id (their Apple and Google configuration) and the list of all of them. */
  publishers: PublisherRepository & PublisherDirectory;
  history: AppleNotificationHistory;
  /** The same decoder the notification route verifies with. */
  decoder: AppleNotificationVerifier;
  /** Google's Voided Purchases list (GooglePlayStoreVerifier). */
  google: Pick<GooglePlayVerifier, 'listVoided'>;
  intake: NoticeIntake;
  reconcile: ReconcileRepository;
  clock: Clock;
  /** Waits for the rate limiter (a fake in tests). */
  sleep: (ms: number) => Promise<void>;
  logger: Logger;
  /**
   * Google acknowledgements the workflow could not get through, and Google's acknowledge call:
   * acknowledged here until Google confirms or their three days end (acknowledgePending). Without
   * it, the run leaves them alone.
   */
  acknowledgements?: Pick<AcknowledgePendingDeps, 'pending' | 'google'>;
}

/** Settings of one run; the defaults are {@link DEFAULT_RECONCILE_SETTINGS}. */
export interface ReconcileSettings {
  /**
   * Where a catch-up without a cursor (the first run) starts: this long before now, at most as far
   * back as the store keeps (Apple's history 180 days, Google's voided purchases 30).
   */
  firstLookbackSeconds: number;
  /**
   * A finished window's next one starts this long before its end: a notification Apple signed (an
   * order Google voided) just before the end but listed a moment later is still read. Re-reading
   * is harmless (the intake answers `duplicate`); a gap is not.
   */
  overlapSeconds: number;
  /** Store calls per second per publisher's app (Apple allows more in production; sandbox less). */
  appleRequestsPerSecond: number;
  /** Google Play Developer API calls per second per publisher: a quota of its own, apart from Apple's. */
  googleRequestsPerSecond: number;
  /** History pages per publisher and Apple environment or Google app per run; the cursor keeps the rest for the next run. */
  maxHistoryPages: number;
  /** Due purchases handed over per run; the rest stays due for the next run. */
  dueLimit: number;
  /** After a re-check that changed nothing, the next one comes this long later, doubling per attempt… */
  retryBaseSeconds: number;
  /** …up to this. */
  retryMaxSeconds: number;
  /** Pending Google acknowledgements attempted per run; the rest stay due for the next run. */
  acknowledgeLimit: number;
  /** After a failed acknowledgement, the next attempt is due this long later. */
  acknowledgeRetrySeconds: number;
}

export const DEFAULT_RECONCILE_SETTINGS: Readonly<ReconcileSettings> = {
  firstLookbackSeconds: 7 * 86_400,
  overlapSeconds: 900,
  appleRequestsPerSecond: 10,
  googleRequestsPerSecond: 10,
  maxHistoryPages: 100,
  dueLimit: 200,
  retryBaseSeconds: 3600,
  retryMaxSeconds: 7 * 86_400,
  acknowledgeLimit: DEFAULT_ACKNOWLEDGE_SETTINGS.limit,
  acknowledgeRetrySeconds: DEFAULT_ACKNOWLEDGE_SETTINGS.retrySeconds,
};

/** One run: the settings, and what this invocation asks for. */
export interface ReconcileOptions extends ReconcileSettings {
  /** Only this publisher (the command line); otherwise every publisher with an Apple or Google configuration. */
  publisherId?: number;
  /**
   * Read the histories (Apple's notifications, Google's voided purchases) from here to now instead
   * of from the cursors; the cursors are then neither read nor moved (an explicit look-back must not
   * make the scheduled run skip what lies between).
   */
  since?: Date;
  /** Start no more pages or due purchases after this (the Lambda's remaining time). */
  deadline?: Date;
  /**
   * Re-check every purchase of the reconcile index, due or not (the command line's `--all`, for one
   * publisher): the way to correct a Google purchase whose push was lost for good before its period
   * ends, since Google keeps no notification history. Purchases not yet due keep their place in the index.
   */
  all?: boolean;
}

/** The index's sort keys are ISO 8601 times: this one is after all of them. */
const END_OF_TIME = new Date('9999-12-31T23:59:59.999Z');

/**
 * What one run found and did.
 * - `publishers`: publishers with an Apple or Google configuration whose histories were read.
 * - `historyPages`, `notificationsSeen`: Apple's Get Notification History pages and the notifications on them.
 * - `voidedPagesRead`, `voidedSeen`: Google's Voided Purchases pages and the voided orders on them.
 * - `accepted`: notifications and voided orders the intake had not recorded (lost ones), now
 *   processed; `duplicates`: recorded before; `rejected`: not verifiable for the publisher's app;
 *   `ignored`: genuine but naming no purchase (TEST, summary).
 * - `duePurchases`: purchases of the reconcile index handed over; `refreshesStarted`: refreshes the
 *   intake started, from the histories and the due purchases together.
 * - `errors`: publishers, Apple environments, Google apps or due purchases that failed (the next run tries again).
 */
export interface ReconcileReport {
  publishers: number;
  historyPages: number;
  notificationsSeen: number;
  voidedPagesRead: number;
  voidedSeen: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  ignored: number;
  duePurchases: number;
  refreshesStarted: number;
  errors: number;
}

/** A refresh this run started, so a caller can follow it (the command line waits for its outcome). */
export interface StartedRefresh {
  publisherId: number;
  store: ReconciledStore;
  notificationId: string;
  purchaseKey: string;
  /** `history`: Apple's notification history; `voided`: Google's Voided Purchases list; `due`: the reconcile index. */
  source: 'history' | 'voided' | 'due';
}

export interface ReconcileOutcome {
  report: ReconcileReport;
  started: StartedRefresh[];
  /** The pending Google acknowledgements of this run; absent when the run has none to look at (no `acknowledgements` dependency). */
  acknowledgements?: AcknowledgementReport;
}

/**
 * Spaces store calls to at most `ratePerSecond` on average: each acquisition reserves `cost` calls'
 * worth of time after the previous reservation and waits until its own slot. No burst: the job
 * is in no hurry, and the stores count per app whatever else the service is calling at the moment.
 */
export class RateLimiter {
  private nextSlotMs = 0;

  constructor(
    private readonly ratePerSecond: number,
    private readonly clock: Clock,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
  }

  /** Resolves when `cost` calls may be made without exceeding the rate. */
  async acquire(cost = 1): Promise<void> {
    const now = this.clock.now().getTime();
    const slot = Math.max(now, this.nextSlotMs);
    // Reserved before waiting, so concurrent callers queue behind each other instead of sharing a slot.
    this.nextSlotMs = slot + (cost * 1000) / this.ratePerSecond;
    if (slot > now) await this.sleep(slot - now);
  }
}

interface Run {
  deps: ReconcileDeps;
  options: ReconcileOptions;
  report: ReconcileReport;
  started: StartedRefresh[];
  /** Per publisher and store (`<publisherId>#<store>`): each store has its own quota. */
  limiters: Map<string, RateLimiter>;
  publishers: Map<number, Publisher | undefined>;
}

/** The time span a catch-up reads of a store history. */
interface ReadWindow {
  startDate: Date;
  endDate: Date;
}

/**
 * One store history the reconciliation reads in windows from a cursor: Apple's Get Notification
 * History of one environment, or Google's Voided Purchases list of one app.
 */
interface HistoryFeed {
  scope: CursorScope;
  /** What it reads, for the log. */
  name: string;
  /** How far back the store answers. */
  keptDays: number;
  /** One page of the window (`token`: the next page of the same window); what to hand over and the next page's token. */
  read(window: ReadWindow, token: string | undefined): Promise<{ handOver(): Promise<void>; nextToken: string | undefined }>;
  /** The store refused the page token: the window is read again from its first page. */
  tokenRefused(error: unknown): boolean;
}

/**
 * The scheduled reconciliation (deployed: a scheduled Lambda; local: at start-up and on a timer;
 * `iap-sync reconcile`): a purchase whose notifications were lost still converges.
 *
 * 1. History catch-up, the main path, from where the previous run ended (a first run looks back
 *    `firstLookbackSeconds`), page by page:
 *    - per publisher with an Apple configuration and per configured environment, Apple's Get
 *      Notification History. Every notification goes the route's own way
 *      (receiveAppleNotification: the same decoder, the same intake);
 *    - per publisher with a Google configuration and per app (package name), Google's Voided
 *      Purchases list (30 days at most). Every voided order becomes a `VOIDED_PURCHASE` notice
 *      naming its purchase token and app, as a `voidedPurchaseNotification` would.
 *    The ones the routes received are `duplicate` (the intake is idempotent on the notification
 *    id), the lost ones are `accepted` and re-read by the workflow. A cursor moves only after a
 *    whole page was handed over, so a failure re-reads, never skips.
 * 2. Due purchases, the belt to the braces: purchases of the reconcile index (Apple and Google)
 *    whose period (plus grace) ended a margin ago and that nothing has rewritten since get a
 *    made-up notice (`RECONCILE`), so the workflow re-reads them from the store; each is then
 *    postponed with a growing back-off (a write of the purchase places it anew).
 *
 * 0. First, because Google's three days are running: Google acknowledgements the workflow could
 *    not get through are asked again (acknowledgePending), until Google confirms or the three days
 *    end (given up, logged as an error and alarmed).
 *
 * Store calls stay within `appleRequestsPerSecond` / `googleRequestsPerSecond` per publisher and
 * store, the refreshes it starts included. A failing publisher, environment, app or purchase is
 * counted and logged; the others go on.
 */
export async function reconcilePurchases(deps: ReconcileDeps, options: ReconcileOptions): Promise<ReconcileOutcome> {
  const run: Run = {
    deps,
    options,
    report: {
      publishers: 0,
      historyPages: 0,
      notificationsSeen: 0,
      voidedPagesRead: 0,
      voidedSeen: 0,
      accepted: 0,
      duplicates: 0,
      rejected: 0,
      ignored: 0,
      duePurchases: 0,
      refreshesStarted: 0,
      errors: 0,
    },
    started: [],
    limiters: new Map(),
    publishers: new Map(),
  };
  const acknowledgements = deps.acknowledgements
    ? await acknowledgePending(
        {
          ...deps.acknowledgements,
          publishers: { getPublisher: (publisherId) => publisherOf(run, publisherId) },
          clock: deps.clock,
          logger: deps.logger,
        },
        {
          limit: options.acknowledgeLimit,
          retrySeconds: options.acknowledgeRetrySeconds,
          ...(options.publisherId !== undefined ? { publisherId: options.publisherId } : {}),
          ...(options.deadline !== undefined ? { deadline: options.deadline } : {}),
          beforeCall: (publisherId) => limiterOf(run, publisherId, 'google').acquire(),
        },
      )
    : undefined;
  const ids = options.publisherId !== undefined ? [options.publisherId] : await deps.publishers.listPublisherIds();
  for (const publisherId of ids) {
    if (pastDeadline(run)) break;
    const publisher = await publisherOf(run, publisherId);
    if (!publisher?.apple && !publisher?.google) continue;
    run.report.publishers += 1;
    for (const feed of feedsOf(run, publisher)) {
      if (pastDeadline(run)) break;
      try {
        await catchUp(run, publisherId, feed);
      } catch (error) {
        run.report.errors += 1;
        deps.logger.warn(`${feed.name} catch-up failed; the next run goes on from the cursor`, { publisherId, ...feed.scope, error });
      }
    }
  }
  await reconcileDue(run);
  return { report: run.report, started: run.started, ...(acknowledgements ? { acknowledgements } : {}) };
}

function pastDeadline(run: Run): boolean {
  return run.options.deadline !== undefined && run.deps.clock.now().getTime() >= run.options.deadline.getTime();
}

/** The publisher, read once per run; a failed read is counted and reads as absent. */
async function publisherOf(run: Run, publisherId: number): Promise<Publisher | undefined> {
  if (run.publishers.has(publisherId)) return run.publishers.get(publisherId);
  let publisher: Publisher | undefined;
  try {
    publisher = await run.deps.publishers.getPublisher(publisherId);
  } catch (error) {
    run.report.errors += 1;
    run.deps.logger.warn('publisher could not be read for the reconciliation', { publisherId, error });
    return undefined;
  }
  run.publishers.set(publisherId, publisher);
  return publisher;
}

/** One limiter per publisher and store: Apple's rate limits are per app, Google's quota is its own. */
function limiterOf(run: Run, publisherId: number, store: ReconciledStore): RateLimiter {
  const key = `${publisherId}#${store}`;
  let limiter = run.limiters.get(key);
  if (!limiter) {
    const rate = store === 'apple' ? run.options.appleRequestsPerSecond : run.options.googleRequestsPerSecond;
    limiter = new RateLimiter(rate, run.deps.clock, run.deps.sleep);
    run.limiters.set(key, limiter);
  }
  return limiter;
}

/** The histories of a publisher: Apple's per configured environment, then Google's per app. */
function feedsOf(run: Run, publisher: Publisher): HistoryFeed[] {
  const { apple, google } = publisher;
  return [
    ...(apple ? [...new Set(apple.environments)].map((environment) => appleFeed(run, publisher, apple, environment)) : []),
    ...(google ? google.profiles.map((profile) => googleFeed(run, publisher.publisherId, profile)) : []),
  ];
}

function appleFeed(run: Run, publisher: Publisher, apple: AppleConfig, environment: AppleEnvironment): HistoryFeed {
  return {
    scope: { store: 'apple', environment },
    name: 'notification history',
    keptDays: APPLE_HISTORY_DAYS,
    read: async (window, token) => {
      const page = await run.deps.history.page(apple, environment, window, token);
      run.report.historyPages += 1;
      return {
        nextToken: page.paginationToken,
        handOver: async () => {
          for (const signedPayload of page.signedPayloads) await handOver(run, publisher, signedPayload);
        },
      };
    },
    tokenRefused: (error) => error instanceof PaginationTokenRejectedError,
  };
}

function googleFeed(run: Run, publisherId: number, profile: GoogleProfile): HistoryFeed {
  return {
    scope: { store: 'google', packageName: profile.packageName },
    name: 'voided purchases',
    keptDays: GOOGLE_VOIDED_WINDOW_DAYS,
    read: async (window, token) => {
      const page = await run.deps.google.listVoided(profile, { startTime: window.startDate, endTime: window.endDate }, token);
      run.report.voidedPagesRead += 1;
      return {
        nextToken: page.nextPageToken,
        handOver: async () => {
          for (const voided of page.purchases) await handOverVoided(run, publisherId, profile.packageName, voided);
        },
      };
    },
    // Google answers 400 (StoreRejectedError) both to a page token it no longer takes and to any other
    // request it refuses: reading the window from its first page tells them apart, as a refusal of that one is thrown.
    tokenRefused: (error) => error instanceof StoreRejectedError,
  };
}

/** Where this run reads: the cursor's unfinished window, the window after it, or the first look-back. */
function startingCursor(run: Run, feed: HistoryFeed, stored: HistoryCursor | undefined, now: Date): HistoryCursor {
  const { options } = run;
  const oldest = now.getTime() - feed.keptDays * 86_400_000 + HISTORY_START_SAFETY_MS;
  const end = now.toISOString();
  if (options.since !== undefined) return { startDate: new Date(Math.max(options.since.getTime(), oldest)).toISOString(), endDate: end };
  let start: number;
  if (stored?.paginationToken !== undefined) {
    if (Date.parse(stored.startDate) >= oldest) return stored;
    // An unfinished window reaching back beyond what the store keeps: the store would refuse it, so
    // what is left of it is read again from its start (clamped below), up to now.
    start = Date.parse(stored.startDate);
  } else {
    start = stored ? Date.parse(stored.endDate) - options.overlapSeconds * 1000 : now.getTime() - options.firstLookbackSeconds * 1000;
  }
  if (start < oldest) {
    run.deps.logger.warn(`${feed.name} older than the store's ${feed.keptDays} days cannot be caught up`, { ...feed.scope, from: new Date(start).toISOString() });
  }
  return { startDate: new Date(Math.max(start, oldest)).toISOString(), endDate: end };
}

async function catchUp(run: Run, publisherId: number, feed: HistoryFeed): Promise<void> {
  const { deps, options } = run;
  const stored = options.since === undefined ? await deps.reconcile.getCursor(publisherId, feed.scope) : undefined;
  let cursor = startingCursor(run, feed, stored, deps.clock.now());
  if (Date.parse(cursor.startDate) >= Date.parse(cursor.endDate)) return;
  const window: ReadWindow = { startDate: new Date(cursor.startDate), endDate: new Date(cursor.endDate) };
  const limiter = limiterOf(run, publisherId, feed.scope.store);
  for (let pages = 0; pages < options.maxHistoryPages && !pastDeadline(run); pages += 1) {
    await limiter.acquire();
    let page;
    try {
      page = await feed.read(window, cursor.paginationToken);
    } catch (error) {
      if (!feed.tokenRefused(error) || cursor.paginationToken === undefined) throw error;
      // Read the window again from its first page: what comes twice is a duplicate, nothing is skipped.
      deps.logger.warn(`the store refused the page token; the ${feed.name} window is read from its start`, { publisherId, ...feed.scope, error });
      cursor = { startDate: cursor.startDate, endDate: cursor.endDate };
      continue;
    }
    await page.handOver();
    // The whole page is with the intake: only now may the cursor say so.
    cursor = { startDate: cursor.startDate, endDate: cursor.endDate, ...(page.nextToken !== undefined ? { paginationToken: page.nextToken } : {}) };
    if (options.since === undefined) await deps.reconcile.saveCursor(publisherId, feed.scope, cursor);
    if (page.nextToken === undefined) return;
  }
}

/**
 * One notification from the history, handed over exactly as the route would: verified with the
 * publisher's configuration and given to the intake. The publisher is the one already read.
 * @throws StoreUnavailableError when Apple's certificate status could not be checked (the page is read again next run).
 */
async function handOver(run: Run, publisher: Publisher, signedPayload: string): Promise<void> {
  const { deps, report } = run;
  report.notificationsSeen += 1;
  let handed: PurchaseChangeNotice | undefined;
  const intake: NoticeIntake = {
    accept: async (notice) => {
      const outcome = await deps.intake.accept(notice);
      handed = notice;
      return outcome;
    },
  };
  let outcome;
  try {
    outcome = await receiveAppleNotification(
      { publishers: knownPublisher(publisher, deps.publishers), decoder: deps.decoder, intake, logger: deps.logger },
      { publisherId: publisher.publisherId, signedPayload },
    );
  } catch (error) {
    // receiveAppleNotification answers the route's codes: NOTIF0001 not genuine for this app, S0002 Apple's OCSP down.
    if (error instanceof ApiError && error.code === 'NOTIF0001') {
      report.rejected += 1;
      return;
    }
    if (error instanceof ApiError && error.code === 'S0002') throw new StoreUnavailableError('Apple certificate status could not be checked', { cause: error });
    throw error;
  }
  if ((outcome === 'accepted' || outcome === 'duplicate') && handed) await counted(run, handed, outcome, 'history');
  else report.ignored += 1;
}

/**
 * One order of Google's Voided Purchases list, handed over as the push route hands over a
 * `voidedPurchaseNotification`: a notice naming the purchase token and its app, which the workflow
 * re-reads (the notice type tells a refund from a lapse, since Google reads both as expired).
 */
async function handOverVoided(run: Run, publisherId: number, packageName: string, voided: VoidedPurchase): Promise<void> {
  run.report.voidedSeen += 1;
  const notice: PurchaseChangeNotice = {
    publisherId,
    store: 'google',
    // One notice per voided order: listed again (the overlap, a re-read page) it is a duplicate.
    notificationId: `voided#${voided.purchaseToken}#${voided.orderId}`,
    notificationType: GOOGLE_VOIDED_NOTICE_TYPE,
    // The order voided: a subscription's renewal orders share its token.
    ...(voided.orderId !== '' ? { subtype: voided.orderId } : {}),
    purchaseKey: voided.purchaseToken,
    packageName,
    sentAt: voided.voidedAt,
  };
  await counted(run, notice, await run.deps.intake.accept(notice), 'voided');
}

/** Counts what the intake answered for a notice a store listed; an accepted one started a refresh, whose store calls are reserved. */
async function counted(run: Run, notice: PurchaseChangeNotice, outcome: 'accepted' | 'duplicate', source: StartedRefresh['source']): Promise<void> {
  if (outcome === 'duplicate') {
    run.report.duplicates += 1;
    return;
  }
  run.report.accepted += 1;
  refreshStarted(run, notice, source);
  await limiterOf(run, notice.publisherId, notice.store).acquire(REFRESH_STORE_CALLS[notice.store]);
}

function refreshStarted(run: Run, notice: PurchaseChangeNotice, source: StartedRefresh['source']): void {
  run.report.refreshesStarted += 1;
  run.started.push({ publisherId: notice.publisherId, store: notice.store, notificationId: notice.notificationId, purchaseKey: notice.purchaseKey, source });
}

/** The publisher repository with the publisher this run already read: no lookup per notification. */
function knownPublisher(publisher: Publisher, publishers: PublisherRepository): PublisherRepository {
  return {
    getPublisher: async (publisherId) => (publisherId === publisher.publisherId ? publisher : publishers.getPublisher(publisherId)),
    customerExists: (publisherId, customerId) => publishers.customerExists(publisherId, customerId),
    getOfferId: (publisherId, store, productId) => publishers.getOfferId(publisherId, store, productId),
  };
}

/** When a purchase is looked at again after `attempts` re-checks that left it in the index. */
export function nextCheck(now: Date, attempts: number, settings: Pick<ReconcileSettings, 'retryBaseSeconds' | 'retryMaxSeconds'>): Date {
  const seconds = Math.min(settings.retryBaseSeconds * 2 ** Math.min(attempts, 30), settings.retryMaxSeconds);
  return new Date(now.getTime() + seconds * 1000);
}

async function reconcileDue(run: Run): Promise<void> {
  const { deps, options, report } = run;
  if (pastDeadline(run)) return;
  const now = deps.clock.now();
  let due: DuePurchase[];
  try {
    due = await deps.reconcile.listDue(options.all === true ? END_OF_TIME : now, options.dueLimit, options.publisherId);
  } catch (error) {
    report.errors += 1;
    deps.logger.warn('due purchases could not be listed; the next run tries again', { error });
    return;
  }
  // Purchases this run's history already re-reads need no second refresh.
  const refreshing = new Set(run.started.map((s) => `${s.publisherId}#${s.store}#${s.purchaseKey}`));
  for (const purchase of due) {
    if (pastDeadline(run)) return;
    try {
      await reconcileOne(run, purchase, now, refreshing.has(`${purchase.publisherId}#${purchase.store}#${purchase.purchaseKey}`));
    } catch (error) {
      report.errors += 1;
      deps.logger.warn('due purchase not handed over; it stays due', { publisherId: purchase.publisherId, purchaseKey: purchase.purchaseKey, error });
    }
  }
}

async function reconcileOne(run: Run, purchase: DuePurchase, now: Date, alreadyRefreshing: boolean): Promise<void> {
  const { deps, options, report } = run;
  const publisher = await publisherOf(run, purchase.publisherId);
  if (!publisher?.[purchase.store]) {
    // Nothing can re-read it now (the store's configuration is missing): look again after the longest back-off.
    await deps.reconcile.postpone(purchase, new Date(now.getTime() + options.retryMaxSeconds * 1000));
    return;
  }
  report.duePurchases += 1;
  if (!alreadyRefreshing) {
    // Google: no packageName; the workflow's verification finds the app on the purchase record.
    const notice: PurchaseChangeNotice = {
      publisherId: purchase.publisherId,
      store: purchase.store,
      // One notice per due time: a run that dies before postponing hands it over again as a duplicate.
      notificationId: `reconcile#${purchase.purchaseKey}#${purchase.reconcileAt}`,
      notificationType: RECONCILE_NOTICE_TYPE,
      purchaseKey: purchase.purchaseKey,
      sentAt: now.toISOString(),
    };
    await limiterOf(run, purchase.publisherId, purchase.store).acquire(REFRESH_STORE_CALLS[purchase.store]);
    if ((await deps.intake.accept(notice)) === 'accepted') refreshStarted(run, notice, 'due');
  }
  // A refresh that changes the purchase rewrites it (and so its index entry); one that does not
  // would leave it due at once, every run: the back-off spaces the re-checks of a purchase the
  // store keeps in the same state (a long billing retry, an account hold).
  // `all` also re-checks purchases that are not due: they keep their place (their period's end).
  if (Date.parse(purchase.reconcileAt) <= now.getTime()) await deps.reconcile.postpone(purchase, nextCheck(now, purchase.attempts, options));
}
