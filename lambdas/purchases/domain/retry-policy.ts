/** The store retry budget: exponential waits, capped, over a bounded number of attempts. */
export interface RetryPolicy {
  maxAttempts: number;
  baseSeconds: number;
  maxWaitSeconds: number;
}

/**
 * After `failedAttempts` failed verifications: how long to wait before the next one, or exhausted.
 * Defaults (8 attempts, 15 s doubling, 960 s cap) wait 15+30+60+120+240+480+960 s ≈ 32 min in all.
 */
export function nextRetry(policy: RetryPolicy, failedAttempts: number) {
  const exhausted = failedAttempts >= policy.maxAttempts;
  const waitSeconds = Math.min(policy.baseSeconds * 2 ** Math.max(0, failedAttempts - 1), policy.maxWaitSeconds);
  return { attempt: failedAttempts, waitSeconds: Math.max(1, Math.round(waitSeconds)), exhausted };
}

/** Total time spent waiting when every attempt fails (used to check EXPRESS limits and docs). */
export function totalWaitSeconds(policy: RetryPolicy): number {
  let total = 0;
  for (let failed = 1; failed < policy.maxAttempts; failed += 1) total += nextRetry(policy, failed).waitSeconds;
  return total;
}
