import { randomUUID } from 'node:crypto';
import type { Store } from '../../events/vocabulary';
import type { Clock } from '../../platform/clock';
import type { Logger } from '../../platform/logger';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import type { WorkflowStarter } from '../ports/workflow';
import { executionInput } from './accept-purchase';
import type { Synchronization } from './synchronization';

/** A verified store notification naming one purchase (the lifecycle slice calls it PurchaseChangeNotice). */
export interface NoticeInput {
  publisherId: number;
  store: Store;
  /** The store's own id: Apple notificationUUID, Pub/Sub messageId. The idempotency key. */
  notificationId: string;
  notificationType: string;
  subtype?: string;
  /** Apple: originalTransactionId; Google: purchaseToken. */
  purchaseKey: string;
  /** Apple: the transaction the notification names (the store is asked about it). */
  transactionId?: string;
  /** Google: the app the token belongs to. */
  packageName?: string;
  /** ISO 8601: when the store signed or published it. */
  sentAt: string;
}

export interface NoticeDeps {
  syncs: SynchronizationRepository;
  workflow: WorkflowStarter;
  clock: Clock;
  logger: Logger;
  newId?: () => string;
}

/**
 * Records a store notification as a `refresh` synchronization and starts the same workflow a
 * register runs (store outages retried with the same budget, nothing lost). The notification's
 * own id makes a redelivery a no-op. A failed start is not an error: the record is in the open
 * index, so the recovery sweeper starts it.
 */
export async function acceptNotice(deps: NoticeDeps, notice: NoticeInput): Promise<'accepted' | 'duplicate'> {
  const now = deps.clock.now().toISOString();
  const sync: Synchronization = {
    synchronizationId: (deps.newId ?? randomUUID)(),
    publisherId: notice.publisherId,
    store: notice.store,
    kind: 'refresh',
    customerId: 0,
    ...(notice.store === 'apple' ? { transactionId: notice.transactionId ?? notice.purchaseKey } : { purchaseToken: notice.purchaseKey }),
    ...(notice.packageName !== undefined ? { packageName: notice.packageName } : {}),
    purchaseKey: notice.purchaseKey,
    notice: { id: notice.notificationId, type: notice.notificationType, ...(notice.subtype !== undefined ? { subtype: notice.subtype } : {}) },
    status: 'processing',
    requestHash: '',
    lockKeys: [],
    client: {},
    attempts: 0,
    createdAt: now,
    updatedAt: now,
  };
  const outcome = await deps.syncs.acceptNotice(sync, { store: notice.store, notificationId: notice.notificationId });
  if (outcome === 'duplicate') return 'duplicate';
  try {
    await deps.workflow.start(executionInput(sync));
  } catch (error) {
    deps.logger.warn('workflow start failed for a store notification; the recovery sweeper starts it', {
      synchronizationId: sync.synchronizationId,
      error,
    });
  }
  return 'accepted';
}
