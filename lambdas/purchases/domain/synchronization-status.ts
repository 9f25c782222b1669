import type { SynchronizationRepository } from '../ports/synchronization-repository';
import type { Caller } from '../../tenants';
import { ApiError } from '../../platform/errors';
import type { Store } from '../../events/vocabulary';
import { toStatusView } from './synchronization';

/**
 * Status of a synchronization. Another publisher's, another customer's (for a JWT) or another
 * store's synchronization answers exactly like an unknown id: `404 REQ0100` (no existence oracle).
 */
export async function getSynchronizationStatus(
  deps: { syncs: SynchronizationRepository },
  query: { caller: Caller; store: Store; synchronizationId: string },
) {
  const { caller } = query;
  // Looked up under the caller's publisher: another publisher's id is another key (contract §5).
  const sync = await deps.syncs.get({ publisherId: caller.publisherId, synchronizationId: query.synchronizationId.toLowerCase() });
  const visible =
    sync !== undefined &&
    // A store notification's refresh is internal: its id is never handed out, and it reads as unknown.
    sync.kind !== 'refresh' &&
    sync.publisherId === caller.publisherId &&
    sync.store === query.store &&
    (caller.kind === 'publisher' || sync.customerId === caller.customerId);
  if (!visible) throw new ApiError('REQ0100');
  return toStatusView(sync);
}
