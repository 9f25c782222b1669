/** `iap-sync sync show`: one stored synchronization, for support. */
import { DynamoDbSynchronizationRepository } from '../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { toStatusView, type ClientMetadata } from '../../lambdas/purchases/domain/synchronization';
import type { Store } from '../../lambdas/events/vocabulary';
import { UUID_PATTERN } from '../../lambdas/platform/schema-primitives';
import { optionalString, parsePositiveInt32, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';

export type SynchronizationShown = ReturnType<typeof toStatusView> & {
  publisherId: number;
  store: Store;
  kind: string;
  customerId: number;
  transactionId?: string;
  packageName?: string;
  attempts: number;
  /** The client headers of the register or transfer (X-App-Version, X-Device-Id, X-Device-Type, X-User-Action). */
  client?: ClientMetadata;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
};

/** The stored synchronization: what the status route shows, plus the fields support asks for. */
export function parseSyncShow(synchronizationId: string | undefined, args: Args): { id: string; publisherId: number } {
  if (synchronizationId === undefined || !UUID_PATTERN.test(synchronizationId)) {
    throw new UsageError(`sync show needs a synchronizationId (a UUID), got ${JSON.stringify(synchronizationId ?? '')}`);
  }
  const publisherRaw = optionalString(args, 'publisher');
  // Ids are unique per publisher only (a Correlation-Id UUID becomes the id): the publisher is part of the key.
  if (publisherRaw === undefined) throw new UsageError('sync show needs --publisher N (synchronization ids are unique per publisher)');
  return {
    // Ids are stored lower-cased (a Correlation-Id UUID becomes the id as lower case).
    id: synchronizationId.toLowerCase(),
    publisherId: parsePositiveInt32('--publisher', publisherRaw),
  };
}

export async function syncShow(target: StackTarget, synchronizationId: string | undefined, args: Args): Promise<SynchronizationShown> {
  const { id, publisherId } = parseSyncShow(synchronizationId, args);
  const sync = await new DynamoDbSynchronizationRepository(target.db, target.tableName).get({ publisherId, synchronizationId: id });
  if (!sync) throw new CommandError(`Synchronization ${id} not found for publisher ${publisherId} in ${target.description}`);
  return {
    ...toStatusView(sync),
    publisherId: sync.publisherId,
    store: sync.store,
    kind: sync.kind,
    customerId: sync.customerId,
    ...(sync.transactionId !== undefined ? { transactionId: sync.transactionId } : {}),
    ...(sync.packageName !== undefined ? { packageName: sync.packageName } : {}),
    attempts: sync.attempts,
    ...(Object.values(sync.client ?? {}).some((value) => value !== undefined) ? { client: sync.client } : {}),
    createdAt: sync.createdAt,
    updatedAt: sync.updatedAt,
    ...(sync.finalizedAt !== undefined ? { finalizedAt: sync.finalizedAt } : {}),
  };
}
