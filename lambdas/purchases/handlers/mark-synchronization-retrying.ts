import { nextRetry, type RetryPolicy } from '../domain/retry-policy';
import { type Clock, systemClock } from '../../platform/clock';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import { MarkRetryingInput, type MarkRetryingOutput } from '../workflow-schemas';
import type { Logger } from '../../platform/logger';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { createRuntime } from '../runtime';
import { instrument, lazyHandler } from '../../platform/handler';

/**
 * Task `MarkRetrying`: counts the failed attempt, shows `retrying` to pollers, and says how long to
 * wait. Every call is one StoreRetries (the store was unavailable), also the one that exhausts the
 * budget. With `park` (EXPRESS workflows, which end at 5 minutes) the answer tells the workflow to
 * end instead of waiting (state Parked); the recovery sweeper starts the next attempt when it is due,
 * so EXPRESS keeps the same retry budget as STANDARD.
 */
export function makeMarkRetryingHandler(deps: {
  syncs: SynchronizationRepository;
  policy: RetryPolicy;
  clock: Clock;
  logger: Logger;
  metrics?: MetricsRecorder;
  /** EXPRESS: park instead of waiting; the sweeper's grace period places the index entry. */
  park?: { graceSeconds: number };
}) {
  const metrics = deps.metrics ?? noMetrics;
  return async (event: unknown): Promise<MarkRetryingOutput> => {
    const input = MarkRetryingInput.parse(event);
    const next = nextRetry(deps.policy, input.retry.attempt + 1);
    if (!next.exhausted) {
      // The sweeper leaves it alone until its next attempt is due (the open index's openSince).
      const now = deps.clock.now();
      await deps.syncs.markRetrying(input, next.attempt, now, new Date(now.getTime() + next.waitSeconds * 1000), deps.park);
    }
    metrics.add('storeRetries', input.store);
    deps.logger.warn(next.exhausted ? 'store retry budget exhausted' : 'store unavailable; retrying', {
      synchronizationId: input.synchronizationId,
      store: input.store,
      ...next,
      ...(deps.park && !next.exhausted ? { parked: true } : {}),
    });
    return deps.park && !next.exhausted ? { ...next, park: true } : next;
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('mark-synchronization-retrying');
  const { config } = runtime;
  return instrument(
    runtime,
    makeMarkRetryingHandler({
      ...runtime,
      clock: systemClock,
      policy: {
        maxAttempts: config.RETRY_MAX_ATTEMPTS,
        baseSeconds: config.RETRY_BASE_SECONDS,
        maxWaitSeconds: config.RETRY_MAX_WAIT_SECONDS,
      },
      ...(config.WORKFLOW_TYPE === 'EXPRESS' ? { park: { graceSeconds: config.RECOVERY_GRACE_SECONDS } } : {}),
    }),
  );
});
