import { join } from 'node:path';
import { runPool } from '../local';
import {
  addWebhookEndpoint,
  createPurchases,
  dataDirOf,
  endpointRepository,
  register,
  send,
  tableClient,
  until,
  waitFinalized,
  WebhookReceiver,
  type RegisterOutcome,
  type Store,
} from './harness';
import { reconcile } from './reconcile';
import { check, eventsAsPublished, settle, startScenarioStack, tally, type Scenario, type ScenarioStack } from './scenario';

/** The contract's schedule × 0.001: 5 ms, 300 ms, 1.8 s, 7.2 s, 18 s, 36 s, 36 s (dead letter after ~100 s). */
const SCHEDULE_SCALE = 0.001;

async function registerMany(s: ScenarioStack, n: number, offset = 0): Promise<RegisterOutcome[]> {
  const stores: Store[] = Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 'google' : 'apple'));
  const purchases = await createPurchases(s.bench.stack.url, stores);
  const out = new Array<RegisterOutcome>(n);
  await runPool(n, 8, async (i) => {
    const p = purchases[i];
    if (p) out[i] = await register(s.bench.stack.url, p, s.bench.client.customerFor(offset + i), s.publisher, { packageName: s.packageName });
  });
  return out;
}

async function deadLetterCount(s: ScenarioStack): Promise<number> {
  const reply = await send(`${s.bench.stack.url}/__local/webhooks/dead-letters`);
  const list = (reply.json as { deadLetters?: unknown[] } | undefined)?.deadLetters;
  return Array.isArray(list) ? list.length : -1;
}

/**
 * The publisher's receiver is down (503) while N synchronizations finalize and until every
 * delivery has failed at least twice; then it is back. Every synchronization must be delivered,
 * one webhook-id each, nothing dead-lettered.
 */
export const webhookReceiverDownThenUp: Scenario = async ({ quick, log }) => {
  const n = quick ? 10 : 60;
  const s = await startScenarioStack({ webhookScheduleScale: SCHEDULE_SCALE });
  try {
    s.receiver.mode = 'down';
    const downAt = Date.now();
    log(`receiver down (503); ${n} synchronizations`);
    const outcomes = await registerMany(s, n);
    const accepted = outcomes.filter((o) => o.synchronizationId);
    const ids = accepted.map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store }));
    const statuses = await waitFinalized(s.bench.stack.url, ids, s.publisher, Date.now() + 90_000);
    const failedTwice = await until(() => {
      const failures = new Map<string, number>();
      for (const a of s.receiver.attempts) failures.set(a.webhookId, (failures.get(a.webhookId) ?? 0) + 1);
      return failures.size >= ids.length && [...failures.values()].every((count) => count >= 2);
    }, Date.now() + 30_000);
    const failedAttempts = s.receiver.attempts.length;
    s.receiver.mode = 'ok';
    const downMs = Date.now() - downAt;
    log(`receiver up after ${(downMs / 1000).toFixed(1)} s (${failedAttempts} failed attempts); waiting for the retries`);
    const wanted = new Set(ids.map((x) => x.id));
    await until(() => new Set(s.receiver.received.map((r) => r.synchronizationId)).size >= wanted.size, Date.now() + 60_000, 250);
    const settled = await settle(s, 60_000);
    const reconciliation = reconcile({
      accepted: accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
    });
    const deadLetters = await deadLetterCount(s);
    return {
      title: `webhook receiver down (503) for ${(downMs / 1000).toFixed(1)} s, then up: ${n} synchronizations`,
      requests: outcomes.length,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('every delivery failed at least twice while the receiver was down', failedTwice, `${failedAttempts} failed attempts for ${ids.length} synchronizations`),
        check('nothing dead-lettered', deadLetters === 0, `${deadLetters} dead letters`),
        check('every webhook signature verifies', s.receiver.attempts.every((a) => a.signatureValid), `${s.receiver.attempts.filter((a) => !a.signatureValid).length} invalid of ${s.receiver.attempts.length}`),
        check('workflows and webhook queue drained', settled.workflowsDrained && settled.webhooksDrained, `workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
      ],
      details: {
        scheduleScale: SCHEDULE_SCALE,
        attemptsPerWebhook: tally(
          [...s.receiver.attempts.reduce((m, a) => m.set(a.webhookId, (m.get(a.webhookId) ?? 0) + 1), new Map<string, number>()).values()].map(String),
        ),
        answers: tally(s.receiver.attempts.map((a) => String(a.answered))),
      },
    };
  } finally {
    await s.stop();
  }
};

/**
 * A second endpoint of the same publisher answers 410 Gone: it must be disabled after its first
 * attempt and never called again, while the healthy endpoint keeps getting every synchronization.
 */
export const webhookReceiverGone: Scenario = async ({ quick, log }) => {
  const n = quick ? 10 : 40;
  const s = await startScenarioStack({ webhookScheduleScale: SCHEDULE_SCALE });
  const gone = new WebhookReceiver();
  gone.mode = 'gone';
  try {
    const db = tableClient(s.bench.stack);
    const goneUrl = await gone.start('/gone');
    const { endpointId, secret } = await addWebhookEndpoint(db, join(dataDirOf(s.bench.stack), 'secrets'), s.publisher.publisherId, goneUrl);
    gone.setSecret(secret);
    log('one synchronization with a second endpoint answering 410');
    const firstOutcomes = await registerMany(s, 1);
    const firstIds = firstOutcomes.filter((o) => o.synchronizationId).map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store }));
    const firstStatuses = await waitFinalized(s.bench.stack.url, firstIds, s.publisher, Date.now() + 60_000);
    await settle(s);
    const endpoints = endpointRepository(db);
    const disabled = await until(async () => (await endpoints.get(s.publisher.publisherId, endpointId))?.enabled === false, Date.now() + 10_000);
    const endpoint = await endpoints.get(s.publisher.publisherId, endpointId);
    const goneAttemptsBefore = gone.attempts.length;
    log(`endpoint disabled: ${disabled} (${endpoint?.disabledReason ?? '-'}); ${n} more synchronizations`);
    const more = await registerMany(s, n, 1);
    const moreIds = more.filter((o) => o.synchronizationId).map((o) => ({ id: o.synchronizationId ?? '', store: o.purchase.store }));
    const moreStatuses = await waitFinalized(s.bench.stack.url, moreIds, s.publisher, Date.now() + 90_000);
    const settled = await settle(s);
    const accepted = [...firstOutcomes, ...more].filter((o) => o.synchronizationId);
    const reconciliation = reconcile({
      accepted: accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses: { ...firstStatuses, ...moreStatuses },
      events: eventsAsPublished(settled.events),
      deliveries: s.receiver.received,
    });
    return {
      title: `webhook receiver answering 410 next to a healthy one: 1 + ${n} synchronizations`,
      requests: firstOutcomes.length + more.length,
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('the 410 endpoint got exactly one attempt before being disabled', goneAttemptsBefore === 1, `${goneAttemptsBefore} attempts`),
        check('the 410 endpoint is disabled with reason 410', endpoint?.enabled === false && endpoint.disabledReason === '410', JSON.stringify({ enabled: endpoint?.enabled, disabledReason: endpoint?.disabledReason })),
        check('no attempt to the disabled endpoint afterwards', gone.attempts.length === goneAttemptsBefore, `${gone.attempts.length - goneAttemptsBefore} attempts after disabling`),
        check('workflows and webhook queue drained', settled.workflowsDrained && settled.webhooksDrained, `workflows ${settled.workflowsDrained}, webhooks ${settled.webhooksDrained}`),
      ],
      details: { goneAnswers: tally(gone.attempts.map((a) => String(a.answered))), healthyAnswers: tally(s.receiver.attempts.map((a) => String(a.answered))) },
    };
  } finally {
    await s.stop();
    await gone.close();
  }
};
