import { makeReconcileHandler, reconcileSettings } from '../../../lambdas/lifecycle/handlers/reconcile-purchases';
import {
  DEFAULT_RECONCILE_SETTINGS,
  RateLimiter,
  reconcilePurchases,
  type ReconcileDeps,
  type ReconcileOptions,
} from '../../../lambdas/lifecycle/domain/reconcile-purchases';
import type {
  AppleNotificationHistory,
  AppleNotificationVerifier,
  DuePurchase,
  HistoryCursor,
  NoticeIntake,
  PurchaseChangeNotice,
  ReconcileRepository,
} from '../../../lambdas/lifecycle/ports';
import type { Clock } from '../../../lambdas/platform/clock';
import { METRIC } from '../../../lambdas/platform/metric-names';
import { DependencyUnavailableError, StoreUnavailableError } from '../../../lambdas/platform/errors';
import type { AppleConfig, AppleEnvironment } from '../../../lambdas/stores/apple/config';
import { PaginationTokenRejectedError, type HistoryWindow, type NotificationHistoryPage } from '../../../lambdas/stores/apple/notification-history';
import { NotificationRejectedError, type DecodedAppleNotification } from '../../../lambdas/stores/apple/notifications';
import type { Publisher } from '../../../lambdas/tenants';
import { appleConfig, FakePublishers, publisher, RecordingLogger } from './apple-notification-fixtures';

/*
 * The reconciliation with typed fakes of every port: Apple's history as pages of made-up payloads,
 * a decoder that reads them from a table, an intake idempotent on notificationId like the real one,
 * a table of cursors and due purchases, and a clock that only moves when the limiter sleeps.
 */

const NOW = new Date('2026-03-01T12:00:00.000Z');
const DAY_MS = 86_400_000;
const APPLE = 1;
const BOTH = 2;
const NO_APPLE = 3;

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

  async getCursor(publisherId: number, environment: AppleEnvironment): Promise<HistoryCursor | undefined> {
    return this.cursors.get(`${publisherId}|${environment}`);
  }
  async saveCursor(publisherId: number, environment: AppleEnvironment, cursor: HistoryCursor): Promise<void> {
    const key = `${publisherId}|${environment}`;
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
  const decoder = new FakeDecoder();
  const intake = new FakeIntake();
  const reconcile = new FakeReconcile(intake);
  const logger = new RecordingLogger();
  const directory = new Directory(publishers);
  const deps: ReconcileDeps = { publishers: directory, history, decoder, intake, reconcile, clock, sleep: clock.sleep, logger };
  const run = (options: Partial<ReconcileOptions> = {}) => reconcilePurchases(deps, { ...DEFAULT_RECONCILE_SETTINGS, ...options });
  return { clock, history, decoder, intake, reconcile, logger, directory, deps, run };
}

const bundle = (publisherId: number) => apple(publisherId).bundleId;
const n = (uuid: string, original = '2000000000000001') => `n:${uuid}:${original}`;

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

  it('moves the cursor only after a whole page was handed over, and the next run resumes at that page', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1'), n('u2')], [n('u3'), n('u4')], [n('u5')]]);
    t.intake.failOn = 'u4';

    const first = await t.run();

    expect(first.report).toMatchObject({ historyPages: 2, notificationsSeen: 4, accepted: 3, errors: 1 });
    // Saved once, after page 1 (two notices handed), pointing at page 2; never past the page that failed.
    expect(t.reconcile.saves).toEqual([{ key: `${APPLE}|Sandbox`, cursor: expect.objectContaining({ paginationToken: 'p1' }), noticesHanded: 2 }]);
    const window = t.history.calls[0]?.window;

    t.intake.failOn = undefined;
    t.clock.ms += 3600_000;
    const second = await t.run();

    // Page 2 of the same window again: u3 is a duplicate now, u4 and u5 are new.
    expect(t.history.calls.slice(2).map((c) => [c.token, c.window])).toEqual([
      ['p1', window],
      ['p2', window],
    ]);
    expect(second.report).toMatchObject({ historyPages: 2, accepted: 2, duplicates: 1, errors: 0 });
    expect(t.reconcile.cursors.get(`${APPLE}|Sandbox`)).toEqual(window);
  });

  it('looks back 7 days on a first run, then starts where the last window ended (minus the overlap)', async () => {
    const t = setup();
    await t.run();
    expect(t.history.calls[0]?.window).toEqual({ startDate: new Date(NOW.getTime() - 7 * DAY_MS).toISOString(), endDate: NOW.toISOString() });
    expect(t.reconcile.cursors.get(`${APPLE}|Sandbox`)).toEqual({ startDate: new Date(NOW.getTime() - 7 * DAY_MS).toISOString(), endDate: NOW.toISOString() });

    t.clock.ms += 3600_000;
    await t.run({ overlapSeconds: 600 });
    expect(t.history.calls[1]?.window).toEqual({
      startDate: new Date(NOW.getTime() - 600_000).toISOString(),
      endDate: new Date(NOW.getTime() + 3600_000).toISOString(),
    });
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

  it('reads the window again from its start when Apple refuses the pagination token', async () => {
    const t = setup();
    t.reconcile.cursors.set(`${APPLE}|Sandbox`, { startDate: '2026-03-01T00:00:00.000Z', endDate: '2026-03-01T06:00:00.000Z', paginationToken: 'stale' });
    t.history.failures.push(new PaginationTokenRejectedError('expired'));
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1')]]);
    const { report } = await t.run();
    expect(t.history.calls.map((c) => [c.token, c.window.startDate])).toStrictEqual([
      ['stale', '2026-03-01T00:00:00.000Z'],
      [undefined, '2026-03-01T00:00:00.000Z'],
    ]);
    expect(report).toMatchObject({ accepted: 1, errors: 0 });
    expect(t.reconcile.cursors.get(`${APPLE}|Sandbox`)).toEqual({ startDate: '2026-03-01T00:00:00.000Z', endDate: '2026-03-01T06:00:00.000Z' });
  });

  it('stops after maxHistoryPages and keeps the token for the next run', async () => {
    const t = setup();
    t.history.set(bundle(APPLE), 'Sandbox', [[n('u1')], [n('u2')], [n('u3')]]);
    await t.run({ maxHistoryPages: 2 });
    expect(t.history.calls).toHaveLength(2);
    expect(t.reconcile.cursors.get(`${APPLE}|Sandbox`)?.paginationToken).toBe('p2');
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
    expect(reconcileSettings({ RECONCILE_FIRST_LOOKBACK_DAYS: '3', RECONCILE_APPLE_REQUESTS_PER_SECOND: '2.5', RECONCILE_DUE_LIMIT: '0' })).toMatchObject({
      firstLookbackSeconds: 3 * 86_400,
      appleRequestsPerSecond: 2.5,
      dueLimit: 0,
    });
    expect(() => reconcileSettings({ RECONCILE_APPLE_REQUESTS_PER_SECOND: '500' })).toThrow(/RECONCILE_APPLE_REQUESTS_PER_SECOND/);
  });
});
