import { runPool } from '../local';
import { createPurchases, register, waitFinalized, type RegisterOutcome, type Store } from './harness';
import { reconcile } from './reconcile';
import { check, eventsAsPublished, settle, startScenarioStack, tally, type Scenario } from './scenario';

/** Apple and Google answer this slowly, so every copy of a transaction meets its first synchronization's lock. */
const STORE_LATENCY_MS = 1500;
const COPIES = 10;

/**
 * Duplicate storm: N transactions (4 in 5 Apple, 1 in 5 Google), 10 identical registers of each
 * sent at once. Exactly one 202 per transaction while its first synchronization runs; the others
 * 409 (Apple SK2C0101 with Retry-After, Google GPLAY0300 naming the accepted id).
 */
export const duplicateStorm: Scenario = async ({ quick, log }) => {
  const transactions = quick ? 20 : 200;
  const groupsInFlight = 6;
  const s = await startScenarioStack();
  try {
    const { stack, client } = s.bench;
    const stores: Store[] = Array.from({ length: transactions }, (_, i) => (i % 5 === 4 ? 'google' : 'apple'));
    const purchases = await createPurchases(stack.url, stores);
    stack.faults.setLatency('apple', STORE_LATENCY_MS);
    stack.faults.setLatency('google', STORE_LATENCY_MS);
    log(`${transactions} transactions × ${COPIES} concurrent copies (${groupsInFlight} transactions at a time, store latency ${STORE_LATENCY_MS} ms)`);
    const outcomes: RegisterOutcome[][] = new Array<RegisterOutcome[]>(transactions);
    await runPool(transactions, groupsInFlight, async (i) => {
      const purchase = purchases[i];
      if (!purchase) return;
      const customerId = client.customerFor(i);
      outcomes[i] = await Promise.all(
        Array.from({ length: COPIES }, () => register(stack.url, purchase, customerId, s.publisher, { packageName: s.packageName })),
      );
    });
    const all = outcomes.flat();
    const accepted = all.filter((o) => o.synchronizationId !== undefined);
    log(`${all.length} registers answered: ${JSON.stringify(tally(all.map((o) => `${o.status}${o.code ? ` ${o.code}` : ''}`)))}`);

    const statuses = await waitFinalized(
      stack.url,
      accepted.map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store })),
      s.publisher,
      Date.now() + (quick ? 60_000 : 180_000),
    );
    const settled = await settle(s);

    // A copy sent while the transaction's first accepted synchronization was still running must not be accepted.
    const concurrentAcceptsByKey: Record<string, string[]> = {};
    let lateAccepts = 0;
    const refusals: string[] = [];
    for (const group of outcomes) {
      const firsts = group.filter((o) => o.synchronizationId).sort((a, b) => a.answeredAt - b.answeredAt);
      const first = firsts[0];
      if (!first?.synchronizationId) continue;
      const firstEnded = client.execution(first.synchronizationId)?.stopDate ?? Number.POSITIVE_INFINITY;
      const concurrent = firsts.filter((o) => o.sentAt < firstEnded);
      lateAccepts += firsts.length - concurrent.length;
      concurrentAcceptsByKey[first.purchase.key] = concurrent.map((o) => o.synchronizationId ?? '');
      for (const o of group) {
        if (o.status === 202) continue;
        const expected =
          o.purchase.store === 'apple'
            ? o.status === 409 && o.code === 'SK2C0101' && o.retryAfter !== undefined
            : o.status === 409 && o.code === 'GPLAY0300';
        if (!expected) refusals.push(`${o.purchase.key} ${o.status} ${o.code ?? ''} retry-after=${o.retryAfter ?? '-'}`);
      }
    }
    const noAccept = outcomes.filter((group) => !group.some((o) => o.status === 202)).length;
    const reconciliation = reconcile({
      accepted: accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
      concurrentAcceptsByKey,
      maxConcurrentAcceptsPerKey: 1,
    });
    return {
      title: `duplicate storm: ${all.length} registers over ${transactions} transactions, ${COPIES} concurrent copies each`,
      requests: all.length,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('every transaction got exactly one 202', noAccept === 0 && reconciliation.accepted === transactions, `${noAccept} transactions without a 202; ${reconciliation.accepted} accepted for ${transactions} transactions`),
        check('every other copy: 409 SK2C0101 + Retry-After (Apple) or 409 GPLAY0300 (Google)', refusals.length === 0, refusals.length === 0 ? `${all.length - accepted.length} refusals as documented` : refusals.slice(0, 5).join('; ')),
        check('workflows and webhook queue drained', settled.workflowsDrained && settled.webhooksDrained, `workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
        check('every webhook signature verifies', s.receiver.attempts.every((a) => a.signatureValid), `${s.receiver.attempts.filter((a) => !a.signatureValid).length} invalid of ${s.receiver.attempts.length}`),
      ],
      details: {
        answers: tally(all.map((o) => `${o.status}${o.code ? ` ${o.code}` : ''}`)),
        lateAcceptsAfterFirstFinalized: lateAccepts,
        storeLatencyMs: STORE_LATENCY_MS,
        results: tally(Object.values(statuses).map((st) => st.result ?? st.status ?? String(st.httpStatus))),
      },
    };
  } finally {
    await s.stop();
  }
};
