import { createHash, randomUUID } from 'node:crypto';
import type { SyncExecutionInput } from '../workflow-schemas';
import type { Logger } from '../../platform/logger';
import type { Clock } from '../../platform/clock';
import type { SynchronizationRepository } from '../ports/synchronization-repository';
import type { WorkflowStarter } from '../ports/workflow';
import { type Caller, mayActFor, type Publisher } from '../../tenants';
import { ApiError, ConfigurationError, StoreUnavailableError } from '../../platform/errors';
import type { SyncKind } from '../../events/vocabulary';
import type { ClientMetadata, PossessionProof, Synchronization } from './synchronization';
import { UUID_PATTERN } from '../../platform/schema-primitives';
import type { AppleSignedTransactionVerifier, SignedTransactionCheck } from '../../stores/apple/ports';

export interface AcceptDeps {
  syncs: SynchronizationRepository;
  workflow: WorkflowStarter;
  clock: Clock;
  logger: Logger;
  /** Lease of the purchase locks, longer than the workflow can run. */
  leaseSeconds: number;
  retryAfterSeconds: number;
  newId?: () => string;
  /**
   * Verifies the device's signed transaction of an Apple register or transfer made with a customer
   * JWT (proof of possession). Without it, a request that needs the proof fails closed (S0001).
   */
  signedTransactions?: AppleSignedTransactionVerifier;
}

export interface ApplePurchaseCommand {
  kind: SyncKind;
  caller: Caller;
  publisher: Publisher;
  correlationId?: string;
  client: ClientMetadata;
  /** Register: the buyer. Transfer: the new owner. */
  body: { cleengCustomerId: number; transactionId: string; ipAddress?: string; signedTransactionInfo?: string };
}

/** Contract §4: a UUID Correlation-Id of a register becomes its synchronizationId; transfers always get a new one. */
export function synchronizationIdFor(kind: SyncKind, correlationId: string | undefined, newId: () => string): string {
  return kind === 'register' && correlationId !== undefined && UUID_PATTERN.test(correlationId)
    ? correlationId.toLowerCase()
    : newId();
}

/** What the caller asked for, so a replay can be told from a reused Correlation-Id. */
export function requestHash(parts: Record<string, unknown>): string {
  const canonical = JSON.stringify(Object.keys(parts).sort().map((key) => [key, parts[key]]));
  return createHash('sha256').update(canonical).digest('hex');
}

/** Lock names: one per transaction, one per subscription (Apple's originalTransactionId). */
export const appleLocks = {
  transaction: (transactionId: string) => `apple#txn#${transactionId}`,
  subscription: (originalTransactionId: string) => `apple#sub#${originalTransactionId}`,
};

/**
 * The locks a register or transfer takes for its purchase (the transaction's, or the Google
 * token's), from the request alone: a finalized record no longer lists the ones it held.
 */
export function purchaseLocks(sync: Pick<Synchronization, 'store' | 'transactionId' | 'purchaseToken'>): string[] {
  if (sync.store === 'apple' && sync.transactionId !== undefined) return [appleLocks.transaction(sync.transactionId)];
  if (sync.store === 'google' && sync.purchaseToken !== undefined) return [googleTokenLock(sync.purchaseToken)];
  return [];
}

/** The lease lock on a Google purchase token. */
export function googleTokenLock(purchaseToken: string): string {
  return `google#token#${tokenKey(purchaseToken)}`;
}

/** The workflow's input: what the Tasks need of the record, and the retry counter at zero. */
/** The workflow's input; a restart or a parked retry continues the retry budget from `sync.attempts`. */
export function executionInput(sync: Synchronization, attempt = 0): SyncExecutionInput {
  return {
    synchronizationId: sync.synchronizationId,
    publisherId: sync.publisherId,
    store: sync.store,
    kind: sync.kind,
    customerId: sync.customerId,
    ...(sync.transactionId !== undefined ? { transactionId: sync.transactionId } : {}),
    retry: { attempt },
  };
}

/** Contract §3/§5: a JWT acts only for itself; a publisher token must pass its customer's address. */
function checkCaller(caller: Caller, body: { cleengCustomerId: number; ipAddress?: string }): void {
  if (!mayActFor(caller, body.cleengCustomerId)) throw new ApiError('AUTH0003');
  if (caller.kind === 'publisher' && body.ipAddress === undefined) {
    throw new ApiError('REQ0001', {}, 'ipAddress is required when calling with X-Publisher-Token.');
  }
}

/** The parts of a new synchronization record that do not depend on the store. */
function newRecordBase(command: { correlationId?: string; client: ClientMetadata; body: { ipAddress?: string } }, requestHash: string, now: Date) {
  return {
    status: 'processing' as const,
    ...(command.correlationId !== undefined ? { correlationId: command.correlationId } : {}),
    requestHash,
    client: command.client,
    // The customer's address as the publisher's server passed it (contract §3), kept with the request.
    ...(command.body.ipAddress !== undefined ? { ipAddress: command.body.ipAddress } : {}),
    attempts: 0,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

/** Starts the workflow of an accepted synchronization; when that fails, undoes the accept (503 S0002). */
async function startWorkflow(deps: AcceptDeps, sync: Synchronization): Promise<void> {
  try {
    await deps.workflow.start(executionInput(sync));
  } catch (error) {
    // Not accepted after all: undo, so the client's retry is not locked out.
    deps.logger.error('workflow start failed; synchronization abandoned', { synchronizationId: sync.synchronizationId, error });
    await deps.syncs.abandon(sync).catch((undoError: unknown) =>
      deps.logger.error('abandon failed; the lease will expire', { synchronizationId: sync.synchronizationId, error: undoError }),
    );
    throw new ApiError('S0002');
  }
}

/** Which code a held lock answers: a register is simply locked; a transfer says what is busy. */
function lockedError(kind: SyncKind, lockKey: string | undefined, retryAfterSeconds: number): ApiError {
  const code = kind === 'register' ? 'SK2C0101' : lockKey?.startsWith('apple#sub#') ? 'SK2C0104' : 'SK2C0103';
  return new ApiError(code, { retryAfterSeconds });
}

/**
 * Whether an Apple register would take the purchase from another customer: the publisher's policy
 * moves owned purchases on register, and this service knows the purchase and its owner is not the
 * buyer. A purchase not known yet cannot be told here; the finalize refuses to move it without proof.
 */
async function registerWouldMove(deps: AcceptDeps, publisher: Publisher, customerId: number, originalTransactionId: string | undefined): Promise<boolean> {
  if (publisher.ownershipPolicy !== 'transfer' || originalTransactionId === undefined) return false;
  const purchase = await deps.syncs.getPurchase(publisher.publisherId, 'apple', originalTransactionId);
  return purchase !== undefined && purchase.ownerCustomerId !== customerId;
}

/**
 * Contract §5, proof of possession. Apple transaction ids are sequential, not secret, so a customer
 * JWT moves a purchase away from another customer (a transfer, or a register under the `transfer`
 * policy) only with the device's signed transaction of the same transaction, or of the same
 * subscription as this service learnt it from Apple. A signed transaction a customer JWT sends is
 * checked even when not needed: a bad one is refused rather than ignored. Publisher tokens are
 * trusted. Runs before anything is written, so a refusal changes nothing.
 * @throws ApiError AUTH0004 when the proof is needed and missing, or does not verify, or names another purchase.
 */
async function possessionOf(deps: AcceptDeps, command: ApplePurchaseCommand, originalTransactionId: string | undefined): Promise<PossessionProof> {
  const { caller, kind, body, publisher } = command;
  if (caller.kind === 'publisher') return { kind: 'trusted' };
  const signed = body.signedTransactionInfo;
  if (signed === undefined) {
    if (kind === 'transfer' || (await registerWouldMove(deps, publisher, body.cleengCustomerId, originalTransactionId))) {
      deps.logger.warn('proof of possession refused', { reason: 'missing', kind });
      throw new ApiError('AUTH0004');
    }
    return { kind: 'none' };
  }
  const apple = publisher.apple;
  if (!deps.signedTransactions || !apple) throw new ConfigurationError('no verifier of signed transactions configured');
  let check: SignedTransactionCheck;
  try {
    check = await deps.signedTransactions.verify(apple, signed);
  } catch (error) {
    // Apple's certificate status could not be checked (online checks): the proof may well be good.
    if (error instanceof StoreUnavailableError) throw new ApiError('S0002');
    throw error;
  }
  if (check.outcome === 'rejected') {
    deps.logger.warn('proof of possession refused', { reason: 'signature', detail: check.reason, kind });
    throw new ApiError('AUTH0004');
  }
  const { claims } = check;
  const sameTransaction = claims.transactionId === body.transactionId;
  const sameSubscription = originalTransactionId !== undefined && claims.originalTransactionId === originalTransactionId;
  if (!sameTransaction && !sameSubscription) {
    deps.logger.warn('proof of possession refused', { reason: 'another purchase', kind, proofTransactionId: claims.transactionId });
    throw new ApiError('AUTH0004');
  }
  return { kind: 'signedTransaction', transactionId: claims.transactionId, originalTransactionId: claims.originalTransactionId };
}

/**
 * Accepts an Apple register or transfer: checks who may act and, for a customer JWT, its proof of
 * possession; claims the transaction's lock (and the subscription's, when this service has seen the
 * purchase) and records the synchronization in one write, then starts the workflow. Answers the
 * synchronization at once.
 */
export async function acceptApplePurchase(deps: AcceptDeps, command: ApplePurchaseCommand) {
  const { kind, caller, publisher, body, correlationId } = command;
  checkCaller(caller, body);
  if (!publisher.storeKit.activated || !publisher.apple) throw new ApiError('SK2C0004');
  if (kind === 'transfer' && publisher.storeKit.migrationInProgress) throw new ApiError('SK2C0005');

  const now = deps.clock.now();
  const synchronizationId = synchronizationIdFor(kind, correlationId, deps.newId ?? randomUUID);
  const hash = requestHash({
    route: `apple-${kind}`,
    publisherId: publisher.publisherId,
    cleengCustomerId: body.cleengCustomerId,
    transactionId: body.transactionId,
    ipAddress: body.ipAddress ?? null,
  });
  const originalTransactionId = await deps.syncs.findOriginalTransactionId(publisher.publisherId, body.transactionId);
  const proof = await possessionOf(deps, command, originalTransactionId);
  const sync: Synchronization = {
    synchronizationId,
    publisherId: publisher.publisherId,
    store: 'apple',
    kind,
    customerId: body.cleengCustomerId,
    transactionId: body.transactionId,
    proof,
    ...newRecordBase(command, hash, now),
    lockKeys: [
      appleLocks.transaction(body.transactionId),
      ...(originalTransactionId !== undefined ? [appleLocks.subscription(originalTransactionId)] : []),
    ],
  };
  const accepted = await deps.syncs.accept({ sync, leaseExpiresAt: now.getTime() + deps.leaseSeconds * 1000 });
  switch (accepted.outcome) {
    case 'exists':
      if (accepted.existing.requestHash !== hash) throw new ApiError('REQ0007');
      deps.logger.info('idempotent replay', { synchronizationId, publisherId: publisher.publisherId });
      return accepted.existing;
    case 'customer_missing':
      throw new ApiError('SK2C0100');
    case 'locked':
      throw lockedError(kind, accepted.lockKey, deps.retryAfterSeconds);
    case 'accepted':
      break;
  }
  await startWorkflow(deps, sync);
  deps.logger.info('synchronization accepted', {
    synchronizationId,
    kind,
    publisherId: publisher.publisherId,
    transactionId: body.transactionId,
    ...command.client,
  });
  return sync;
}

export interface GooglePurchaseCommand {
  kind: SyncKind;
  caller: Caller;
  publisher: Publisher;
  correlationId?: string;
  client: ClientMetadata;
  body: {
    cleengCustomerId: number;
    purchaseToken: string;
    packageName: string;
    productType: string;
    productId?: string;
    ipAddress?: string;
  };
}

/** Purchase tokens are up to 4096 characters: keys use their SHA-256. */
export function tokenKey(purchaseToken: string): string {
  return createHash('sha256').update(purchaseToken).digest('hex');
}

/**
 * Accepts a Google Play register or transfer. A register claims the purchase token for good: a
 * later register of the same token answers the first synchronization (409 GPLAY0300 with its id);
 * a lease lock on the token keeps transfers and registers of one purchase from running together.
 */
export async function acceptGooglePurchase(deps: AcceptDeps, command: GooglePurchaseCommand) {
  const { kind, caller, publisher, body, correlationId } = command;
  checkCaller(caller, body);
  if (body.productType !== 'subscription') throw new ApiError('GPLAY0004');
  if (!publisher.google?.profiles.some((profile) => profile.packageName === body.packageName)) throw new ApiError('GPLAY0200');

  const now = deps.clock.now();
  const synchronizationId = synchronizationIdFor(kind, correlationId, deps.newId ?? randomUUID);
  const token = tokenKey(body.purchaseToken);
  const hash = requestHash({
    route: `google-${kind}`,
    publisherId: publisher.publisherId,
    cleengCustomerId: body.cleengCustomerId,
    purchaseToken: token,
    packageName: body.packageName,
    productId: body.productId ?? null,
    ipAddress: body.ipAddress ?? null,
  });
  const claimKey = kind === 'register' ? `google#claim#${token}` : undefined;
  const sync: Synchronization = {
    synchronizationId,
    publisherId: publisher.publisherId,
    store: 'google',
    kind,
    customerId: body.cleengCustomerId,
    purchaseToken: body.purchaseToken,
    packageName: body.packageName,
    ...(body.productId !== undefined ? { productId: body.productId } : {}),
    // A Google purchase token is itself the proof of holding the purchase (contract §5).
    proof: caller.kind === 'publisher' ? { kind: 'trusted' } : { kind: 'purchaseToken' },
    ...newRecordBase(command, hash, now),
    lockKeys: [googleTokenLock(body.purchaseToken)],
    ...(claimKey !== undefined ? { claimKey } : {}),
  };
  const accepted = await deps.syncs.accept({
    sync,
    leaseExpiresAt: now.getTime() + deps.leaseSeconds * 1000,
    ...(claimKey !== undefined ? { claimKey } : {}),
  });
  switch (accepted.outcome) {
    case 'exists':
      if (accepted.existing.requestHash !== hash) throw new ApiError('REQ0007');
      return accepted.existing;
    case 'customer_missing':
      throw new ApiError('GPLAY0100');
    case 'claimed':
      throw new ApiError('GPLAY0300', { synchronizationId: accepted.synchronizationId });
    case 'locked':
      throw new ApiError('GPLAY0300', {
        retryAfterSeconds: deps.retryAfterSeconds,
        ...(accepted.holder !== undefined ? { synchronizationId: accepted.holder } : {}),
      });
    case 'accepted':
      break;
  }
  await startWorkflow(deps, sync);
  deps.logger.info('synchronization accepted', { synchronizationId, kind, store: 'google', publisherId: publisher.publisherId, ...command.client });
  return sync;
}
