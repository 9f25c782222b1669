import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBenchStack } from './local';
import { measureApplePushes, measureGooglePushes, NOTIFICATION_TARGETS, summarizePushes, type PushRun, type PushSummary } from './notification-pushes';
import { describeMachine, loadAverage, type LatencySummary } from './stats';

/**
 * `npm run bench:notifications`: store notifications on the local stack, with the instant
 * simulators, measured the same way for both stores (bench/notification-pushes.ts). Two numbers of
 * the issue "Entitlements that stay true", per store:
 * - ingest answer: Apple, POST /storekit2/notifications/1 with a genuine signed DID_RENEW body;
 *   Google, the Pub/Sub push of SUBSCRIPTION_RENEWED to POST /google-play/notifications/1 with its
 *   OIDC token; until 200 (target p99 ≤ 100 ms);
 * - notification → entitlement updated: from that POST until GET /customers/{id}/entitlements shows
 *   the renewal's expiry (target p99 ≤ 1 s).
 * Prints and saves bench/results/notifications-latest.json; no assertion anywhere.
 */
const USAGE = 'npm run bench:notifications -- [--samples N] [--quick]\n';

interface Report {
  startedAt: string;
  machine: ReturnType<typeof describeMachine>;
  samples: number;
  targets: typeof NOTIFICATION_TARGETS;
  apple: PushSummary;
  google: PushSummary;
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
  const loadAverageAtStart = loadAverage();
  const bench = await startBenchStack();
  let apple: PushRun;
  let google: PushRun;
  try {
    apple = await measureApplePushes(bench, samples);
    google = await measureGooglePushes(bench, samples);
  } finally {
    await bench.stop();
  }
  const machine = describeMachine(loadAverageAtStart);
  const report: Report = {
    startedAt: startedAt.toISOString(),
    machine,
    samples,
    targets: NOTIFICATION_TARGETS,
    apple: summarizePushes(apple, 'App Store Server Notification DID_RENEW, POST /storekit2/notifications/1'),
    google: summarizePushes(google, 'Pub/Sub push of SUBSCRIPTION_RENEWED with its OIDC token, POST /google-play/notifications/1'),
  };
  const line = (name: string, s: LatencySummary, target: number) =>
    `  ${name.padEnd(34)} p50 ${s.p50.toFixed(1).padStart(7)} ms  p95 ${s.p95.toFixed(1).padStart(7)} ms  p99 ${s.p99.toFixed(1).padStart(7)} ms  max ${s.max.toFixed(1).padStart(7)} ms  (target p99 ≤ ${target} ms)`;
  const block = (title: string, r: PushSummary) => [
    title,
    line('ingest answer (200)', r.ingestMs, NOTIFICATION_TARGETS.ingestP99Ms),
    line('notification → entitlement updated', r.toEntitlementMs, NOTIFICATION_TARGETS.toEntitlementP99Ms),
  ];
  process.stdout.write(
    [
      `Store notifications on the local stack, ${samples} renewals per store, one at a time (${machine.cpus} cores)`,
      ...block('App Store Server Notifications (DID_RENEW)', report.apple),
      ...block('Google Play Real-time Developer Notifications (Pub/Sub push, SUBSCRIPTION_RENEWED)', report.google),
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
