/** `iap-sync sync show` and `sync retry`: one stored synchronization, for support and operators. */
import { SfnWorkflowInspector, SfnWorkflowStarter } from '../../lambdas/purchases/adapters/sfn-workflow-starter';
import { DynamoDbPendingAcknowledgements } from '../../lambdas/purchases/adapters/dynamodb-pending-acknowledgements';
import { DynamoDbSynchronizationRepository } from '../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { executionName, toStatusView, type ClientMetadata } from '../../lambdas/purchases/domain/synchronization';
import type { PendingAcknowledgement } from '../../lambdas/purchases/ports/pending-acknowledgements';
import { LOCK_LEASE_SECONDS } from '../../lambdas/purchases/workflow-definition';
import { DynamoDbRecoveryRecords } from '../../lambdas/lifecycle/adapters/dynamodb-recovery-records';
import { redriveSynchronization, RedriveRefusedError, type RecoveredSynchronization, type RedriveOutcome } from '../../lambdas/lifecycle/domain/redrive-synchronization';
import { systemClock, type Clock } from '../../lambdas/platform/clock';
import type { Logger } from '../../lambdas/platform/logger';
import type { Store } from '../../lambdas/events/vocabulary';
import { UUID_PATTERN } from '../../lambdas/platform/schema-primitives';
import { optionalString, parsePositiveInt32, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';

/** One execution of the synchronization's workflow, by name. */
export interface ExecutionShown {
  name: string;
  startedAt: string;
  /** `accept` (the register or transfer), `operator-retry` (a retry's first), or who restarted or resumed it. */
  by: string;
}

export type SynchronizationShown = ReturnType<typeof toStatusView> & {
  publisherId: number;
  store: Store;
  kind: string;
  customerId: number;
  transactionId?: string;
  packageName?: string;
  /** Store verifications that failed and were retried (the workflow's retry count). */
  attempts: number;
  /** Restarts by the recovery sweeper or an operator (`.r<n>` executions). */
  recoveries: number;
  /** EXPRESS: waiting for its next attempt, due at `retryAt`. */
  parked?: boolean;
  retryAt?: string;
  /** Finalized: `claimed` until its event is known to be published, then `published`. */
  publishState?: string;
  refreshOutcome?: string;
  /** The executions it ran under, oldest first: the first one, then each restart or resumed attempt recorded. */
  executions: ExecutionShown[];
  /** A retry (`sync retry`) of this failed synchronization, and when it was made. */
  retriedAs?: string;
  retriedAt?: string;
  /** This synchronization is an operator's retry of that failed one. */
  retryOf?: string;
  /** Google: the purchase's pending acknowledgement, when its workflow could not acknowledge it. */
  acknowledgement?: Omit<PendingAcknowledgement, 'publisherId' | 'purchaseToken'>;
  /** The client headers of the register or transfer (X-App-Version, X-Device-Id, X-Device-Type, X-User-Action). */
  client?: ClientMetadata;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
};

/** The stored synchronization: what the status route shows, plus the fields support asks for. */
export function parseSyncShow(synchronizationId: string | undefined, args: Args, command = 'sync show'): { id: string; publisherId: number } {
  if (synchronizationId === undefined || !UUID_PATTERN.test(synchronizationId)) {
    throw new UsageError(`${command} needs a synchronizationId (a UUID), got ${JSON.stringify(synchronizationId ?? '')}`);
  }
  const publisherRaw = optionalString(args, 'publisher');
  // Ids are unique per publisher only (a Correlation-Id UUID becomes the id): the publisher is part of the key.
  if (publisherRaw === undefined) throw new UsageError(`${command} needs --publisher N (synchronization ids are unique per publisher)`);
  return {
    // Ids are stored lower-cased (a Correlation-Id UUID becomes the id as lower case).
    id: synchronizationId.toLowerCase(),
    publisherId: parsePositiveInt32('--publisher', publisherRaw),
  };
}

export const parseSyncRetry = (synchronizationId: string | undefined, args: Args) => parseSyncShow(synchronizationId, args, 'sync retry');

function notFound(target: StackTarget, id: string, publisherId: number): CommandError {
  return new CommandError(`Synchronization ${id} not found for publisher ${publisherId} in ${target.description}`);
}

export async function syncShow(target: StackTarget, synchronizationId: string | undefined, args: Args): Promise<SynchronizationShown> {
  const { id, publisherId } = parseSyncShow(synchronizationId, args);
  const sync = (await new DynamoDbSynchronizationRepository(target.db, target.tableName).get({ publisherId, synchronizationId: id })) as RecoveredSynchronization | undefined;
  if (!sync) throw notFound(target, id, publisherId);
  const pending = sync.store === 'google' && sync.purchaseToken !== undefined ? await new DynamoDbPendingAcknowledgements(target.db, target.tableName).find(publisherId, sync.purchaseToken) : undefined;
  const { publisherId: _publisher, purchaseToken: _token, ...acknowledgement } = pending ?? ({} as Partial<PendingAcknowledgement>);
  const first: ExecutionShown = { name: executionName({ ...sync, recoveries: 0 }), startedAt: sync.createdAt, by: sync.retryOf !== undefined ? 'operator-retry' : 'accept' };
  return {
    ...toStatusView(sync),
    publisherId: sync.publisherId,
    store: sync.store,
    kind: sync.kind,
    customerId: sync.customerId,
    ...(sync.transactionId !== undefined ? { transactionId: sync.transactionId } : {}),
    ...(sync.packageName !== undefined ? { packageName: sync.packageName } : {}),
    attempts: sync.attempts,
    recoveries: sync.recoveries ?? 0,
    ...(sync.parked ? { parked: true, ...(sync.retryAt !== undefined ? { retryAt: sync.retryAt } : {}) } : {}),
    ...(sync.publishState !== undefined ? { publishState: sync.publishState } : {}),
    ...(sync.refreshOutcome !== undefined ? { refreshOutcome: sync.refreshOutcome } : {}),
    executions: [first, ...(sync.executions ?? [])],
    ...(sync.retriedAs !== undefined ? { retriedAs: sync.retriedAs } : {}),
    ...(sync.retriedAt !== undefined ? { retriedAt: sync.retriedAt } : {}),
    ...(sync.retryOf !== undefined ? { retryOf: sync.retryOf } : {}),
    ...(pending ? { acknowledgement: acknowledgement as Omit<PendingAcknowledgement, 'publisherId' | 'purchaseToken'> } : {}),
    ...(Object.values(sync.client ?? {}).some((value) => value !== undefined) ? { client: sync.client } : {}),
    createdAt: sync.createdAt,
    updatedAt: sync.updatedAt,
    ...(sync.finalizedAt !== undefined ? { finalizedAt: sync.finalizedAt } : {}),
  };
}

/** Errors only: what the command did is its JSON answer. */
const quietLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message, fields) => process.stderr.write(`error: ${message} ${JSON.stringify(fields ?? {}, (_key, value: unknown) => (value instanceof Error ? `${value.name}: ${value.message}` : value))}\n`),
};

/** What tests replace. */
export interface SyncRetryIo {
  clock?: Clock;
  newId?: () => string;
}

/**
 * `iap-sync sync retry <id> --publisher N`: starts a synchronization that did not succeed again,
 * safely (lambdas/lifecycle/domain/redrive-synchronization.ts): a finalized SYNCHRONIZATION_FAILED
 * gets a new synchronization of the same request (its own id, result and event; the failed one
 * keeps its result); an open one whose execution ended is restarted, a parked one resumed; a running
 * one is left alone; any other result is refused. Run twice, the second run changes nothing.
 */
export async function syncRetry(target: StackTarget, synchronizationId: string | undefined, args: Args, io: SyncRetryIo = {}): Promise<RedriveOutcome> {
  const { id, publisherId } = parseSyncRetry(synchronizationId, args);
  const workflow = target.workflow;
  if (!workflow) {
    throw new CommandError(`The state machine of the ${target.description} is unknown (no awsEndpointUrl in its runtime.json): restart \`npm start\``);
  }
  const syncs = new DynamoDbSynchronizationRepository(target.db, target.tableName);
  if (!(await syncs.get({ publisherId, synchronizationId: id }))) throw notFound(target, id, publisherId);
  const workflowType = await workflow.workflowType();
  try {
    return await redriveSynchronization(
      {
        syncs,
        records: new DynamoDbRecoveryRecords(target.db, target.tableName),
        workflow: new SfnWorkflowStarter(workflow.stateMachineArn, workflow.client),
        inspector: new SfnWorkflowInspector(workflow.stateMachineArn, workflowType, workflow.client),
        workflowType,
        clock: io.clock ?? systemClock,
        logger: quietLogger,
        leaseSeconds: LOCK_LEASE_SECONDS,
        ...(io.newId ? { newId: io.newId } : {}),
      },
      { publisherId, synchronizationId: id },
    );
  } catch (error) {
    if (error instanceof RedriveRefusedError) throw new CommandError(error.message);
    throw error;
  }
}
