import type { RecoverReport } from '../lambdas/domain/recover-synchronizations';

/** The sweeper handler as the local runtime calls it (lambdas/handlers/recover-synchronizations.ts). */
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
