import { nextRetry, type RetryPolicy } from '../domain/retry-policy';
import type { Clock } from '../ports/clock';
import { systemClock } from '../ports/clock';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import { MarkRetryingInput, type MarkRetryingOutput } from '../schemas/workflow';
import type { Logger } from '../shared/logger';
import { createRuntime, lazyHandler } from '../shared/runtime';

/** Task `MarkRetrying`: counts the failed attempt, shows `retrying` to pollers, and says how long to wait. */
export function makeMarkRetryingHandler(deps: {
  syncs: SynchronizationRepository;
  policy: RetryPolicy;
  clock: Clock;
  logger: Logger;
}) {
  return async (event: unknown): Promise<MarkRetryingOutput> => {
    const input = MarkRetryingInput.parse(event);
    const next = nextRetry(deps.policy, input.retry.attempt + 1);
    if (!next.exhausted) await deps.syncs.markRetrying(input.synchronizationId, next.attempt, deps.clock.now());
    deps.logger.warn(next.exhausted ? 'store retry budget exhausted' : 'store unavailable; retrying', {
      synchronizationId: input.synchronizationId,
      ...next,
    });
    return next;
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('mark-synchronization-retrying');
  const { config } = runtime;
  const mark = makeMarkRetryingHandler({
    ...runtime,
    clock: systemClock,
    policy: {
      maxAttempts: config.RETRY_MAX_ATTEMPTS,
      baseSeconds: config.RETRY_BASE_SECONDS,
      maxWaitSeconds: config.RETRY_MAX_WAIT_SECONDS,
    },
  });
  return (event: unknown) => mark(event);
});
