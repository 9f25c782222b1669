import { LOCK_LEASE_SECONDS, WORKFLOW_TIMEOUT_SECONDS } from '../../lib/catalog';
import { checkRetryBudget, worstCaseRetrySeconds, worstCaseTaskSeconds } from '../../lib/retry-budget';

// No synth: the retry budget against the workflow timeout and the lock lease, from the ASL and retry-policy.ts.

const DEFAULT = { maxAttempts: 8, baseSeconds: 15, maxWaitSeconds: 960 };

describe('retry budget at synth', () => {
  it('counts a Task at its slowest: every try to its timeout, every retry after its longest delay (capped)', () => {
    const state = {
      Type: 'Task',
      TimeoutSeconds: 10,
      Retry: [
        { MaxAttempts: 2, IntervalSeconds: 1, BackoffRate: 2 },
        { MaxAttempts: 2, IntervalSeconds: 5, BackoffRate: 2, MaxDelaySeconds: 8 },
      ],
    };
    // 5 tries of 10 s; delays 1 + 2 and 5 + min(10, 8).
    expect(worstCaseTaskSeconds('Probe', state)).toBe(50 + 3 + 13);
    // Step Functions' defaults: 3 retries, 1 s, rate 2.
    expect(worstCaseTaskSeconds('Probe', { Type: 'Task', TimeoutSeconds: 10, Retry: [{}] })).toBe(40 + 1 + 2 + 4);
  });

  it('refuses a Task without a timeout (its worst case has no bound)', () => {
    expect(() => worstCaseTaskSeconds('Probe', { Type: 'Task' })).toThrow(/Task Probe has no TimeoutSeconds/);
  });

  it('adds every attempt, every wait of the retry policy and the failure tail', () => {
    const estimate = worstCaseRetrySeconds(DEFAULT, 'STANDARD');
    // 15 + 30 + 60 + 120 + 240 + 480 + 960: the waits between 8 attempts.
    expect(estimate.waitSeconds).toBe(1905);
    expect(estimate.resumeDelaySeconds).toBe(0);
    expect(estimate.totalSeconds).toBe(8 * estimate.perAttemptSeconds + 1905 + estimate.tailSeconds);
    // EXPRESS: each of the 7 parked waits can end up to one sweeper interval (1 minute) late.
    expect(worstCaseRetrySeconds(DEFAULT, 'EXPRESS').resumeDelaySeconds).toBe(7 * 60);
  });

  it.each(['STANDARD', 'EXPRESS'] as const)('the default budget fits the workflow timeout and the lock lease on %s', (workflowType) => {
    const { totalSeconds } = checkRetryBudget(DEFAULT, workflowType);
    expect(totalSeconds).toBeLessThanOrEqual(Math.min(WORKFLOW_TIMEOUT_SECONDS, LOCK_LEASE_SECONDS));
  });

  it.each<[string, { maxAttempts: number; baseSeconds: number; maxWaitSeconds: number }, 'STANDARD' | 'EXPRESS', RegExp]>([
    ['20 attempts (STANDARD)', { ...DEFAULT, maxAttempts: 20 }, 'STANDARD', /longer than the workflow timeout \(7200 s\) and lock lease \(7800 s\)/],
    ['20 attempts (EXPRESS: only the lease bounds it)', { ...DEFAULT, maxAttempts: 20 }, 'EXPRESS', /longer than the lock lease \(7800 s\): lower retryMaxAttempts/],
    ['waits from 10 minutes up to an hour', { ...DEFAULT, baseSeconds: 600, maxWaitSeconds: 3600 }, 'STANDARD', /longer than the workflow timeout/],
  ])('refuses %s', (_name, policy, workflowType, message) => {
    expect(() => checkRetryBudget(policy, workflowType)).toThrow(message);
  });
});
