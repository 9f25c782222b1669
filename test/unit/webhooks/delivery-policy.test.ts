import {
  MAX_DELIVERY_ATTEMPTS,
  RETRY_SCHEDULE_SECONDS,
  nextAttempt,
  outcomeOf,
  parseRetryAfter,
  scaleSeconds,
  totalScheduleSeconds,
  type AttemptOutcome,
  type NextAttempt,
} from '../../../lambdas/webhooks/domain/delivery-policy';

const NOW_MS = Date.parse('2026-11-23T10:00:00.000Z');
const at = { nowMs: NOW_MS };

describe('webhook retry schedule', () => {
  it('waits about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (contract §8)', () => {
    expect(RETRY_SCHEDULE_SECONDS).toEqual([5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600]);
    expect(MAX_DELIVERY_ATTEMPTS).toBe(8);
    expect(totalScheduleSeconds()).toBe(99_305);
  });

  it('cannot be changed at run time', () => {
    expect(Object.isFrozen(RETRY_SCHEDULE_SECONDS)).toBe(true);
  });

  it.each([
    [1, 5],
    [2, 300],
    [3, 1800],
    [4, 7200],
    [5, 18000],
    [6, 36000],
    [7, 36000],
  ])('after failed attempt %i retries in %i s', (attempt, delaySeconds) => {
    expect(nextAttempt(attempt, 500, undefined, at)).toEqual({ action: 'retry', delaySeconds });
  });

  it.each([8, 9, 20])('dead-letters after failed attempt %i (the schedule is spent)', (attempt) => {
    expect(nextAttempt(attempt, 503, undefined, at)).toEqual({ action: 'dead-letter' });
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses attempt number %p (attempts count from 1)', (attempt) => {
    expect(() => nextAttempt(attempt, 500)).toThrow(RangeError);
  });
});

describe('what an attempt outcome leads to', () => {
  const cases: [string, AttemptOutcome, number, NextAttempt][] = [
    ['200', 200, 1, { action: 'done' }],
    ['204', 204, 3, { action: 'done' }],
    ['299', 299, 8, { action: 'done' }],
    ['a 2xx on the very last attempt', 202, 8, { action: 'done' }],
    ['410 Gone', 410, 1, { action: 'disable-endpoint' }],
    ['410 Gone on the last attempt', 410, 8, { action: 'disable-endpoint' }],
    ['301 (redirects are not followed)', 301, 1, { action: 'retry', delaySeconds: 5 }],
    ['302', 302, 2, { action: 'retry', delaySeconds: 300 }],
    ['307', 307, 3, { action: 'retry', delaySeconds: 1800 }],
    ['304', 304, 1, { action: 'retry', delaySeconds: 5 }],
    ['100', 100, 1, { action: 'retry', delaySeconds: 5 }],
    ['400', 400, 1, { action: 'retry', delaySeconds: 5 }],
    ['401', 401, 1, { action: 'retry', delaySeconds: 5 }],
    ['404', 404, 4, { action: 'retry', delaySeconds: 7200 }],
    ['429', 429, 1, { action: 'retry', delaySeconds: 5 }],
    ['500', 500, 5, { action: 'retry', delaySeconds: 18000 }],
    ['a timeout', 'timeout', 1, { action: 'retry', delaySeconds: 5 }],
    ['a refused connection', 'connection', 2, { action: 'retry', delaySeconds: 300 }],
    ['a refusal by the SSRF guard', 'ssrf', 1, { action: 'retry', delaySeconds: 5 }],
    ['a redirect', 'redirect', 6, { action: 'retry', delaySeconds: 36000 }],
    ['a timeout on the last attempt', 'timeout', 8, { action: 'dead-letter' }],
    ['a URL that cannot be requested', 'invalid-url', 1, { action: 'dead-letter' }],
    ['a stored URL with credentials, never sent', 'credentials-in-url', 1, { action: 'dead-letter' }],
  ];

  it.each(cases)('%s', (_case, outcome, attempt, expected) => {
    expect(nextAttempt(attempt, outcome, undefined, at)).toEqual(expected);
  });

  it.each([
    ['a transport failure wins over a status', { status: 302, error: 'redirect' as const }, 'redirect'],
    ['a status alone', { status: 503 }, 503],
    ['a failure alone', { error: 'timeout' as const }, 'timeout'],
    ['nothing at all counts as a connection failure', {}, 'connection'],
  ])('outcomeOf: %s', (_case, result, expected) => {
    expect(outcomeOf(result)).toBe(expected);
  });
});

describe('Retry-After', () => {
  it.each([
    ['delay-seconds', '120', 120],
    ['zero', '0', 0],
    ['an HTTP date 1 hour ahead', 'Mon, 23 Nov 2026 11:00:00 GMT', 3600],
    ['an HTTP date with a part second ahead (rounded up)', new Date(NOW_MS + 1500).toUTCString(), 1],
    ['an HTTP date in the past', 'Mon, 23 Nov 2026 09:00:00 GMT', 0],
    ['an obsolete RFC 850 date', 'Monday, 23-Nov-26 10:30:00 GMT', 1800],
    ['an obsolete asctime date', 'Mon Nov 23 10:00:30 2026', 30],
    ['surrounding spaces', '  60 ', 60],
  ])('reads %s', (_case, header, seconds) => {
    expect(parseRetryAfter(header, NOW_MS)).toBe(seconds);
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['negative', '-5'],
    ['fractional', '1.5'],
    ['garbage', 'soon'],
    ['an ISO date, which is not an HTTP date', '2026-11-23T11:00:00Z'],
  ])('ignores one that is %s', (_case, header) => {
    expect(parseRetryAfter(header, NOW_MS)).toBeUndefined();
  });

  it.each([
    ['longer than the schedule (seconds)', 2, '3600', 3600],
    ['longer than the schedule (HTTP date)', 1, 'Mon, 23 Nov 2026 12:00:00 GMT', 7200],
    ['shorter than the schedule: the schedule wins', 4, '10', 7200],
    ['beyond 10 h: capped at 10 h', 1, String(7 * 24 * 3600), 36000],
    ['unreadable: the schedule', 3, 'tomorrow-ish', 1800],
  ])('a Retry-After %s', (_case, attempt, header, delaySeconds) => {
    expect(nextAttempt(attempt, 503, header, at)).toEqual({ action: 'retry', delaySeconds });
  });

  it('does not delay a success, a 410 or the dead letter', () => {
    expect(nextAttempt(1, 200, '3600', at)).toEqual({ action: 'done' });
    expect(nextAttempt(1, 410, '3600', at)).toEqual({ action: 'disable-endpoint' });
    expect(nextAttempt(8, 429, '3600', at)).toEqual({ action: 'dead-letter' });
  });
});

describe('scaled schedules for tests and local runs', () => {
  it.each([
    [1, [5, 300, 1800, 7200, 18000, 36000, 36000]],
    [0.001, [0.005, 0.3, 1.8, 7.2, 18, 36, 36]],
    [0, [0, 0, 0, 0, 0, 0, 0]],
  ])('scales by %p', (factor, expected) => {
    expect(scaleSeconds(RETRY_SCHEDULE_SECONDS, factor)).toEqual(expected);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('refuses factor %p', (factor) => {
    expect(() => scaleSeconds(RETRY_SCHEDULE_SECONDS, factor)).toThrow(RangeError);
  });

  it('follows a scaled schedule and its scaled Retry-After ceiling', () => {
    const policy = { scheduleSeconds: scaleSeconds(RETRY_SCHEDULE_SECONDS, 0.001), maxDelaySeconds: 36, nowMs: NOW_MS };
    expect(nextAttempt(3, 500, undefined, policy)).toEqual({ action: 'retry', delaySeconds: 1.8 });
    expect(nextAttempt(3, 500, '3600', policy)).toEqual({ action: 'retry', delaySeconds: 36 });
    expect(nextAttempt(8, 500, undefined, policy)).toEqual({ action: 'dead-letter' });
  });

  it('a shorter schedule dead-letters sooner', () => {
    expect(nextAttempt(2, 500, undefined, { scheduleSeconds: [1, 2] })).toEqual({ action: 'retry', delaySeconds: 2 });
    expect(nextAttempt(3, 500, undefined, { scheduleSeconds: [1, 2] })).toEqual({ action: 'dead-letter' });
  });
});
