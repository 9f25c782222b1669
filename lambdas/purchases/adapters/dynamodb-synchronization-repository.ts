import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type UpdateCommandInput,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from 'node:zlib';
import { ConcurrentUpdateError } from '../../platform/errors';
import { retainUntil } from '../../entitlements';
import { entitlementOf, snapshotOf, type EntitlementChange, type PurchaseRecord } from '../domain/ownership';
import type { Store } from '../../events/vocabulary';
import type { EntitlementChangedDetail } from '../../events/schemas';
import type { Synchronization, SyncRef } from '../domain/synchronization';
import { appleLocks } from '../domain/accept-purchase';
import type {
  AcceptOutcome,
  HeldLock,
  AcceptRequest,
  FinalizeRequest,
  OpenSynchronization,
  SynchronizationRepository,
} from '../ports/synchronization-repository';
import { callAws } from '../../platform/aws-errors';
import { keys, OPEN_SHARDS, openShardOf, reconcileIndexAttributes, synchronizationOfPk, TABLE_DEFINITION } from '../../platform/dynamodb-table';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** Synchronization records stay readable (status route, idempotent replay) for this long. */
const SYNC_RETENTION_SECONDS = 400 * 24 * 3600;
const { openIndex } = TABLE_DEFINITION;
const ITEM_ATTRIBUTES = new Set(['pk', 'sk', 'type', 'ttl', 'events', openIndex.partitionKey.name, openIndex.sortKey.name]);

/**
 * The finalize's events (the `inappPurchaseSyncResult` detail and the `inappEntitlementChanged`
 * details), kept on the record until published and for support, stored as one Brotli-compressed
 * binary attribute (AWS's advice for large attribute values). As JSON they are about 1 KB for a
 * register and 1.6 KB for a transfer, which put the whole record over 1 KB: every write of it then
 * cost 2 units (4 in the finalize transaction). Compressed they are 350–400 bytes.
 */
/** Splits an event's fields into those equal to the record's same-named field (named only) and the rest. */
function elide(event: Record<string, unknown>, record: Record<string, unknown>): { d: Record<string, unknown>; s: string[] } {
  const s: string[] = [];
  const d: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (value !== undefined && value !== null && typeof value !== 'object' && record[name] === value) s.push(name);
    else d[name] = value;
  }
  return { d, s };
}

function restore(stored: { d: Record<string, unknown>; s: string[] }, record: Record<string, unknown>): Record<string, unknown> {
  return { ...Object.fromEntries(stored.s.map((name) => [name, record[name]])), ...stored.d };
}

/**
 * The finalize's events (the `inappPurchaseSyncResult` detail and the `inappEntitlementChanged`
 * details), kept on the record until published and for support, stored as one Brotli-compressed
 * binary attribute (AWS's advice for large attribute values). As JSON they are about 1 KB for a
 * register and 1.6 KB for a transfer, which put the whole record over 1 KB: every write of it then
 * cost 2 units (4 in the finalize transaction). Fields equal to the record's own (id, store, kind,
 * result, …) are named, not repeated, and taken back from the record when read.
 */
function encodeEvents(sync: Synchronization): Uint8Array | undefined {
  if (sync.eventDetail === undefined && sync.entitlementEvents === undefined) return undefined;
  const record = sync as unknown as Record<string, unknown>;
  const json = JSON.stringify({
    ...(sync.eventDetail !== undefined ? { r: elide(sync.eventDetail, record) } : {}),
    ...(sync.entitlementEvents !== undefined ? { e: sync.entitlementEvents.map((event) => elide(event as unknown as Record<string, unknown>, record)) } : {}),
    // What a finalized record keeps for support only goes in too: the client headers and the proof.
    c: sync.client,
    ...(sync.proof !== undefined ? { p: sync.proof } : {}),
  });
  return brotliCompressSync(json, {
    params: {
      [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
      // Quality 5: about 0.06 ms for a 1 KB record against 1.7 ms at the maximum, for some 25 bytes more.
      [zlib.BROTLI_PARAM_QUALITY]: 5,
      [zlib.BROTLI_PARAM_SIZE_HINT]: json.length,
    },
  });
}

type StoredEvent = { d: Record<string, unknown>; s: string[] };

function decodeEvents(value: unknown, record: Record<string, unknown>): Partial<Synchronization> {
  if (!(value instanceof Uint8Array)) return {};
  const { r, e, c, p } = JSON.parse(brotliDecompressSync(value).toString('utf8')) as {
    r?: StoredEvent;
    e?: StoredEvent[];
    c?: Synchronization['client'];
    p?: Synchronization['proof'];
  };
  return {
    ...(r !== undefined ? { eventDetail: restore(r, record) } : {}),
    ...(e !== undefined ? { entitlementEvents: e.map((event) => restore(event, record) as unknown as EntitlementChangedDetail) } : {}),
    ...(c !== undefined ? { client: c } : {}),
    ...(p !== undefined ? { proof: p } : {}),
  };
}

/** The record as stored → the domain's Synchronization (records written before compression keep plain attributes). */
export function toSynchronization(item: Record<string, unknown>): Synchronization {
  const sync: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(item)) if (!ITEM_ATTRIBUTES.has(key)) sync[key] = value;
  // Binary on records written since the hash is stored as its 32 bytes; hex before.
  if (sync.requestHash instanceof Uint8Array) sync.requestHash = Buffer.from(sync.requestHash).toString('hex');
  // A finalized record holds no locks any more, so it does not keep their names.
  sync.lockKeys ??= [];
  return { ...(sync as unknown as Synchronization), ...decodeEvents(item.events, sync) };
}

/**
 * The workflow's MarkPublished state makes exactly this update (statemachines/purchase-sync.asl.json;
 * a test holds the two together): `published`, and out of the open index.
 */
export const MARK_PUBLISHED = {
  UpdateExpression: `SET publishState = :published REMOVE ${openIndex.partitionKey.name}, ${openIndex.sortKey.name}`,
  ExpressionAttributeValues: { ':published': 'published' },
} as const;

/**
 * The stored record. `openShard`/`openSince` put it in the sparse open index while it is not
 * finalized, and after finalize until its event is known to be published (`publishState` claimed).
 * Every write of the record is a whole Put, so it enters and leaves the index in that same write.
 * `openSince` is the accept time, so the finalize Put leaves the index entry as it is (no index
 * write); MarkRetrying and a sweeper restart move it to when the sweeper should look again.
 */
export function syncItem(sync: Synchronization): Record<string, unknown> {
  const ttl = Math.floor(Date.parse(sync.createdAt) / 1000) + SYNC_RETENTION_SECONDS;
  const open =
    sync.status !== 'finalized' || sync.publishState === 'claimed'
      ? { [openIndex.partitionKey.name]: openShardOf(sync.synchronizationId), [openIndex.sortKey.name]: sync.createdAt }
      : {};
  const events = encodeEvents(sync);
  const { eventDetail: _detail, entitlementEvents: _events, lockKeys, client, proof, requestHash, ...plain } = sync;
  return {
    ...keys.synchronization(sync.publisherId, sync.synchronizationId),
    type: 'sync',
    ...plain,
    // Under 1 KB, the record costs 1 write unit a write (2 in a transaction): the hash as its 32 bytes,
    // and, once finalized, the support-only fields compressed with the events and no lock names.
    requestHash: /^[0-9a-f]{64}$/.test(requestHash) ? Buffer.from(requestHash, 'hex') : requestHash,
    ...(events ? { events } : { lockKeys, client, ...(proof !== undefined ? { proof } : {}) }),
    ...open,
    ttl,
  };
}

/**
 * Longer than any accept can take (the API functions time out after 10 s): a lock this old whose
 * holder has no record was left by an accept that died between its two writes.
 */
const ORPHAN_LOCK_AFTER_MS = 60_000;

interface LockState {
  owner?: string;
  acquiredAt?: number;
  leaseExpiresAt?: number;
}

interface CancellationReason {
  Code?: string;
  Item?: Record<string, unknown>;
}

function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if ((error as Error)?.name !== 'TransactionCanceledException') return undefined;
  return ((error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? []) as CancellationReason[];
}

/**
 * Locks follow the Powertools idempotency pattern: a conditional put that succeeds when the item is
 * absent or its lease has expired, the synchronizationId as owner token, and a release conditioned
 * on that owner.
 */
export class DynamoDbSynchronizationRepository implements SynchronizationRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly nowMs: () => number = Date.now,
  ) {}

  async accept({ sync, leaseExpiresAt, claimKey }: AcceptRequest): Promise<AcceptOutcome> {
    // Customers are never deleted, so a strongly consistent read is as good a check as a condition in
    // the transaction, at a fifth of the price (1 read unit instead of 2 write units).
    const customer = await this.readCustomer(sync.publisherId, sync.customerId);
    if (!customer) return { outcome: 'customer_missing' };
    const outcome = await this.acceptLocked(sync, leaseExpiresAt, claimKey);
    if (outcome.outcome === 'accepted' && sync.ipAddress !== undefined && sync.ipAddress !== customer.lastActivityIp) {
      await this.recordActivity(sync, sync.ipAddress);
    }
    return outcome;
  }

  private async acceptLocked(sync: Synchronization, leaseExpiresAt: number, claimKey: string | undefined): Promise<AcceptOutcome> {
    if (claimKey === undefined) return this.acceptInSteps(sync, leaseExpiresAt);
    const first = await this.tryAccept(sync, leaseExpiresAt, claimKey, new Map());
    if (first.outcome !== 'take_over') return first;
    // Every lock that refused us is held by a finalized (or vanished) synchronization: take them over,
    // each conditioned on that same holder, so two requests doing this at once cannot both win.
    const second = await this.tryAccept(sync, leaseExpiresAt, claimKey, first.holders);
    return second.outcome === 'take_over' ? { outcome: 'locked' } : second;
  }

  private async readCustomer(publisherId: number, customerId: number): Promise<{ lastActivityIp?: string } | undefined> {
    const out = await callAws('check customer', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.customer(publisherId, customerId), ProjectionExpression: 'pk, lastActivityIp', ConsistentRead: true }),
      ),
    );
    if (!out.Item) return undefined;
    return typeof out.Item.lastActivityIp === 'string' ? { lastActivityIp: out.Item.lastActivityIp } : {};
  }

  /**
   * The request's `ipAddress` becomes the customer's last-activity address (contract §3), written only
   * when it changed (1 write unit, outside the accept, which stands whatever happens here).
   */
  private async recordActivity(sync: Synchronization, ipAddress: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.customer(sync.publisherId, sync.customerId),
          UpdateExpression: 'SET lastActivityIp = :ip, lastActivityAt = :at',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':ip': ipAddress, ':at': sync.createdAt },
        }),
      );
    } catch {
      // Best effort: the synchronization is accepted; the next request from a new address writes it.
    }
  }

  /**
   * One TransactWriteItems: the record (must not exist) and each lock. A lock is free when it has no
   * owner, its lease has expired, or it is ours (a replay); `takeOver` names locks whose holder is
   * known to be done, claimed on that holder instead. A finalize does not release locks (that would
   * be two more write units per synchronization, four in its transaction): a lock whose holder is
   * finalized is free, which the second try below finds out by reading the holder.
   */
  private async tryAccept(
    sync: Synchronization,
    leaseExpiresAt: number,
    claimKey: string | undefined,
    takeOver: Map<string, string>,
  ): Promise<AcceptOutcome | { outcome: 'take_over'; holders: Map<string, string> }> {
    const now = this.nowMs();
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: syncItem(sync),
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      ...sync.lockKeys.map((lockKey): TransactItem => ({ Update: this.lockClaim(sync, lockKey, leaseExpiresAt, now, takeOver.get(lockKey)) })),
      // Last, so the lock reasons keep their positions: [sync, ...locks, claim].
      ...(claimKey !== undefined
        ? [
            {
              Put: {
                TableName: this.tableName,
                Item: { ...keys.lock(sync.publisherId, claimKey), type: 'claim', owner: sync.synchronizationId },
                ConditionExpression: 'attribute_not_exists(pk)',
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            } satisfies TransactItem,
          ]
        : []),
    ];
    try {
      await callAws('accept synchronization', () => this.db.send(new TransactWriteCommand({ TransactItems: items })));
      return { outcome: 'accepted' };
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      const [syncReason, ...rest] = reasons;
      const lockReasons = rest.slice(0, sync.lockKeys.length);
      const claimReason = claimKey !== undefined ? rest[sync.lockKeys.length] : undefined;
      if (syncReason?.Code === 'ConditionalCheckFailed') {
        const existing = await this.get(sync);
        if (existing) return { outcome: 'exists', existing };
      }
      if (claimKey !== undefined && (claimReason?.Code === 'ConditionalCheckFailed' || claimReason?.Code === 'TransactionConflict')) {
        const owner = await this.ownerOf(sync.publisherId, claimKey, claimReason.Item);
        if (owner !== undefined) return { outcome: 'claimed', synchronizationId: owner };
      }
      const refused = lockReasons.flatMap((reason, index) => {
        const lockKey = sync.lockKeys[index];
        return lockKey !== undefined && (reason.Code === 'ConditionalCheckFailed' || reason.Code === 'TransactionConflict') ? [{ lockKey, reason }] : [];
      });
      if (refused.length > 0) {
        // A conflict means another request is claiming the same lock right now: it is, in effect, held.
        const stale = new Map<string, string>();
        let held: { lockKey: string; holder?: string } | undefined;
        for (const { lockKey, reason } of refused) {
          const lock = reason.Code === 'ConditionalCheckFailed' ? await this.lockOf(sync.publisherId, lockKey, reason.Item) : undefined;
          const holder = lock?.owner;
          if (lock && holder !== undefined && takeOver.size === 0 && holder !== sync.synchronizationId && (await this.holderIsDone(sync.publisherId, lock))) {
            stale.set(lockKey, holder);
          } else {
            held ??= { lockKey, ...(holder !== undefined ? { holder } : {}) };
          }
        }
        return held ? { outcome: 'locked', ...held } : { outcome: 'take_over', holders: stale };
      }
      if (syncReason?.Code === 'TransactionConflict') {
        // The same synchronizationId is being accepted concurrently (a replayed Correlation-Id).
        return { outcome: 'locked' };
      }
      throw error;
    }
  }

  /**
   * Who holds a lock or claim: from the cancellation reason when DynamoDB returned the item
   * (ReturnValuesOnConditionCheckFailure), else read back; undefined when it has none.
   */
  private async ownerOf(publisherId: number, lockKey: string, returned: Record<string, unknown> | undefined): Promise<string | undefined> {
    if (typeof returned?.owner === 'string') return returned.owner;
    const out = await callAws('read lock', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.lock(publisherId, lockKey), ConsistentRead: true })),
    );
    return typeof out.Item?.owner === 'string' ? out.Item.owner : undefined;
  }

  /** A lock item's holder and when it took the lock: from the cancellation reason when DynamoDB returned the item, else read back. */
  private async lockOf(publisherId: number, lockKey: string, returned: Record<string, unknown> | undefined): Promise<LockState> {
    const item =
      typeof returned?.owner === 'string'
        ? returned
        : (await callAws('read lock', () => this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.lock(publisherId, lockKey), ConsistentRead: true })))).Item;
    return {
      ...(typeof item?.owner === 'string' ? { owner: item.owner } : {}),
      ...(typeof item?.acquiredAt === 'number' ? { acquiredAt: item.acquiredAt } : {}),
      ...(typeof item?.leaseExpiresAt === 'number' ? { leaseExpiresAt: item.leaseExpiresAt } : {}),
    };
  }

  async renewLocks(sync: Pick<Synchronization, 'publisherId' | 'synchronizationId' | 'lockKeys'>, leaseExpiresAt: number): Promise<HeldLock | undefined> {
    if (sync.lockKeys.length === 0) return undefined;
    const takeOver = new Map<string, string>();
    // Twice at most: the second time taking over the locks whose holders were found to be done.
    for (let round = 0; round < 2; round += 1) {
      const now = this.nowMs();
      try {
        await callAws('renew locks', () =>
          this.db.send(
            new TransactWriteCommand({ TransactItems: sync.lockKeys.map((lockKey) => ({ Update: this.lockClaim(sync, lockKey, leaseExpiresAt, now, takeOver.get(lockKey)) })) }),
          ),
        );
        return undefined;
      } catch (error) {
        const reasons = cancellationReasons(error);
        if (!reasons) throw error;
        let held: HeldLock | undefined;
        for (const [index, reason] of reasons.entries()) {
          const lockKey = sync.lockKeys[index];
          if (lockKey === undefined || (reason.Code !== 'ConditionalCheckFailed' && reason.Code !== 'TransactionConflict')) continue;
          const lock = await this.lockOf(sync.publisherId, lockKey, reason.Item);
          if (round === 0 && lock.owner !== undefined && (await this.holderIsDone(sync.publisherId, lock))) takeOver.set(lockKey, lock.owner);
          else held ??= { lockKey, holder: lock.owner ?? 'another request', ...(lock.leaseExpiresAt !== undefined ? { leaseExpiresAt: lock.leaseExpiresAt } : {}) };
        }
        if (held) return held;
      }
    }
    return { lockKey: sync.lockKeys[0] ?? '', holder: 'another request' };
  }

  /**
   * The update that claims one lock for `sync`: free when it has no owner, its lease has expired or it
   * is already this synchronization's; with `holder`, only while that holder (known to be done) has it.
   * An Update, not a Put: the item may carry what outlives the lease (Apple's link to the subscription).
   */
  private lockClaim(sync: Pick<Synchronization, 'publisherId' | 'synchronizationId'>, lockKey: string, leaseExpiresAt: number, now: number, holder: string | undefined) {
    return {
      TableName: this.tableName,
      Key: keys.lock(sync.publisherId, lockKey),
      UpdateExpression: 'SET #type = :lock, #owner = :me, leaseExpiresAt = :lease, acquiredAt = :now',
      ConditionExpression: holder !== undefined ? '#owner = :holder' : 'attribute_not_exists(#owner) OR leaseExpiresAt < :now OR #owner = :me',
      ExpressionAttributeNames: { '#type': 'type', '#owner': 'owner' },
      ExpressionAttributeValues: {
        ':lock': 'lock',
        ':me': sync.synchronizationId,
        ':lease': leaseExpiresAt,
        ':now': now,
        ...(holder !== undefined ? { ':holder': holder } : {}),
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
  }

  /**
   * A lock's holder no longer needs it: its synchronization is finalized, or it has none. A lock
   * taken without its record (the accept in steps writes the lock first) counts as abandoned only
   * once it is older than any accept can take ({@link ORPHAN_LOCK_AFTER_MS}): before that, its record
   * may be on its way.
   */
  private async holderIsDone(publisherId: number, lock: LockState): Promise<boolean> {
    if (lock.owner === undefined) return true;
    const record = await this.get({ publisherId, synchronizationId: lock.owner });
    if (record) return record.status === 'finalized';
    return lock.acquiredAt === undefined || lock.acquiredAt < this.nowMs() - ORPHAN_LOCK_AFTER_MS;
  }

  /**
   * The accept of a request that makes no permanent claim (every Apple request, Google transfers),
   * in two plain conditional writes instead of one transaction (2 write units instead of 4): each
   * lock, then the record. A lock is free as in {@link tryAccept}. If a lock is held, the locks this
   * call took are given back; if the record exists (a replay, or a reused Correlation-Id), so are the
   * locks it took that were not already this synchronization's. A crash between the two writes
   * leaves a lock without a record, which {@link holderIsDone} frees once it is old enough.
   */
  private async acceptInSteps(sync: Synchronization, leaseExpiresAt: number): Promise<AcceptOutcome> {
    const taken: string[] = [];
    const giveBack = async () => {
      for (const lockKey of taken) await this.releaseTaken(sync, lockKey);
    };
    for (const lockKey of sync.lockKeys) {
      const outcome = await this.takeLock(sync, lockKey, leaseExpiresAt);
      if (outcome === 'taken') taken.push(lockKey);
      else if (outcome !== 'ours') {
        await giveBack();
        return { outcome: 'locked', lockKey, ...(outcome.owner !== undefined ? { holder: outcome.owner } : {}) };
      }
    }
    try {
      await callAws('accept synchronization', () =>
        this.db.send(new PutCommand({ TableName: this.tableName, Item: syncItem(sync), ConditionExpression: 'attribute_not_exists(pk)' })),
      );
      return { outcome: 'accepted' };
    } catch (error) {
      if ((error as Error).name !== 'ConditionalCheckFailedException') {
        await giveBack().catch(() => undefined);
        throw error;
      }
      const existing = await this.get(sync);
      // The same request racing itself (a replay while the first is still accepting): the locks the
      // running record names stay with it.
      const kept = existing && existing.status !== 'finalized' ? new Set(existing.lockKeys) : new Set<string>();
      taken.splice(0, taken.length, ...taken.filter((lockKey) => !kept.has(lockKey)));
      await giveBack();
      return existing ? { outcome: 'exists', existing } : { outcome: 'locked' };
    }
  }

  /**
   * Takes one lock: `taken` (it was free), `ours` (this synchronization held it already: a replay),
   * or the holder that keeps it. A holder that is done is taken over once, conditioned on that holder.
   */
  private async takeLock(sync: Synchronization, lockKey: string, leaseExpiresAt: number): Promise<'taken' | 'ours' | LockState> {
    const attempt = async (holder?: string): Promise<'taken' | 'ours' | { refused: Record<string, unknown> | undefined }> => {
      const now = this.nowMs();
      try {
        const out = await callAws('take lock', () =>
          this.db.send(
            new UpdateCommand({ ...this.lockClaim(sync, lockKey, leaseExpiresAt, now, holder), ReturnValues: 'UPDATED_OLD' }),
          ),
        );
        return out.Attributes?.owner === sync.synchronizationId ? 'ours' : 'taken';
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
        return { refused: (error as { Item?: Record<string, unknown> }).Item };
      }
    };
    const first = await attempt();
    if (typeof first === 'string') return first;
    const lock = await this.lockOf(sync.publisherId, lockKey, first.refused);
    if (lock.owner === undefined || !(await this.holderIsDone(sync.publisherId, lock))) return lock;
    const second = await attempt(lock.owner);
    return typeof second === 'string' ? second : this.lockOf(sync.publisherId, lockKey, second.refused);
  }

  /** Gives back a lock this accept took (only while it is still this synchronization's). */
  private async releaseTaken(sync: Synchronization, lockKey: string): Promise<void> {
    const release = this.releaseLock(sync, lockKey).Update;
    if (!release) return;
    try {
      await callAws('release lock', () => this.db.send(new UpdateCommand(release)));
    } catch (error) {
      if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    }
  }

  async acceptNotice(sync: Synchronization, notice: { store: Store; notificationId: string }): Promise<'accepted' | 'duplicate'> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              // The store's own id is the idempotency key: a redelivery finds it and changes nothing.
              Put: {
                TableName: this.tableName,
                Item: {
                  ...keys.notification(sync.publisherId, notice.store, notice.notificationId),
                  type: 'notification',
                  synchronizationId: sync.synchronizationId,
                  receivedAt: sync.createdAt,
                  ttl: Math.floor(this.nowMs() / 1000) + SYNC_RETENTION_SECONDS,
                },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            { Put: { TableName: this.tableName, Item: syncItem(sync), ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
      return 'accepted';
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (reasons?.[0]?.Code === 'ConditionalCheckFailed') return 'duplicate';
      return callAws('accept notification', () => Promise.reject(error));
    }
  }

  async abandon(sync: Synchronization): Promise<void> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.tableName,
                Key: keys.synchronization(sync.publisherId, sync.synchronizationId),
                ConditionExpression: '#status = :processing',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':processing': 'processing' },
              },
            },
            ...sync.lockKeys.map((lockKey) => this.releaseLock(sync, lockKey)),
            // A Google register's claim goes too: the client's retry must not meet a 409 naming this undone id.
            ...(sync.claimKey !== undefined ? [this.releaseClaim(sync, sync.claimKey)] : []),
          ],
        }),
      );
    } catch (error) {
      if (!cancellationReasons(error)) throw error;
    }
  }

  async get(ref: SyncRef): Promise<Synchronization | undefined> {
    const out = await callAws('get synchronization', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.synchronization(ref.publisherId, ref.synchronizationId), ConsistentRead: true }),
      ),
    );
    return out.Item ? toSynchronization(out.Item) : undefined;
  }

  async findOriginalTransactionId(publisherId: number, transactionId: string): Promise<string | undefined> {
    // The link lives on the transaction's lock item since it is written with the lock's release; a
    // stack upgraded from an earlier version may still have it on its own TXN item.
    const fromLock = await callAws('get transaction link', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.lock(publisherId, appleLocks.transaction(transactionId)), ProjectionExpression: 'originalTransactionId' })),
    );
    if (typeof fromLock.Item?.originalTransactionId === 'string') return fromLock.Item.originalTransactionId;
    const legacy = await callAws('get transaction link', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.transaction(publisherId, 'apple', transactionId) })),
    );
    return typeof legacy.Item?.originalTransactionId === 'string' ? legacy.Item.originalTransactionId : undefined;
  }

  async markRetrying(ref: SyncRef, attempts: number, now: Date, nextAttemptAt: Date, park?: { graceSeconds: number }): Promise<void> {
    // Waiting in the execution (STANDARD): the sweeper looks again once the attempt is due (plus its
    // grace). Parked (EXPRESS): the execution ends, so the entry is placed to be listed exactly when due.
    const lookAt = park ? new Date(nextAttemptAt.getTime() - park.graceSeconds * 1000) : nextAttemptAt;
    await this.updateIf('mark retrying', ref, {
      UpdateExpression:
        'SET #status = :retrying, attempts = :attempts, updatedAt = :now, #since = :lookAt' + (park ? ', parked = :true, retryAt = :next' : ''),
      ConditionExpression: 'attribute_exists(pk) AND #status <> :finalized',
      ExpressionAttributeNames: { '#status': 'status', '#since': openIndex.sortKey.name },
      ExpressionAttributeValues: {
        ':retrying': 'retrying',
        ':finalized': 'finalized',
        ':attempts': attempts,
        ':now': now.toISOString(),
        ':lookAt': lookAt.toISOString(),
        ...(park ? { ':true': true, ':next': nextAttemptAt.toISOString() } : {}),
      },
    });
  }

  async resumeParked(sync: Synchronization, now: Date): Promise<boolean> {
    return this.updateIf('resume parked synchronization', sync, {
      UpdateExpression: 'REMOVE parked, retryAt SET #since = :now, updatedAt = :now',
      ConditionExpression: 'parked = :true AND attempts = :attempts AND #status = :retrying',
      ExpressionAttributeNames: { '#status': 'status', '#since': openIndex.sortKey.name },
      ExpressionAttributeValues: { ':true': true, ':attempts': sync.attempts, ':retrying': 'retrying', ':now': now.toISOString() },
    });
  }

  async listOpen(olderThan: Date, limit: number): Promise<OpenSynchronization[]> {
    const cutoff = olderThan.toISOString();
    const found: OpenSynchronization[] = [];
    for (const shard of OPEN_SHARDS) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await callAws('list open synchronizations', () =>
          this.db.send(
            new QueryCommand({
              TableName: this.tableName,
              IndexName: openIndex.indexName,
              KeyConditionExpression: '#shard = :shard AND #since < :cutoff',
              ExpressionAttributeNames: { '#shard': openIndex.partitionKey.name, '#since': openIndex.sortKey.name },
              ExpressionAttributeValues: { ':shard': shard, ':cutoff': cutoff },
              ExclusiveStartKey: startKey,
              Limit: limit - found.length,
            }),
          ),
        );
        for (const item of page.Items ?? []) {
          const ref = typeof item.pk === 'string' ? synchronizationOfPk(item.pk) : undefined;
          const since = item[openIndex.sortKey.name];
          if (ref && typeof since === 'string') found.push({ ...ref, openSince: since });
        }
        startKey = found.length < limit ? page.LastEvaluatedKey : undefined;
      } while (startKey);
      if (found.length >= limit) break;
    }
    return found;
  }

  async recordRecovery(sync: Synchronization, now: Date): Promise<boolean> {
    const recoveries = sync.recoveries ?? 0;
    return this.updateIf('record recovery', sync, {
      UpdateExpression: 'SET recoveries = :next, #since = :now, updatedAt = :now',
      ConditionExpression:
        'attribute_exists(pk) AND #status <> :finalized AND ' + (recoveries === 0 ? 'attribute_not_exists(recoveries)' : 'recoveries = :current'),
      ExpressionAttributeNames: { '#status': 'status', '#since': openIndex.sortKey.name },
      ExpressionAttributeValues: {
        ':next': recoveries + 1,
        ':now': now.toISOString(),
        ':finalized': 'finalized',
        ...(recoveries === 0 ? {} : { ':current': recoveries }),
      },
    });
  }

  /** A conditional update of a synchronization record: false, not an error, when its condition does not hold. */
  private async updateIf(
    operation: string,
    ref: SyncRef,
    update: Omit<UpdateCommandInput, 'TableName' | 'Key'> & { ConditionExpression: string },
  ): Promise<boolean> {
    try {
      await callAws(operation, () =>
        this.db.send(new UpdateCommand({ TableName: this.tableName, Key: keys.synchronization(ref.publisherId, ref.synchronizationId), ...update })),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async markPublished(ref: SyncRef): Promise<void> {
    await callAws('mark published', () =>
      this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.synchronization(ref.publisherId, ref.synchronizationId),
          ...MARK_PUBLISHED,
          ConditionExpression: 'attribute_exists(pk)',
        }),
      ),
    );
  }

  async getPurchase(publisherId: number, store: Store, purchaseKey: string): Promise<PurchaseRecord | undefined> {
    const out = await callAws('get purchase', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.purchase(publisherId, store, purchaseKey), ConsistentRead: true }),
      ),
    );
    return out.Item ? (out.Item.purchase as PurchaseRecord) : undefined;
  }

  async finalize(request: FinalizeRequest): Promise<boolean> {
    try {
      await this.writeFinal(request);
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return false;
      throw new ConcurrentUpdateError('finalize lost a race', { cause: error });
    }
    await this.writeLinks(request);
    return true;
  }

  /**
   * After the finalize: Apple transactions learn their subscription (later requests lock it too),
   * on the transaction's lock item, which this write also releases when it is still ours (otherwise
   * it is free anyway: its holder is finalized). Not in the finalize transaction, where each item
   * costs twice: a link lost to a crash here only means a later request does not lock the
   * subscription, and the next finalize of that transaction writes it again.
   */
  private async writeLinks({ sync, transactionLinks }: FinalizeRequest): Promise<void> {
    for (const link of transactionLinks ?? []) {
      const lockKey = appleLocks.transaction(link.transactionId);
      const key = keys.lock(sync.publisherId, lockKey);
      const ours = sync.lockKeys.includes(lockKey);
      const names = { '#ttl': 'ttl', ...(ours ? { '#owner': 'owner' } : {}) };
      try {
        await callAws('link transaction', () =>
          this.db.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: key,
              // The link is kept for good (a lock item of an earlier version carried a TTL).
              UpdateExpression: `SET originalTransactionId = :original REMOVE #ttl${ours ? ', #owner, leaseExpiresAt, acquiredAt' : ''}`,
              ...(ours ? { ConditionExpression: 'attribute_not_exists(#owner) OR #owner = :me' } : {}),
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ':original': link.originalTransactionId, ...(ours ? { ':me': sync.synchronizationId } : {}) },
            }),
          ),
        );
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
        // Another synchronization holds it now: only the link.
        await callAws('link transaction', () =>
          this.db.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: key,
              UpdateExpression: 'SET originalTransactionId = :original REMOVE #ttl',
              ExpressionAttributeNames: { '#ttl': 'ttl' },
              ExpressionAttributeValues: { ':original': link.originalTransactionId },
            }),
          ),
        );
      }
    }
  }

  /** A purchase record's Put, fenced on the version it was read at, and the entitlement items it changes. */
  private purchaseItems(sync: Synchronization, write: { next: PurchaseRecord; expectedVersion: number }, changes: EntitlementChange[]): TransactItem[] {
    const { next, expectedVersion } = write;
    const itemKey = keys.purchase(next.publisherId, next.store, next.purchaseKey);
    return [
      {
        Put: {
          TableName: this.tableName,
          // The whole item is replaced, so the reconcile index follows this write: placed anew, or left.
          Item: {
            ...itemKey,
            type: 'purchase',
            purchase: next,
            ownershipVersion: next.ownershipVersion,
            ...reconcileIndexAttributes(itemKey.pk, next.store, snapshotOf(next), new Date(this.nowMs())),
          },
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'ownershipVersion = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }),
        },
      },
      ...changes.map((change) => ({ Put: { TableName: this.tableName, Item: entitlementItem(sync, next, change, this.nowMs()) } })),
    ];
  }

  /** Frees one of the synchronization's locks, conditioned on it still being the owner; what else the item holds stays. */
  private releaseLock(sync: Synchronization, lockKey: string): TransactItem {
    return {
      Update: {
        TableName: this.tableName,
        Key: keys.lock(sync.publisherId, lockKey),
        UpdateExpression: 'REMOVE #owner, leaseExpiresAt, acquiredAt',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': sync.synchronizationId },
      },
    };
  }

  /** Deletes the Google claim this synchronization made. */
  private releaseClaim(sync: Synchronization, claimKey: string): TransactItem {
    return {
      Delete: {
        TableName: this.tableName,
        Key: keys.lock(sync.publisherId, claimKey),
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': sync.synchronizationId },
      },
    };
  }

  private async writeFinal({ sync, purchaseWrite, entitlementChanges, releaseClaim, supersededWrite }: FinalizeRequest) {
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: syncItem(sync),
          ConditionExpression: 'attribute_exists(pk) AND #status <> :finalized',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':finalized': 'finalized' },
        },
      },
    ];
    if (releaseClaim && sync.claimKey !== undefined) {
      items.push({ Delete: { TableName: this.tableName, Key: keys.lock(sync.publisherId, sync.claimKey) } });
    }
    if (purchaseWrite) items.push(...this.purchaseItems(sync, purchaseWrite, entitlementChanges));
    if (supersededWrite) items.push(...this.purchaseItems(sync, supersededWrite, supersededWrite.entitlementChanges));
    await callAws('finalize synchronization', () => this.db.send(new TransactWriteCommand({ TransactItems: items })));
  }
}

/**
 * The customer's entitlement item (contract §10), a projection of the purchase record written in
 * the same transaction. An entitlement that no longer gives access carries a TTL: history is kept
 * 90 days after access ended.
 */
function entitlementItem(sync: Synchronization, next: PurchaseRecord, change: EntitlementChange, nowMs: number) {
  const entitlement = entitlementOf(next, change, sync.packageName);
  const ended = change.state === 'transferred' ? { state: 'expired' as const, expiresAt: null, gracePeriodExpiresAt: null } : snapshotOf(next);
  const ttl = change.active ? undefined : retainUntil(ended, new Date(nowMs));
  return { ...keys.entitlement(next.publisherId, change.customerId, next.store, next.purchaseKey), type: 'entitlement', ...entitlement, active: change.active, ...(ttl !== undefined ? { ttl } : {}) };
}
