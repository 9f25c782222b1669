import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import asl from '../statemachines/purchase-sync.asl.json';
import { WORKFLOW_FUNCTIONS } from '../lib/catalog';
import type { LocalExecution } from '../local/step-functions';
import { startDynamoDbCountingProxy, type DynamoDbRequestRecord } from './dynamodb-proxy';
import { startBenchStack, type BenchStack } from './local';
import { countStoreCalls, type StoreCallCounter } from './store-calls';

/** DynamoDB requests of one part of a synchronization, per operation, with the capacity DynamoDB Local reported. */
export interface DynamoDbCounts {
  requests: Record<string, number>;
  totalRequests: number;
  /** On-demand request units by AWS's rules, computed by the proxy from the item sizes. */
  readUnits: number;
  writeUnits: number;
  /** Requests of an operation the proxy cannot size (counted, units 0). */
  unsizedRequests: number;
  /** Every item written, per synchronization (mean), by what was written: the per-item WRU table. */
  writes: ItemWrites[];
}

/** One kind of item write (e.g. `Put SYNC in a transaction`), per synchronization. */
export interface ItemWrites {
  /** `Put`, `Update`, `Delete`, `ConditionCheck`. */
  kind: string;
  transact: boolean;
  /** Item kind from its key prefixes (`SYNC`, `LOCK`, `PURCHASE`, `PUBLISHER/CUSTOMER`, …). */
  item: string;
  /** Writes of this kind per synchronization. */
  count: number;
  /** Mean billed size (the larger of before and after), bytes. */
  bytes: number;
  /** Write units per synchronization (count × units of each). */
  writeUnits: number;
}

/** What one synchronization costs in requests and transitions, counted (mean over the samples). */
export interface SynchronizationCounts {
  scenario: string;
  samples: number;
  /** True when every sample counted the same: the figures are exact, not averages. */
  identicalSamples: boolean;
  /** Step Functions bills each state entered and each retry as a transition. */
  transitions: { stateEntered: number; retries: number; total: number; path: string[] };
  /** Lambda invocations by function id (TaskStateEntered + retries of the Task states that name it). */
  lambdaInvocations: Record<string, number>;
  /** Task states that are service integrations, not Lambda (PublishResult → events:putEvents). */
  serviceIntegrations: Record<string, number>;
  eventBridgeEvents: number;
  /** App Store Server API calls the simulator answered (counted at the simulator's latency hook). */
  appleApiCalls: number;
  dynamodb: { accept: DynamoDbCounts; workflow: DynamoDbCounts; statusRead: DynamoDbCounts; total: DynamoDbCounts };
  /** Results the samples finalized with (should all be PURCHASE_SYNCHRONIZED). */
  results: Record<string, number>;
}

export interface CountsReport {
  method: string;
  scenarios: SynchronizationCounts[];
}

interface TaskStateDefinition {
  Type: string;
  Resource?: string;
}

/** Task state name → what it calls: a catalog function id, or the service integration ARN. */
export function taskTargets(): Map<string, { kind: 'lambda' | 'integration'; name: string }> {
  const targets = new Map<string, { kind: 'lambda' | 'integration'; name: string }>();
  for (const [stateName, state] of Object.entries(asl.States as Record<string, TaskStateDefinition>)) {
    if (state.Type !== 'Task' || state.Resource === undefined) continue;
    const placeholder = /^\$\{([A-Za-z0-9]+)\}$/.exec(state.Resource)?.[1];
    const fn = WORKFLOW_FUNCTIONS.find((f) => f.substitution === placeholder);
    // Service integrations by their action (`events:putEvents`), whatever the partition (`arn:${Partition}:states:::…` in the ASL).
    targets.set(stateName, fn ? { kind: 'lambda', name: fn.id } : { kind: 'integration', name: state.Resource.replace(/^arn:[^:]+:states:::/, '') });
  }
  return targets;
}

function emptyCounts(): DynamoDbCounts {
  return { requests: {}, totalRequests: 0, readUnits: 0, writeUnits: 0, unsizedRequests: 0, writes: [] };
}

const writeKey = (w: Pick<ItemWrites, 'kind' | 'item' | 'transact'>) => `${w.kind} ${w.item}${w.transact ? ' T' : ''}`;

/** Adds `from` (scaled) into `into`, merging by kind of write; bytes stay a count-weighted mean. */
function mergeWrites(into: ItemWrites[], from: ItemWrites[], factor = 1): void {
  for (const w of from) {
    const found = into.find((x) => writeKey(x) === writeKey(w));
    if (!found) {
      into.push({ ...w, count: w.count * factor, writeUnits: w.writeUnits * factor });
      continue;
    }
    const count = found.count + w.count * factor;
    found.bytes = count === 0 ? 0 : (found.bytes * found.count + w.bytes * w.count * factor) / count;
    found.count = count;
    found.writeUnits += w.writeUnits * factor;
  }
}

function countRecords(records: DynamoDbRequestRecord[]): DynamoDbCounts {
  const counts = emptyCounts();
  for (const record of records) {
    counts.requests[record.operation] = (counts.requests[record.operation] ?? 0) + 1;
    counts.totalRequests += 1;
    counts.readUnits += record.readUnits;
    counts.writeUnits += record.writeUnits;
    if (record.unsized) counts.unsizedRequests += 1;
    mergeWrites(
      counts.writes,
      record.items.map((i) => ({ kind: i.kind, transact: i.transact, item: i.item, count: 1, bytes: i.bytes, writeUnits: i.writeUnits })),
    );
  }
  return counts;
}

function addCounts(into: DynamoDbCounts, from: DynamoDbCounts): void {
  for (const [op, n] of Object.entries(from.requests)) into.requests[op] = (into.requests[op] ?? 0) + n;
  into.totalRequests += from.totalRequests;
  into.readUnits += from.readUnits;
  into.writeUnits += from.writeUnits;
  into.unsizedRequests += from.unsizedRequests;
  mergeWrites(into.writes, from.writes);
}

function scaleCounts(counts: DynamoDbCounts, factor: number): DynamoDbCounts {
  const requests: Record<string, number> = {};
  for (const [op, n] of Object.entries(counts.requests)) requests[op] = n * factor;
  return {
    requests,
    totalRequests: counts.totalRequests * factor,
    readUnits: counts.readUnits * factor,
    writeUnits: counts.writeUnits * factor,
    unsizedRequests: counts.unsizedRequests * factor,
    writes: counts.writes.map((w) => ({ ...w, count: w.count * factor, writeUnits: w.writeUnits * factor })),
  };
}

interface Sample {
  transitions: SynchronizationCounts['transitions'];
  lambdaInvocations: Record<string, number>;
  serviceIntegrations: Record<string, number>;
  eventBridgeEvents: number;
  appleApiCalls: number;
  accept: DynamoDbCounts;
  workflow: DynamoDbCounts;
  statusRead: DynamoDbCounts;
  result: string;
}

function historyCounts(execution: LocalExecution) {
  const targets = taskTargets();
  const entered = execution.history.filter((e) => e.type.endsWith('StateEntered'));
  const retried = execution.history.filter((e) => e.type.endsWith('Retried'));
  const lambdaInvocations: Record<string, number> = {};
  const serviceIntegrations: Record<string, number> = {};
  for (const event of [...execution.history.filter((e) => e.type === 'TaskStateEntered'), ...retried]) {
    const target = targets.get(String(event.details?.name ?? ''));
    if (!target) continue;
    const bucket = target.kind === 'lambda' ? lambdaInvocations : serviceIntegrations;
    bucket[target.name] = (bucket[target.name] ?? 0) + 1;
  }
  return {
    transitions: {
      stateEntered: entered.length,
      retries: retried.length,
      total: entered.length + retried.length,
      path: entered.map((e) => String(e.details?.name ?? '?')),
    },
    lambdaInvocations,
    serviceIntegrations,
  };
}

/**
 * One synchronization at a time, so every DynamoDB request in the window belongs to it. The accept
 * path awaits its reads and its TransactWriteItems before it calls StartExecution, and the
 * workflow's first request comes after the execution starts: requests that reached the proxy
 * before the execution's start time are the API's, the rest up to the end of the execution the
 * workflow's. One status read follows in its own window.
 */
async function measureOne(bench: BenchStack, storeCalls: StoreCallCounter, records: DynamoDbRequestRecord[], transactionId: string, customerId: number): Promise<Sample> {
  const { client, stack } = bench;
  const from = records.length;
  const appleFrom = storeCalls.calls.apple;
  const reply = await client.register(transactionId, customerId);
  if (reply.status !== 202 || reply.synchronizationId === undefined) throw new Error(`register answered ${reply.status}`);
  const id = reply.synchronizationId;
  const execution = await client.executionDone(id);
  const afterWorkflow = records.length;
  const status = await client.status(id);
  if (status.body.status !== 'finalized') throw new Error(`status after the execution: ${JSON.stringify(status.body)}`);
  const window = records.slice(from, afterWorkflow);
  return {
    ...historyCounts(execution),
    eventBridgeEvents: stack.bus.events.filter((event) => event.detail.synchronizationId === id).length,
    appleApiCalls: storeCalls.calls.apple - appleFrom,
    accept: countRecords(window.filter((r) => r.at < execution.startDate)),
    workflow: countRecords(window.filter((r) => r.at >= execution.startDate)),
    statusRead: countRecords(records.slice(afterWorkflow)),
    result: String(status.body.result),
  };
}

function aggregate(scenario: string, samples: Sample[]): SynchronizationCounts {
  const n = samples.length;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / n;
  const meanRecord = (records: Record<string, number>[]) => {
    const sums: Record<string, number> = {};
    for (const record of records) for (const [k, v] of Object.entries(record)) sums[k] = (sums[k] ?? 0) + v;
    return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n]));
  };
  const meanCounts = (list: DynamoDbCounts[]) => {
    const sum = emptyCounts();
    for (const counts of list) addCounts(sum, counts);
    return scaleCounts(sum, 1 / n);
  };
  const accept = meanCounts(samples.map((s) => s.accept));
  const workflow = meanCounts(samples.map((s) => s.workflow));
  const statusRead = meanCounts(samples.map((s) => s.statusRead));
  const total = emptyCounts();
  for (const part of [accept, workflow, statusRead]) addCounts(total, part);
  const fingerprint = (s: Sample) =>
    JSON.stringify([s.transitions, s.lambdaInvocations, s.serviceIntegrations, s.eventBridgeEvents, s.appleApiCalls, s.accept, s.workflow, s.statusRead]);
  const results: Record<string, number> = {};
  for (const s of samples) results[s.result] = (results[s.result] ?? 0) + 1;
  return {
    scenario,
    samples: n,
    identicalSamples: samples.every((s) => fingerprint(s) === fingerprint(samples[0] ?? s)),
    transitions: {
      stateEntered: mean(samples.map((s) => s.transitions.stateEntered)),
      retries: mean(samples.map((s) => s.transitions.retries)),
      total: mean(samples.map((s) => s.transitions.total)),
      path: samples[0]?.transitions.path ?? [],
    },
    lambdaInvocations: meanRecord(samples.map((s) => s.lambdaInvocations)),
    serviceIntegrations: meanRecord(samples.map((s) => s.serviceIntegrations)),
    eventBridgeEvents: mean(samples.map((s) => s.eventBridgeEvents)),
    appleApiCalls: mean(samples.map((s) => s.appleApiCalls)),
    dynamodb: { accept, workflow, statusRead, total },
    results,
  };
}

/**
 * Runs in its own process (see {@link measureCounts}): the handlers build their DynamoDB client on
 * first use and keep it, so only a fresh process can put the counting proxy in front of them
 * without also slowing down the timed phases.
 */
async function runCountsChild(options: { samples: number; retrySamples: number }): Promise<CountsReport> {
  // Short Wait and Retry intervals only matter for the store-outage scenario; the happy path has none.
  const bench = await startBenchStack({ fastWaitsMs: 20 });
  const proxy = await startDynamoDbCountingProxy(bench.stack.dynamodb.endpoint);
  const storeCalls = countStoreCalls(bench.stack.faults);
  // The parent's timeout: stop DynamoDB Local (our child process) rather than orphan it.
  process.once('SIGTERM', () => void bench.stop().finally(() => process.exit(143)));
  try {
    // Before the first handler call: every handler's client resolves its endpoint on first use.
    process.env.AWS_ENDPOINT_URL_DYNAMODB = proxy.endpoint;
    const transactions = await bench.client.createTransactions(3 + options.samples + options.retrySamples);
    let next = 0;
    const take = () => {
      const id = transactions[next];
      next += 1;
      if (id === undefined) throw new Error('out of transactions');
      return id;
    };
    // Warm-up, not counted: first calls load publisher secrets and keys.
    for (let i = 0; i < 3; i++) await measureOne(bench, storeCalls, proxy.records, take(), bench.client.customerFor(i));
    if (proxy.records.length === 0) throw new Error('the counting proxy saw no DynamoDB request: the handlers bypass it');

    const happy: Sample[] = [];
    for (let i = 0; i < options.samples; i++) happy.push(await measureOne(bench, storeCalls, proxy.records, take(), bench.client.customerFor(i)));
    const scenarios = [aggregate('happy path (instant simulator)', happy)];

    if (options.retrySamples > 0) {
      const retried: Sample[] = [];
      for (let i = 0; i < options.retrySamples; i++) {
        // The next Apple call answers 503: VerifyApplePurchase → MarkRetrying → Wait → VerifyStore → VerifyApplePurchase.
        bench.stack.faults.set('apple', 503, 1);
        retried.push(await measureOne(bench, storeCalls, proxy.records, take(), bench.client.customerFor(100 + i)));
      }
      bench.stack.faults.clear();
      scenarios.push(aggregate('one Apple 503, then recovery', retried));
    }
    return {
      method:
        'A separate process runs one synchronization at a time with AWS_ENDPOINT_URL_DYNAMODB pointing, before the handlers\' first call, ' +
        'at a node:http proxy in front of DynamoDB Local that records each X-Amz-Target operation and sizes its request units by AWS\'s rules; ' +
        'requests before the execution\'s start time are the accept path\'s, the rest until the execution ends the workflow\'s, then one status read. ' +
        'Transitions and Lambda invocations from the execution history (StateEntered and Retried events, Task states mapped to functions through their ASL Resource), events from the local bus.',
      scenarios,
    };
  } finally {
    await proxy.close();
    await bench.stop();
  }
}

/**
 * Spawns this file in a child Node process (same tsx loader) and reads its JSON. Bounded: the
 * child is killed after `timeoutMs`.
 */
export async function measureCounts(options: { samples: number; retrySamples: number; timeoutMs?: number }): Promise<CountsReport> {
  const dir = mkdtempSync(join(tmpdir(), 'iap-sync-bench-counts-'));
  const outFile = join(dir, 'counts.json');
  try {
    const child = spawn(
      process.execPath,
      [...process.execArgv, __filename, '--child', outFile, String(options.samples), String(options.retrySamples)],
      { stdio: ['ignore', 'ignore', 'pipe'], env: process.env },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const timers = [
      setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 180_000),
      setTimeout(() => child.kill('SIGKILL'), (options.timeoutMs ?? 180_000) + 15_000),
    ];
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    for (const timer of timers) clearTimeout(timer);
    if (code !== 0) throw new Error(`counting process exited with ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
    return JSON.parse(readFileSync(outFile, 'utf8')) as CountsReport;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module && process.argv[2] === '--child') {
  const [outFile, samples, retrySamples] = process.argv.slice(3);
  runCountsChild({ samples: Number(samples ?? 20), retrySamples: Number(retrySamples ?? 0) })
    .then((report) => {
      writeFileSync(String(outFile), JSON.stringify(report));
      process.exit(0);
    })
    .catch((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    });
}
