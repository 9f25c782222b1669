import type { LocalExecution } from '../local/step-functions';
import type { NotificationCostModel, NotificationStore } from './cost-model';
import type { BenchStack } from './local';
import { executionInput, refreshCost } from './refresh-figures';
import { median, round, summarize, type LatencySummary } from './stats';
import { countStoreCalls } from './store-calls';

/**
 * Store notifications timed one at a time on the local stack, the same way for both stores: a
 * purchase is registered and finalized, the store simulator makes a change with its notification
 * recorded but not sent, then the bench delivers that notification and times
 * - the route's answer (Apple: POST /storekit2/notifications/1 with the genuine signed body;
 *   Google: the Pub/Sub push POST /google-play/notifications/1, sent by the simulator's outbox with
 *   a fresh OIDC token as Pub/Sub would, so the time includes signing that token, about a millisecond);
 * - notification → entitlement: from that POST until GET /customers/{id}/entitlements shows the change.
 * Sequential: these are latencies, not throughput. The refresh executions the timed notifications
 * started and the store calls they made (each sample drained before the next) are kept for the cost model.
 */
export interface PushRun {
  store: NotificationStore;
  ingestMs: number[];
  toEntitlementMs: number[];
  /** Notifications sent, by the store action that made them. */
  actions: Record<string, number>;
  refreshes: LocalExecution[];
  /** Store API calls the refreshes made (the registers' excluded). */
  storeCalls: number;
}

/** The Play simulator's control routes a push can be timed for from an active subscription. */
export const GOOGLE_PUSH_ACTIONS = ['renew', 'grace', 'hold', 'pause', 'cancel', 'expire', 'revoke', 'replace'] as const;
export type GooglePushAction = (typeof GOOGLE_PUSH_ACTIONS)[number];

interface ListedEntitlement {
  transactionId: string | null;
  purchaseToken: string | null;
  state: string;
  expiresAt: string | null;
  willRenew: boolean;
}

const ENTITLEMENT_WAIT_MS = 30_000;
/** A renewal far beyond the current period, so the entitlement's new expiry is unmistakable. */
const RENEWAL_SECONDS = 60 * 24 * 3600;

function client(bench: BenchStack) {
  const { stack } = bench;
  const json = { 'content-type': 'application/json' };
  const publisher = { ...json, 'x-publisher-id': '1', 'x-publisher-token': stack.localJson.publisherToken };
  const post = async (path: string, body: unknown, headers: Record<string, string> = json) => {
    const reply = await fetch(`${stack.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: reply.status, json: (await reply.json().catch(() => ({}))) as Record<string, unknown> };
  };
  const entitlements = async (customerId: number) => {
    const jwt = stack.localJson.customerJwts[String(customerId)];
    const reply = await fetch(`${stack.url}/customers/${customerId}/entitlements`, { headers: { 'x-publisher-id': '1', authorization: `Bearer ${jwt}` } });
    return ((await reply.json()) as { entitlements: ListedEntitlement[] }).entitlements;
  };
  /** Polls until `done` holds of the customer's entitlements; the ms since `t0`. */
  const until = async (customerId: number, t0: number, done: (items: ListedEntitlement[]) => boolean) => {
    for (;;) {
      if (done(await entitlements(customerId))) return performance.now() - t0;
      if (performance.now() - t0 > ENTITLEMENT_WAIT_MS) throw new Error(`the entitlement did not follow the notification within ${ENTITLEMENT_WAIT_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  return { stack, publisher, post, until };
}

/** The refresh executions of one store started since the `from`-th execution (insertion order). */
function refreshesSince(bench: BenchStack, from: number, store: NotificationStore): LocalExecution[] {
  return [...bench.stack.stepFunctions.executions.values()].slice(from).filter((e) => {
    const input = executionInput(e);
    return input.kind === 'refresh' && input.store === store;
  });
}

/** App Store Server Notifications: one DID_RENEW per sample. */
export async function measureApplePushes(bench: BenchStack, samples: number): Promise<PushRun> {
  const { stack, publisher, post, until } = client(bench);
  const calls = countStoreCalls(stack.faults);
  // What earlier phases left running would count as this run's store calls and slow its first samples.
  await stack.stepFunctions.drain();
  const run: PushRun = { store: 'apple', ingestMs: [], toEntitlementMs: [], actions: {}, refreshes: [], storeCalls: 0 };
  const route = `${stack.url}/storekit2/notifications/1`;
  try {
    for (let i = 0; i < samples; i++) {
      const customerId = 101 + (i % 3);
      stack.outbox.setTarget('apple', route);
      const created = await post('/__simulator/apple/transactions', { productId: 'premium_monthly' });
      const transactionId = String(created.json.transactionId);
      const accepted = await post('/storekit2/purchases', { cleengCustomerId: customerId, transactionId, ipAddress: '203.0.113.7' }, publisher);
      if (accepted.status !== 202) throw new Error(`register answered ${accepted.status}`);
      await stack.stepFunctions.drain();
      // The renewal's notification is recorded, not sent: the bench sends it and times the route.
      stack.outbox.setTarget('apple', undefined);
      const renewed = await post(`/__simulator/apple/transactions/${transactionId}/renew`, { expiresInSeconds: RENEWAL_SECONDS });
      const notification = stack.outbox.history('apple').filter((n) => n.type === 'DID_RENEW').at(-1);
      if (!notification) throw new Error('the simulator recorded no DID_RENEW');
      const before = calls.calls.apple;
      const from = stack.stepFunctions.executions.size;
      const t0 = performance.now();
      const answer = await post('/storekit2/notifications/1', notification.body);
      run.ingestMs.push(performance.now() - t0);
      if (answer.status !== 200) throw new Error(`the notification route answered ${answer.status}`);
      run.toEntitlementMs.push(await until(customerId, t0, (items) => items.some((e) => e.transactionId === renewed.json.transactionId)));
      await stack.stepFunctions.drain();
      run.storeCalls += calls.calls.apple - before;
      run.refreshes.push(...refreshesSince(bench, from, 'apple'));
      run.actions.renew = (run.actions.renew ?? 0) + 1;
    }
  } finally {
    stack.outbox.setTarget('apple', route);
  }
  return run;
}

/** What the entitlements show once a Google push about `token` has been applied. */
function googleFollowed(action: GooglePushAction, token: string, answer: Record<string, unknown>): (items: ListedEntitlement[]) => boolean {
  const of = (items: ListedEntitlement[], t = token) => items.find((e) => e.purchaseToken === t);
  switch (action) {
    case 'renew':
      return (items) => Date.parse(String(of(items)?.expiresAt)) === Date.parse(String(answer.expiryTime));
    case 'cancel':
      return (items) => of(items)?.willRenew === false;
    case 'replace':
      return (items) => of(items, String(answer.purchaseToken))?.state === 'active';
    default: {
      const state = { grace: 'grace_period', hold: 'on_hold', pause: 'paused', expire: 'expired', revoke: 'revoked' }[action];
      return (items) => of(items)?.state === state;
    }
  }
}

/**
 * Google Play Real-time Developer Notifications: per sample a new active subscription and one
 * control route, `actions` taken round robin (the notifications bench: renewals only, as Apple's).
 */
export async function measureGooglePushes(bench: BenchStack, samples: number, actions: readonly GooglePushAction[] = ['renew']): Promise<PushRun> {
  const { stack, publisher, post, until } = client(bench);
  const calls = countStoreCalls(stack.faults);
  // What earlier phases left running would count as this run's store calls and slow its first samples.
  await stack.stepFunctions.drain();
  const run: PushRun = { store: 'google', ingestMs: [], toEntitlementMs: [], actions: {}, refreshes: [], storeCalls: 0 };
  const route = `${stack.url}/google-play/notifications/1`;
  const packageName = stack.localJson.google.packageName;
  try {
    for (let i = 0; i < samples; i++) {
      const customerId = 101 + (i % 3);
      const action = actions[i % actions.length] ?? 'renew';
      stack.outbox.setTarget('google', route);
      const created = await post('/__simulator/google/subscriptions', { productId: 'premium_monthly' });
      const token = String(created.json.purchaseToken);
      const accepted = await post('/google-play/purchases', { cleengCustomerId: customerId, purchaseToken: token, packageName, productType: 'subscription', ipAddress: '203.0.113.7' }, publisher);
      if (accepted.status !== 202) throw new Error(`register answered ${accepted.status}`);
      await stack.stepFunctions.drain();
      // The change's push is recorded, not sent: the bench has the outbox deliver it and times the route.
      stack.outbox.setTarget('google', undefined);
      const changed = await post(`/__simulator/google/subscriptions/${encodeURIComponent(token)}/${action}`, action === 'renew' ? { expiresInSeconds: RENEWAL_SECONDS } : action === 'replace' ? { productId: 'premium_yearly' } : {});
      const id = (changed.json.notification as { id?: string } | undefined)?.id;
      if (id === undefined) throw new Error(`the simulator sent no push for ${action}: ${changed.status}`);
      stack.outbox.setTarget('google', route);
      const before = calls.calls.google;
      const from = stack.stepFunctions.executions.size;
      const t0 = performance.now();
      const delivered = await stack.outbox.resend(id);
      run.ingestMs.push(performance.now() - t0);
      if (delivered?.responseStatus !== 200) throw new Error(`the push route answered ${delivered?.responseStatus ?? 'nothing'}`);
      run.toEntitlementMs.push(await until(customerId, t0, googleFollowed(action, token, changed.json)));
      await stack.stepFunctions.drain();
      run.storeCalls += calls.calls.google - before;
      run.refreshes.push(...refreshesSince(bench, from, 'google'));
      run.actions[action] = (run.actions[action] ?? 0) + 1;
    }
  } finally {
    stack.outbox.setTarget('google', route);
  }
  return run;
}

/** The cost per million of a run's notifications, from its refresh executions and the route's median time. */
export function pushCost(run: PushRun, source: string): NotificationCostModel {
  const actions = Object.entries(run.actions).map(([action, n]) => `${action} ${n}`).join(', ');
  return refreshCost(run.store, run.refreshes, run.storeCalls, median(run.ingestMs), `${source} (${actions})`);
}

/** The targets for store notifications ("Entitlements that stay true"). */
export const NOTIFICATION_TARGETS = { ingestP99Ms: 100, toEntitlementP99Ms: 1000 } as const;

export interface PushSummary {
  /** What was sent and where. */
  notification: string;
  ingestMs: LatencySummary;
  toEntitlementMs: LatencySummary;
  verdict: { ingest: 'MET' | 'MISSED'; toEntitlement: 'MET' | 'MISSED' };
}

const rounded = (s: LatencySummary): LatencySummary => ({ count: s.count, p50: round(s.p50), p95: round(s.p95), p99: round(s.p99), mean: round(s.mean), max: round(s.max) });

/** A run's latencies with their verdicts against {@link NOTIFICATION_TARGETS}. */
export function summarizePushes(run: PushRun, notification: string): PushSummary {
  const ingestMs = rounded(summarize(run.ingestMs));
  const toEntitlementMs = rounded(summarize(run.toEntitlementMs));
  return {
    notification,
    ingestMs,
    toEntitlementMs,
    verdict: {
      ingest: ingestMs.p99 <= NOTIFICATION_TARGETS.ingestP99Ms ? 'MET' : 'MISSED',
      toEntitlement: toEntitlementMs.p99 <= NOTIFICATION_TARGETS.toEntitlementP99Ms ? 'MET' : 'MISSED',
    },
  };
}
