import type { Clock } from '../../platform/clock';
import { ApiError, StoreUnavailableError } from '../../platform/errors';
import type { Logger } from '../../platform/logger';
import type { AppleEnvironment } from '../../stores/apple/config';
import { PaginationTokenRejectedError } from '../../stores/apple/notification-history';
import type { Publisher, PublisherRepository } from '../../tenants';
import type {
  AppleNotificationHistory,
  AppleNotificationVerifier,
  DuePurchase,
  HistoryCursor,
  NoticeIntake,
  PublisherDirectory,
  PurchaseChangeNotice,
  ReconcileRepository,
} from '../ports';
import { receiveAppleNotification } from './receive-apple-notification';

/** The notificationType of the notices the reconciliation makes up for due purchases (no store sent them). */
export const RECONCILE_NOTICE_TYPE = 'RECONCILE';

/**
 * Apple keeps 180 days of notification history and refuses an older start date (4000012); the
 * catch-up starts an hour inside that, so a request is never refused for a clock difference.
 * https://developer.apple.com/documentation/appstoreserverapi/get-notification-history
 */
export const APPLE_HISTORY_DAYS = 180;
const HISTORY_START_SAFETY_MS = 3600_000;

/**
 * Store calls one started refresh costs the publisher's app: Get Transaction Info and Get All
 * Subscription Statuses (AppleStoreVerifier). Counted against the rate when the refresh is started,
 * since the workflow makes them moments later.
 */
export const REFRESH_STORE_CALLS = 2;

/** What the reconciliation needs. */
export interface ReconcileDeps {
  /** Publishers by id (their Apple configuration) and the list of all of them. */
  publishers: PublisherRepository & PublisherDirectory;
  history: AppleNotificationHistory;
  /** The same decoder the notification route verifies with. */
  decoder: AppleNotificationVerifier;
  intake: NoticeIntake;
  reconcile: ReconcileRepository;
  clock: Clock;
  /** Waits for the rate limiter (a fake in tests). */
  sleep: (ms: number) => Promise<void>;
  logger: Logger;
}

/** Settings of one run; the defaults are {@link DEFAULT_RECONCILE_SETTINGS}. */
export interface ReconcileSettings {
  /** Where a catch-up without a cursor (the first run) starts: this long before now. */
  firstLookbackSeconds: number;
  /**
   * A finished window's next one starts this long before its end: a notification Apple signed just
   * before the end but listed in its history a moment later is still read. Re-reading is harmless
   * (the intake answers `duplicate`); a gap is not.
   */
  overlapSeconds: number;
  /** Store calls per second per publisher's app (Apple allows more in production; sandbox less). */
  appleRequestsPerSecond: number;
  /** History pages per publisher and environment per run; the cursor keeps the rest for the next run. */
  maxHistoryPages: number;
  /** Due purchases handed over per run; the rest stays due for the next run. */
  dueLimit: number;
  /** After a re-check that changed nothing, the next one comes this long later, doubling per attempt… */
  retryBaseSeconds: number;
  /** …up to this. */
  retryMaxSeconds: number;
}

export const DEFAULT_RECONCILE_SETTINGS: Readonly<ReconcileSettings> = {
  firstLookbackSeconds: 7 * 86_400,
  overlapSeconds: 900,
  appleRequestsPerSecond: 10,
  maxHistoryPages: 100,
  dueLimit: 200,
  retryBaseSeconds: 3600,
  retryMaxSeconds: 7 * 86_400,
};

/** One run: the settings, and what this invocation asks for. */
export interface ReconcileOptions extends ReconcileSettings {
  /** Only this publisher (the command line); otherwise every publisher with an Apple configuration. */
  publisherId?: number;
  /**
   * Read the history from here to now instead of from the cursor; the cursor is then neither read
   * nor moved (an explicit look-back must not make the scheduled run skip what lies between).
   */
  since?: Date;
  /** Start no more pages or due purchases after this (the Lambda's remaining time). */
  deadline?: Date;
}

/**
 * What one run found and did.
 * - `publishers`: publishers with an Apple configuration whose history was read.
 * - `historyPages`, `notificationsSeen`: Get Notification History pages and the notifications on them.
 * - `accepted`: notifications the intake had not recorded (lost ones), now processed; `duplicates`:
 *   recorded before; `rejected`: not verifiable for the publisher's app; `ignored`: genuine but naming
 *   no purchase (TEST, summary).
 * - `duePurchases`: purchases of the reconcile index handed over; `refreshesStarted`: refreshes the
 *   intake started, from the history and the due purchases together.
 * - `errors`: publishers/environments or due purchases that failed (the next run tries again).
 */
export interface ReconcileReport {
  publishers: number;
  historyPages: number;
  notificationsSeen: number;
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
  store: 'apple' | 'google';
  notificationId: string;
  purchaseKey: string;
  source: 'history' | 'due';
}

export interface ReconcileOutcome {
  report: ReconcileReport;
  started: StartedRefresh[];
}

/**
 * Spaces store calls to at most `ratePerSecond` on average: each acquisition reserves `cost` calls'
 * worth of time after the previous reservation and waits until its own slot. No burst: the job
 * is in no hurry, and Apple counts per app whatever else the service is calling at the moment.
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
  limiters: Map<number, RateLimiter>;
  publishers: Map<number, Publisher | undefined>;
}

/**
 * The scheduled reconciliation (deployed: a scheduled Lambda; local: at start-up and on a timer;
 * `iap-sync reconcile`): a purchase whose notifications were lost still converges.
 *
 * 1. Notification History catch-up, the main path: per publisher with an Apple configuration and
 *    per configured environment, Apple's Get Notification History from where the previous run
 *    ended (a first run looks back `firstLookbackSeconds`), page by page. Every notification goes
 *    the route's own way (receiveAppleNotification: the same decoder, the same intake): the ones
 *    the route received are `duplicate` (the intake is idempotent on notificationUUID), the lost
 *    ones are `accepted` and re-read by the workflow. The cursor moves only after a whole page
 *    was handed over, so a failure re-reads, never skips.
 * 2. Due purchases, the belt to the braces: purchases of the reconcile index whose period (plus
 *    grace) ended a margin ago and that nothing has rewritten since get a made-up notice
 *    (`RECONCILE`), so the workflow re-reads them from the store; each is then postponed with a
 *    growing back-off (a write of the purchase places it anew).
 *
 * Store calls stay within `appleRequestsPerSecond` per publisher's app, the refreshes it starts
 * included. A failing publisher or purchase is counted and logged; the others go on.
 */
export async function reconcilePurchases(deps: ReconcileDeps, options: ReconcileOptions): Promise<ReconcileOutcome> {
  const run: Run = {
    deps,
    options,
    report: { publishers: 0, historyPages: 0, notificationsSeen: 0, accepted: 0, duplicates: 0, rejected: 0, ignored: 0, duePurchases: 0, refreshesStarted: 0, errors: 0 },
    started: [],
    limiters: new Map(),
    publishers: new Map(),
  };
  const ids = options.publisherId !== undefined ? [options.publisherId] : await deps.publishers.listPublisherIds();
  for (const publisherId of ids) {
    if (pastDeadline(run)) break;
    const publisher = await publisherOf(run, publisherId);
    if (!publisher?.apple) continue;
    run.report.publishers += 1;
    for (const environment of new Set(publisher.apple.environments)) {
      if (pastDeadline(run)) break;
      try {
        await catchUpHistory(run, publisher, environment);
      } catch (error) {
        run.report.errors += 1;
        deps.logger.warn('notification history catch-up failed; the next run goes on from the cursor', { publisherId, environment, error });
      }
    }
  }
  await reconcileDue(run);
  return { report: run.report, started: run.started };
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

/** One limiter per publisher: Apple's rate limits are per app. */
function limiterOf(run: Run, publisherId: number): RateLimiter {
  let limiter = run.limiters.get(publisherId);
  if (!limiter) {
    limiter = new RateLimiter(run.options.appleRequestsPerSecond, run.deps.clock, run.deps.sleep);
    run.limiters.set(publisherId, limiter);
  }
  return limiter;
}

/** Where this run reads: the cursor's unfinished window, the window after it, or the first look-back. */
function startingCursor(run: Run, stored: HistoryCursor | undefined, now: Date): HistoryCursor {
  const { options } = run;
  const oldest = now.getTime() - APPLE_HISTORY_DAYS * 86_400_000 + HISTORY_START_SAFETY_MS;
  const end = now.toISOString();
  if (options.since !== undefined) return { startDate: new Date(Math.max(options.since.getTime(), oldest)).toISOString(), endDate: end };
  let start: number;
  if (stored?.paginationToken !== undefined) {
    if (Date.parse(stored.startDate) >= oldest) return stored;
    // An unfinished window reaching back beyond what Apple keeps: Apple would refuse it, so what is
    // left of it is read again from its start (clamped below), up to now.
    start = Date.parse(stored.startDate);
  } else {
    start = stored ? Date.parse(stored.endDate) - options.overlapSeconds * 1000 : now.getTime() - options.firstLookbackSeconds * 1000;
  }
  if (start < oldest) {
    run.deps.logger.warn('notification history before Apple\'s 180 days cannot be caught up', { from: new Date(start).toISOString() });
  }
  return { startDate: new Date(Math.max(start, oldest)).toISOString(), endDate: end };
}

async function catchUpHistory(run: Run, publisher: Publisher, environment: AppleEnvironment): Promise<void> {
  const { deps, options } = run;
  const apple = publisher.apple;
  if (!apple) return;
  const { publisherId } = publisher;
  const stored = options.since === undefined ? await deps.reconcile.getCursor(publisherId, environment) : undefined;
  let cursor = startingCursor(run, stored, deps.clock.now());
  if (Date.parse(cursor.startDate) >= Date.parse(cursor.endDate)) return;
  const window = { startDate: new Date(cursor.startDate), endDate: new Date(cursor.endDate) };
  const limiter = limiterOf(run, publisherId);
  for (let pages = 0; pages < options.maxHistoryPages && !pastDeadline(run); pages += 1) {
    await limiter.acquire();
    let page;
    try {
      page = await deps.history.page(apple, environment, window, cursor.paginationToken);
    } catch (error) {
      if (!(error instanceof PaginationTokenRejectedError) || cursor.paginationToken === undefined) throw error;
      // Read the window again from its first page: what comes twice is a duplicate, nothing is skipped.
      deps.logger.warn('apple refused the pagination token; the history window is read from its start', { publisherId, environment, error });
      cursor = { startDate: cursor.startDate, endDate: cursor.endDate };
      continue;
    }
    run.report.historyPages += 1;
    for (const signedPayload of page.signedPayloads) await handOver(run, publisher, signedPayload);
    // The whole page is with the intake: only now may the cursor say so.
    cursor = { startDate: cursor.startDate, endDate: cursor.endDate, ...(page.paginationToken !== undefined ? { paginationToken: page.paginationToken } : {}) };
    if (options.since === undefined) await deps.reconcile.saveCursor(publisherId, environment, cursor);
    if (page.paginationToken === undefined) return;
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
  if (outcome === 'duplicate') report.duplicates += 1;
  else if (outcome === 'accepted' && handed) {
    report.accepted += 1;
    report.refreshesStarted += 1;
    run.started.push({ publisherId: handed.publisherId, store: handed.store, notificationId: handed.notificationId, purchaseKey: handed.purchaseKey, source: 'history' });
    await limiterOf(run, publisher.publisherId).acquire(REFRESH_STORE_CALLS);
  } else report.ignored += 1;
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
    due = await deps.reconcile.listDue(now, options.dueLimit, options.publisherId);
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
  // Apple only for now: a Google refresh needs the package name, which the purchase item lacks.
  if (purchase.store !== 'apple' || !publisher?.apple) {
    // Nothing can re-read it now (store or configuration missing): look again after the longest back-off.
    await deps.reconcile.postpone(purchase, new Date(now.getTime() + options.retryMaxSeconds * 1000));
    return;
  }
  report.duePurchases += 1;
  if (!alreadyRefreshing) {
    const notice: PurchaseChangeNotice = {
      publisherId: purchase.publisherId,
      store: purchase.store,
      // One notice per due time: a run that dies before postponing hands it over again as a duplicate.
      notificationId: `reconcile#${purchase.purchaseKey}#${purchase.reconcileAt}`,
      notificationType: RECONCILE_NOTICE_TYPE,
      purchaseKey: purchase.purchaseKey,
      sentAt: now.toISOString(),
    };
    await limiterOf(run, purchase.publisherId).acquire(REFRESH_STORE_CALLS);
    const outcome = await deps.intake.accept(notice);
    if (outcome === 'accepted') {
      report.refreshesStarted += 1;
      run.started.push({ publisherId: notice.publisherId, store: notice.store, notificationId: notice.notificationId, purchaseKey: notice.purchaseKey, source: 'due' });
    }
  }
  // A refresh that changes the purchase rewrites it (and so its index entry); one that does not
  // would leave it due at once, every run: the back-off spaces the re-checks of a purchase the
  // store keeps in the same state (a long billing retry).
  await deps.reconcile.postpone(purchase, nextCheck(now, purchase.attempts, options));
}
