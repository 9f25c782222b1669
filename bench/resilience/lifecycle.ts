import fc from 'fast-check';
import { reconcile as reconcileCommand, type ReconcileResult } from '../../cli/commands/reconcile';
import { localTarget } from '../../cli/target';
import { SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/events/schemas';
import { createLogger } from '../../lambdas/platform/logger';
import type { EventEnvelope } from '../../local/event-bus';
import { runPool } from '../local';
import { executionInput, refreshCost, refreshFigures } from '../refresh-figures';
import { median } from '../stats';
import { countStoreCalls } from '../store-calls';
import { googlePushRequests, notificationRequests, type FuzzRequest } from './fuzz-requests';
import { createPurchases, dataDirOf, send, type RegisterOutcome, type Store } from './harness';
import { appleExpectations, appleSubscriptions, appleTruthReader, pickAppleAction } from './lifecycle-apple';
import {
  compareWithStore,
  DROP_RATE,
  DUPLICATE_RATE,
  driveActions,
  duplicateEntitlementEvents,
  entitlementEventsOf,
  noticeOutcomes,
  OUT_OF_ORDER_RATE,
  prng,
  redeliver,
  registerAll,
  type Comparison,
  type DrivenActions,
  type EntitlementItem,
  type ExpectedEntitlement,
  type Expectation,
  type PickedAction,
  type Redelivered,
  type Registered,
} from './lifecycle-driver';
import { explainGoogleDrift, googleExpectations, googleModel, googleTruthReader, pickGoogleAction, type GoogleDriftCauses, type GoogleModel } from './lifecycle-google';
import { reconcile, type PublishedEvent, type ReceivedWebhook } from './reconcile';
import { check, drainWithin, eventsAsPublished, settle, startScenarioStack, tally, type Check, type Scenario, type ScenarioStack } from './scenario';

/** Default seed; `LIFECYCLE_SEED=n npm run resilience -- --only lifecycle` replays another run. */
export const LIFECYCLE_SEED = 20261207;
/** Generated requests against the notification route (fuzz-requests.ts `notificationRequests`). */
const NOTIFICATION_FUZZ_REQUESTS = 300;
const NOTIFICATION_FUZZ_SEED = 20261208;
/** The only answers the notification route may give to garbage (contract §9). */
const NOTIFICATION_FUZZ_ALLOWED = new Set(['400 NOTIF0001', '400 REQ0001', '413 REQ0006']);
/** The Google push route also answers a missing or invalid push token: 401 AUTH0002. */
const PUSH_FUZZ_ALLOWED = new Set([...NOTIFICATION_FUZZ_ALLOWED, '401 AUTH0002']);
/**
 * The PRNG of one half. Apple's is the seed's own, so an Apple run replays the choices it made
 * before the Google half existed; Google's is derived from it.
 */
const halfSeed = (seed: number, store: Store) => (store === 'apple' ? seed : (seed ^ 0x9e3779b9) >>> 0);

/** How a store's half registers its purchases and compares them with the store. */
interface HalfPlan {
  register: () => Promise<{ registered: Registered; pick: (rand: () => number) => PickedAction | undefined }>;
  expectations: () => Expectation[];
  keyOf: (item: EntitlementItem) => string | null;
  /** The entitlement fields compared with the store's answer. */
  fields: (keyof ExpectedEntitlement)[];
  google?: GoogleModel;
}

/** One store's half, up to the reconciliation. */
interface Half extends Omit<HalfPlan, 'register'> {
  store: Store;
  registered: Registered;
  driven: DrivenActions;
  redelivered: Redelivered;
  /** Store API calls made while the half ran (its registers' included), up to the reconciliation. */
  storeCalls: number;
  /** The half's executions are the ones started between these two counts (insertion order). */
  executionsFrom: number;
  executionsTo: number;
}

/** Registers `subscriptions` purchases of the store, then drives `actions` seeded actions and the redeliveries. */
async function runHalf(s: ScenarioStack, store: Store, plan: HalfPlan, actions: number, rand: () => number, log: (line: string) => void): Promise<Half> {
  const { stack } = s.bench;
  const { registered, pick } = await plan.register();
  await settle(s, 60_000);
  log(`${store}: ${registered.accepted.length}/${registered.outcomes.length} registered (${JSON.stringify(tally(registered.answers))}), ${Object.values(registered.statuses).filter((st) => st.status === 'finalized').length} finalized`);
  const calls = countStoreCalls(stack.faults);
  const executionsFrom = stack.stepFunctions.executions.size;
  const driven = await driveActions(s, store, actions, rand, pick, log);
  const notRefused = driven.sent.filter((r) => !r.dropped && r.responseStatus !== 200);
  log(`${store}: ${JSON.stringify(driven.counts)}; ${driven.dropped} notifications dropped, ${notRefused.length} not answered 200`);
  const redelivered = await redeliver(s, driven.sent, rand);
  log(
    `${store}: resent ${redelivered.duplicates} duplicates and ${redelivered.outOfOrder} out of order (${redelivered.lateFirstDeliveries} of them dropped before): answers ${JSON.stringify(tally(redelivered.answers))}`,
  );
  // The half's refreshes end before the counter is read: their store calls are all in.
  await drainWithin(() => stack.stepFunctions.drain(), 180_000);
  return {
    store,
    registered,
    driven,
    redelivered,
    storeCalls: calls.calls[store],
    executionsFrom,
    executionsTo: stack.stepFunctions.executions.size,
    expectations: plan.expectations,
    keyOf: plan.keyOf,
    fields: plan.fields,
    ...(plan.google ? { google: plan.google } : {}),
  };
}

/** What a half reports: the same figures for Apple and Google. */
interface HalfFigures {
  subscriptions: number;
  actions: Record<string, number>;
  dropped: number;
  duplicatesResent: number;
  outOfOrderResent: number;
  outOfOrderLateFirstDeliveries: number;
  driftBeforeReconciliation: number;
  driftBeforeExamples: string[];
  drift: number;
  missing: number;
  driftExamples: string[];
  duplicateEvents: number;
  duplicateEventExamples: string[];
  entitlementEvents: number;
  noticesAccepted: number;
  noticesFinalized: number;
  lost: number;
  lostExamples: string[];
  truthStates: Record<string, number>;
  reconciliationReport: ReconcileResult['report'];
  reconciliationCorrected: number;
  reconciliationRefreshes: Record<string, number>;
  reconciliationSeconds: number;
  refreshExecutions: number;
  storeCallsPerRefresh: Record<string, number>;
  costPerMillionNotificationsUsd: { standard: number; express: number };
  costLines: string[];
  googleDrift?: { awaitingRecheck: number; unknown: number; unexplained: number; examples: string[] };
}

function figuresOf(
  s: ScenarioStack,
  half: Half,
  before: Comparison,
  after: Comparison,
  events: readonly EventEnvelope[],
  notices: Awaited<ReturnType<typeof noticeOutcomes>>,
  reconciliation: { result: ReconcileResult; seconds: number },
  seed: number,
  googleDrift: GoogleDriftCauses | undefined,
): HalfFigures {
  const { result } = reconciliation;
  // The half's own executions (not the reconciliation's): the window its store calls were counted in.
  const window = [...s.bench.stack.stepFunctions.executions.values()].slice(half.executionsFrom, half.executionsTo).filter((e) => executionInput(e).store === half.store);
  const executions = window.filter((e) => executionInput(e).kind === 'refresh');
  // Google's resubscriptions are registers: one subscriptionsv2.get each and their acknowledge, not the refreshes' calls.
  const registers = refreshFigures(window.filter((e) => executionInput(e).kind === 'register'));
  const registerCalls = registers.executions * (1 + (registers.lambdaInvocationsPerRefresh.AcknowledgePurchase ?? 0));
  const storeEvents = entitlementEventsOf(events, half.store);
  const dupEvents = duplicateEntitlementEvents(storeEvents);
  const cost = refreshCost(half.store, executions, half.storeCalls - registerCalls, median(half.redelivered.duplicateMs), `lifecycle scenario, seed ${seed}, notification time the median of the duplicate resends`);
  const keys = new Set(half.expectations().map((e) => e.key));
  return {
    subscriptions: half.registered.outcomes.length,
    actions: half.driven.counts,
    dropped: half.driven.dropped,
    duplicatesResent: half.redelivered.duplicates,
    outOfOrderResent: half.redelivered.outOfOrder,
    outOfOrderLateFirstDeliveries: half.redelivered.lateFirstDeliveries,
    driftBeforeReconciliation: before.drift + before.missing,
    driftBeforeExamples: before.examples.slice(0, 3),
    drift: after.drift + after.missing,
    missing: after.missing,
    driftExamples: after.examples,
    duplicateEvents: dupEvents.duplicates,
    duplicateEventExamples: dupEvents.examples,
    entitlementEvents: storeEvents.length,
    noticesAccepted: notices.accepted,
    noticesFinalized: notices.finalized,
    lost: notices.lost.length,
    lostExamples: notices.lost.slice(0, 5),
    truthStates: after.truthStates,
    reconciliationReport: result.report,
    reconciliationCorrected: result.corrected.purchaseKeys.filter((key) => keys.has(key)).length,
    reconciliationRefreshes: tally(result.refreshes.map((r) => `${r.source} ${r.status} ${r.refreshOutcome ?? ''}`.trim())),
    reconciliationSeconds: reconciliation.seconds,
    refreshExecutions: executions.length,
    storeCallsPerRefresh: cost.counts.storeCallsPerRefresh,
    costPerMillionNotificationsUsd: { standard: cost.standard.totalUsdPerMillion, express: cost.express.totalUsdPerMillion },
    costLines: cost.standard.lines.map((l) => `${l.service}: ${l.item} — ${l.quantity} ${l.unit} → $${l.usdPerMillion}`),
    ...(googleDrift
      ? {
          googleDrift: {
            awaitingRecheck: googleDrift.awaitingRecheck.length,
            unknown: googleDrift.unknown.length,
            unexplained: googleDrift.unexplained.length,
            examples: [...googleDrift.unexplained, ...googleDrift.awaitingRecheck, ...googleDrift.unknown].slice(0, 6),
          },
        }
      : {}),
  };
}

const STORE_NAMES: Record<Store, string> = { apple: 'Apple', google: 'Google' };

function halfChecks(half: Half, f: HalfFigures, googleDrift: GoogleDriftCauses | undefined): Check[] {
  const name = STORE_NAMES[half.store];
  const { registered, driven, redelivered } = half;
  const finalized = Object.values(registered.statuses).filter((st) => st.status === 'finalized').length;
  const notRefused = driven.sent.filter((r) => !r.dropped && r.responseStatus !== 200).length;
  const resendsRefused = redelivered.answers.filter((a) => a !== '200').length;
  const driftCheck =
    googleDrift === undefined
      ? check(`${name}: drift 0 — every entitlement equals Get All Subscription Statuses`, f.drift === 0, f.drift === 0 ? `${f.subscriptions} compared (${f.driftBeforeReconciliation} drifted before the reconciliation)` : `${f.drift} drifted: ${f.driftExamples.join(' | ')}`)
      : check(
          // A new plan-change token whose only push was lost is unknowable: no Google API lists an
          // app's subscriptions, so only the app's register (or Pub/Sub redelivering) brings it.
          `${name}: drift 0 after one \`iap-sync reconcile --all\` (Voided Purchases, then every purchase of the reconcile index re-read), except new plan-change tokens whose only push was lost`,
          f.drift - googleDrift.unknown.length === 0 && googleDrift.unexplained.length === 0,
          `${f.drift} differ after the reconciliation (${f.driftBeforeReconciliation} before): ${googleDrift.unexplained.length} unexplained, ${googleDrift.awaitingRecheck.length} awaiting the period-end re-check, ${googleDrift.unknown.length} plan-change tokens unknown to the service (a lost push in their chain)` +
            (googleDrift.unexplained.length > 0 ? `: ${googleDrift.unexplained.slice(0, 4).join(' | ')}` : ''),
        );
  return [
    check(`${name}: every subscription registered and finalized`, registered.accepted.length === f.subscriptions && finalized === f.subscriptions, `${registered.accepted.length} accepted, ${finalized} finalized of ${f.subscriptions}`),
    check(`${name}: every action a valid transition the simulator took`, driven.failed.length === 0, driven.failed.length === 0 ? `${Object.values(driven.counts).reduce((a, b) => a + b, 0)} actions` : driven.failed.slice(0, 5).join('; ')),
    check(`${name}: every delivered notification answered 200 (first sends and resends)`, notRefused === 0 && resendsRefused === 0, `${notRefused} first sends, ${resendsRefused} resends not 200`),
    driftCheck,
    check(`${name}: 0 duplicate inappEntitlementChanged (customer + purchase + ownershipVersion)`, f.duplicateEvents === 0, f.duplicateEvents === 0 ? `${f.entitlementEvents} events` : `${f.duplicateEvents}: ${f.duplicateEventExamples.join(', ')}`),
    check(`${name}: 0 lost — every accepted notification has a finalized refresh`, f.lost === 0, f.lost === 0 ? `${f.noticesAccepted} accepted, ${f.noticesFinalized} finalized` : `${f.lost} of ${f.noticesAccepted}: ${f.lostExamples.join('; ')}`),
  ];
}

/** What one half leaves for the scenario's report: its figures, checks and its registers for the shared reconciliation. */
interface HalfOutcome {
  figures: HalfFigures;
  checks: Check[];
  registers: { accepted: RegisterOutcome[]; statuses: Registered['statuses']; events: PublishedEvent[]; deliveries: ReceivedWebhook[] };
  requests: number;
}

/**
 * One store's half on a stack of its own (the simulator's notification log is shared by both
 * stores and bounded, so Google's pushes would push Apple's history out of it): registers, seeded
 * actions, redeliveries, then ONE `iap-sync reconcile` run for the publisher, then the comparison
 * with the store, the events and the notices. `extra` runs on the same stack before it stops.
 */
async function runStore(
  store: Store,
  sizes: { subscriptions: number; actions: number; quick: boolean },
  seed: number,
  log: (line: string) => void,
  extra?: (s: ScenarioStack) => Promise<{ checks: Check[]; details: Record<string, unknown>; requests: number }>,
): Promise<HalfOutcome & { extra?: Record<string, unknown> }> {
  // The scheduled reconciliation only at start-up: the one run under test is the command's.
  const s = await startScenarioStack({ fastWaitsMs: 20, reconcile: { intervalMs: 0 } });
  try {
    const { stack } = s.bench;
    const half = await runHalf(s, store, planOf(store, s, sizes), sizes.actions, prng(halfSeed(seed, store)), log);
    const drainedBefore = await drainWithin(() => stack.stepFunctions.drain(), 180_000);
    const before = await compareWithStore(s, half.expectations(), half.keyOf, half.fields);
    log(`${store} before the reconciliation: drift ${before.drift}, missing ${before.missing}`);

    const target = localTarget(dataDirOf(stack));
    let result: ReconcileResult;
    const tReconcile = Date.now();
    try {
      // Google keeps no notification history: `--all` re-reads every purchase still in the reconcile
      // index, which is how an operator corrects pushes lost for good (Apple's history needs none).
      const args = { publisher: String(stack.localJson.publisherId), wait: '180', ...(store === 'google' ? { all: true } : {}) };
      result = await reconcileCommand(target, args, { logger: createLogger('lifecycle-reconcile', 'silent') });
    } finally {
      target.close();
    }
    const reconcileSeconds = Math.round((Date.now() - tReconcile) / 1000);
    const settled = await settle(s, 180_000);
    log(`${store} reconciliation (${reconcileSeconds} s): ${JSON.stringify(result.report)}; corrected ${result.corrected.count}, not finalized ${result.notFinalized}`);

    const after = await compareWithStore(s, half.expectations(), half.keyOf, half.fields);
    // The attempts as they were made: the simulator's log is bounded, a listing at the end may have lost the oldest.
    const records = [...half.driven.sent, ...half.redelivered.records];
    const notices = await noticeOutcomes(s, store, records);
    const googleDrift = half.google ? await explainGoogleDrift(s, half.google, after.off, records) : undefined;
    const figures = figuresOf(s, half, before, after, settled.events, notices, { result, seconds: reconcileSeconds }, seed, googleDrift);
    log(`${store} after: drift ${figures.drift} (missing ${figures.missing}), duplicate events ${figures.duplicateEvents}, lost ${figures.lost} of ${figures.noticesAccepted}`);
    const name = STORE_NAMES[store];
    const checks = [
      ...halfChecks(half, figures, googleDrift),
      check(`${name}: the reconciliation finished its refreshes without errors`, result.notFinalized === 0 && result.report.errors === 0, `not finalized ${result.notFinalized}, errors ${result.report.errors}`),
      check(`${name}: workflows and webhook queue drained`, drainedBefore && settled.workflowsDrained && settled.webhooksDrained, `before reconcile ${drainedBefore}, after: workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
    ];
    const more = extra ? await extra(s) : undefined;

    // The registers (Google's resubscriptions included), for the scenario's reconciliation of accepted synchronizations.
    const resubscribed = half.google?.registers ?? [];
    const statuses: Registered['statuses'] = { ...half.registered.statuses };
    for (const { outcome, status } of resubscribed) if (outcome.synchronizationId !== undefined) statuses[outcome.synchronizationId] = status;
    const actionCount = Object.values(half.driven.counts).reduce((a, b) => a + b, 0);
    return {
      figures,
      checks: [...checks, ...(more?.checks ?? [])],
      registers: {
        accepted: [...half.registered.accepted, ...resubscribed.map((r) => r.outcome)],
        statuses,
        events: eventsAsPublished(settled.events.filter((e) => e['detail-type'] === SYNC_RESULT_DETAIL_TYPE)),
        deliveries: [...s.receiver.received],
      },
      requests: sizes.subscriptions + actionCount + half.redelivered.duplicates + half.redelivered.outOfOrder + (more?.requests ?? 0),
      ...(more ? { extra: more.details } : {}),
    };
  } finally {
    await s.stop();
  }
}

/** How each store's half registers its purchases, picks its actions and reads its store. */
function planOf(store: Store, s: ScenarioStack, sizes: { subscriptions: number; quick: boolean }): HalfPlan {
  const url = s.bench.stack.url;
  const registerDeadline = sizes.quick ? 60_000 : 180_000;
  const purchases = () => createPurchases(url, Array.from({ length: sizes.subscriptions }, () => store));
  if (store === 'apple') {
    let subs: ReturnType<typeof appleSubscriptions> = [];
    let truth: Awaited<ReturnType<typeof appleTruthReader>> | undefined;
    return {
      register: async () => {
        const made = await purchases();
        const registered = await registerAll(s, made, registerDeadline);
        subs = appleSubscriptions(made);
        truth = await appleTruthReader(s);
        return { registered, pick: pickAppleAction(url, subs) };
      },
      expectations: () => (truth ? appleExpectations(subs, truth) : []),
      keyOf: (item) => item.originalTransactionId,
      fields: ['active', 'state', 'expiresAt'],
    };
  }
  const model: GoogleModel = googleModel([]);
  let truth: ReturnType<typeof googleTruthReader> | undefined;
  return {
    register: async () => {
      const made = await purchases();
      const registered = await registerAll(s, made, registerDeadline);
      Object.assign(model, googleModel(made));
      truth = googleTruthReader(s);
      return { registered, pick: pickGoogleAction(s, model) };
    },
    expectations: () => (truth ? googleExpectations(model, truth) : []),
    keyOf: (item) => item.purchaseToken,
    // Google's expiry moves with every renewal whose push was lost for good; state and access are what the customer sees.
    fields: ['active', 'state'],
    google: model,
  };
}

/** The App Store notification route under generated garbage (fuzz-requests.ts `notificationRequests`). */
async function fuzzNotificationRoute(s: ScenarioStack, quick: boolean, store: Store): Promise<{ checks: Check[]; details: Record<string, unknown>; requests: number }> {
  const url = s.bench.stack.url;
  const { publisherId } = s.bench.stack.localJson;
  const arbitrary: fc.Arbitrary<FuzzRequest> =
    store === 'apple'
      ? notificationRequests({ publisherId })
      : googlePushRequests({ publisherId, validToken: await s.bench.stack.googlePush.signPushToken(), packageName: s.bench.stack.localJson.google.packageName });
  const allowed = store === 'apple' ? NOTIFICATION_FUZZ_ALLOWED : PUSH_FUZZ_ALLOWED;
  const fuzzRequests = fc.sample(arbitrary, { numRuns: quick ? 60 : NOTIFICATION_FUZZ_REQUESTS, seed: NOTIFICATION_FUZZ_SEED });
  const outcomes: string[] = [];
  await runPool(fuzzRequests.length, 8, async (i) => {
    const req = fuzzRequests[i];
    if (!req) return;
    try {
      const reply = await send(`${url}${req.path}`, { method: req.method, headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}) });
      const code = (reply.json as { code?: unknown } | undefined)?.code;
      outcomes.push(`${reply.status} ${typeof code === 'string' ? code : '(no code)'}`);
    } catch (error) {
      outcomes.push(`no answer (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  });
  const bad = outcomes.filter((o) => !allowed.has(o));
  const fiveHundreds = outcomes.filter((o) => /^5\d\d/.test(o)).length;
  return {
    checks: [
      check(`notification route fuzz (${STORE_NAMES[store]}): only 400 NOTIF0001 / REQ0001, 413 REQ0006${store === 'google' ? ', 401 AUTH0002' : ''}; never 5xx`, bad.length === 0, `${outcomes.length} requests, ${fiveHundreds} 5xx, ${bad.length} other: ${JSON.stringify(tally(bad))}`),
    ],
    details: { notificationFuzz: tally(outcomes) },
    requests: fuzzRequests.length,
  };
}

/**
 * Lifecycle, one store per scenario (each in its own process and stack: handlers keep their clients
 * per process, and the simulator's bounded notification log would let one store's pushes crowd out
 * the other's history): N subscriptions registered for customers 101–103, then M seeded lifecycle
 * actions through the store simulator's control routes with ~10 % of their notifications dropped,
 * ~10 % of the delivered ones resent (duplicates) and a further sample resent newest-first (out of
 * order, some of them dropped before: late first deliveries). Then ONE `iap-sync reconcile` run
 * (Apple's notification history, Google's Voided Purchases, due purchases), then every entitlement
 * compared with the store's answer (drift), `inappEntitlementChanged` checked for duplicates, and
 * every accepted notification for a finalized refresh (lost). Google keeps no notification history,
 * so a push lost for good that is not a revocation waits for the period-end re-check, which a run
 * minutes long cannot reach: such drift is reported apart, each purchase checked to be in the
 * reconcile-due index. The App Store scenario also fuzzes its notification route.
 */
function lifecycleScenario(store: Store): Scenario {
  return async ({ quick, log }) => {
    const sizes = { subscriptions: quick ? 30 : 200, actions: quick ? 150 : 1000, quick };
    const seed = Number(process.env.LIFECYCLE_SEED ?? LIFECYCLE_SEED);
    const t0 = Date.now();
    log(`seed ${seed}, ${store}: ${sizes.subscriptions} subscriptions, ${sizes.actions} actions, drop ${DROP_RATE * 100} %, duplicates ${DUPLICATE_RATE * 100} %, out of order ${OUT_OF_ORDER_RATE * 100} %`);
    const outcome = await runStore(store, sizes, seed, log, (s) => fuzzNotificationRoute(s, quick, store));
    const { registers, figures } = outcome;
    const registerReconciliation = reconcile({
      accepted: registers.accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses: registers.statuses,
      events: registers.events,
      deliveries: registers.deliveries,
    });
    return {
      title: `lifecycle (${STORE_NAMES[store]}): ${sizes.actions} seeded actions over ${sizes.subscriptions} subscriptions, ${figures.dropped} notifications dropped, ${figures.duplicatesResent} duplicated, ${figures.outOfOrderResent} out of order, one reconciliation (seed ${seed})`,
      requests: outcome.requests,
      accepted: registerReconciliation.accepted,
      reconciliation: registerReconciliation,
      checks: outcome.checks,
      details: { seed, [store]: figures, ...(outcome.extra ?? {}), wallSeconds: Math.round((Date.now() - t0) / 1000) },
    };
  };
}

export const lifecycle = lifecycleScenario('apple');
export const lifecycleGoogle = lifecycleScenario('google');
