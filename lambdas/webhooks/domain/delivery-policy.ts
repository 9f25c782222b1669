/**
 * What to do after one webhook delivery attempt (contract §8). Pure: the delivery handler feeds it
 * the attempt's outcome and acts on the answer (delete, re-queue with a delay, dead-letter,
 * disable the endpoint).
 */

/**
 * Waits before the retries, in seconds: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. The
 * first attempt is immediate, so a delivery is tried 8 times over about 27.6 hours (99 305 s)
 * before it is dead-lettered, where it stays replayable.
 */
export const RETRY_SCHEDULE_SECONDS: readonly number[] = Object.freeze([5, 300, 1800, 7200, 18000, 36000, 36000]);

/** Attempts in all: the first one plus one per scheduled retry. */
export const MAX_DELIVERY_ATTEMPTS = RETRY_SCHEDULE_SECONDS.length + 1;

/** A receiver's `Retry-After` can lengthen a wait up to this, never beyond (10 h). */
export const MAX_RETRY_DELAY_SECONDS = 36000;

/** Contract §8: a 2xx within 15 s is success. */
export const DELIVERY_TIMEOUT_MS = 15000;

/**
 * How an attempt failed without an HTTP status we can use.
 * - `timeout`: no response within the attempt's time budget;
 * - `connection`: DNS failure, refused, reset, TLS failure;
 * - `ssrf`: the endpoint resolved to an address deployed stacks refuse (DNS can change: retried);
 * - `redirect`: the endpoint answered 3xx, which is never followed;
 * - `invalid-url`: the stored URL cannot be requested at all (permanent: dead-lettered at once);
 * - `credentials-in-url`: the stored URL carries `user:password@`, which is never sent (an endpoint
 *   registered before such URLs were refused; permanent: dead-lettered at once).
 */
export const TRANSPORT_FAILURES = ['timeout', 'connection', 'ssrf', 'redirect', 'invalid-url', 'credentials-in-url'] as const;
export type TransportFailure = (typeof TRANSPORT_FAILURES)[number];

/** An HTTP status code, or a transport failure. */
export type AttemptOutcome = number | TransportFailure;

/** What one attempt gave back; written to the delivery log as is. */
export interface DeliveryAttemptResult {
  status?: number;
  /** The receiver's `Retry-After` header, raw. */
  retryAfter?: string;
  latencyMs: number;
  error?: TransportFailure;
}

export type NextAttempt =
  | { action: 'done' }
  | { action: 'retry'; delaySeconds: number }
  | { action: 'dead-letter' }
  | { action: 'disable-endpoint' };

export interface DeliveryPolicy {
  /** Wait before retry n (1-based) is `scheduleSeconds[n - 1]`; defaults to the contract's. */
  scheduleSeconds?: readonly number[];
  /** Ceiling for a `Retry-After`; defaults to 10 h. Scale it with the schedule in local runs. */
  maxDelaySeconds?: number;
  /** Clock for `Retry-After` HTTP dates, in epoch milliseconds; defaults to now. */
  nowMs?: number;
}

/** The outcome to decide on: a transport failure wins over a status (a 3xx comes with `redirect`). */
export function outcomeOf(result: Pick<DeliveryAttemptResult, 'status' | 'error'>): AttemptOutcome {
  if (result.error !== undefined) return result.error;
  if (result.status !== undefined) return result.status;
  return 'connection';
}

/**
 * Seconds a `Retry-After` header asks for (RFC 9110 §10.2.3: delay-seconds or an HTTP-date),
 * 0 for a date in the past, undefined when it is absent or unreadable.
 */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  // All three HTTP-date forms (IMF-fixdate, RFC 850, asctime) open with the day name; asking for
  // it keeps Date.parse from reading "-1", "1.5" or an ISO string as a date.
  if (!/^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)/i.test(value)) return undefined;
  // asctime dates carry no zone and are GMT by definition; Date.parse would read local time.
  const asctime = /^[a-z]{3} [a-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/i.test(value);
  const at = Date.parse(asctime ? `${value} GMT` : value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * After attempt `attemptNumber` (1 = the first) ended with `outcome`: done, retry after a delay,
 * dead-letter (schedule exhausted), or disable the endpoint (410 Gone, never retried).
 */
export function nextAttempt(
  attemptNumber: number,
  outcome: AttemptOutcome,
  retryAfterHeader?: string,
  policy: DeliveryPolicy = {},
): NextAttempt {
  if (!Number.isSafeInteger(attemptNumber) || attemptNumber < 1) {
    throw new RangeError(`An attempt number counts from 1, got ${attemptNumber}.`);
  }
  if (typeof outcome === 'number') {
    if (outcome >= 200 && outcome <= 299) return { action: 'done' };
    if (outcome === 410) return { action: 'disable-endpoint' };
  } else if (outcome === 'invalid-url' || outcome === 'credentials-in-url') {
    return { action: 'dead-letter' };
  }

  const schedule = policy.scheduleSeconds ?? RETRY_SCHEDULE_SECONDS;
  const scheduled = schedule[attemptNumber - 1];
  if (scheduled === undefined) return { action: 'dead-letter' };

  // Retry-After can only lengthen the wait: a receiver asking for 1 s after a 503 does not get to
  // compress the schedule, and one asking for a week is tried again after 10 h at the latest.
  const asked = parseRetryAfter(retryAfterHeader, policy.nowMs ?? Date.now());
  const cap = Math.max(policy.maxDelaySeconds ?? MAX_RETRY_DELAY_SECONDS, scheduled);
  const delaySeconds = asked !== undefined && asked > scheduled ? Math.min(asked, cap) : scheduled;
  return { action: 'retry', delaySeconds };
}

/**
 * The schedule multiplied by `factor` (0.001 turns 10 h into 36 s), rounded to the millisecond,
 * for tests and the local runtime.
 */
export function scaleSeconds(schedule: readonly number[], factor: number): number[] {
  if (!Number.isFinite(factor) || factor < 0) throw new RangeError(`A scale factor is finite and ≥ 0, got ${factor}.`);
  return schedule.map((seconds) => Math.round(seconds * factor * 1000) / 1000);
}

/** Total wait when every attempt fails (docs and the retention of the dead-letter queue). */
export function totalScheduleSeconds(schedule: readonly number[] = RETRY_SCHEDULE_SECONDS): number {
  return schedule.reduce((sum, seconds) => sum + seconds, 0);
}
