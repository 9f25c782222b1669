import type { Clock } from '../../lambdas/platform/clock';
import { ConcurrentUpdateError } from '../../lambdas/platform/errors';
import type { Logger } from '../../lambdas/platform/logger';
import type { SecretStore } from '../../lambdas/platform/secret-store';
import type { Store } from '../../lambdas/events/vocabulary';
import type { Entitlement } from '../../lambdas/entitlements';
import type { NoticeIntake, PurchaseChangeNotice } from '../../lambdas/lifecycle/ports';
import type { PurchaseRecord } from '../../lambdas/purchases/domain/ownership';
import type { Synchronization, SyncRef } from '../../lambdas/purchases/domain/synchronization';
import type {
  AcceptOutcome,
  AcceptRequest,
  FinalizeRequest,
  OpenSynchronization,
  SynchronizationRepository,
} from '../../lambdas/purchases/ports/synchronization-repository';
import type { WorkflowStarter } from '../../lambdas/purchases/ports/workflow';
import type { SyncExecutionInput } from '../../lambdas/purchases/workflow-schemas';
import type { VoidedPurchase, VoidedPurchasesPage } from '../../lambdas/stores/google/facts';
import type { GooglePlayVerifier, GoogleProfile } from '../../lambdas/stores/google/ports';
import type { CustomerTokenVerifier, Publisher, PublisherRepository } from '../../lambdas/tenants';
import type { CustomerClaims } from '../../lambdas/tenants/ports/credential-verifier';
import type { DeliveryAttemptResult } from '../../lambdas/webhooks/domain/delivery-policy';
import type {
  DeadLetterQueue,
  Delivery,
  DeliveryAttemptRecord,
  DeliveryAttemptSummary,
  DeliveryLog,
  DeliveryQueue,
  WebhookEndpoint,
  WebhookEndpointRepository,
  WebhookSender,
} from '../../lambdas/webhooks/ports';

/*
 * Typed in-memory implementations of the ports the unit tests fake. Each one does the least honest
 * thing with a Map, records the calls tests assert on, and throws for what no test uses yet, so an
 * unexpected call fails loudly instead of returning whatever a cast let through. Give a fake the
 * behaviour a new test needs here, rather than casting a partial object to the port.
 */

/** The error of a fake's method that no test needed so far. */
function notUsed(method: string): Error {
  return new Error(`${method} not used by this test`);
}

// ---------------------------------------------------------------------------------------------
// platform

/** Always the same instant. */
export class FixedClock implements Clock {
  private readonly instant: number;

  constructor(at: Date | string | number) {
    this.instant = new Date(at).getTime();
  }

  now(): Date {
    return new Date(this.instant);
  }
}

/** Secrets by reference; an unknown reference throws, like a missing file or ARN. */
export class FakeSecretStore implements SecretStore {
  readonly values: Map<string, string>;

  constructor(values: Record<string, string> = {}) {
    this.values = new Map(Object.entries(values));
  }

  async get(ref: string): Promise<string> {
    const value = this.values.get(ref);
    if (value === undefined) throw new Error(`FakeSecretStore: no secret ${ref}`);
    return value;
  }
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

/** Keeps every entry, in order. */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[] = [];
  debug(message: string, fields: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'debug', message, fields });
  }
  info(message: string, fields: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'info', message, fields });
  }
  warn(message: string, fields: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'warn', message, fields });
  }
  error(message: string, fields: Record<string, unknown> = {}): void {
    this.entries.push({ level: 'error', message, fields });
  }
}

// ---------------------------------------------------------------------------------------------
// tenants

/** Publishers over a fixed list, with customers and offers added by the test; `failure` makes getPublisher throw it. */
export class FakePublisherRepository implements PublisherRepository {
  /** Every getPublisher call's id, in order. */
  readonly lookups: number[] = [];
  failure: Error | undefined;
  private readonly publishers = new Map<number, Publisher>();
  private readonly customers = new Set<string>();
  private readonly offers = new Map<string, string>();

  constructor(publishers: Publisher[] = []) {
    for (const publisher of publishers) this.publishers.set(publisher.publisherId, publisher);
  }

  addCustomer(publisherId: number, customerId: number): this {
    this.customers.add(`${publisherId}#${customerId}`);
    return this;
  }

  addOffer(publisherId: number, store: Store, productId: string, offerId: string): this {
    this.offers.set(`${publisherId}#${store}#${productId}`, offerId);
    return this;
  }

  async getPublisher(publisherId: number): Promise<Publisher | undefined> {
    this.lookups.push(publisherId);
    if (this.failure) throw this.failure;
    return this.publishers.get(publisherId);
  }

  async customerExists(publisherId: number, customerId: number): Promise<boolean> {
    return this.customers.has(`${publisherId}#${customerId}`);
  }

  async getOfferId(publisherId: number, store: Store, productId: string): Promise<string | undefined> {
    return this.offers.get(`${publisherId}#${store}#${productId}`);
  }
}

/** Customer JWTs by their text: a known token verifies for the publisher it was issued by; `failure` makes verify throw it (JWKS unreachable). */
export class FakeCustomerTokenVerifier implements CustomerTokenVerifier {
  failure: Error | undefined;
  private readonly tokens: Map<string, CustomerClaims>;

  constructor(tokens: Record<string, CustomerClaims> = {}) {
    this.tokens = new Map(Object.entries(tokens));
  }

  async verify(publisher: Publisher, token: string): Promise<CustomerClaims | undefined> {
    if (this.failure) throw this.failure;
    const claims = this.tokens.get(token);
    return claims?.publisherId === publisher.publisherId ? claims : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// purchases

/**
 * Synchronization records, purchases and transaction links in Maps. Locks and customers are not
 * modelled: set `acceptAnswer` to script what `accept` finds (locked, customer missing, exists).
 */
export class FakeSynchronizationRepository implements SynchronizationRepository {
  readonly records = new Map<string, Synchronization>();
  readonly purchases = new Map<string, PurchaseRecord>();
  /** Every accept request, in order. */
  readonly accepted: AcceptRequest[] = [];
  /** Every abandoned synchronization, in order. */
  readonly abandoned: Synchronization[] = [];
  /** Every finalize request that wrote, in order. */
  readonly finalized: FinalizeRequest[] = [];
  /** Every markRetrying call, in order. */
  readonly retrying: { synchronizationId: string; attempts: number; now: Date; nextAttemptAt: Date; park?: { graceSeconds: number } }[] = [];
  /** What accept answers instead of looking at the records; an `accepted` answer still stores the record. */
  acceptAnswer: AcceptOutcome | undefined;
  private readonly links = new Map<string, string>();

  constructor(syncs: Synchronization[] = []) {
    for (const sync of syncs) this.records.set(sync.synchronizationId, sync);
  }

  /** Records that Apple transaction `transactionId` belongs to subscription `originalTransactionId`. */
  link(publisherId: number, transactionId: string, originalTransactionId: string): this {
    this.links.set(`${publisherId}#${transactionId}`, originalTransactionId);
    return this;
  }

  async accept(request: AcceptRequest): Promise<AcceptOutcome> {
    this.accepted.push(request);
    const existing = this.records.get(request.sync.synchronizationId);
    const outcome: AcceptOutcome = this.acceptAnswer ?? (existing ? { outcome: 'exists', existing } : { outcome: 'accepted' });
    if (outcome.outcome === 'accepted') this.records.set(request.sync.synchronizationId, request.sync);
    return outcome;
  }

  async acceptNotice(): Promise<'accepted' | 'duplicate'> {
    throw notUsed('FakeSynchronizationRepository.acceptNotice');
  }

  async abandon(sync: Synchronization): Promise<void> {
    this.abandoned.push(sync);
    if (this.records.get(sync.synchronizationId)?.status === 'processing') this.records.delete(sync.synchronizationId);
  }

  async get(ref: SyncRef): Promise<Synchronization | undefined> {
    const sync = this.records.get(ref.synchronizationId);
    // Keyed per publisher, as in the table: another publisher's id is another synchronization.
    return sync?.publisherId === ref.publisherId ? sync : undefined;
  }

  async findOriginalTransactionId(publisherId: number, transactionId: string): Promise<string | undefined> {
    return this.links.get(`${publisherId}#${transactionId}`);
  }

  async markRetrying(ref: SyncRef, attempts: number, now: Date, nextAttemptAt: Date, park?: { graceSeconds: number }): Promise<void> {
    const { synchronizationId } = ref;
    this.retrying.push({ synchronizationId, attempts, now, nextAttemptAt, ...(park ? { park } : {}) });
    const sync = this.records.get(synchronizationId);
    if (!sync || sync.status === 'finalized') return;
    this.records.set(synchronizationId, {
      ...sync,
      status: 'retrying',
      attempts,
      updatedAt: now.toISOString(),
      ...(park ? { parked: true, retryAt: nextAttemptAt.toISOString() } : {}),
    });
  }

  async resumeParked(): Promise<boolean> {
    throw notUsed('FakeSynchronizationRepository.resumeParked');
  }

  async renewLocks(): Promise<undefined> {
    throw notUsed('FakeSynchronizationRepository.renewLocks');
  }

  async getPurchase(publisherId: number, store: Store, purchaseKey: string): Promise<PurchaseRecord | undefined> {
    return this.purchases.get(`${publisherId}#${store}#${purchaseKey}`);
  }

  async finalize(request: FinalizeRequest): Promise<boolean> {
    const { sync, purchaseWrite, supersededWrite, transactionLinks = [] } = request;
    if (this.records.get(sync.synchronizationId)?.status === 'finalized') return false;
    // All or nothing, as the DynamoDB transaction: every fence is checked before anything is written.
    const writes = [purchaseWrite, supersededWrite].filter((write) => write !== undefined);
    const keyOf = (next: PurchaseRecord) => `${next.publisherId}#${next.store}#${next.purchaseKey}`;
    for (const { next, expectedVersion } of writes) {
      if ((this.purchases.get(keyOf(next))?.ownershipVersion ?? 0) !== expectedVersion) throw new ConcurrentUpdateError('finalize lost a race');
    }
    for (const { next } of writes) this.purchases.set(keyOf(next), next);
    for (const { transactionId, originalTransactionId } of transactionLinks) this.link(sync.publisherId, transactionId, originalTransactionId);
    this.records.set(sync.synchronizationId, sync);
    this.finalized.push(request);
    return true;
  }

  async listOpen(): Promise<OpenSynchronization[]> {
    throw notUsed('FakeSynchronizationRepository.listOpen');
  }

  async recordRecovery(): Promise<boolean> {
    throw notUsed('FakeSynchronizationRepository.recordRecovery');
  }

  async markPublished(): Promise<void> {
    throw notUsed('FakeSynchronizationRepository.markPublished');
  }
}

/** Records every started input; `failure` makes start throw it (StartExecution failed). */
export class FakeWorkflowStarter implements WorkflowStarter {
  readonly started: SyncExecutionInput[] = [];
  failure: Error | undefined;

  async start(input: SyncExecutionInput): Promise<void> {
    if (this.failure) throw this.failure;
    this.started.push(input);
  }
}

// ---------------------------------------------------------------------------------------------
// lifecycle

/** Records every notice it is given, idempotent on notificationId like the real intake; `failure` makes accept throw it. */
export class FakeNoticeIntake implements NoticeIntake {
  readonly notices: PurchaseChangeNotice[] = [];
  readonly outcomes: Array<'accepted' | 'duplicate'> = [];
  failure: Error | undefined;
  private readonly seen = new Set<string>();

  async accept(notice: PurchaseChangeNotice): Promise<'accepted' | 'duplicate'> {
    if (this.failure) throw this.failure;
    this.notices.push(notice);
    const outcome = this.seen.has(notice.notificationId) ? 'duplicate' : 'accepted';
    this.seen.add(notice.notificationId);
    this.outcomes.push(outcome);
    return outcome;
  }
}

// ---------------------------------------------------------------------------------------------
// webhooks: no shared test makes a delivery yet, so every method fails loudly.

export class FakeWebhookEndpointRepository implements WebhookEndpointRepository {
  async put(): Promise<void> {
    throw notUsed('FakeWebhookEndpointRepository.put');
  }
  async get(): Promise<WebhookEndpoint | undefined> {
    throw notUsed('FakeWebhookEndpointRepository.get');
  }
  async listByPublisher(): Promise<WebhookEndpoint[]> {
    throw notUsed('FakeWebhookEndpointRepository.listByPublisher');
  }
  async setEnabled(): Promise<WebhookEndpoint | undefined> {
    throw notUsed('FakeWebhookEndpointRepository.setEnabled');
  }
  async rotateSecret(): Promise<WebhookEndpoint | undefined> {
    throw notUsed('FakeWebhookEndpointRepository.rotateSecret');
  }
  async forgetRetiredSecrets(): Promise<void> {
    throw notUsed('FakeWebhookEndpointRepository.forgetRetiredSecrets');
  }
}

export class FakeDeliveryLog implements DeliveryLog {
  async append(): Promise<void> {
    throw notUsed('FakeDeliveryLog.append');
  }
  async listByPublisher(): Promise<DeliveryAttemptSummary[]> {
    throw notUsed('FakeDeliveryLog.listByPublisher');
  }
  async get(): Promise<DeliveryAttemptRecord[]> {
    throw notUsed('FakeDeliveryLog.get');
  }
}

export class FakeDeliveryQueue implements DeliveryQueue {
  async enqueue(): Promise<void> {
    throw notUsed('FakeDeliveryQueue.enqueue');
  }
}

export class FakeDeadLetterQueue implements DeadLetterQueue {
  async put(): Promise<void> {
    throw notUsed('FakeDeadLetterQueue.put');
  }
  async list(): Promise<Delivery[]> {
    throw notUsed('FakeDeadLetterQueue.list');
  }
  async remove(): Promise<boolean> {
    throw notUsed('FakeDeadLetterQueue.remove');
  }
}

export class FakeWebhookSender implements WebhookSender {
  async send(): Promise<DeliveryAttemptResult> {
    throw notUsed('FakeWebhookSender.send');
  }
}

// ---------------------------------------------------------------------------------------------
// entitlements

/** A stored Apple entitlement as the finalize writes it (contract §10's example), for publisher 1 and customer 101. */
export function appleEntitlement(overrides: Partial<Entitlement> = {}): Entitlement {
  return {
    publisherId: 1,
    customerId: 101,
    store: 'apple',
    purchaseKey: '2000000100',
    offerId: 'S100000001_US',
    productId: 'premium_monthly',
    state: 'active',
    expiresAt: '2027-01-06T10:00:00.000Z',
    gracePeriodExpiresAt: null,
    willRenew: true,
    environment: 'Sandbox',
    transactionId: '2000000200',
    originalTransactionId: '2000000100',
    purchaseToken: null,
    packageName: null,
    ownershipVersion: 4,
    updatedAt: '2026-12-07T10:00:00.000Z',
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------
// stores: Google

/** One call of FakeGoogleVoidedList.listVoided, as made (`at`: the clock's time, when given one). */
export interface VoidedListCall {
  packageName: string;
  window: { startTime: string; endTime: string };
  pageToken: string | undefined;
  at: number | undefined;
}

/**
 * Google's Voided Purchases list per package name, as pages chained by the tokens `v1`, `v2`…;
 * `failures` are thrown once each, in order, by the next calls; `failingApps` always throw for
 * their package name. A token it never issued fails loudly (a test reading a stale token sets a failure).
 */
export class FakeGoogleVoidedList implements Pick<GooglePlayVerifier, 'listVoided'> {
  readonly calls: VoidedListCall[] = [];
  readonly failures: Error[] = [];
  readonly failingApps = new Map<string, Error>();
  private readonly pages = new Map<string, VoidedPurchase[][]>();

  constructor(private readonly clock?: Clock) {}

  set(packageName: string, pages: VoidedPurchase[][]): this {
    this.pages.set(packageName, pages);
    return this;
  }

  async listVoided(profile: GoogleProfile, window: { startTime: Date; endTime: Date }, pageToken?: string): Promise<VoidedPurchasesPage> {
    this.calls.push({
      packageName: profile.packageName,
      window: { startTime: window.startTime.toISOString(), endTime: window.endTime.toISOString() },
      pageToken,
      at: this.clock?.now().getTime(),
    });
    const failure = this.failures.shift() ?? this.failingApps.get(profile.packageName);
    if (failure) throw failure;
    const index = pageToken === undefined ? 0 : Number(/^v(\d+)$/.exec(pageToken)?.[1] ?? NaN);
    if (!Number.isInteger(index)) throw new Error(`FakeGoogleVoidedList: page token ${pageToken ?? ''} was never issued`);
    const pages = this.pages.get(profile.packageName) ?? [[]];
    return { purchases: pages[index] ?? [], ...(index + 1 < pages.length ? { nextPageToken: `v${index + 1}` } : {}) };
  }
}
