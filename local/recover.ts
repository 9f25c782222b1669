import type { RecoverReport } from '../lambdas/lifecycle/domain/recover-synchronizations';
import type { SynchronizationRepository } from '../lambdas/purchases/ports/synchronization-repository';
import type { LoggedEvent } from './event-bus';

/** The sweeper handler as the local runtime calls it (lambdas/lifecycle/handlers/recover-synchronizations.ts). */
type SweeperHandler = (event: unknown, context: unknown) => Promise<RecoverReport>;

export interface LocalSweeper {
  /** One sweep now; `acceptedBefore` recovers everything accepted before that instant (start-up). */
  sweep(acceptedBefore?: Date): Promise<RecoverReport>;
  stop(): Promise<void>;
}

/**
 * `npm start` keeps its executions in memory, so a synchronization accepted before the process
 * stopped has no execution any more. The deployed sweeper's own handler runs here: once at start-up
 * for everything accepted before this process started, then every `intervalMs` like the schedule.
 */
export function startLocalSweeper(options: {
  handler: SweeperHandler;
  context: unknown;
  intervalMs: number;
  print: (line: string) => void;
}): LocalSweeper {
  let running: Promise<unknown> = Promise.resolve();
  const sweep = (acceptedBefore?: Date): Promise<RecoverReport> => {
    const next = running.then(() => options.handler(acceptedBefore ? { acceptedBefore: acceptedBefore.toISOString() } : {}, options.context));
    running = next.catch(() => undefined);
    return next.then((report) => {
      if (report.stuck + report.republished + report.errors > 0) {
        options.print(
          `recovery     ${report.restarted} restarted, ${report.failed} finalized SYNCHRONIZATION_FAILED, ` +
            `${report.republished} republished, ${report.errors} error(s)`,
        );
      }
      return report;
    });
  };
  const timer = setInterval(() => {
    sweep().catch((error: unknown) => options.print(`recovery     sweep failed: ${(error as Error).message}`));
  }, options.intervalMs);
  timer.unref();
  return {
    sweep,
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * On AWS a STANDARD execution's history is durable: one that published its event goes on to
 * MarkPublished even if anything else fails. A killed local process loses that progress, so before
 * the start-up sweep the bus's own log (events.jsonl, read with readEventLog) answers it: a synchronization still `claimed`
 * whose event is in the log was published by the previous process and is marked so, instead of
 * being published a second time. Returns how many were marked.
 */
export async function settlePublishedBeforeRestart(
  syncs: SynchronizationRepository,
  loggedEvents: readonly LoggedEvent[],
  acceptedBefore: Date,
): Promise<number> {
  if (loggedEvents.length === 0) return 0;
  const open = await syncs.listOpen(acceptedBefore, 10_000);
  if (open.length === 0) return 0;
  const published = new Set(loggedEvents.map((event) => `${String(event.detail?.synchronizationId)} ${String(event.detail?.finalizedAt)}`));
  let marked = 0;
  for (const ref of open) {
    const { synchronizationId } = ref;
    const sync = await syncs.get(ref);
    const finalizedAt = (sync?.eventDetail as { finalizedAt?: unknown } | undefined)?.finalizedAt;
    if (sync?.status === 'finalized' && sync.publishState === 'claimed' && published.has(`${synchronizationId} ${String(finalizedAt)}`)) {
      await syncs.markPublished(ref);
      marked += 1;
    }
  }
  return marked;
}
