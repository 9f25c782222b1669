import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Environment, SignedDataVerifier } from '@apple/app-store-server-library';
import fc from 'fast-check';
import { reconcile as reconcileCommand, type ReconcileResult } from '../../cli/commands/reconcile';
import { localTarget } from '../../cli/target';
import { ENTITLEMENT_CHANGED_DETAIL_TYPE, SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/events/schemas';
import { createLogger } from '../../lambdas/platform/logger';
import { AppStoreClient } from '../../lambdas/stores/apple/adapters/app-store-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import type { EventEnvelope } from '../../local/event-bus';
import { APPLE_KEY_FILE } from '../../local/seed';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import type { LocalExecution } from '../../local/step-functions';
import { notificationCostModel, type NotificationCostModel } from '../cost-model';
import { taskTargets } from '../counts';
import { runPool } from '../local';
import { median } from '../stats';
import { notificationRequests } from './fuzz-requests';
import { createPurchases, dataDirOf, postJson, register, send, tableClient, waitFinalized, type Purchase, type RegisterOutcome } from './harness';
import { reconcile } from './reconcile';
import { check, drainWithin, eventsAsPublished, settle, startScenarioStack, tally, type Scenario, type ScenarioStack } from './scenario';

/** Default seed; `LIFECYCLE_SEED=n npm run resilience -- --only lifecycle` replays another run. */
export const LIFECYCLE_SEED = 20261207;
const CUSTOMERS = [101, 102, 103];
const DROP_RATE = 0.1;
const DUPLICATE_RATE = 0.1;
const OUT_OF_ORDER_RATE = 0.1;
/** Generated requests against the notification route (fuzz-requests.ts `notificationRequests`). */
const NOTIFICATION_FUZZ_REQUESTS = 300;
const NOTIFICATION_FUZZ_SEED = 20261208;
/** The only answers the notification route may give to garbage (contract §9). */
const NOTIFICATION_FUZZ_ALLOWED = new Set(['400 NOTIF0001', '400 REQ0001', '413 REQ0006']);

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

/** What the bench believes of a subscription, only to pick transitions Apple could make next. */
type ModelState = 'active' | 'grace' | 'retry' | 'expired' | 'refunded' | 'revoked';
interface Subscription {
  index: number;
  originalTransactionId: string;
  latestTransactionId: string;
  customerId: number;
  state: ModelState;
  autoRenew: boolean;
}

export type LifecycleAction =
  | 'renew'
  | 'grace'
  | 'billing-retry'
  | 'auto-renew-off'
  | 'auto-renew-on'
  | 'expire'
  | 'refund'
  | 'refund-reversed'
  | 'revoke'
  | 'resubscribe';

/** The transitions Apple could make from a state (renewals and failed renewals only with auto-renew on). */
export function validActions(state: ModelState, autoRenew: boolean): LifecycleAction[] {
  switch (state) {
    case 'active':
      return autoRenew ? ['renew', 'renew', 'grace', 'billing-retry', 'auto-renew-off', 'expire', 'refund', 'revoke'] : ['auto-renew-on', 'expire', 'refund', 'revoke'];
    case 'grace':
      return ['renew', 'billing-retry', 'expire'];
    case 'retry':
      return ['renew', 'expire'];
    case 'expired':
      return ['resubscribe'];
    case 'refunded':
      return ['refund-reversed', 'refund-reversed', 'resubscribe'];
    case 'revoked':
      return ['resubscribe'];
  }
}

/** Drives one action through the simulator's control routes; answers the HTTP status. */
async function act(url: string, sub: Subscription, action: LifecycleAction): Promise<number> {
  const base = `${url}/__simulator/apple/transactions`;
  const on = (route: string, body: unknown = {}) => postJson(`${base}/${sub.latestTransactionId}/${route}`, body);
  let reply;
  switch (action) {
    case 'renew':
      reply = await on('renew');
      if (reply.status === 201) {
        sub.latestTransactionId = String((reply.json as { transactionId: string }).transactionId);
        sub.state = 'active';
      }
      return reply.status;
    case 'resubscribe':
      reply = await postJson(base, { productId: 'premium_monthly', environment: 'Production', originalTransactionId: sub.originalTransactionId });
      if (reply.status === 201) {
        sub.latestTransactionId = String((reply.json as { transactionId: string }).transactionId);
        sub.state = 'active';
        sub.autoRenew = true;
      }
      return reply.status;
    case 'grace':
      reply = await on('grace');
      if (reply.status === 200) sub.state = 'grace';
      return reply.status;
    case 'billing-retry':
      reply = await on('billing-retry');
      if (reply.status === 200) sub.state = 'retry';
      return reply.status;
    case 'auto-renew-off':
    case 'auto-renew-on':
      reply = await on('auto-renew', { enabled: action === 'auto-renew-on' });
      if (reply.status === 200) sub.autoRenew = action === 'auto-renew-on';
      return reply.status;
    case 'expire':
      reply = await on('expire');
      if (reply.status === 200) {
        // A voluntary expiry turns auto-renew off; the end of a billing retry keeps it.
        if (sub.state === 'active') sub.autoRenew = false;
        sub.state = 'expired';
      }
      return reply.status;
    case 'refund':
    case 'revoke':
      reply = await on(action);
      if (reply.status === 200) sub.state = action === 'refund' ? 'refunded' : 'revoked';
      return reply.status;
    case 'refund-reversed':
      reply = await on('refund-reversed');
      if (reply.status === 200) sub.state = 'active';
      return reply.status;
  }
}

/** The entitlement Apple's current answer implies (contract §9, §10). */
export interface ExpectedEntitlement {
  active: boolean;
  state: string;
  expiresAt: string | null;
}

const STATUS_STATES: Record<number, string> = { 1: 'active', 2: 'expired', 3: 'billing_retry', 4: 'grace_period', 5: 'revoked' };

export function expectedFromApple(
  status: number,
  transaction: { expiresDate?: number; revocationDate?: number },
  renewal: { gracePeriodExpiresDate?: number } | undefined,
  now: number,
): ExpectedEntitlement {
  const state = transaction.revocationDate !== undefined ? 'revoked' : (STATUS_STATES[status] ?? 'expired');
  const expires = transaction.expiresDate;
  const expiresAt = expires === undefined ? null : new Date(expires).toISOString();
  const graceEnd = renewal?.gracePeriodExpiresDate ?? expires;
  const active = (state === 'active' && expires !== undefined && expires > now) || (state === 'grace_period' && graceEnd !== undefined && graceEnd > now);
  return { active, state, expiresAt };
}

interface EntitlementItem {
  originalTransactionId: string | null;
  active: boolean;
  state: string;
  expiresAt: string | null;
}

interface Comparison {
  drift: number;
  lost: number;
  examples: string[];
  truthStates: Record<string, number>;
}

/**
 * Apple's truth, read as the service reads it: Get All Subscription Statuses through Apple's own
 * client (AppStoreClient, the service's subclass pointing at the simulator) and the signed data
 * verified with Apple's SignedDataVerifier against the simulator's root.
 */
async function truthReader(s: ScenarioStack) {
  const stack = s.bench.stack;
  const publisher = await new DynamoDbPublisherRepository(tableClient(stack), LOCAL_TABLE_NAME).getPublisher(stack.localJson.publisherId);
  const apple = publisher?.apple;
  if (!apple) throw new Error('demo publisher has no Apple configuration');
  const dataDir = dataDirOf(stack);
  const key = readFileSync(join(dataDir, 'secrets', APPLE_KEY_FILE), 'utf8');
  const runtime = JSON.parse(readFileSync(join(dataDir, 'runtime.json'), 'utf8')) as { appleRootCertificates: string };
  const roots = runtime.appleRootCertificates.split(',').map((r) => Buffer.from(r.trim(), 'base64'));
  const client = new AppStoreClient(key, apple.keyId, apple.issuerId, apple.bundleId, Environment.PRODUCTION, `${stack.url}/__simulator/apple/production`, 10_000);
  const verifier = new SignedDataVerifier(roots, false, Environment.PRODUCTION, apple.bundleId, apple.appAppleId);
  return async (originalTransactionId: string): Promise<ExpectedEntitlement> => {
    const answer = await client.getAllSubscriptionStatuses(originalTransactionId);
    const last = answer.data?.[0]?.lastTransactions?.[0];
    if (!last?.signedTransactionInfo || last.status === undefined) throw new Error(`no status for ${originalTransactionId}`);
    const transaction = await verifier.verifyAndDecodeTransaction(last.signedTransactionInfo);
    const renewal = last.signedRenewalInfo ? await verifier.verifyAndDecodeRenewalInfo(last.signedRenewalInfo) : undefined;
    return expectedFromApple(Number(last.status), transaction, renewal, Date.now());
  };
}

async function compare(s: ScenarioStack, subs: Subscription[], truthOf: (id: string) => Promise<ExpectedEntitlement>): Promise<Comparison> {
  const url = s.bench.stack.url;
  const byCustomer = new Map<number, Map<string, EntitlementItem>>();
  for (const customerId of CUSTOMERS) {
    const reply = await send(`${url}/customers/${customerId}/entitlements`, { headers: s.publisher.headers });
    if (reply.status !== 200) throw new Error(`GET /customers/${customerId}/entitlements answered ${reply.status}: ${reply.text.slice(0, 200)}`);
    const items = (reply.json as { entitlements: EntitlementItem[] }).entitlements;
    byCustomer.set(customerId, new Map(items.map((e) => [String(e.originalTransactionId), e])));
  }
  const truths = new Array<ExpectedEntitlement>(subs.length);
  await runPool(subs.length, 8, async (i) => {
    const sub = subs[i];
    if (sub) truths[i] = await truthOf(sub.originalTransactionId);
  });
  let drift = 0;
  let lost = 0;
  const examples: string[] = [];
  subs.forEach((sub, i) => {
    const truth = truths[i];
    const seen = byCustomer.get(sub.customerId)?.get(sub.originalTransactionId);
    if (!truth) return;
    if (!seen) {
      lost += 1;
      if (examples.length < 8) examples.push(`${sub.originalTransactionId} (customer ${sub.customerId}): no entitlement, Apple says ${JSON.stringify(truth)}`);
      return;
    }
    const got = { active: seen.active, state: seen.state, expiresAt: seen.expiresAt };
    if (got.active !== truth.active || got.state !== truth.state || got.expiresAt !== truth.expiresAt) {
      drift += 1;
      if (examples.length < 8) examples.push(`${sub.originalTransactionId} (customer ${sub.customerId}): service ${JSON.stringify(got)}, Apple ${JSON.stringify(truth)}`);
    }
  });
  return { drift, lost, examples, truthStates: tally(truths.filter(Boolean).map((t) => `${t.state}${t.active ? '' : ' (inactive)'}`)) };
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

/** Sample `k` distinct items with the PRNG (partial Fisher–Yates). */
function sample<T>(items: readonly T[], k: number, rand: () => number): T[] {
  const copy = [...items];
  const n = Math.min(k, copy.length);
  for (let i = 0; i < n; i += 1) {
    const j = i + Math.floor(rand() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, n);
}

/** Per-refresh figures for the cost model, from the executions the notifications started. */
function refreshFigures(executions: LocalExecution[]) {
  const targets = taskTargets();
  const invocations: Record<string, number> = {};
  const durations: Record<string, number[]> = {};
  let transitions = 0;
  let putEvents = 0;
  for (const execution of executions) {
    const entered = new Map<string, number>();
    for (const event of execution.history) {
      if (event.type.endsWith('StateEntered') || event.type.endsWith('Retried')) transitions += 1;
      const name = String(event.details?.name ?? '');
      const target = targets.get(name);
      if (!target) continue;
      if (event.type === 'TaskStateEntered' || event.type.endsWith('Retried')) {
        if (target.kind === 'lambda') invocations[target.name] = (invocations[target.name] ?? 0) + 1;
        else if (target.name.startsWith('events:putEvents')) putEvents += 1;
        entered.set(name, event.timestamp);
      }
      if (event.type === 'TaskStateExited' && target.kind === 'lambda') {
        const start = entered.get(name);
        if (start !== undefined) (durations[target.name] ??= []).push(event.timestamp - start);
      }
    }
  }
  const n = Math.max(1, executions.length);
  return {
    executions: executions.length,
    transitionsPerRefresh: transitions / n,
    lambdaInvocationsPerRefresh: Object.fromEntries(Object.entries(invocations).map(([k, v]) => [k, v / n])),
    lambdaMedianMs: Object.fromEntries(Object.entries(durations).map(([k, v]) => [k, Math.round(median(v))])),
    putEventsPerRefresh: putEvents / n,
  };
}

/**
 * Lifecycle: N Apple subscriptions registered for customers 101–103, then M seeded lifecycle
 * actions through the App Store simulator with ~10 % of their notifications dropped, ~10 % of the
 * delivered ones resent (duplicates) and a further sample resent newest-first (out of order, some
 * of them dropped before: late first deliveries). One `iap-sync reconcile` run, then every
 * entitlement must equal what Get All Subscription Statuses says (0 drift), with 0 duplicate
 * `inappEntitlementChanged` and 0 lost entitlements.
 */
export const lifecycle: Scenario = async ({ quick, log }) => {
  const subscriptions = quick ? 30 : 200;
  const actions = quick ? 150 : 1000;
  const seed = Number(process.env.LIFECYCLE_SEED ?? LIFECYCLE_SEED);
  const rand = prng(seed);
  const t0 = Date.now();
  // The scheduled reconciliation only at start-up: the one run under test is the command's.
  const s = await startScenarioStack({ fastWaitsMs: 20, reconcile: { intervalMs: 0 } });
  try {
    const { stack } = s.bench;
    const url = stack.url;
    const publisherId = stack.localJson.publisherId;
    log(`seed ${seed}: ${subscriptions} subscriptions, ${actions} actions, drop ${DROP_RATE * 100} %, duplicates ${DUPLICATE_RATE * 100} %, out of order ${OUT_OF_ORDER_RATE * 100} %`);

    // 1. Subscriptions, registered round robin for customers 101–103.
    const purchases: Purchase[] = await createPurchases(url, Array.from({ length: subscriptions }, () => 'apple' as const));
    const outcomes = new Array<RegisterOutcome>(subscriptions);
    const registerAnswers: string[] = [];
    await runPool(subscriptions, 4, async (i) => {
      const purchase = purchases[i];
      if (!purchase) return;
      // Three customers for 200 purchases: an accept may meet another's transaction on the customer item.
      for (let attempt = 0; attempt < 6; attempt += 1) {
        const o = await register(url, purchase, CUSTOMERS[i % CUSTOMERS.length] ?? 101, s.publisher, { packageName: s.packageName });
        registerAnswers.push(`${o.status}${o.code ? ` ${o.code}` : ''}`);
        outcomes[i] = o;
        if (o.status === 202 || (o.status < 500 && o.status !== 409)) break;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    });
    const accepted = outcomes.filter((o) => o?.synchronizationId !== undefined);
    const statuses = await waitFinalized(url, accepted.map((o) => ({ id: o.synchronizationId ?? '', store: 'apple' as const })), s.publisher, Date.now() + (quick ? 60_000 : 180_000));
    await settle(s, 60_000);
    log(`${accepted.length}/${subscriptions} registered (${JSON.stringify(tally(registerAnswers))}), ${Object.values(statuses).filter((st) => st.status === 'finalized').length} finalized`);

    const subs: Subscription[] = purchases.map((p, i) => ({
      index: i,
      originalTransactionId: p.id,
      latestTransactionId: p.id,
      customerId: CUSTOMERS[i % CUSTOMERS.length] ?? 101,
      state: 'active',
      autoRenew: true,
    }));

    // 2. Lifecycle actions, one at a time so each armed drop hits that action's own notification.
    const outboxBefore = stack.outbox.list('apple').length;
    const executionsBefore = new Set(stack.stepFunctions.executions.keys());
    const actionCounts: Record<string, number> = {};
    const failedActions: string[] = [];
    let dropped = 0;
    const tActions = Date.now();
    for (let n = 0; n < actions; n += 1) {
      const sub = subs[Math.floor(rand() * subs.length)];
      if (!sub) continue;
      const choices = validActions(sub.state, sub.autoRenew);
      const action = choices[Math.floor(rand() * choices.length)] ?? 'renew';
      const drop = rand() < DROP_RATE;
      if (drop) stack.outbox.dropNext('apple', 1);
      const status = await act(url, sub, action);
      stack.outbox.dropNext('apple', 0);
      if (status !== 200 && status !== 201) failedActions.push(`${action} on ${sub.originalTransactionId}: ${status}`);
      actionCounts[action] = (actionCounts[action] ?? 0) + 1;
      if (drop && stack.outbox.list('apple').at(-1)?.dropped === true) dropped += 1;
      if ((n + 1) % 200 === 0) log(`${n + 1} actions (${Math.round((Date.now() - tActions) / 1000)} s)`);
    }
    const sent = stack.outbox.list('apple').slice(outboxBefore);
    const notRefusedByRoute = sent.filter((r) => !r.dropped && r.responseStatus !== 200);
    log(`${actions} actions: ${JSON.stringify(actionCounts)}; ${dropped} notifications dropped, ${notRefusedByRoute.length} not answered 200`);

    // Duplicates: ~10 % of the delivered notifications sent again.
    const delivered = sent.filter((r) => !r.dropped && r.responseStatus === 200);
    const duplicates = sample(delivered, Math.round(delivered.length * DUPLICATE_RATE), rand);
    const resendAnswers: string[] = [];
    const resendMs: number[] = [];
    for (const record of duplicates) {
      const t = performance.now();
      const again = await stack.outbox.resend(record.id);
      resendMs.push(performance.now() - t);
      resendAnswers.push(String(again?.responseStatus ?? 'none'));
    }
    // Out of order: a further sample of all the action notifications (dropped ones included, which
    // are then late first deliveries), resent newest first: old news arriving after newer news.
    const duplicateIds = new Set(duplicates.map((r) => r.id));
    const order = new Map(sent.map((r, i) => [r.id, i]));
    const outOfOrder = sample(sent.filter((r) => !duplicateIds.has(r.id)), Math.round(sent.length * OUT_OF_ORDER_RATE), rand).sort(
      (a, b) => (order.get(b.id) ?? 0) - (order.get(a.id) ?? 0),
    );
    const lateFirstDeliveries = outOfOrder.filter((r) => r.dropped).length;
    for (const record of outOfOrder) {
      const again = await stack.outbox.resend(record.id);
      resendAnswers.push(String(again?.responseStatus ?? 'none'));
    }
    log(`resent ${duplicates.length} duplicates and ${outOfOrder.length} out of order (${lateFirstDeliveries} of them dropped before): answers ${JSON.stringify(tally(resendAnswers))}`);
    const drainedBefore = await drainWithin(() => stack.stepFunctions.drain(), 180_000);

    const truthOf = await truthReader(s);
    const before = await compare(s, subs, truthOf);
    log(`before the reconciliation: drift ${before.drift}, lost ${before.lost}`);

    // 3. One reconciliation run, as `iap-sync reconcile --publisher 1` does it.
    const target = localTarget(dataDirOf(stack));
    let result: ReconcileResult;
    const tReconcile = Date.now();
    try {
      result = await reconcileCommand(target, { publisher: String(publisherId), wait: '180' }, { logger: createLogger('lifecycle-reconcile', 'silent') });
    } finally {
      target.close();
    }
    const reconcileSeconds = Math.round((Date.now() - tReconcile) / 1000);
    const settled = await settle(s, 180_000);
    log(`reconciliation (${reconcileSeconds} s): ${JSON.stringify(result.report)}; corrected ${result.corrected.count}, not finalized ${result.notFinalized}`);

    // 4. Apple's truth against the entitlements, and the events.
    const after = await compare(s, subs, truthOf);
    const dupEvents = duplicateEntitlementEvents(settled.events);
    log(`after: drift ${after.drift}, lost ${after.lost}, duplicate events ${dupEvents.duplicates}`);

    // 5. The notification route under garbage.
    const fuzzRequests = fc.sample(notificationRequests({ publisherId }), { numRuns: quick ? 60 : NOTIFICATION_FUZZ_REQUESTS, seed: NOTIFICATION_FUZZ_SEED });
    const fuzzOutcomes: string[] = [];
    await runPool(fuzzRequests.length, 8, async (i) => {
      const req = fuzzRequests[i];
      if (!req) return;
      try {
        const reply = await send(`${url}${req.path}`, { method: req.method, headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}) });
        const code = (reply.json as { code?: unknown } | undefined)?.code;
        fuzzOutcomes.push(`${reply.status} ${typeof code === 'string' ? code : '(no code)'}`);
      } catch (error) {
        fuzzOutcomes.push(`no answer (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      }
    });
    const fuzzBad = fuzzOutcomes.filter((o) => !NOTIFICATION_FUZZ_ALLOWED.has(o));
    const fuzz5xx = fuzzOutcomes.filter((o) => /^5\d\d/.test(o)).length;

    // The registers, reconciled like every scenario's accepted synchronizations.
    const registerReconciliation = reconcile({
      accepted: accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: eventsAsPublished(settled.events.filter((e) => e['detail-type'] === SYNC_RESULT_DETAIL_TYPE)),
      deliveries: s.receiver.received,
    });

    const refreshExecutions = [...stack.stepFunctions.executions.entries()].filter(([arn]) => !executionsBefore.has(arn)).map(([, e]) => e);
    const figures = refreshFigures(refreshExecutions);
    const cost: NotificationCostModel = notificationCostModel({
      source: `lifecycle scenario, seed ${seed}: ${figures.executions} refresh executions`,
      transitionsPerRefresh: figures.transitionsPerRefresh,
      lambdaInvocationsPerRefresh: figures.lambdaInvocationsPerRefresh,
      lambdaMedianMs: figures.lambdaMedianMs,
      putEventsPerRefresh: figures.putEventsPerRefresh,
      notificationMs: Math.round(median(resendMs)),
    });

    const wallSeconds = Math.round((Date.now() - t0) / 1000);
    const entitlementEvents = settled.events.filter((e) => e['detail-type'] === ENTITLEMENT_CHANGED_DETAIL_TYPE).length;
    return {
      title: `lifecycle: ${actions} seeded actions over ${subscriptions} Apple subscriptions, ${dropped} notifications dropped, ${duplicates.length} duplicated, ${outOfOrder.length} out of order, one reconciliation (seed ${seed})`,
      requests: subscriptions + actions + duplicates.length + outOfOrder.length + fuzzRequests.length,
      accepted: registerReconciliation.accepted,
      reconciliation: registerReconciliation,
      checks: [
        check('every subscription registered and finalized', accepted.length === subscriptions && registerReconciliation.finalized === subscriptions, `${accepted.length} accepted, ${registerReconciliation.finalized} finalized of ${subscriptions}`),
        check('every action a valid transition the simulator took', failedActions.length === 0, failedActions.length === 0 ? `${actions} actions` : failedActions.slice(0, 5).join('; ')),
        check('every delivered notification answered 200 (first sends and resends)', notRefusedByRoute.length === 0 && resendAnswers.every((a) => a === '200'), `${notRefusedByRoute.length} first sends, ${resendAnswers.filter((a) => a !== '200').length} resends not 200`),
        check('drift 0: every entitlement equals Apple\'s Get All Subscription Statuses', after.drift === 0, after.drift === 0 ? `${subscriptions} compared (${before.drift} drifted before the reconciliation)` : `${after.drift} drifted: ${after.examples.join(' | ')}`),
        check('0 duplicate inappEntitlementChanged (customer + purchase + ownershipVersion)', dupEvents.duplicates === 0, dupEvents.duplicates === 0 ? `${entitlementEvents} events` : `${dupEvents.duplicates}: ${dupEvents.examples.join(', ')}`),
        check('0 lost: every subscription has its entitlement', after.lost === 0, `${after.lost} missing`),
        check('the reconciliation finished its refreshes without errors', result.notFinalized === 0 && result.report.errors === 0, `not finalized ${result.notFinalized}, errors ${result.report.errors}`),
        check('workflows and webhook queue drained', drainedBefore && settled.workflowsDrained && settled.webhooksDrained, `before reconcile ${drainedBefore}, after: workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
        check('notification route fuzz: only 400 NOTIF0001 / REQ0001, 413 REQ0006; never 5xx', fuzzBad.length === 0, `${fuzzOutcomes.length} requests, ${fuzz5xx} 5xx, ${fuzzBad.length} other: ${JSON.stringify(tally(fuzzBad))}`),
      ],
      details: {
        seed,
        actions: actionCounts,
        dropped,
        duplicatesResent: duplicates.length,
        outOfOrderResent: outOfOrder.length,
        outOfOrderLateFirstDeliveries: lateFirstDeliveries,
        driftBeforeReconciliation: before.drift,
        driftBeforeExamples: before.examples.slice(0, 3),
        reconciliationReport: result.report,
        reconciliationCorrected: result.corrected.count,
        reconciliationRefreshes: tally(result.refreshes.map((r) => `${r.source} ${r.status} ${r.refreshOutcome ?? ''}`.trim())),
        reconciliationSeconds: reconcileSeconds,
        drift: after.drift,
        driftExamples: after.examples,
        duplicateEvents: dupEvents.duplicates,
        lost: after.lost,
        truthStates: after.truthStates,
        entitlementEvents,
        notificationFuzz: tally(fuzzOutcomes),
        costPerMillionNotificationsUsd: cost.totalUsdPerMillion,
        costLines: cost.lines.map((l) => `${l.service}: ${l.item} — ${l.quantity} ${l.unit} → $${l.usdPerMillion}`),
        wallSeconds,
      },
    };
  } finally {
    await s.stop();
  }
};
