import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { totalWaitSeconds, type RetryPolicy } from '../lambdas/purchases/domain/retry-policy';
import { LOCK_LEASE_SECONDS, SWEEPER_FUNCTION, WORKFLOW_DEFINITION_FILE, WORKFLOW_TIMEOUT_SECONDS } from './catalog';

/**
 * The states a store outage goes through: each attempt runs its store's verify state (the slower of
 * the two counts) and marks retrying; the last one finalizes failed and publishes.
 */
const VERIFY_STATES = ['VerifyApplePurchase', 'VerifyGooglePurchase'] as const;
const ATTEMPT_STATES = ['MarkRetrying'] as const;
const FAILURE_TAIL_STATES = ['FinalizeFailure', 'PublishResult', 'MarkPublished'] as const;

interface Retrier {
  MaxAttempts?: number;
  IntervalSeconds?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
}
interface TaskState {
  Type: string;
  TimeoutSeconds?: number;
  Retry?: Retrier[];
}

/** How long a store outage can keep one synchronization open, in seconds, state by state. */
export interface RetryBudgetEstimate {
  /** One store attempt at its slowest: every Task of it times out and is retried to its Retry limits. */
  perAttemptSeconds: number;
  /** The waits between attempts (lambdas/purchases/domain/retry-policy.ts, totalWaitSeconds). */
  waitSeconds: number;
  /** EXPRESS: the recovery sweeper starts each parked attempt up to one schedule interval late. */
  resumeDelaySeconds: number;
  /** Finalizing the failure and publishing it, at their slowest. */
  tailSeconds: number;
  totalSeconds: number;
}

/**
 * A Task state at its slowest: each try runs to TimeoutSeconds, and every retrier retries to its
 * MaxAttempts with its longest delays (Step Functions' defaults: 3 attempts, 1 s, rate 2; full
 * jitter only shortens them).
 */
export function worstCaseTaskSeconds(name: string, state: TaskState | undefined): number {
  if (state?.Type !== 'Task') throw new Error(`${WORKFLOW_DEFINITION_FILE}: no Task state ${name} (the retry budget check reads it)`);
  if (state.TimeoutSeconds === undefined) throw new Error(`${WORKFLOW_DEFINITION_FILE}: Task ${name} has no TimeoutSeconds`);
  let tries = 1;
  let delays = 0;
  for (const retrier of state.Retry ?? []) {
    const attempts = retrier.MaxAttempts ?? 3;
    tries += attempts;
    for (let retry = 0; retry < attempts; retry += 1) {
      const delay = (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** retry;
      delays += Math.min(delay, retrier.MaxDelaySeconds ?? Number.POSITIVE_INFINITY);
    }
  }
  return tries * state.TimeoutSeconds + delays;
}

function readStates(): Record<string, TaskState> {
  const definition = JSON.parse(readFileSync(path.resolve(__dirname, '..', WORKFLOW_DEFINITION_FILE), 'utf8')) as { States: Record<string, TaskState> };
  return definition.States;
}

/**
 * The longest a synchronization can stay open while its store is down, from the ASL's Task timeouts
 * and Retry blocks and the retry policy's waits: every attempt at its slowest, every wait, then the
 * failure finalized and published.
 */
export function worstCaseRetrySeconds(policy: RetryPolicy, workflowType: 'STANDARD' | 'EXPRESS', states: Record<string, TaskState> = readStates()): RetryBudgetEstimate {
  const sum = (names: readonly string[]) => names.reduce((total, name) => total + worstCaseTaskSeconds(name, states[name]), 0);
  const perAttemptSeconds = Math.max(...VERIFY_STATES.map((name) => worstCaseTaskSeconds(name, states[name]))) + sum(ATTEMPT_STATES);
  const waitSeconds = totalWaitSeconds(policy);
  const resumeDelaySeconds = workflowType === 'EXPRESS' ? (policy.maxAttempts - 1) * SWEEPER_FUNCTION.scheduleMinutes.EXPRESS * 60 : 0;
  const tailSeconds = sum(FAILURE_TAIL_STATES);
  return {
    perAttemptSeconds,
    waitSeconds,
    resumeDelaySeconds,
    tailSeconds,
    totalSeconds: policy.maxAttempts * perAttemptSeconds + waitSeconds + resumeDelaySeconds + tailSeconds,
  };
}

/**
 * Refuses a retry budget a store outage would outlast the workflow with: past the workflow timeout a
 * STANDARD execution times out instead of finalizing SYNCHRONIZATION_FAILED, and past the lock lease
 * (set once, at accept) another request can take the purchase's lock while this one still retries.
 * EXPRESS executions are 5 minutes each, so only the lease bounds the whole budget there.
 */
export function checkRetryBudget(policy: RetryPolicy, workflowType: 'STANDARD' | 'EXPRESS'): RetryBudgetEstimate {
  const estimate = worstCaseRetrySeconds(policy, workflowType);
  const limits = [
    ...(workflowType === 'STANDARD' ? [{ name: 'workflow timeout', seconds: WORKFLOW_TIMEOUT_SECONDS }] : []),
    { name: 'lock lease', seconds: LOCK_LEASE_SECONDS },
  ];
  const exceeded = limits.filter((limit) => estimate.totalSeconds > limit.seconds);
  if (exceeded.length > 0) {
    throw new Error(
      `Retry budget ${JSON.stringify(policy)} can keep a synchronization open up to ${estimate.totalSeconds} s in a store outage ` +
        `(${policy.maxAttempts} attempts of up to ${estimate.perAttemptSeconds} s, ${estimate.waitSeconds} s of waits` +
        (estimate.resumeDelaySeconds > 0 ? `, ${estimate.resumeDelaySeconds} s of sweeper delays` : '') +
        `, ${estimate.tailSeconds} s to finalize and publish), longer than the ` +
        exceeded.map((limit) => `${limit.name} (${limit.seconds} s)`).join(' and ') +
        ': lower retryMaxAttempts or retryMaxWaitSeconds.',
    );
  }
  return estimate;
}
