import { makeReconcileHandler, reconcileSettings } from '../../../lambdas/lifecycle/handlers/reconcile-purchases';
import {
  DEFAULT_RECONCILE_SETTINGS,
  RateLimiter,
  reconcilePurchases,
  type ReconcileDeps,
  type ReconcileOptions,
  type ReconcileReport,
} from '../../../lambdas/lifecycle/domain/reconcile-purchases';
import type {
  AppleNotificationHistory,
  AppleNotificationVerifier,
  CursorScope,
  DuePurchase,
  HistoryCursor,
  NoticeIntake,
  PurchaseChangeNotice,
  ReconcileRepository,
} from '../../../lambdas/lifecycle/ports';
import type { Clock } from '../../../lambdas/platform/clock';
import { METRIC } from '../../../lambdas/platform/metric-names';
import { DependencyUnavailableError, StoreRejectedError, StoreUnavailableError } from '../../../lambdas/platform/errors';
import type { AppleConfig, AppleEnvironment } from '../../../lambdas/stores/apple/config';
import { PaginationTokenRejectedError, type HistoryWindow, type NotificationHistoryPage } from '../../../lambdas/stores/apple/notification-history';
import { NotificationRejectedError, type DecodedAppleNotification } from '../../../lambdas/stores/apple/notifications';
import type { VoidedPurchase } from '../../../lambdas/stores/google/facts';
import { GOOGLE_VOIDED_NOTICE_TYPE } from '../../../lambdas/stores/google/notice-types';
import type { Publisher } from '../../../lambdas/tenants';
import { FakeGoogleVoidedList } from '../../support/fakes';
import { appleConfig, FakePublishers, publisher, RecordingLogger } from './apple-notification-fixtures';

/*
 * The reconciliation with typed fakes of every port: Apple's history as pages of made-up payloads,
 * a decoder that reads them from a table, Google's voided purchases as pages, an intake idempotent
 * on notificationId like the real one, a table of cursors and due purchases, and a clock that only
 * moves when the limiter sleeps.
 */

const NOW = new Date('2026-03-01T12:00:00.000Z');
const DAY_MS = 86_400_000;
const APPLE = 1;
const BOTH = 2;
const NO_APPLE = 3;
const GOOGLE = 4;
/** Apple and Google. */
const ALL = 5;

class FakeClock implements Clock {
  ms = NOW.getTime();
  readonly sleeps: number[] = [];
  now(): Date {
    return new Date(this.ms);
  }
  readonly sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.ms += ms;
  };
}

/** Payload names the decoder knows: `n:<uuid>:<originalTransactionId>`, `test:<uuid>`, `bad`, `ocsp`. */
class FakeDecoder implements AppleNotificationVerifier {
  readonly decoded: string[] = [];
  async decode(config: AppleConfig, signedPayload: string): Promise<DecodedAppleNotification> {
    this.decoded.push(signedPayload);
    const [kind, uuid = '', original] = signedPayload.split(':');
    if (kind === 'bad') throw new NotificationRejectedError('bad signature');
    if (kind === 'ocsp') throw new StoreUnavailableError('OCSP responder down');
    const base = { notificationUUID: uuid, environment: config.environments[0] ?? 'Sandbox', bundleId: config.bundleId, signedDate: NOW.toISOString() } as const;
    if (kind === 'test') return { ...base, notificationType: 'TEST' };
    return { ...base, notificationType: 'DID_RENEW', transactionId: `${original ?? ''}9`, originalTransactionId: original ?? '' };
  }
}

/** One call of the history port, as made. */
interface HistoryCall {
  publisherId: number;
  environment: AppleEnvironment;
  window: { startDate: string; endDate: string };
  token: string | undefined;
  at: number;
}

/** Apple's history per bundle id and environment: pages chained by tokens `p1`, `p2`…; `failures` are thrown once each, in order. */
class FakeHistory implements AppleNotificationHistory {
  readonly calls: HistoryCall[] = [];
  readonly pages = new Map<string, string[][]>();
  readonly failures: Error[] = [];
  constructor(private readonly clock: FakeClock) {}

  set(bundleId: string, environment: AppleEnvironment, pages: string[][]): void {
    this.pages.set(`${bundleId}|${environment}`, pages);
  }

  async page(config: AppleConfig, environment: AppleEnvironment, window: HistoryWindow, token: string | undefined): Promise<NotificationHistoryPage> {
    const publisherId = Number(config.bundleId.split('.').at(-1));
    this.calls.push({ publisherId, environment, window: { startDate: window.startDate.toISOString(), endDate: window.endDate.toISOString() }, token, at: this.clock.ms });
    const failure = this.failures.shift();
    if (failure) throw failure;
    const pages = this.pages.get(`${config.bundleId}|${environment}`) ?? [[]];
    const index = token === undefined ? 0 : Number(token.slice(1));
    const payloads = pages[index] ?? [];
    return { signedPayloads: payloads, ...(index + 1 < pages.length ? { paginationToken: `p${index + 1}` } : {}) };
  }
}

/** Idempotent on notificationId like the real intake; `known` are the ones the route received; `failOn` throws for that id. */
class FakeIntake implements NoticeIntake {
  readonly notices: PurchaseChangeNotice[] = [];
  readonly outcomes: Array<'accepted' | 'duplicate'> = [];
  readonly known = new Set<string>();
  failOn: string | undefined;

  async accept(notice: PurchaseChangeNotice): Promise<'accepted' | 'duplicate'> {
    if (notice.notificationId === this.failOn) throw new DependencyUnavailableError('table throttled');
    this.notices.push(notice);
    const outcome = this.known.has(notice.notificationId) ? 'duplicate' : 'accepted';
    this.known.add(notice.notificationId);
    this.outcomes.push(outcome);
    return outcome;
  }
}

class FakeReconcile implements ReconcileRepository {
  readonly cursors = new Map<string, HistoryCursor>();
  /** Each save with how many notices the intake had taken by then. */
  readonly saves: Array<{ key: string; cursor: HistoryCursor; noticesHanded: number }> = [];
  due: DuePurchase[] = [];
  readonly listed: Array<{ now: string; limit: number; publisherId: number | undefined }> = [];
  readonly postponed: Array<{ purchaseKey: string; until: string }> = [];
  constructor(private readonly intake: FakeIntake) {}

  /** `<publisherId>|<environment>` (Apple) or `<publisherId>|<packageName>` (Google). */
  static key(publisherId: number, scope: CursorScope): string {
    return `${publisherId}|${scope.store === 'apple' ? scope.environment : scope.packageName}`;
  }
  async getCursor(publisherId: number, scope: CursorScope): Promise<HistoryCursor | undefined> {
    return this.cursors.get(FakeReconcile.key(publisherId, scope));
  }
  async saveCursor(publisherId: number, scope: CursorScope, cursor: HistoryCursor): Promise<void> {
    const key = FakeReconcile.key(publisherId, scope);
    this.cursors.set(key, cursor);
    this.saves.push({ key, cursor, noticesHanded: this.intake.notices.length });
  }
  async listDue(now: Date, limit: number, publisherId?: number): Promise<DuePurchase[]> {
    this.listed.push({ now: now.toISOString(), limit, publisherId });
    return this.due.filter((d) => publisherId === undefined || d.publisherId === publisherId).slice(0, limit);
  }
  async postpone(due: DuePurchase, until: Date): Promise<boolean> {
    this.postponed.push({ purchaseKey: due.purchaseKey, until: until.toISOString() });
    return true;
  }
}

class Directory extends FakePublishers {
  constructor(private readonly all: Publisher[]) {
    super(all);
  }
  async listPublisherIds(): Promise<number[]> {
    return this.all.map((p) => p.publisherId);
  }
}

/** Bundle ids end with the publisher id, so the fake history knows whose app asks. */
const apple = (publisherId: number, environments: AppleEnvironment[] = ['Sandbox']) => appleConfig({ bundleId: `com.example.app${publisherId}.${publisherId}`, environments });

function setup(publishers: Publisher[] = [publisher(APPLE, apple(APPLE)), publisher(NO_APPLE, undefined)]) {
  const clock = new FakeClock();
  const history = new FakeHistory(clock);
  const google = new FakeGoogleVoidedList(clock);
  const decoder = new FakeDecoder();
  const intake = new FakeIntake();
  const reconcile = new FakeReconcile(intake);
  const logger = new RecordingLogger();
  const directory = new Directory(publishers);
  const deps: ReconcileDeps = { publishers: directory, history, decoder, google, intake, reconcile, clock, sleep: clock.sleep, logger };
  const run = (options: Partial<ReconcileOptions> = {}) => reconcilePurchases(deps, { ...DEFAULT_RECONCILE_SETTINGS, ...options });
  return { clock, history, google, decoder, intake, reconcile, logger, directory, deps, run };
}

const bundle = (publisherId: number) => apple(publisherId).bundleId;
const n = (uuid: string, original = '2000000000000001') => `n:${uuid}:${original}`;

/** A publisher with a Google profile per app (package names end with the publisher id), and Apple when asked. */
function googlePublisher(publisherId: number, apps: string[] = ['app'], withApple = false): Publisher {
  const profiles = apps.map((app) => ({ packageName: packageOf(publisherId, app), serviceAccountRef: `file:google-${publisherId}.json` }));
  return { ...publisher(publisherId, withApple ? apple(publisherId) : undefined), google: { profiles } };
}
const packageOf = (publisherId: number, app = 'app') => `com.example.${app}${publisherId}`;
const googleCursor = (publisherId: number, app = 'app') => FakeReconcile.key(publisherId, { store: 'google', packageName: packageOf(publisherId, app) });
const voided = (i: number, voidedAt = '2026-02-28T10:00:00.000Z'): VoidedPurchase => ({
  purchaseToken: `token.${i}`,
  orderId: `GPA.3300-0000-0000-0000${i}..0`,
  voidedAt,
  voidedSource: 0,
  voidedReason: 1,
});
const voidedId = (v: VoidedPurchase) => `voided#${v.purchaseToken}#${v.orderId}`;
const iso = (ms: number) => new Date(ms).toISOString();

describe('notification history catch-up', () => {
  it('pages through the history with the pagination token; lost notifications are accepted, received ones duplicates', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [
      [n('u1'), n('u2')],
      [n('u3', '2000000000000007'), n('u4')],
      [n('u5')],
    ]);
    for (const id of ['u1', 'u2', 'u4', 'u5']) t.intake.known.add(id);

    const { report, started } = await t.run();

    expect(t.history.calls.map((c) => c.token)).toStrictEqual([undefined, 'p1', 'p2']);
    // One window for the whole run: Apple wants the same request with a token.
    expect(new Set(t.history.calls.map((c) => JSON.stringify(c.window))).size).toBe(1);
    expect(t.intake.notices.map((notice) => [notice.notificationId, notice.purchaseKey])).toEqual([
      ['u1', '2000000000000001'],
      ['u2', '2000000000000001'],
      ['u3', '2000000000000007'],
      ['u4', '2000000000000001'],
      ['u5', '2000000000000001'],
    ]);
    expect(t.intake.outcomes).toEqual(['duplicate', 'duplicate', 'accepted', 'duplicate', 'duplicate']);
    expect(t.intake.notices[2]).toEqual({
      publisherId: APPLE,
      store: 'apple',
      notificationId: 'u3',
      notificationType: 'DID_RENEW',
      purchaseKey: '2000000000000007',
      transactionId: '20000000000000079',
      sentAt: NOW.toISOString(),
    });
    expect(report).toEqual({
      publishers: 1,
      historyPages: 3,
      notificationsSeen: 5,
      voidedPagesRead: 0,
      voidedSeen: 0,
      accepted: 1,
      duplicates: 4,
      rejected: 0,
      ignored: 0,
      duePurchases: 0,
      refreshesStarted: 1,
      errors: 0,
    });
    expect(started).toEqual([{ publisherId: APPLE, store: 'apple', notificationId: 'u3', purchaseKey: '2000000000000007', source: 'history' }]);
    // The publisher without an Apple configuration is not asked about.
    expect(t.history.calls.every((c) => c.publisherId === APPLE)).toBe(true);
  });

  it('honours a configured first look-back and never asks for more than Apple keeps (180 days)', async () => {
    const t = setup();
    await t.run({ firstLookbackSeconds: 2 * 86_400 });
    expect(t.history.calls[0]?.window.startDate).toBe(new Date(NOW.getTime() - 2 * DAY_MS).toISOString());

    const old = setup();
    old.reconcile.cursors.set(`${APPLE}|Sandbox`, { startDate: '2025-01-01T00:00:00.000Z', endDate: '2025-01-02T00:00:00.000Z' });
    await old.run();
    expect(Date.parse(old.history.calls[0]?.window.startDate ?? '')).toBe(NOW.getTime() - 180 * DAY_MS + 3600_000);
    expect(old.logger.entries.some((e) => e.level === 'warn' && /180 days/.test(e.message))).toBe(true);
  });

  it('an unfinished window older than Apple keeps is read again from the oldest start Apple allows, up to now', async () => {
    const t = setup();
    t.reconcile.cursors.set(`${APPLE}|Sandbox`, { startDate: '2025-08-01T00:00:00.000Z', endDate: '2026-02-01T00:00:00.000Z', paginationToken: 'p7' });
    await t.run();
    expect(t.history.calls.map((c) => [c.token, c.window])).toStrictEqual([
      [undefined, { startDate: new Date(NOW.getTime() - 180 * DAY_MS + 3600_000).toISOString(), endDate: NOW.toISOString() }],
    ]);
  });

  it('--since reads from that time and leaves the cursor alone', async () => {
    const t = setup();
    t.reconcile.cursors.set(`${APPLE}|Sandbox`, { startDate: '2026-02-28T00:00:00.000Z', endDate: '2026-03-01T11:00:00.000Z' });
    await t.run({ since: new Date('2026-02-20T00:00:00.000Z'), publisherId: APPLE });
    expect(t.history.calls[0]?.window.startDate).toBe('2026-02-20T00:00:00.000Z');
    expect(t.reconcile.saves).toEqual([]);
  });

  it('counts decode rejections and ignores TEST notifications without stopping the page', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1'), 'bad', 'test:t1', n('u2')]]);
    const { report } = await t.run();
    expect(report).toMatchObject({ notificationsSeen: 4, accepted: 2, rejected: 1, ignored: 1, errors: 0 });
    expect(t.intake.notices.map((notice) => notice.notificationId)).toEqual(['u1', 'u2']);
    expect(t.reconcile.saves).toHaveLength(1);
  });

  it('an unverifiable notification (OCSP down) fails the page: counted, cursor not moved past it', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1')], ['ocsp', n('u2')]]);
    const { report } = await t.run();
    expect(report).toMatchObject({ historyPages: 2, accepted: 1, errors: 1 });
    expect(t.reconcile.saves.map((s) => s.cursor.paginationToken ?? 'none')).toEqual(['p1']);
    expect(t.intake.notices.map((notice) => notice.notificationId)).toEqual(['u1']);
  });

  it('reads each configured environment with its own cursor; a failing one does not stop the other', async () => {
    const t = setup([publisher(BOTH, apple(BOTH, ['Production', 'Sandbox']))]);
    t.history.set(bundle(BOTH), 'Production', [[n('p1')]]);
    t.history.set(bundle(BOTH), 'Sandbox', [[n('s1')]]);
    t.history.failures.push(new StoreUnavailableError('Apple answered 429'));
    const { report } = await t.run();
    expect(t.history.calls.map((c) => c.environment)).toEqual(['Production', 'Sandbox']);
    expect(report).toMatchObject({ publishers: 1, errors: 1, accepted: 1 });
    expect([...t.reconcile.cursors.keys()]).toEqual([`${BOTH}|Sandbox`]);
    expect(t.logger.entries.some((e) => e.level === 'warn' && e.fields.environment === 'Production')).toBe(true);
  });

  it('starts no page after the deadline', async () => {
    const t = setup([publisher(APPLE, apple(APPLE)), publisher(BOTH, apple(BOTH))]);
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1')], [n('u2')], [n('u3')]]);
    // 10 per second: each page waits 100 ms, each accepted notice reserves two calls (200 ms).
    const { report } = await t.run({ deadline: new Date(NOW.getTime() + 250) });
    expect(t.history.calls.length).toBeLessThan(3);
    expect(t.history.calls.every((c) => c.publisherId === APPLE)).toBe(true);
    expect(report.historyPages).toBe(t.history.calls.length);
  });
});

/** One store's history as the catch-up tests drive it: pages of entries numbered from 1, and the calls made. */
interface FeedUnderTest {
  publishers: () => Publisher[];
  cursorKey: () => string;
  /** Pages of entries `i`, each a notice the intake gets as `noticeId(i)`. */
  fill: (t: ReturnType<typeof setup>, pages: number[][]) => void;
  noticeId: (i: number) => string;
  /** The token of page `i` (counted from 0). */
  token: (i: number) => string;
  calls: (t: ReturnType<typeof setup>) => Array<{ token: string | undefined; startDate: string; endDate: string }>;
  pagesRead: (report: ReconcileReport) => number;
  /** What the store throws for a page token it no longer takes. */
  refusal: () => Error;
  /** Makes the store's next call throw `error`. */
  failNext: (t: ReturnType<typeof setup>, error: Error) => void;
}

const FEEDS: Record<'apple' | 'google', FeedUnderTest> = {
  apple: {
    publishers: () => [publisher(APPLE, apple(APPLE))],
    cursorKey: () => `${APPLE}|Sandbox`,
    fill: (t, pages) => t.history.set(bundle(APPLE), 'Sandbox', pages.map((page) => page.map((i) => n(`u${i}`)))),
    noticeId: (i) => `u${i}`,
    token: (i) => `p${i}`,
    calls: (t) => t.history.calls.map((c) => ({ token: c.token, ...c.window })),
    pagesRead: (report) => report.historyPages,
    refusal: () => new PaginationTokenRejectedError('expired'),
    failNext: (t, error) => void t.history.failures.push(error),
  },
  google: {
    publishers: () => [googlePublisher(GOOGLE)],
    cursorKey: () => googleCursor(GOOGLE),
    fill: (t, pages) => t.google.set(packageOf(GOOGLE), pages.map((page) => page.map((i) => voided(i)))),
    noticeId: (i) => voidedId(voided(i)),
    token: (i) => `v${i}`,
    calls: (t) => t.google.calls.map((c) => ({ token: c.pageToken, startDate: c.window.startTime, endDate: c.window.endTime })),
    pagesRead: (report) => report.voidedPagesRead,
    // Google answers 400 to a token it no longer takes, as to any request it refuses.
    refusal: () => new StoreRejectedError('Google rejected the request to list voided purchases (400)'),
    failNext: (t, error) => void t.google.failures.push(error),
  },
};

describe.each(['apple', 'google'] as const)('catch-up of a store history (%s)', (store) => {
  const feed = FEEDS[store];
  const start = () => setup(feed.publishers());

  it('moves the cursor only after a whole page was handed over, and the next run resumes at that page', async () => {
    const t = start();
    feed.fill(t, [[1, 2], [3, 4], [5]]);
    t.intake.failOn = feed.noticeId(4);

    const first = await t.run();

    expect(feed.pagesRead(first.report)).toBe(2);
    expect(first.report).toMatchObject({ accepted: 3, errors: 1 });
    // Saved once, after page 1 (two notices handed), pointing at page 2; never past the page that failed.
    expect(t.reconcile.saves).toEqual([{ key: feed.cursorKey(), cursor: expect.objectContaining({ paginationToken: feed.token(1) }), noticesHanded: 2 }]);
    const [firstCall] = feed.calls(t);
    const window = { startDate: firstCall?.startDate, endDate: firstCall?.endDate };

    t.intake.failOn = undefined;
    t.clock.ms += 3600_000;
    const second = await t.run();

    // Page 2 of the same window again: entry 3 is a duplicate now, 4 and 5 are new.
    expect(feed.calls(t).slice(2)).toEqual([
      { token: feed.token(1), ...window },
      { token: feed.token(2), ...window },
    ]);
    expect(feed.pagesRead(second.report)).toBe(2);
    expect(second.report).toMatchObject({ accepted: 2, duplicates: 1, errors: 0 });
    expect(t.reconcile.cursors.get(feed.cursorKey())).toEqual(window);
  });

  it('looks back 7 days on a first run, then starts where the last window ended (minus the overlap)', async () => {
    const t = start();
    await t.run();
    const first = { startDate: iso(NOW.getTime() - 7 * DAY_MS), endDate: NOW.toISOString() };
    expect(feed.calls(t)).toEqual([{ token: undefined, ...first }]);
    expect(t.reconcile.cursors.get(feed.cursorKey())).toEqual(first);

    t.clock.ms += 3600_000;
    await t.run({ overlapSeconds: 600 });
    expect(feed.calls(t)[1]).toEqual({ token: undefined, startDate: iso(NOW.getTime() - 600_000), endDate: iso(NOW.getTime() + 3600_000) });
  });

  it('reads the window again from its first page when the store refuses the page token', async () => {
    const t = start();
    const window = { startDate: '2026-03-01T00:00:00.000Z', endDate: '2026-03-01T06:00:00.000Z' };
    t.reconcile.cursors.set(feed.cursorKey(), { ...window, paginationToken: feed.token(7) });
    const refusal = feed.refusal();
    feed.failNext(t, refusal);
    feed.fill(t, [[1]]);

    const { report } = await t.run();

    expect(feed.calls(t)).toEqual([
      { token: feed.token(7), ...window },
      { token: undefined, ...window },
    ]);
    expect(report).toMatchObject({ accepted: 1, errors: 0 });
    expect(t.reconcile.cursors.get(feed.cursorKey())).toEqual(window);
    expect(t.logger.entries).toContainEqual(expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ store, error: refusal }) }));
  });

  it('stops after maxHistoryPages and keeps the page token for the next run', async () => {
    const t = start();
    feed.fill(t, [[1], [2], [3]]);
    await t.run({ maxHistoryPages: 2 });
    expect(feed.calls(t)).toHaveLength(2);
    expect(t.reconcile.cursors.get(feed.cursorKey())?.paginationToken).toBe(feed.token(2));
  });
});

describe('rate limit', () => {
  it('keeps history calls of one app at or below the configured rate, refreshes it starts included', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', Array.from({ length: 12 }, (_, i) => [n(`u${i}`)]));
    for (let i = 0; i < 12; i += 1) if (i % 3 !== 0) t.intake.known.add(`u${i}`);
    await t.run({ appleRequestsPerSecond: 5 });

    const at = t.history.calls.map((c) => c.at);
    expect(at).toHaveLength(12);
    for (let i = 1; i < at.length; i += 1) expect((at[i] ?? 0) - (at[i - 1] ?? 0)).toBeGreaterThanOrEqual(200);
    // 12 pages + 4 accepted notices × 2 store calls = 20 calls at 5/s: at least (20 − 1) / 5 s in all.
    const elapsed = t.clock.ms - NOW.getTime();
    expect(elapsed).toBeGreaterThanOrEqual(19 * 200 - 200);
    expect(elapsed).toBeLessThanOrEqual(20 * 200);
  });

  it('RateLimiter: reservations are spaced by cost / rate, including concurrent callers', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(10, clock, clock.sleep);
    await limiter.acquire();
    expect(clock.ms).toBe(NOW.getTime());
    await limiter.acquire(3);
    expect(clock.ms).toBe(NOW.getTime() + 100);
    await limiter.acquire();
    expect(clock.ms).toBe(NOW.getTime() + 400);

    // Concurrent callers at the same instant (a clock that stands still): each waits for its own slot.
    const waits: number[] = [];
    const concurrent = new RateLimiter(4, { now: () => NOW }, async (ms) => void waits.push(ms));
    await Promise.all([concurrent.acquire(), concurrent.acquire(), concurrent.acquire()]);
    expect(waits).toEqual([250, 500]);
    expect(() => new RateLimiter(0, clock, clock.sleep)).toThrow(RangeError);
  });
});

describe('due purchases', () => {
  const due = (purchaseKey: string, attempts = 0, publisherId = APPLE): DuePurchase => ({
    publisherId,
    store: 'apple',
    purchaseKey,
    reconcileAt: '2026-03-01T10:00:00.000Z',
    attempts,
  });

  it('hands each due purchase to the intake as a RECONCILE notice and postpones it with a growing back-off', async () => {
    const t = setup();
    t.reconcile.due = [due('2000000000000001'), due('2000000000000002', 3), due('2000000000000003', 20)];
    const { report, started } = await t.run({ dueLimit: 50, retryBaseSeconds: 3600, retryMaxSeconds: 7 * 86_400 });

    expect(t.reconcile.listed).toEqual([{ now: NOW.toISOString(), limit: 50, publisherId: undefined }]);
    expect(t.intake.notices).toEqual([
      {
        publisherId: APPLE,
        store: 'apple',
        notificationId: 'reconcile#2000000000000001#2026-03-01T10:00:00.000Z',
        notificationType: 'RECONCILE',
        purchaseKey: '2000000000000001',
        sentAt: NOW.toISOString(),
      },
      expect.objectContaining({ notificationId: 'reconcile#2000000000000002#2026-03-01T10:00:00.000Z' }),
      expect.objectContaining({ notificationId: 'reconcile#2000000000000003#2026-03-01T10:00:00.000Z' }),
    ]);
    const delays = t.reconcile.postponed.map((p) => Date.parse(p.until) - NOW.getTime());
    // After the limiter's waits (2 store calls each at 10/s), from the run's `now`: 1 h, 8 h, capped at 7 days.
    expect(delays).toEqual([3600_000, 8 * 3600_000, 7 * DAY_MS]);
    expect(report).toMatchObject({ duePurchases: 3, refreshesStarted: 3 });
    expect(started.map((s) => s.source)).toEqual(['due', 'due', 'due']);
  });

  it('a due purchase handed over before (the run died before postponing) is a duplicate and is postponed now', async () => {
    const t = setup();
    t.reconcile.due = [due('2000000000000001')];
    t.intake.known.add('reconcile#2000000000000001#2026-03-01T10:00:00.000Z');
    const { report } = await t.run();
    expect(report).toMatchObject({ duePurchases: 1, refreshesStarted: 0 });
    expect(t.reconcile.postponed).toHaveLength(1);
  });

  it('`all` re-checks purchases not yet due too, and leaves those in their place in the index', async () => {
    const t = setup();
    const later = { ...due('2000000000000002'), reconcileAt: new Date(NOW.getTime() + 20 * 86_400_000).toISOString() };
    t.reconcile.due = [due('2000000000000001'), later];
    const { report } = await t.run({ all: true, publisherId: APPLE });
    expect(t.reconcile.listed.at(-1)?.now).toBe('9999-12-31T23:59:59.999Z');
    expect(t.intake.notices.map((notice) => notice.purchaseKey)).toEqual(['2000000000000001', '2000000000000002']);
    expect(t.reconcile.postponed.map((p) => p.purchaseKey)).toEqual(['2000000000000001']);
    expect(report).toMatchObject({ duePurchases: 2, refreshesStarted: 2 });
  });

  it('does not refresh twice a purchase the history catch-up already re-reads', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1', '2000000000000001')]]);
    t.reconcile.due = [due('2000000000000001'), due('2000000000000002')];
    const { report } = await t.run();
    expect(t.intake.notices.map((notice) => notice.notificationId)).toEqual(['u1', 'reconcile#2000000000000002#2026-03-01T10:00:00.000Z']);
    expect(t.reconcile.postponed.map((p) => p.purchaseKey)).toEqual(['2000000000000001', '2000000000000002']);
    expect(report).toMatchObject({ accepted: 1, duePurchases: 2, refreshesStarted: 2 });
  });

  it('asks only for the publisher given, bounded by the limit; purchases of a publisher without Apple wait the longest back-off', async () => {
    const t = setup();
    t.reconcile.due = [due('2000000000000001', 0, NO_APPLE)];
    await t.run({ dueLimit: 7 });
    expect(t.intake.notices).toEqual([]);
    expect(t.reconcile.postponed.map((p) => Date.parse(p.until) - NOW.getTime())).toEqual([DEFAULT_RECONCILE_SETTINGS.retryMaxSeconds * 1000]);

    const one = setup();
    await one.run({ publisherId: APPLE, dueLimit: 7 });
    expect(one.reconcile.listed).toEqual([{ now: NOW.toISOString(), limit: 7, publisherId: APPLE }]);
  });

  it('a failing hand-over is counted; the purchase stays due (not postponed) and the others go on', async () => {
    const t = setup();
    t.reconcile.due = [due('2000000000000001'), due('2000000000000002')];
    t.intake.failOn = 'reconcile#2000000000000001#2026-03-01T10:00:00.000Z';
    const { report } = await t.run();
    expect(report).toMatchObject({ duePurchases: 2, refreshesStarted: 1, errors: 1 });
    expect(t.reconcile.postponed.map((p) => p.purchaseKey)).toEqual(['2000000000000002']);
  });
});

describe('Google voided purchases catch-up', () => {
  it('pages through each app\'s voided purchases and hands every voided order over as a VOIDED_PURCHASE notice', async () => {
    const t = setup([googlePublisher(GOOGLE), publisher(NO_APPLE, undefined)]);
    const [v1, v2, v3] = [voided(1), voided(2), voided(3, '2026-02-28T11:00:00.000Z')];
    t.google.set(packageOf(GOOGLE), [[v1, v2], [v3]]);
    // The push route received v2's voidedPurchaseNotification.
    t.intake.known.add(voidedId(v2));

    const { report, started } = await t.run();

    expect(t.google.calls.map((c) => [c.packageName, c.pageToken])).toEqual([
      [packageOf(GOOGLE), undefined],
      [packageOf(GOOGLE), 'v1'],
    ]);
    // One window for the whole run: Google wants the first page's window with a token.
    expect(new Set(t.google.calls.map((c) => JSON.stringify(c.window))).size).toBe(1);
    expect(t.intake.notices[2]).toStrictEqual({
      publisherId: GOOGLE,
      store: 'google',
      notificationId: `voided#token.3#${v3.orderId}`,
      notificationType: GOOGLE_VOIDED_NOTICE_TYPE,
      subtype: v3.orderId,
      purchaseKey: 'token.3',
      packageName: packageOf(GOOGLE),
      sentAt: '2026-02-28T11:00:00.000Z',
    });
    expect(t.intake.notices.map((notice) => notice.notificationId)).toEqual([v1, v2, v3].map(voidedId));
    expect(t.intake.outcomes).toEqual(['accepted', 'duplicate', 'accepted']);
    expect(report).toEqual({
      publishers: 1,
      historyPages: 0,
      notificationsSeen: 0,
      voidedPagesRead: 2,
      voidedSeen: 3,
      accepted: 2,
      duplicates: 1,
      rejected: 0,
      ignored: 0,
      duePurchases: 0,
      refreshesStarted: 2,
      errors: 0,
    });
    expect(started).toEqual([
      { publisherId: GOOGLE, store: 'google', notificationId: voidedId(v1), purchaseKey: 'token.1', source: 'voided' },
      { publisherId: GOOGLE, store: 'google', notificationId: voidedId(v3), purchaseKey: 'token.3', source: 'voided' },
    ]);
    // Neither publisher has Apple: Apple's history is not asked.
    expect(t.history.calls).toEqual([]);
  });

  it('reads Apple\'s history and Google\'s voided purchases of a publisher with both, each from its own cursor', async () => {
    const t = setup([googlePublisher(ALL, ['app'], true)]);
    t.history.set(bundle(ALL), 'Sandbox', [[n('u1')]]);
    t.google.set(packageOf(ALL), [[voided(1)]]);
    const { report } = await t.run();
    expect(report).toMatchObject({ publishers: 1, historyPages: 1, voidedPagesRead: 1, accepted: 2, refreshesStarted: 2, errors: 0 });
    expect([...t.reconcile.cursors.keys()]).toEqual([`${ALL}|Sandbox`, googleCursor(ALL)]);
  });

  it.each<[string, HistoryCursor | undefined, number]>([
    ['a first look-back longer than 30 days', undefined, 90 * 86_400],
    ['a cursor that ended 40 days ago', { startDate: '2026-01-10T00:00:00.000Z', endDate: '2026-01-20T00:00:00.000Z' }, 7 * 86_400],
    ['an unfinished window that began 40 days ago', { startDate: '2026-01-20T00:00:00.000Z', endDate: '2026-02-01T00:00:00.000Z', paginationToken: 'v2' }, 7 * 86_400],
  ])('never asks Google for more than it keeps (30 days, less an hour): %s', async (_name, cursor, firstLookbackSeconds) => {
    const t = setup([googlePublisher(GOOGLE)]);
    if (cursor) t.reconcile.cursors.set(googleCursor(GOOGLE), cursor);
    await t.run({ firstLookbackSeconds });
    expect(t.google.calls[0]?.pageToken).toBeUndefined();
    expect(t.google.calls[0]?.window.startTime).toBe(iso(NOW.getTime() - 30 * DAY_MS + 3600_000));
    expect(t.logger.entries.some((e) => e.level === 'warn' && /30 days/.test(e.message) && e.fields.packageName === packageOf(GOOGLE))).toBe(true);
  });

  it('--since reads from that time (at most 30 days back) and leaves the cursor alone', async () => {
    const t = setup([googlePublisher(GOOGLE)]);
    const cursor = { startDate: '2026-02-28T00:00:00.000Z', endDate: '2026-03-01T11:00:00.000Z', paginationToken: 'v3' };
    t.reconcile.cursors.set(googleCursor(GOOGLE), cursor);
    await t.run({ since: new Date('2026-02-20T00:00:00.000Z') });
    await t.run({ since: new Date('2025-12-01T00:00:00.000Z') });
    expect(t.google.calls.map((c) => [c.window.startTime, c.pageToken])).toEqual([
      ['2026-02-20T00:00:00.000Z', undefined],
      [iso(NOW.getTime() - 30 * DAY_MS + 3600_000), undefined],
    ]);
    expect(t.reconcile.saves).toEqual([]);
    expect(t.reconcile.cursors.get(googleCursor(GOOGLE))).toEqual(cursor);
  });

  it('a failing app is counted and logged; the publisher\'s other apps and the other publishers go on', async () => {
    const t = setup([googlePublisher(GOOGLE, ['broken', 'app']), publisher(APPLE, apple(APPLE))]);
    t.google.failingApps.set(packageOf(GOOGLE, 'broken'), new StoreUnavailableError('Google answered 503 to list voided purchases'));
    t.google.set(packageOf(GOOGLE), [[voided(1)]]);
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1')]]);

    const { report } = await t.run();

    expect(t.google.calls.map((c) => c.packageName)).toEqual([packageOf(GOOGLE, 'broken'), packageOf(GOOGLE)]);
    expect(report).toMatchObject({ publishers: 2, voidedSeen: 1, notificationsSeen: 1, accepted: 2, errors: 1 });
    expect([...t.reconcile.cursors.keys()]).toEqual([googleCursor(GOOGLE), `${APPLE}|Sandbox`]);
    expect(t.logger.entries).toContainEqual(
      expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ publisherId: GOOGLE, store: 'google', packageName: packageOf(GOOGLE, 'broken') }) }),
    );
  });
});

describe('due Google purchases', () => {
  const due = (store: DuePurchase['store'], purchaseKey: string, publisherId: number, attempts = 0): DuePurchase => ({
    publisherId,
    store,
    purchaseKey,
    reconcileAt: '2026-03-01T10:00:00.000Z',
    attempts,
  });

  it('hands a due Google purchase over as a RECONCILE notice naming its token, without a package name, and postpones it', async () => {
    const t = setup([googlePublisher(GOOGLE)]);
    t.reconcile.due = [due('google', 'token.9', GOOGLE, 2)];
    const { report, started } = await t.run();
    expect(t.intake.notices).toStrictEqual([
      {
        publisherId: GOOGLE,
        store: 'google',
        notificationId: 'reconcile#token.9#2026-03-01T10:00:00.000Z',
        notificationType: 'RECONCILE',
        purchaseKey: 'token.9',
        sentAt: NOW.toISOString(),
      },
    ]);
    expect(t.reconcile.postponed.map((p) => Date.parse(p.until) - NOW.getTime())).toEqual([4 * 3600_000]);
    expect(report).toMatchObject({ duePurchases: 1, refreshesStarted: 1 });
    expect(started).toEqual([{ publisherId: GOOGLE, store: 'google', notificationId: 'reconcile#token.9#2026-03-01T10:00:00.000Z', purchaseKey: 'token.9', source: 'due' }]);
  });

  it.each([
    ['a Google purchase of a publisher without a Google configuration', due('google', 'token.9', APPLE)],
    ['an Apple purchase of a publisher with only a Google configuration', due('apple', '2000000000000001', GOOGLE)],
  ])('%s is handed to no one and waits the longest back-off', async (_name, purchase) => {
    const t = setup([publisher(APPLE, apple(APPLE)), googlePublisher(GOOGLE)]);
    t.reconcile.due = [purchase];
    const { report } = await t.run();
    expect(t.intake.notices).toEqual([]);
    expect(t.reconcile.postponed.map((p) => Date.parse(p.until) - NOW.getTime())).toEqual([DEFAULT_RECONCILE_SETTINGS.retryMaxSeconds * 1000]);
    expect(report.duePurchases).toBe(0);
  });

  it('does not refresh twice a purchase the voided catch-up already re-reads', async () => {
    const t = setup([googlePublisher(GOOGLE)]);
    t.google.set(packageOf(GOOGLE), [[voided(1)]]);
    t.reconcile.due = [due('google', 'token.1', GOOGLE), due('google', 'token.2', GOOGLE)];
    const { report } = await t.run();
    expect(t.intake.notices.map((notice) => notice.notificationId)).toEqual([voidedId(voided(1)), 'reconcile#token.2#2026-03-01T10:00:00.000Z']);
    expect(t.reconcile.postponed.map((p) => p.purchaseKey)).toEqual(['token.1', 'token.2']);
    expect(report).toMatchObject({ accepted: 1, duePurchases: 2, refreshesStarted: 2 });
  });
});

describe('Google rate limit', () => {
  it('spaces Google calls by googleRequestsPerSecond, refreshes included, with a limiter apart from Apple\'s', async () => {
    const t = setup([googlePublisher(ALL, ['app'], true)]);
    // Apple at 1/s: two pages, each with a lost notification whose refresh reserves two more calls.
    t.history.set(bundle(ALL), 'Sandbox', [[n('u1')], [n('u2')]]);
    // Google at 4/s (250 ms a call): voided orders 1 and 3 are new (a refresh each), 2 a duplicate.
    t.google.set(packageOf(ALL), [[voided(1)], [voided(2)], [voided(3)]]);
    t.intake.known.add(voidedId(voided(2)));

    await t.run({ appleRequestsPerSecond: 1, googleRequestsPerSecond: 4 });

    // Apple: page 1 at 0 s, u1's refresh (2 calls), page 2 at 3 s; u2's refresh waits until 4 s and reserves Apple's limiter up to 6 s.
    expect(t.history.calls.map((c) => c.at - NOW.getTime())).toEqual([0, 3000]);
    // Google starts at 4 s, without waiting for Apple's reservation: page 1, its refresh (2 calls), page 2 (a duplicate), page 3.
    expect(t.google.calls.map((c) => (c.at ?? NaN) - NOW.getTime())).toEqual([4000, 4750, 5000]);
  });
});

describe('ReconcilePurchases handler', () => {
  it('reads one publisher and a look-back from the event, stops before the Lambda times out and logs the report', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1')]]);
    const handler = makeReconcileHandler(t.deps, DEFAULT_RECONCILE_SETTINGS);
    const report = await handler({ publisherId: APPLE, since: '2026-02-27T00:00:00Z' }, { getRemainingTimeInMillis: () => 300_000 });
    expect(report).toMatchObject({ publishers: 1, accepted: 1 });
    expect(t.history.calls[0]?.window.startDate).toBe('2026-02-27T00:00:00.000Z');
    expect(t.directory.lookups).toEqual([APPLE]);
    expect(t.logger.entries.at(-1)).toMatchObject({ level: 'warn', message: 'reconciliation', fields: { accepted: 1, refreshesStarted: 1 } });
  });

  it('takes a scheduled event as "every publisher" and logs a quiet run at info', async () => {
    const t = setup();
    const handler = makeReconcileHandler(t.deps, DEFAULT_RECONCILE_SETTINGS);
    await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, { getRemainingTimeInMillis: () => 300_000 });
    expect(t.directory.lookups).toEqual([APPLE, NO_APPLE]);
    expect(t.logger.entries.at(-1)).toMatchObject({ level: 'info', message: 'reconciliation' });
  });

  it('publishes the metrics platform/metric-names.ts declares, and nothing it does not', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1'), 'bad']]);
    const added: Array<[string, string | undefined, number | undefined]> = [];
    const metrics = { add: (metric: string, dimension: string | undefined, value?: number) => void added.push([metric, dimension, value]), flush: () => undefined };
    await makeReconcileHandler({ ...t.deps, metrics }, DEFAULT_RECONCILE_SETTINGS)({});
    const declared: Record<string, unknown> = METRIC;
    for (const [metric] of added) expect(metric in declared).toBe(true);
    if ('reconcileNotifications' in declared) {
      expect(added).toEqual(expect.arrayContaining([['reconcileNotifications', 'accepted', 1], ['reconcileNotifications', 'rejected', 1]]));
    }
    if ('reconcileErrors' in declared) expect(added).toContainEqual(['reconcileErrors', undefined, 0]);
  });

  it('refuses a malformed event rather than reconciling everything', async () => {
    const t = setup();
    const handler = makeReconcileHandler(t.deps, DEFAULT_RECONCILE_SETTINGS);
    await expect(handler({ publisherId: 'one' })).rejects.toThrow(/publisherId/);
    expect(t.history.calls).toEqual([]);
  });

  it('reads RECONCILE_* settings with the defaults of the use case', () => {
    expect(reconcileSettings({})).toEqual(DEFAULT_RECONCILE_SETTINGS);
    expect(
      reconcileSettings({
        RECONCILE_FIRST_LOOKBACK_DAYS: '3',
        RECONCILE_APPLE_REQUESTS_PER_SECOND: '2.5',
        RECONCILE_GOOGLE_REQUESTS_PER_SECOND: '4',
        RECONCILE_DUE_LIMIT: '0',
      }),
    ).toMatchObject({
      firstLookbackSeconds: 3 * 86_400,
      appleRequestsPerSecond: 2.5,
      googleRequestsPerSecond: 4,
      dueLimit: 0,
    });
    expect(DEFAULT_RECONCILE_SETTINGS.googleRequestsPerSecond).toBe(10);
    expect(() => reconcileSettings({ RECONCILE_APPLE_REQUESTS_PER_SECOND: '500' })).toThrow(/RECONCILE_APPLE_REQUESTS_PER_SECOND/);
    expect(() => reconcileSettings({ RECONCILE_GOOGLE_REQUESTS_PER_SECOND: '0' })).toThrow(/RECONCILE_GOOGLE_REQUESTS_PER_SECOND/);
  });
});
