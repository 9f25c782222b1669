import { runPool } from '../local';
import { executionName } from '../../lambdas/purchases/domain/synchronization';
import { createPurchases, postJson, readStatus, register, send, until, waitFinalized, type RegisterOutcome, type Store } from './harness';
import { reconcile } from './reconcile';
import { check, eventsAsPublished, settle, startScenarioStack, tally, type Scenario, type ScenarioStack } from './scenario';

/** The simulator's largest fault count: "fails 100 % until cleared" for any outage these scenarios make. */
const ALL_CALLS = 10_000;

async function storesDown(s: ScenarioStack): Promise<void> {
  for (const store of ['apple', 'google']) {
    const reply = await postJson(`${s.bench.stack.url}/__simulator/faults`, { store, status: 503, count: ALL_CALLS });
    if (reply.status !== 200) throw new Error(`fault route answered ${reply.status}: ${reply.text}`);
  }
}

async function storesUp(s: ScenarioStack): Promise<void> {
  const reply = await send(`${s.bench.stack.url}/__simulator/faults`, { method: 'DELETE' });
  if (reply.status !== 200) throw new Error(`fault route answered ${reply.status}: ${reply.text}`);
}

function storesFor(n: number): Store[] {
  return Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 'google' : 'apple'));
}

async function registerAll(s: ScenarioStack, stores: Store[], customerOffset = 0): Promise<RegisterOutcome[]> {
  const purchases = await createPurchases(s.bench.stack.url, stores);
  const out = new Array<RegisterOutcome>(purchases.length);
  await runPool(purchases.length, 8, async (i) => {
    const purchase = purchases[i];
    if (purchase) out[i] = await register(s.bench.stack.url, purchase, s.bench.client.customerFor(i + customerOffset), s.publisher, { packageName: s.packageName });
  });
  return out;
}

/**
 * Entries of a Task state over every execution of a synchronization: its first one and, on EXPRESS,
 * each parked attempt the sweeper started (`<name>.a<n>`).
 */
function stateEntries(s: ScenarioStack, id: string, state: string): number {
  const name = executionName({ publisherId: s.bench.stack.localJson.publisherId, synchronizationId: id });
  let count = 0;
  for (const execution of s.bench.stack.stepFunctions.executions.values()) {
    if (execution.name !== name && !execution.name.startsWith(`${name}.`)) continue;
    count += execution.history.filter((e) => e.type === 'TaskStateEntered' && e.details?.name === state).length;
  }
  return count;
}

/**
 * Store outage shorter than the retry budget: both stores answer 503 to every call while all the
 * synchronizations are registered and until each has been marked `retrying`; then they recover.
 * Every synchronization must pass through `retrying` and finalize PURCHASE_SYNCHRONIZED.
 */
export const storeOutageRecovers: Scenario = async ({ quick, log }) => {
  const n = quick ? 20 : 100;
  // 50 attempts (the configuration's maximum) 400 ms apart: a budget of about 20 s of failures per synchronization.
  const retry = { maxAttempts: 50, baseSeconds: 1, maxWaitSeconds: 1 };
  const s = await startScenarioStack({ retry, fastWaitsMs: 400 });
  try {
    const url = s.bench.stack.url;
    await storesDown(s);
    const outageStarted = Date.now();
    log(`stores down (503 on every call); registering ${n} purchases`);
    const outcomes = await registerAll(s, storesFor(n));
    const accepted = outcomes.filter((o) => o.synchronizationId);
    const ids = accepted.map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store }));
    const allMarked = await until(() => ids.every((x) => stateEntries(s, x.id, 'MarkRetrying') > 0), Date.now() + 60_000, 200);
    // One read of every status while the stores are still down: the app must see `retrying`.
    const visible: Record<string, string> = {};
    await runPool(ids.length, 8, async (i) => {
      const x = ids[i];
      if (x) visible[x.id] = (await readStatus(url, x.store, x.id, s.publisher)).status ?? '?';
    });
    await storesUp(s);
    const outageMs = Date.now() - outageStarted;
    log(`stores up again after ${(outageMs / 1000).toFixed(1)} s; waiting for ${ids.length} synchronizations`);
    const statuses = await waitFinalized(url, ids, s.publisher, Date.now() + (quick ? 60_000 : 120_000));
    const settled = await settle(s);
    const reconciliation = reconcile({
      accepted: accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
    });
    const marked = ids.filter((x) => stateEntries(s, x.id, 'MarkRetrying') > 0).length;
    const sawRetrying = Object.values(visible).filter((v) => v === 'retrying').length;
    // Each store's synchronizations are verified by their own state (the VerifyStore Choice picks it).
    const attempts = ids.map((x) => stateEntries(s, x.id, 'VerifyApplePurchase') + stateEntries(s, x.id, 'VerifyGooglePurchase'));
    return {
      title: `store outage (Apple and Google 503 on every call for ${(outageMs / 1000).toFixed(1)} s), then recovery: ${n} synchronizations`,
      requests: outcomes.length + Object.keys(visible).length,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('every register accepted during the outage', accepted.length === n, `${accepted.length}/${n}: ${JSON.stringify(tally(outcomes.map((o) => `${o.status}${o.code ? ` ${o.code}` : ''}`)))}`),
        check('every synchronization passed through MarkRetrying (execution history)', allMarked && marked === ids.length, `${marked}/${ids.length}`),
        check('every status read during the outage said `retrying`', sawRetrying === ids.length, `${sawRetrying}/${ids.length}: ${JSON.stringify(tally(Object.values(visible)))}`),
        check('no synchronization used up its retry budget', Math.max(0, ...attempts) < retry.maxAttempts, `verification attempts per synchronization: max ${Math.max(0, ...attempts)}, budget ${retry.maxAttempts}`),
        check('workflows and webhook queue drained', settled.workflowsDrained && settled.webhooksDrained, `workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
      ],
      details: {
        outageSeconds: Number((outageMs / 1000).toFixed(1)),
        retryBudget: { ...retry, waitMs: 400 },
        verificationAttempts: tally(attempts.map(String)),
        results: tally(Object.values(statuses).map((st) => st.result ?? st.status ?? String(st.httpStatus))),
      },
    };
  } finally {
    await s.stop();
  }
};

/**
 * Store outage longer than the retry budget: every synchronization finalizes
 * SYNCHRONIZATION_FAILED (published and delivered), and its lock (Apple) or token claim (Google)
 * is free: once the stores are back, a second register of the same purchase is accepted and
 * synchronizes.
 */
export const storeOutageExhausted: Scenario = async ({ quick, log }) => {
  const n = quick ? 10 : 60;
  const retry = { maxAttempts: 3, baseSeconds: 1, maxWaitSeconds: 1 };
  const s = await startScenarioStack({ retry, fastWaitsMs: 200 });
  try {
    const url = s.bench.stack.url;
    await storesDown(s);
    log(`stores down for good; registering ${n} purchases (budget ${retry.maxAttempts} attempts)`);
    const first = await registerAll(s, storesFor(n));
    const firstAccepted = first.filter((o) => o.synchronizationId);
    const firstStatuses = await waitFinalized(
      url,
      firstAccepted.map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store })),
      s.publisher,
      Date.now() + 90_000,
    );
    await settle(s);
    await storesUp(s);
    log('stores up; registering every purchase again (its lock must be free)');
    const second = new Array<RegisterOutcome>(firstAccepted.length);
    await runPool(firstAccepted.length, 8, async (i) => {
      const o = firstAccepted[i];
      if (o) second[i] = await register(url, o.purchase, s.bench.client.customerFor(first.indexOf(o)), s.publisher, { packageName: s.packageName });
    });
    const secondAccepted = second.filter((o) => o.synchronizationId);
    const secondStatuses = await waitFinalized(
      url,
      secondAccepted.map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store })),
      s.publisher,
      Date.now() + 90_000,
    );
    const settled = await settle(s);
    const reconciliation = reconcile({
      accepted: [
        ...firstAccepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['SYNCHRONIZATION_FAILED'] })),
        ...secondAccepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      ],
      statuses: { ...firstStatuses, ...secondStatuses },
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
      lockChecks: firstAccepted.map((o, i) => ({ synchronizationId: o.synchronizationId ?? '', httpStatus: second[i]?.status ?? 0 })),
    });
    return {
      title: `store outage longer than the retry budget (${retry.maxAttempts} attempts): ${n} synchronizations, then a second register of each`,
      requests: first.length + second.length,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('every first register accepted', firstAccepted.length === n, `${firstAccepted.length}/${n}`),
        check('every first synchronization finalized SYNCHRONIZATION_FAILED', Object.values(firstStatuses).every((st) => st.result === 'SYNCHRONIZATION_FAILED'), JSON.stringify(tally(Object.values(firstStatuses).map((st) => st.result ?? st.status ?? '?')))),
        check('every second register accepted (lock / token claim released)', secondAccepted.length === firstAccepted.length, JSON.stringify(tally(second.map((o) => `${o.status}${o.code ? ` ${o.code}` : ''}`)))),
        check('workflows and webhook queue drained', settled.workflowsDrained && settled.webhooksDrained, `workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
      ],
      details: {
        retryBudget: { ...retry, waitMs: 200 },
        firstResults: tally(Object.values(firstStatuses).map((st) => st.result ?? st.status ?? '?')),
        secondResults: tally(Object.values(secondStatuses).map((st) => st.result ?? st.status ?? '?')),
      },
    };
  } finally {
    await s.stop();
  }
};
