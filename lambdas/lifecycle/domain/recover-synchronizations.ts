import type { Clock } from '../../platform/clock';
import type { EventPublisher } from '../../events/ports';
import type { PublisherRepository } from '../../tenants';
import {
  eventEntries,
  executionInput,
  executionName,
  finalizeSynchronization,
  pendingAcknowledgementOf,
  type PendingAcknowledgementRepository,
  type Synchronization,
  type SynchronizationRepository,
  type WorkflowInspector,
  type WorkflowStarter,
} from '../../purchases';
import type { Logger } from '../../platform/logger';
import type { ExecutionStarted, RecoveryRecords } from '../ports';

/**
 * EXPRESS executions last at most 5 minutes and cannot be described afterwards, so a
 * synchronization open longer than that (plus a minute) has lost its execution.
 */
export const EXPRESS_ENDED_AFTER_SECONDS = 360;

export interface RecoverDeps {
  syncs: SynchronizationRepository;
  publishers: PublisherRepository;
  workflow: WorkflowStarter;
  inspector: WorkflowInspector;
  events: EventPublisher;
  clock: Clock;
  logger: Logger;
  /** The bus the events go to (the finalize names it in the entries it answers). */
  eventBusName: string;
  /** Keeps the names of the executions it starts on the record, for operators (`sync show`); optional. */
  records?: Pick<RecoveryRecords, 'executionStarted'>;
  /**
   * Where a Google acknowledgement waits for the reconciliation: an execution that ended between its
   * finalize and MarkPublished may not have acknowledged (an EXPRESS execution cut at 5 minutes).
   */
  acknowledgements?: Pick<PendingAcknowledgementRepository, 'record'>;
}

/** Settings of one sweep. */
export interface RecoverOptions {
  /**
   * Open synchronizations younger than this are not looked at: their workflow was started a moment
   * ago (or is about to be). Above the API's timeout, so a register still calling StartExecution is
   * never taken for a lost one.
   */
  graceSeconds: number;
  /** Restarts of one synchronization before the sweeper gives up and finalizes it SYNCHRONIZATION_FAILED. */
  maxRestarts: number;
  /**
   * EXPRESS executions cannot be described: one whose synchronization has been open (since accept or
   * the last restart) longer than this has ended, because an EXPRESS execution lasts at most 5 minutes.
   */
  unknownEndedAfterSeconds: number;
  /** Most synchronizations handled by one sweep (the next sweep takes the rest). */
  limit: number;
  /** Start-up of a local process: everything accepted before it started is orphaned, whatever its age. */
  acceptedBefore?: Date;
}

/** What one sweep found and did. `stuck` = open with no running execution (the alarm's metric). */
export interface RecoverReport {
  examined: number;
  running: number;
  /** EXPRESS: parked synchronizations whose next attempt was due and is now started. */
  resumed: number;
  stuck: number;
  restarted: number;
  failed: number;
  republished: number;
  errors: number;
}

/**
 * The recovery sweeper (deployed: a scheduled Lambda; local: at start-up and every minute). Nothing
 * accepted stays unfinished: an open synchronization whose execution is no longer running (failed,
 * timed out, aborted, never started, or lost with a local process) is started again under a new
 * execution name, and after `maxRestarts` it is finalized SYNCHRONIZATION_FAILED, which releases its
 * locks, and its event is published. A finalized synchronization stays in the open index until the
 * workflow's MarkPublished state runs; if its execution ended before that, the event is published here.
 */
export async function recoverSynchronizations(deps: RecoverDeps, options: RecoverOptions): Promise<RecoverReport> {
  const report: RecoverReport = { examined: 0, running: 0, resumed: 0, stuck: 0, restarted: 0, failed: 0, republished: 0, errors: 0 };
  const now = deps.clock.now();
  const cutoff = options.acceptedBefore ?? new Date(now.getTime() - options.graceSeconds * 1000);
  const open = await deps.syncs.listOpen(cutoff, options.limit);
  for (const entry of open) {
    report.examined += 1;
    try {
      const sync = await deps.syncs.get(entry);
      // Abandoned since: the accept was undone.
      if (!sync) continue;
      // Finalized and published since the index was read.
      if (sync.status === 'finalized' && sync.publishState !== 'claimed') continue;
      // EXPRESS: its execution ended on purpose (state Parked); start the next attempt once it is due.
      if (sync.status === 'retrying' && sync.parked) {
        if (sync.retryAt !== undefined && Date.parse(sync.retryAt) > now.getTime()) {
          report.running += 1;
        } else if (await resume(deps, sync, now)) {
          report.resumed += 1;
        }
        continue;
      }
      if (await isRunning(deps, sync, entry.openSince, now, options)) {
        report.running += 1;
        continue;
      }
      if (sync.status === 'finalized') {
        // Its execution ended between the finalize and MarkPublished: publish what the finalize recorded.
        await republish(deps, sync);
        report.republished += 1;
        continue;
      }
      report.stuck += 1;
      // Executions lost with a local process say nothing about the synchronization: no restart limit then.
      if (options.acceptedBefore || (sync.recoveries ?? 0) < options.maxRestarts) {
        if (await restart(deps, sync, now)) report.restarted += 1;
      } else {
        await giveUp(deps, sync);
        report.failed += 1;
      }
    } catch (error) {
      report.errors += 1;
      deps.logger.error('recovery of a synchronization failed; the next sweep tries again', {
        synchronizationId: entry.synchronizationId,
        error,
      });
    }
  }
  return report;
}

async function isRunning(
  deps: RecoverDeps,
  sync: Synchronization,
  openSince: string,
  now: Date,
  options: RecoverOptions,
): Promise<boolean> {
  // A local process that just started has no execution of anything accepted before it.
  if (options.acceptedBefore) return false;
  const state = await deps.inspector.state(executionName(sync));
  if (state === 'running') return true;
  if (state === 'unknown') return now.getTime() - Date.parse(openSince) < options.unknownEndedAfterSeconds * 1000;
  return false;
}

/** What starting another execution of an open synchronization needs (the sweeper, and an operator's `sync retry`). */
export type ExecutionRestartDeps = Pick<RecoverDeps, 'syncs' | 'workflow' | 'logger' | 'records'>;

/** Keeps the name of an execution it started on the record; a failure here only costs `sync show` a line. */
async function noteExecution(deps: ExecutionRestartDeps, sync: Synchronization, started: ExecutionStarted): Promise<void> {
  try {
    await deps.records?.executionStarted(sync, started);
  } catch (error) {
    deps.logger.warn('execution started but not recorded on the synchronization', { synchronizationId: sync.synchronizationId, name: started.name, error });
  }
}

/**
 * EXPRESS: starts the next attempt of a parked synchronization as an execution of its own
 * (`<id>.a<attempt>`), taken with a write conditioned on it still being parked at the same attempt,
 * so two callers never start it twice. Answers the execution's name, or undefined when it moved first.
 */
export async function resumeParked(deps: ExecutionRestartDeps, sync: Synchronization, now: Date, by: 'sweeper' | 'operator'): Promise<string | undefined> {
  if (!(await deps.syncs.resumeParked(sync, now))) return undefined;
  // Named after the attempt: each parked attempt is a new execution.
  const name = `${executionName({ ...sync, recoveries: 0 })}.a${sync.attempts}`;
  await deps.workflow.start(executionInput(sync, sync.attempts), name);
  await noteExecution(deps, sync, { name, startedAt: now.toISOString(), by: by === 'sweeper' ? 'sweeper-resume' : 'operator-resume' });
  deps.logger.info(`parked synchronization resumed by ${by === 'sweeper' ? 'the recovery sweeper' : 'an operator'}`, {
    synchronizationId: sync.synchronizationId,
    publisherId: sync.publisherId,
    attempt: sync.attempts + 1,
  });
  return name;
}

/**
 * Starts an open synchronization's workflow again under a new name (`<id>.r<n>`), its retry budget
 * going on from the attempts made. The restart is counted first, conditioned on the count read, so
 * two callers never start two executions of one synchronization. Answers the execution's name, or
 * undefined when someone else moved first (or it was finalized meanwhile).
 */
export async function restartOpen(deps: ExecutionRestartDeps, sync: Synchronization, now: Date, by: 'sweeper' | 'operator'): Promise<string | undefined> {
  if (!(await deps.syncs.recordRecovery(sync, now))) return undefined;
  const recoveries = (sync.recoveries ?? 0) + 1;
  const name = executionName({ ...sync, recoveries });
  await deps.workflow.start(executionInput(sync, sync.attempts), name);
  await noteExecution(deps, sync, { name, startedAt: now.toISOString(), by: by === 'sweeper' ? 'sweeper-restart' : 'operator-restart' });
  deps.logger.warn(`synchronization restarted by ${by === 'sweeper' ? 'the recovery sweeper' : 'an operator'}`, {
    synchronizationId: sync.synchronizationId,
    publisherId: sync.publisherId,
    status: sync.status,
    restart: recoveries,
  });
  return name;
}

async function resume(deps: RecoverDeps, sync: Synchronization, now: Date): Promise<boolean> {
  return (await resumeParked(deps, sync, now, 'sweeper')) !== undefined;
}

async function restart(deps: RecoverDeps, sync: Synchronization, now: Date): Promise<boolean> {
  return (await restartOpen(deps, sync, now, 'sweeper')) !== undefined;
}

/** Restarts did not finish it: finalize as the workflow's failure path would, then publish. */
async function giveUp(deps: RecoverDeps, sync: Synchronization): Promise<void> {
  const outcome = await finalizeSynchronization(deps, sync);
  deps.logger.error('synchronization finalized SYNCHRONIZATION_FAILED by the recovery sweeper', {
    synchronizationId: sync.synchronizationId,
    publisherId: sync.publisherId,
    restarts: sync.recoveries ?? 0,
    result: outcome.event?.result ?? 'refresh gave up',
  });
  // Should this publish fail, the record stays `claimed` in the open index and the next sweep publishes it.
  for (const entry of outcome.entries) await deps.events.publish(entry.DetailType, entry.Detail);
  await deps.syncs.markPublished(sync);
}

/**
 * The events a finalized synchronization's execution did not get out: the result and its entitlement
 * changes. That execution may also have ended before acknowledging a Google purchase: the
 * acknowledgement is handed to the reconciliation first (Google answers one it already has as
 * success, so a duplicate costs one call).
 */
async function republish(deps: RecoverDeps, sync: Synchronization): Promise<void> {
  const acknowledgement = deps.acknowledgements ? pendingAcknowledgementOf(sync, 'the execution ended before its acknowledgement was known to be done') : undefined;
  if (acknowledgement) await deps.acknowledgements?.record(acknowledgement, deps.clock.now());
  for (const entry of eventEntries(sync, deps.eventBusName)) await deps.events.publish(entry.DetailType, entry.Detail);
  await deps.syncs.markPublished(sync);
  deps.logger.warn('event republished by the recovery sweeper', {
    synchronizationId: sync.synchronizationId,
    publisherId: sync.publisherId,
  });
}
