import { randomUUID } from 'node:crypto';
import type { Clock } from '../../platform/clock';
import type { Logger } from '../../platform/logger';
import { appleLocks, executionInput, executionName, purchaseLocks, type Synchronization, type SynchronizationRepository, type WorkflowInspector, type WorkflowStarter } from '../../purchases';
import type { RecoveryRecords } from '../ports';
import { EXPRESS_ENDED_AFTER_SECONDS, restartOpen, resumeParked } from './recover-synchronizations';

/** A synchronization record with what recovery and an operator's retry add to it (RecoveryRecords). */
export type RecoveredSynchronization = Synchronization & {
  /** The synchronization an operator's `sync retry` created for this failed one. */
  retriedAs?: string;
  retriedAt?: string;
  /** On a retry: the failed synchronization it retries. */
  retryOf?: string;
  executions?: { name: string; startedAt: string; by: string }[];
};

export interface RedriveDeps {
  syncs: SynchronizationRepository;
  records: RecoveryRecords;
  workflow: WorkflowStarter;
  inspector: WorkflowInspector;
  /** How an execution's end is known: STANDARD executions are described; EXPRESS ones end within 5 minutes. */
  workflowType: 'STANDARD' | 'EXPRESS';
  clock: Clock;
  logger: Logger;
  /** The purchase locks' lease (LOCK_LEASE_SECONDS: longer than the workflow can run). */
  leaseSeconds: number;
  newId?: () => string;
}

/** What `sync retry` did. */
export type RedriveOutcome =
  /** A finalized SYNCHRONIZATION_FAILED: a new synchronization of the same request was accepted and started. */
  | { action: 'retried'; synchronizationId: string; retry: { synchronizationId: string; executionName: string } }
  /** Retried before (this command ran already): that retry, as it stands. */
  | { action: 'already_retried'; synchronizationId: string; retry: { synchronizationId: string; status: string; result?: string } }
  /** An open synchronization whose execution had ended: started again under a new execution name. */
  | { action: 'restarted'; synchronizationId: string; executionName: string }
  /** EXPRESS: a parked synchronization's next attempt started now instead of when due. */
  | { action: 'resumed'; synchronizationId: string; executionName: string }
  /** Nothing to do (its execution is running, or someone else moved first). */
  | { action: 'none'; synchronizationId: string; reason: string };

/** `sync retry` refuses: the message says why and what to do instead. */
export class RedriveRefusedError extends Error {
  override readonly name = 'RedriveRefusedError';
}

/** The result a store outage (or a refused key) ends with: the only finalized one a retry may run again. */
const RETRYABLE_RESULT = 'SYNCHRONIZATION_FAILED';

/** What a retry must not inherit from the failed synchronization: its outcome and its own recovery history. */
const OUTCOME_FIELDS = [
  'result',
  'accessGranted',
  'offerId',
  'finalizedAt',
  'acknowledge',
  'parked',
  'retryAt',
  'recoveries',
  'publishState',
  'eventDetail',
  'entitlementEvents',
  'refreshOutcome',
  'retriedAs',
  'retriedAt',
  'executions',
] as const;

/**
 * `iap-sync sync retry`: an operator starts a synchronization that did not succeed again, safely.
 *
 * - Finalized `SYNCHRONIZATION_FAILED` (the store stayed unreachable, or refused our key): its result
 *   is final (contract §4: `finalized` is the last status; its `inappPurchaseSyncResult` went out
 *   once), so it is not re-run. A NEW synchronization of the same request is accepted, exactly as a
 *   register or transfer would be (the purchase's locks, a Google register's claim on the token, the
 *   customer), with `retryOf` naming the failed one, which names it back (`retriedAs`, a conditional
 *   write: the first retry wins, a second run answers `already_retried`). It gets its own
 *   synchronizationId, result and event, and keeps the failed one's correlationId, so the
 *   publisher's systems can match it to their order.
 * - Finalized with any other result: refused. The store answered; a successful one is never re-run.
 * - Open and parked (EXPRESS, waiting for its next attempt): that attempt starts now.
 * - Open, its execution running (STANDARD: described; EXPRESS: open less than 6 minutes since it
 *   started or was restarted): nothing to do.
 * - Open, its execution ended or never started: started again like the recovery sweeper does
 *   (`.r<n>`, counted with a conditional write), after taking its locks again for a fresh lease,
 *   which is refused while another synchronization holds one.
 * - A store notification's refresh: refused (the reconciliation re-reads purchases).
 */
export async function redriveSynchronization(deps: RedriveDeps, ref: { publisherId: number; synchronizationId: string }): Promise<RedriveOutcome> {
  const sync = (await deps.syncs.get(ref)) as RecoveredSynchronization | undefined;
  if (!sync) throw new RedriveRefusedError(`Synchronization ${ref.synchronizationId} not found for publisher ${ref.publisherId}`);
  if (sync.kind === 'refresh') {
    throw new RedriveRefusedError(
      `Synchronization ${sync.synchronizationId} is a store notification's refresh, not a register or transfer: the reconciliation re-reads the purchase (iap-sync reconcile)`,
    );
  }
  if (sync.status === 'finalized') return retryFailed(deps, sync);
  return restartStuck(deps, sync);
}

async function retryFailed(deps: RedriveDeps, failed: RecoveredSynchronization): Promise<RedriveOutcome> {
  const { synchronizationId } = failed;
  if (failed.result !== RETRYABLE_RESULT) {
    throw new RedriveRefusedError(
      `Synchronization ${synchronizationId} is finalized ${failed.result ?? 'without a result'}: the store answered, so there is nothing to retry ` +
        `(only ${RETRYABLE_RESULT} is retried; a new register of the purchase synchronizes it again)`,
    );
  }
  let retryId = failed.retriedAs;
  if (retryId === undefined) {
    const candidate = (deps.newId ?? randomUUID)();
    if (await deps.records.claimRetry(failed, candidate, deps.clock.now())) {
      retryId = candidate;
    } else {
      // Another retry was named first (a concurrent run): that one is the retry.
      retryId = ((await deps.syncs.get(failed)) as RecoveredSynchronization | undefined)?.retriedAs;
      if (retryId === undefined) throw new RedriveRefusedError(`Synchronization ${synchronizationId} changed while it was being retried; run the command again`);
    }
  }
  const existing = await deps.syncs.get({ publisherId: failed.publisherId, synchronizationId: retryId });
  if (existing) return alreadyRetried(failed, existing);

  const now = deps.clock.now();
  const retry = await retryOf(deps, failed, retryId, now);
  const accepted = await deps.syncs.accept({
    sync: retry,
    leaseExpiresAt: now.getTime() + deps.leaseSeconds * 1000,
    ...(retry.claimKey !== undefined ? { claimKey: retry.claimKey } : {}),
  });
  switch (accepted.outcome) {
    case 'accepted':
      break;
    case 'exists':
      return alreadyRetried(failed, accepted.existing);
    case 'customer_missing':
      await deps.records.releaseRetry(failed, retryId);
      throw new RedriveRefusedError(`Customer ${failed.customerId} of publisher ${failed.publisherId} no longer exists: nothing was retried`);
    case 'claimed':
      await deps.records.releaseRetry(failed, retryId);
      throw new RedriveRefusedError(
        `The purchase token was registered again since (synchronization ${accepted.synchronizationId}): that synchronization is the retry; nothing was started`,
      );
    case 'locked':
      await deps.records.releaseRetry(failed, retryId);
      throw new RedriveRefusedError(
        `The purchase is locked by ${accepted.holder !== undefined ? `synchronization ${accepted.holder}` : 'another request'} (${accepted.lockKey ?? 'its lock'}): ` +
          'try again once it is finalized; nothing was started',
      );
  }
  const name = executionName(retry);
  try {
    await deps.workflow.start(executionInput(retry), name);
  } catch (error) {
    // Not started: undo, so the next run of the command starts from a clean state.
    await deps.syncs.abandon(retry);
    await deps.records.releaseRetry(failed, retryId);
    throw new RedriveRefusedError(`The workflow could not be started (${(error as Error).name}: ${(error as Error).message}); nothing was retried`);
  }
  deps.logger.warn('failed synchronization retried by an operator', { synchronizationId, publisherId: failed.publisherId, retry: retryId });
  return { action: 'retried', synchronizationId, retry: { synchronizationId: retryId, executionName: name } };
}

function alreadyRetried(failed: Synchronization, retry: Synchronization): RedriveOutcome {
  return {
    action: 'already_retried',
    synchronizationId: failed.synchronizationId,
    retry: { synchronizationId: retry.synchronizationId, status: retry.status, ...(retry.result !== undefined ? { result: retry.result } : {}) },
  };
}

/** The retry's record: the failed one's request (store, kind, customer, purchase, proof, client headers), nothing of its outcome. */
async function retryOf(deps: RedriveDeps, failed: RecoveredSynchronization, retryId: string, now: Date): Promise<RecoveredSynchronization> {
  const request: Record<string, unknown> = { ...failed };
  for (const field of OUTCOME_FIELDS) delete request[field];
  // Apple: the subscription's lock too, when a synchronization of it has learnt it since (as a register would).
  // A finalized record no longer lists its locks: the request names them.
  let lockKeys = failed.lockKeys.length > 0 ? failed.lockKeys : purchaseLocks(failed);
  if (failed.store === 'apple' && failed.transactionId !== undefined) {
    const originalTransactionId = await deps.syncs.findOriginalTransactionId(failed.publisherId, failed.transactionId);
    if (originalTransactionId !== undefined) lockKeys = [...new Set([...lockKeys, appleLocks.subscription(originalTransactionId)])];
  }
  return {
    ...(request as unknown as Synchronization),
    synchronizationId: retryId,
    status: 'processing',
    attempts: 0,
    lockKeys,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    retryOf: failed.synchronizationId,
  };
}

async function restartStuck(deps: RedriveDeps, sync: RecoveredSynchronization): Promise<RedriveOutcome> {
  const { synchronizationId } = sync;
  const now = deps.clock.now();
  if (!sync.parked) {
    const running = await executionRunning(deps, sync, now);
    if (running !== undefined) return { action: 'none', synchronizationId, reason: running };
  }
  const held = await deps.syncs.renewLocks(sync, now.getTime() + deps.leaseSeconds * 1000);
  if (held) {
    throw new RedriveRefusedError(
      `The purchase is locked by synchronization ${held.holder} (${held.lockKey}${held.leaseExpiresAt !== undefined ? `, lease until ${new Date(held.leaseExpiresAt).toISOString()}` : ''}): ` +
        'nothing was started; try again once it is finalized',
    );
  }
  const restartDeps = { syncs: deps.syncs, workflow: deps.workflow, logger: deps.logger, records: deps.records };
  if (sync.parked) {
    const name = await resumeParked(restartDeps, sync, now, 'operator');
    return name !== undefined
      ? { action: 'resumed', synchronizationId, executionName: name }
      : { action: 'none', synchronizationId, reason: 'its next attempt was started meanwhile (by the recovery sweeper)' };
  }
  const name = await restartOpen(restartDeps, sync, now, 'operator');
  return name !== undefined
    ? { action: 'restarted', synchronizationId, executionName: name }
    : { action: 'none', synchronizationId, reason: 'it was restarted or finalized meanwhile (by the recovery sweeper or its workflow)' };
}

/** Why its current execution may still be running, or undefined when it has ended (or never started). */
async function executionRunning(deps: RedriveDeps, sync: RecoveredSynchronization, now: Date): Promise<string | undefined> {
  const name = executionName(sync);
  if (deps.workflowType === 'STANDARD') {
    const state = await deps.inspector.state(name);
    return state === 'running' ? `its execution ${name} is running: let it finish (it finalizes, or the recovery sweeper takes over)` : undefined;
  }
  // EXPRESS executions cannot be described; each ends within 5 minutes of when it started.
  const since = (await deps.records.openSince(sync)) ?? sync.updatedAt;
  const endsBy = Date.parse(since) + EXPRESS_ENDED_AFTER_SECONDS * 1000;
  return now.getTime() < endsBy
    ? `its EXPRESS execution may still be running (started or restarted at ${since}; EXPRESS executions end within 5 minutes): try again after ${new Date(endsBy).toISOString()}`
    : undefined;
}
