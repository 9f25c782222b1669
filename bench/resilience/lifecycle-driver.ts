/**
 * What both halves of the lifecycle scenario (Apple, Google) share: seeded choices, the registers,
 * store actions with dropped notifications, duplicates and out-of-order redeliveries, the
 * entitlements compared with the store's answer, duplicate events and notices that never finalized.
 * Each store's half (lifecycle-apple.ts, lifecycle-google.ts) supplies its transitions, its control
 * routes and how it reads the store's truth.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ENTITLEMENT_CHANGED_DETAIL_TYPE } from '../../lambdas/events/schemas';
import { keys } from '../../lambdas/platform/dynamodb-table';
import type { EventEnvelope } from '../../local/event-bus';
import type { NotificationRecord } from '../../local/simulator/notifications';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { runPool } from '../local';
import { postJson, register, send, tableClient, waitFinalized, type Purchase, type RegisterOutcome, type Store } from './harness';
import type { ObservedStatus } from './reconcile';
import { tally, type ScenarioStack } from './scenario';

export const CUSTOMERS = [101, 102, 103];
export const DROP_RATE = 0.1;
export const DUPLICATE_RATE = 0.1;
export const OUT_OF_ORDER_RATE = 0.1;

/** mulberry32: a small seeded PRNG, so a run's choices replay from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sample `k` distinct items with the PRNG (partial Fisher–Yates). */
export function sample<T>(items: readonly T[], k: number, rand: () => number): T[] {
  const copy = [...items];
  const n = Math.min(k, copy.length);
  for (let i = 0; i < n; i += 1) {
    const j = i + Math.floor(rand() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, n);
}

/** The customer the i-th purchase is registered for (round robin). */
export const customerOf = (i: number): number => CUSTOMERS[i % CUSTOMERS.length] ?? 101;

export interface Registered {
  outcomes: RegisterOutcome[];
  accepted: RegisterOutcome[];
  statuses: Record<string, ObservedStatus>;
  answers: string[];
}

/** Registers each purchase for `customerOf(i)` and waits for the finalizes. */
export async function registerAll(s: ScenarioStack, purchases: readonly Purchase[], deadlineMs: number): Promise<Registered> {
  const url = s.bench.stack.url;
  const outcomes = new Array<RegisterOutcome>(purchases.length);
  const answers: string[] = [];
  await runPool(purchases.length, 4, async (i) => {
    const purchase = purchases[i];
    if (!purchase) return;
    // Three customers for hundreds of purchases: an accept may meet another's on the customer item.
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const o = await register(url, purchase, customerOf(i), s.publisher, { packageName: s.packageName });
      answers.push(`${o.status}${o.code ? ` ${o.code}` : ''}`);
      outcomes[i] = o;
      if (o.status === 202 || (o.status < 500 && o.status !== 409)) break;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  });
  const accepted = outcomes.filter((o) => o?.synchronizationId !== undefined);
  const statuses = await waitFinalized(url, accepted.map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store })), s.publisher, Date.now() + deadlineMs);
  return { outcomes, accepted, statuses, answers };
}

/** One store action the half picked: what to call it in the report and how to run it (answers the HTTP status). */
export interface PickedAction {
  action: string;
  subject: string;
  run: () => Promise<number>;
}

export interface DrivenActions {
  counts: Record<string, number>;
  failed: string[];
  dropped: number;
  /** The notification send attempts the actions made, oldest first. */
  sent: NotificationRecord[];
}

/**
 * Runs `count` seeded actions one at a time, so each armed drop hits that action's own
 * notification: for ~DROP_RATE of them the simulator is told to drop the next one
 * (`POST /__simulator/faults {"store","dropNotifications":1}`). `pick` answers undefined when no
 * subscription has a transition left.
 */
export async function driveActions(
  s: ScenarioStack,
  store: Store,
  count: number,
  rand: () => number,
  pick: (rand: () => number) => PickedAction | undefined,
  log: (line: string) => void,
): Promise<DrivenActions> {
  const { stack } = s.bench;
  const fault = (n: number) => postJson(`${stack.url}/__simulator/faults`, { store, dropNotifications: n });
  const before = stack.outbox.list(store).length;
  const counts: Record<string, number> = {};
  const failed: string[] = [];
  let dropped = 0;
  const t0 = Date.now();
  for (let n = 0; n < count; n += 1) {
    const picked = pick(rand);
    if (!picked) break;
    const drop = rand() < DROP_RATE;
    if (drop) await fault(1);
    const status = await picked.run();
    // Disarm: an action the simulator refused sent nothing and must not pass the drop on.
    if (drop) await fault(0);
    if (status !== 200 && status !== 201) failed.push(`${picked.action} on ${picked.subject}: ${status}`);
    counts[picked.action] = (counts[picked.action] ?? 0) + 1;
    if (drop && stack.outbox.list(store).at(-1)?.dropped === true) dropped += 1;
    if ((n + 1) % 200 === 0) log(`${store}: ${n + 1} actions (${Math.round((Date.now() - t0) / 1000)} s)`);
  }
  return { counts, failed, dropped, sent: stack.outbox.list(store).slice(before) };
}

export interface Redelivered {
  duplicates: number;
  outOfOrder: number;
  /** Out-of-order resends of notifications dropped before: late first deliveries. */
  lateFirstDeliveries: number;
  answers: string[];
  /** The resends' attempts, as the outbox recorded them. */
  records: NotificationRecord[];
  /** Round trips of the duplicate resends (ms): the route's time for a notification it already has. */
  duplicateMs: number[];
}

/**
 * ~DUPLICATE_RATE of the delivered notifications sent again, then a further ~OUT_OF_ORDER_RATE
 * sample of all of them (dropped ones included, which are then late first deliveries) resent
 * newest first: old news arriving after newer news.
 */
export async function redeliver(s: ScenarioStack, sent: readonly NotificationRecord[], rand: () => number): Promise<Redelivered> {
  const { outbox } = s.bench.stack;
  const delivered = sent.filter((r) => !r.dropped && r.responseStatus === 200);
  const duplicates = sample(delivered, Math.round(delivered.length * DUPLICATE_RATE), rand);
  const answers: string[] = [];
  const records: NotificationRecord[] = [];
  const duplicateMs: number[] = [];
  const resend = async (id: string) => {
    const again = await outbox.resend(id);
    if (again) records.push(again);
    answers.push(String(again?.responseStatus ?? 'none'));
  };
  for (const record of duplicates) {
    const t = performance.now();
    await resend(record.id);
    duplicateMs.push(performance.now() - t);
  }
  const duplicateIds = new Set(duplicates.map((r) => r.id));
  const order = new Map(sent.map((r, i) => [r.id, i]));
  const outOfOrder = sample(sent.filter((r) => !duplicateIds.has(r.id)), Math.round(sent.length * OUT_OF_ORDER_RATE), rand).sort(
    (a, b) => (order.get(b.id) ?? 0) - (order.get(a.id) ?? 0),
  );
  for (const record of outOfOrder) await resend(record.id);
  return { duplicates: duplicates.length, outOfOrder: outOfOrder.length, lateFirstDeliveries: outOfOrder.filter((r) => r.dropped).length, answers, records, duplicateMs };
}

/** An entitlement as GET /customers/{id}/entitlements lists it (the fields the scenario reads). */
export interface EntitlementItem {
  originalTransactionId: string | null;
  purchaseToken: string | null;
  active: boolean;
  state: string;
  expiresAt: string | null;
}

/** The entitlement the store's current answer implies (contract §9, §10). */
export interface ExpectedEntitlement {
  active: boolean;
  state: string;
  expiresAt: string | null;
}

/** One purchase to compare: its key in the entitlement list, its customer, and how to ask the store. */
export interface Expectation {
  key: string;
  customerId: number;
  truth: () => Promise<ExpectedEntitlement>;
}

export interface Comparison {
  compared: number;
  drift: number;
  /** Purchases with no entitlement at all. */
  missing: number;
  /** Keys that drifted or are missing. */
  off: string[];
  examples: string[];
  truthStates: Record<string, number>;
}

/**
 * Every purchase's entitlement (GET /customers/{id}/entitlements, publisher token) against the
 * store's answer, on `fields`: a difference is drift, an absent entitlement is missing.
 */
export async function compareWithStore(
  s: ScenarioStack,
  expectations: readonly Expectation[],
  keyOf: (item: EntitlementItem) => string | null,
  fields: readonly (keyof ExpectedEntitlement)[],
): Promise<Comparison> {
  const url = s.bench.stack.url;
  const byCustomer = new Map<number, Map<string, EntitlementItem>>();
  for (const customerId of CUSTOMERS) {
    const reply = await send(`${url}/customers/${customerId}/entitlements`, { headers: s.publisher.headers });
    if (reply.status !== 200) throw new Error(`GET /customers/${customerId}/entitlements answered ${reply.status}: ${reply.text.slice(0, 200)}`);
    const items = (reply.json as { entitlements: EntitlementItem[] }).entitlements;
    byCustomer.set(customerId, new Map(items.map((e) => [String(keyOf(e)), e])));
  }
  const truths = new Array<ExpectedEntitlement>(expectations.length);
  await runPool(expectations.length, 8, async (i) => {
    const expectation = expectations[i];
    if (expectation) truths[i] = await expectation.truth();
  });
  const comparison: Comparison = { compared: expectations.length, drift: 0, missing: 0, off: [], examples: [], truthStates: {} };
  const example = (text: string) => {
    if (comparison.examples.length < 8) comparison.examples.push(text);
  };
  expectations.forEach(({ key, customerId }, i) => {
    const truth = truths[i];
    if (!truth) return;
    const seen = byCustomer.get(customerId)?.get(key);
    if (!seen) {
      comparison.missing += 1;
      comparison.off.push(key);
      example(`${short(key)} (customer ${customerId}): no entitlement, the store says ${JSON.stringify(truth)}`);
      return;
    }
    if (fields.some((field) => seen[field] !== truth[field])) {
      comparison.drift += 1;
      comparison.off.push(key);
      const got = Object.fromEntries(fields.map((field) => [field, seen[field]]));
      example(`${short(key)} (customer ${customerId}): service ${JSON.stringify(got)}, store ${JSON.stringify(truth)}`);
    }
  });
  comparison.truthStates = tally(truths.filter(Boolean).map((t) => `${t.state}${t.active ? '' : ' (inactive)'}`));
  return comparison;
}

/** Long Google purchase tokens shortened for the report. */
function short(key: string): string {
  return key.length > 40 ? `${key.slice(0, 30)}…` : key;
}

/** `inappEntitlementChanged` published more than once for one customer + purchase + ownershipVersion. */
export function duplicateEntitlementEvents(events: readonly EventEnvelope[]): { duplicates: number; examples: string[] } {
  const seen = new Map<string, number>();
  for (const event of events) {
    if (event['detail-type'] !== ENTITLEMENT_CHANGED_DETAIL_TYPE) continue;
    const d = event.detail;
    const key = `${String(d.cleengCustomerId)}|${String(d.originalTransactionId ?? d.purchaseToken)}|${String(d.ownershipVersion)}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const dups = [...seen.entries()].filter(([, n]) => n > 1);
  return { duplicates: dups.reduce((sum, [, n]) => sum + n - 1, 0), examples: dups.slice(0, 5).map(([k, n]) => `${k} ×${n}`) };
}

/** The `inappEntitlementChanged` events about one store's purchases. */
export function entitlementEventsOf(events: readonly EventEnvelope[], store: Store): EventEnvelope[] {
  return events.filter((e) => e['detail-type'] === ENTITLEMENT_CHANGED_DETAIL_TYPE && e.detail.store === store);
}

export interface NoticeOutcomes {
  /** Distinct notifications the route answered 200 at least once (first delivery or a resend). */
  accepted: number;
  /** …whose refresh synchronization is finalized. */
  finalized: number;
  /** Accepted but not recorded, or recorded with a refresh that never finalized. */
  lost: string[];
}

/**
 * Every notification the route accepted must have its notice record (keyed by the store's own id:
 * Apple's notificationUUID, Pub/Sub's messageId) and a finalized refresh synchronization. Read from
 * the table: a refresh is not the caller's, so the status route does not show it.
 */
export async function noticeOutcomes(s: ScenarioStack, store: Store, records: readonly NotificationRecord[]): Promise<NoticeOutcomes> {
  const db = tableClient(s.bench.stack);
  const publisherId = s.bench.stack.localJson.publisherId;
  const ids = [...new Set(records.filter((r) => r.responseStatus === 200).map((r) => r.id))];
  const lost: string[] = [];
  let finalized = 0;
  await runPool(ids.length, 8, async (i) => {
    const id = ids[i];
    if (id === undefined) return;
    const notice = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.notification(publisherId, store, id) }));
    const synchronizationId = notice.Item?.synchronizationId;
    if (typeof synchronizationId !== 'string') {
      lost.push(`${id}: no notice record`);
      return;
    }
    const sync = await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.synchronization(publisherId, synchronizationId) }));
    if (sync.Item?.status === 'finalized') finalized += 1;
    else lost.push(`${id}: refresh ${synchronizationId} ${String(sync.Item?.status ?? 'missing')}`);
  });
  return { accepted: ids.length, finalized, lost };
}
