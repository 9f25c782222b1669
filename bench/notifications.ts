import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBenchStack } from './local';
import { describeMachine, loadAverage, round, summarize, type LatencySummary } from './stats';

/**
 * `npm run bench:notifications`: App Store Server Notifications on the local stack, with the
 * instant simulator. Two numbers of the issue "Entitlements that stay true":
 * - ingest answer: POST /storekit2/notifications/1 with a genuine signed DID_RENEW body, until 200
 *   (target p99 ≤ 100 ms);
 * - notification → entitlement updated: from that POST until GET /customers/{id}/entitlements shows
 *   the renewal's expiry (target p99 ≤ 1 s).
 * The simulator only records the renewals' notifications (its target is unset), so the bench sends
 * each body itself and times exactly the route. Sequential: these are latencies, not throughput.
 * Prints and saves bench/results/notifications-latest.json; no assertion anywhere.
 */
const USAGE = 'npm run bench:notifications -- [--samples N] [--quick]\n';

interface Report {
  startedAt: string;
  machine: ReturnType<typeof describeMachine>;
  samples: number;
  ingestMs: LatencySummary;
  toEntitlementMs: LatencySummary;
  targets: { ingestP99Ms: number; toEntitlementP99Ms: number };
  verdict: { ingest: 'MET' | 'MISSED'; toEntitlement: 'MET' | 'MISSED' };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { samples: { type: 'string' }, quick: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const samples = values.samples !== undefined ? Number(values.samples) : values.quick ? 10 : 100;
  if (!Number.isInteger(samples) || samples <= 0) throw new Error(`--samples must be a positive integer, got ${values.samples}`);
  const startedAt = new Date();
  const machine = describeMachine(loadAverage());
  const bench = await startBenchStack();
  const { stack } = bench;
  const json = { 'content-type': 'application/json' };
  const publisher = { ...json, 'x-publisher-id': '1', 'x-publisher-token': stack.localJson.publisherToken };
  const post = (path: string, body: unknown, headers: Record<string, string> = json) =>
    fetch(`${stack.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const ingest: number[] = [];
  const toEntitlement: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const customerId = 101 + (i % 3);
      stack.outbox.setTarget('apple', `${stack.url}/storekit2/notifications/1`);
      const created = (await (await post('/__simulator/apple/transactions', { productId: 'premium_monthly' })).json()) as { transactionId: string };
      const accepted = await post('/storekit2/purchases', { cleengCustomerId: customerId, transactionId: created.transactionId, ipAddress: '203.0.113.7' }, publisher);
      if (accepted.status !== 202) throw new Error(`register answered ${accepted.status}`);
      await stack.stepFunctions.drain();
      // The renewal's notification is recorded, not sent: the bench sends it and times the route.
      stack.outbox.setTarget('apple', undefined);
      const renewed = (await (await post(`/__simulator/apple/transactions/${created.transactionId}/renew`, { expiresInSeconds: 60 * 24 * 3600 })).json()) as { transactionId: string };
      const notification = stack.outbox.history('apple').filter((n) => n.type === 'DID_RENEW').at(-1);
      if (!notification) throw new Error('the simulator recorded no DID_RENEW');
      const t0 = performance.now();
      const answer = await post('/storekit2/notifications/1', notification.body);
      const t1 = performance.now();
      if (answer.status !== 200) throw new Error(`the notification route answered ${answer.status}`);
      ingest.push(t1 - t0);
      const jwt = stack.localJson.customerJwts[String(customerId)];
      for (;;) {
        const listed = (await (await fetch(`${stack.url}/customers/${customerId}/entitlements`, { headers: { 'x-publisher-id': '1', authorization: `Bearer ${jwt}` } })).json()) as {
          entitlements: Array<{ transactionId: string | null }>;
        };
        if (listed.entitlements.some((e) => e.transactionId === renewed.transactionId)) break;
        if (performance.now() - t0 > 30_000) throw new Error('the entitlement did not follow the renewal within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      toEntitlement.push(performance.now() - t0);
    }
  } finally {
    await bench.stop();
  }
  const round2 = (s: LatencySummary): LatencySummary => ({ count: s.count, p50: round(s.p50), p95: round(s.p95), p99: round(s.p99), mean: round(s.mean), max: round(s.max) });
  const ingestMs = round2(summarize(ingest));
  const toEntitlementMs = round2(summarize(toEntitlement));
  const targets = { ingestP99Ms: 100, toEntitlementP99Ms: 1000 };
  const report: Report = {
    startedAt: startedAt.toISOString(),
    machine,
    samples,
    ingestMs,
    toEntitlementMs,
    targets,
    verdict: { ingest: ingestMs.p99 <= targets.ingestP99Ms ? 'MET' : 'MISSED', toEntitlement: toEntitlementMs.p99 <= targets.toEntitlementP99Ms ? 'MET' : 'MISSED' },
  };
  const line = (name: string, s: LatencySummary, target: number) =>
    `${name.padEnd(34)} p50 ${s.p50.toFixed(1).padStart(7)} ms  p95 ${s.p95.toFixed(1).padStart(7)} ms  p99 ${s.p99.toFixed(1).padStart(7)} ms  max ${s.max.toFixed(1).padStart(7)} ms  (target p99 ≤ ${target} ms)`;
  process.stdout.write(
    [
      `App Store Server Notifications, ${samples} DID_RENEW on the local stack (${machine.cpus} cores)`,
      line('ingest answer (200)', ingestMs, targets.ingestP99Ms),
      line('notification → entitlement updated', toEntitlementMs, targets.toEntitlementP99Ms),
      '',
    ].join('\n'),
  );
  if (!values.quick) {
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'notifications-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`saved bench/results/notifications-latest.json\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
