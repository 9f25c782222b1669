import { describeMachine, loadAverage } from './stats';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measureAcceptPath } from './accept-path';
import { measureBundles } from './bundles';
import { costModel, reconciledPurchaseCostModel } from './cost-model';
import { measureCounts, taskTargets } from './counts';
import { measureLatency, measureSustained } from './end-to-end';
import { startBenchStack, type BenchStack } from './local';
import { GOOGLE_PUSH_ACTIONS, measureApplePushes, measureGooglePushes, pushCost, summarizePushes } from './notification-pushes';
import { evaluateTargets, formatReport, saveReport, type BenchReport } from './report';

const USAGE = `npm run bench -- [options]   (or: npx tsx bench/run.ts [options])

  --sustain-seconds N      length of the sustained-throughput window (default 20; the issue asks 60)
  --sustain-concurrency N  closed-loop clients in that window (default 16)
  --quick                  small counts to check the script works; prints, saves nothing
  --help
`;

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${value}`);
  return n;
}

/** Task state medians → per Lambda function (a function behind several states keeps its happy-path state's time). */
function functionDurations(taskMs: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [state, target] of taskTargets()) {
    const ms = taskMs[state];
    if (target.kind === 'lambda' && ms !== undefined && out[target.name] === undefined) out[target.name] = ms;
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'sustain-seconds': { type: 'string' },
      'sustain-concurrency': { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const quick = values.quick === true;
  const options = {
    quick,
    acceptLevels: quick
      ? [
          { concurrency: 1, requests: 20 },
          { concurrency: 16, requests: 60 },
          { concurrency: 64, requests: 120 },
        ]
      : [
          { concurrency: 1, requests: 200 },
          { concurrency: 16, requests: 400 },
          { concurrency: 64, requests: 800 },
        ],
    warmup: quick ? 5 : 30,
    latencySamples: quick ? 20 : 150,
    slowAppleSamples: quick ? 10 : 100,
    appleLatencyMs: 100,
    sustainSeconds: positiveInt(values['sustain-seconds'], quick ? 5 : 20, '--sustain-seconds'),
    sustainConcurrency: positiveInt(values['sustain-concurrency'], 16, '--sustain-concurrency'),
    countSamples: quick ? 5 : 20,
    countRetrySamples: quick ? 2 : 5,
    coldInitRuns: quick ? 2 : 10,
    // One per sample, one at a time; Google's take the Play simulator's control routes round robin (5 each at 40).
    notificationSamples: quick ? 8 : 40,
  };

  const startedAt = new Date();
  const loadAverageAtStart = loadAverage();
  const t0 = performance.now();
  const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);

  // Bundles and counts first, before the main stack exists: fresh processes on a quiet machine.
  log(`building bundles and timing ${options.coldInitRuns} cold starts each`);
  const bundles = await measureBundles(options.coldInitRuns);
  log(`counting ${options.countSamples} synchronizations (+${options.countRetrySamples} with one Apple 503) in a separate process`);
  const counts = await measureCounts({ samples: options.countSamples, retrySamples: options.countRetrySamples });

  log('starting the local stack (DynamoDB Local in memory)');
  let bench: BenchStack | undefined = await startBenchStack();
  const stopOnSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the local stack`);
    void (bench?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    log(`accept path at concurrency ${options.acceptLevels.map((l) => `${l.concurrency}×${l.requests}`).join(', ')} (+ direct baseline)`);
    const acceptPath = await measureAcceptPath(bench, { levels: options.acceptLevels, warmup: options.warmup });
    log(`register → finalized, ${options.latencySamples} one at a time, instant simulator`);
    const instant = await measureLatency(bench, { samples: options.latencySamples, appleLatencyMs: 0, warmup: 5 });
    log(`register → finalized, ${options.slowAppleSamples} one at a time, Apple latency ${options.appleLatencyMs} ms`);
    const slowApple = await measureLatency(bench, { samples: options.slowAppleSamples, appleLatencyMs: options.appleLatencyMs, warmup: 2 });
    log(`sustained: ${options.sustainConcurrency} clients for ${options.sustainSeconds} s`);
    const sustained = await measureSustained(bench, {
      seconds: options.sustainSeconds,
      concurrency: options.sustainConcurrency,
      // Generous for this machine (well under 40 finalized/s); the clients make more if it runs out (reported).
      poolSize: options.sustainSeconds * 40,
    });
    log(`store notifications: ${options.notificationSamples} App Store DID_RENEW, ${options.notificationSamples} Google pushes over ${GOOGLE_PUSH_ACTIONS.join(', ')}`);
    const applePushes = await measureApplePushes(bench, options.notificationSamples);
    const googlePushes = await measureGooglePushes(bench, options.notificationSamples, GOOGLE_PUSH_ACTIONS);
    await bench.stop();
    bench = undefined;
    const notifications = {
      apple: {
        latency: summarizePushes(applePushes, 'App Store Server Notification DID_RENEW, POST /storekit2/notifications/1'),
        cost: pushCost(applePushes, 'store notifications phase, instant simulator, one at a time'),
      },
      google: {
        latency: summarizePushes(googlePushes, `Pub/Sub pushes with their OIDC token, POST /google-play/notifications/1, one per control route (${GOOGLE_PUSH_ACTIONS.join(', ')})`),
        cost: pushCost(googlePushes, 'store notifications phase, instant simulator, one at a time'),
      },
    };

    // What the scheduled reconciliation costs per purchase it re-reads: the same refreshes, without the HTTP route.
    const reconciliation = {
      apple: reconciledPurchaseCostModel(notifications.apple.cost),
      google: reconciledPurchaseCostModel(notifications.google.cost),
    };

    const happy = counts.scenarios[0];
    if (!happy) throw new Error('no counted scenario');
    const cost = costModel(happy, {
      source: `medians of the "Apple latency ${slowApple.appleLatencyMs} ms" run (closer to a real store than the instant simulator): register and status round trips for the API functions, Task state times for the workflow functions, execution time for EXPRESS`,
      registerMs: slowApple.medians.registerRoundTripMs,
      statusMs: slowApple.medians.statusRoundTripMs,
      workflowFunctionMs: functionDurations(slowApple.medians.taskMs),
      executionMs: slowApple.medians.executionMs,
    });
    const partial: Omit<BenchReport, 'targets'> = {
      startedAt: startedAt.toISOString(),
      durationSeconds: Math.round((performance.now() - t0) / 1000),
      machine: describeMachine(loadAverageAtStart),
      options: { ...options, sustainSecondsAskedByIssue: 60 },
      acceptPath,
      endToEnd: { instant, slowApple, sustained },
      counts,
      bundles,
      cost,
      notifications,
      reconciliation,
    };
    const report: BenchReport = { ...partial, targets: evaluateTargets(partial) };
    process.stdout.write(`${formatReport(report)}\n`);
    if (quick) {
      process.stdout.write('\n--quick: nothing saved.\n');
    } else {
      const files = saveReport(report, join(__dirname, 'results'));
      process.stdout.write(`\nSaved ${files.map((f) => f.replace(`${join(__dirname, '..')}/`, '')).join(' and ')}\n`);
    }
  } finally {
    await bench?.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
