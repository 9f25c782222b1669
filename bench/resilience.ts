import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeMachine, loadAverage } from './stats';
import { parseArgs } from 'node:util';
import { bola } from './resilience/bola';
import { crashRestart } from './resilience/crash';
import { fuzz } from './resilience/fuzz';
import { lifecycle, lifecycleGoogle } from './resilience/lifecycle';
import { storeOutageExhausted, storeOutageRecovers } from './resilience/outage';
import { buildReport, formatReport, saveReport } from './resilience/report';
import { cleanups, scenarioWorkflowType, type Scenario, type ScenarioResult } from './resilience/scenario';
import { duplicateStorm } from './resilience/storm';
import { webhookReceiverDownThenUp, webhookReceiverGone } from './resilience/webhooks';

const USAGE = `npm run resilience -- [options]   (or: npx tsx bench/resilience.ts [options])

Scenarios against the local stack, each ending in a reconciliation of what was accepted against
what was finalized, published and delivered (lost / duplicated / stuck must all be 0).

  --quick              small counts (about a minute); prints, saves nothing
  --only a,b           run only these scenarios (prints, saves nothing unless --save)
  --save               save bench/results/resilience-*.json even with --quick or --only
  --seed N             the lifecycle scenarios' PRNG seed (default printed in their report; env LIFECYCLE_SEED)
  --workflow-type T    EXPRESS (default, as cdk.json deploys) or STANDARD: the same scenarios on either
  --help

Scenarios: ${'%SCENARIOS%'}
Exit code 1 when any scenario fails.
`;

/** Each scenario runs in its own process: handlers build their clients and read their configuration once per process. */
const SCENARIOS: Record<string, { run: Scenario; timeoutMs: number }> = {
  'duplicate-storm': { run: duplicateStorm, timeoutMs: 300_000 },
  'outage-recovers': { run: storeOutageRecovers, timeoutMs: 240_000 },
  'outage-exhausted': { run: storeOutageExhausted, timeoutMs: 240_000 },
  'webhook-down-up': { run: webhookReceiverDownThenUp, timeoutMs: 240_000 },
  'webhook-410': { run: webhookReceiverGone, timeoutMs: 180_000 },
  'crash-restart': { run: crashRestart, timeoutMs: 300_000 },
  fuzz: { run: fuzz, timeoutMs: 420_000 },
  bola: { run: bola, timeoutMs: 180_000 },
  lifecycle: { run: lifecycle, timeoutMs: 900_000 },
  'lifecycle-google': { run: lifecycleGoogle, timeoutMs: 900_000 },
};

const elapsed = (t0: number) => Math.round((performance.now() - t0) / 1000);

/** The child side: runs one scenario and writes its result as JSON. */
async function runChild(name: string, outFile: string, quick: boolean): Promise<void> {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`unknown scenario ${name}`);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.once('SIGTERM', () => {
    void Promise.allSettled([...cleanups].map((stop) => stop())).finally(() => process.exit(143));
  });
  const t0 = performance.now();
  const log = (line: string) => process.stderr.write(`[${name} ${String(elapsed(t0)).padStart(3)} s] ${line}\n`);
  let result: ScenarioResult;
  try {
    const out = await scenario.run({ quick, log });
    result = { name, ...out, durationSeconds: elapsed(t0) };
  } catch (error) {
    log(`runner error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    result = { name, title: name, requests: 0, accepted: 0, reconciliation: null, checks: [], details: {}, durationSeconds: elapsed(t0), error: String(error) };
  }
  writeFileSync(outFile, JSON.stringify(result));
}

/** The parent side: one child process per scenario, bounded by its timeout (SIGTERM, then SIGKILL). */
async function runInChild(name: string, quick: boolean, timeoutMs: number): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), 'iap-sync-resilience-'));
  const outFile = join(dir, 'result.json');
  const t0 = performance.now();
  try {
    const child = spawn(process.execPath, [...process.execArgv, __filename, '--child', name, '--out', outFile, ...(quick ? ['--quick'] : [])], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: process.env,
    });
    const timers = [setTimeout(() => child.kill('SIGTERM'), timeoutMs), setTimeout(() => child.kill('SIGKILL'), timeoutMs + 20_000)];
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    for (const timer of timers) clearTimeout(timer);
    try {
      return JSON.parse(readFileSync(outFile, 'utf8')) as ScenarioResult;
    } catch {
      const error = code === 143 || code === null ? `timed out after ${timeoutMs / 1000} s` : `child exited with ${code} without a result`;
      return { name, title: name, requests: 0, accepted: 0, reconciliation: null, checks: [], details: {}, durationSeconds: elapsed(t0), error };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      save: { type: 'boolean', default: false },
      seed: { type: 'string' },
      'workflow-type': { type: 'string' },
      child: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick === true;
  if (values.seed !== undefined) {
    if (!/^\d{1,10}$/.test(values.seed)) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
    // The children inherit the environment: the lifecycle scenario reads its seed from there.
    process.env.LIFECYCLE_SEED = values.seed;
  }
  if (values['workflow-type'] !== undefined) {
    // The children inherit the environment: startScenarioStack and the crash scenario's `npm start` read it.
    process.env.RESILIENCE_WORKFLOW_TYPE = values['workflow-type'].toUpperCase();
  }
  const workflowType = scenarioWorkflowType();
  if (values.child !== undefined) return runChild(values.child, String(values.out), quick);
  if (values.help) {
    process.stdout.write(USAGE.replace('%SCENARIOS%', Object.keys(SCENARIOS).join(', ')));
    return;
  }
  const names = values.only ? values.only.split(',').map((n) => n.trim()).filter(Boolean) : Object.keys(SCENARIOS);
  const unknown = names.filter((n) => !SCENARIOS[n]);
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);

  const startedAt = new Date();
  const loadAverageAtStart = loadAverage();
  const t0 = performance.now();
  const results: ScenarioResult[] = [];
  for (const name of names) {
    const scenario = SCENARIOS[name];
    if (!scenario) continue;
    process.stderr.write(`[resilience ${String(elapsed(t0)).padStart(3)} s] ${name}${quick ? ' (quick)' : ''} on ${workflowType}\n`);
    results.push(await runInChild(name, quick, scenario.timeoutMs));
  }
  const report = buildReport(
    {
      startedAt: startedAt.toISOString(),
      durationSeconds: elapsed(t0),
      quick,
      workflowType,
      machine: describeMachine(loadAverageAtStart),
    },
    results,
  );
  process.stdout.write(`${formatReport(report)}\n`);
  if ((quick || values.only) && !values.save) {
    process.stdout.write('\n--quick/--only: nothing saved (add --save to keep it).\n');
  } else {
    const files = saveReport(report, join(__dirname, 'results'));
    process.stdout.write(`\nSaved ${files.map((f) => f.replace(`${join(__dirname, '..')}/`, '')).join(' and ')}\n`);
  }
  if (report.verdict !== 'PASS') process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`resilience failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 2;
});
