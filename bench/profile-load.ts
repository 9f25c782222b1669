import { spawn } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { ClientRequest, IncomingMessage, Server } from 'node:http';
import { Session } from 'node:inspector/promises';
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { TABLE_DEFINITION } from '../lambdas/platform/dynamodb-table';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/dynamodb-local';
import { LOCAL_TABLE_NAME } from '../local/stack';
import { roundSummary } from './accept-path';
import { measureLatency, measureSustained, phaseNames, type PhaseBreakdown } from './end-to-end';
import { startBenchStack, type BenchStack, type ProcessFigures } from './local';
import { loadAverage, round, summarize, type LatencySummary } from './stats';

const USAGE = `npx tsx bench/profile-load.ts [options]

Where register → finalized time goes, one client at a time and under closed-loop load (issue 16):
per-phase times from the execution history, every HTTP request the process makes or serves (DynamoDB
Local, the Step Functions / EventBridge stand-ins, the store simulator, the API) timed through
node:diagnostics_channel, a GetItem every 100 ms from another process straight to DynamoDB Local,
event-loop delay and utilisation, CPU of this process, of DynamoDB Local's JVM and of the whole
machine (other users' processes share it).

  --samples N         one-at-a-time synchronizations (default 100, after 20 warm-up)
  --seconds N         sustained window (default 20)
  --concurrency N     closed-loop clients in that window (default 16)
  --cpu-profile FILE  also profile this process's CPU during the sustained window (V8 sampling
                      profiler), write FILE (.cpuprofile, opens in Chrome DevTools) and print where
                      the time went by package and by function
  --json FILE         save every figure as JSON
  --help
`;

/** One HTTP exchange seen by this process, as a client or as a server. */
interface HttpRecord {
  side: 'client' | 'server';
  /** `dynamodb GetItem`, `sfn StartExecution`, `api POST /storekit2/purchases`, `simulator GET …`. */
  label: string;
  ms: number;
}

const PROCESS_ROOT = resolve(__dirname, '..');

/** Path segments that are ids (digits, UUIDs, long tokens) become `{id}`, so requests group by route. */
function routeOf(path: string): string {
  return (path.split('?')[0] ?? '')
    .split('/')
    .map((segment) => (/^[0-9]+$|^[0-9a-f-]{32,36}$|^[\w-]{40,}$/i.test(segment) ? '{id}' : segment))
    .join('/');
}

/**
 * Times every HTTP request of the process through node:diagnostics_channel (node:http for the AWS
 * SDK clients and the servers, undici for global fetch: the bench clients and the Apple client),
 * labelled by the port it goes to. Records only while `recording`.
 */
class HttpTimer {
  recording = false;
  readonly records: HttpRecord[] = [];
  private readonly started = new WeakMap<object, number>();

  constructor(private readonly ports: { dynamodb: number; aws: number; api: number }) {
    subscribe('http.client.request.start', (message) => {
      this.started.set((message as { request: ClientRequest }).request, performance.now());
    });
    subscribe('http.client.response.finish', (message) => {
      const { request } = message as { request: ClientRequest };
      const t0 = this.started.get(request);
      if (t0 === undefined || !this.recording) return;
      const target = String(request.getHeader('x-amz-target') ?? '').split('.')[1] ?? '';
      const port = Number(String(request.getHeader('host') ?? '').split(':')[1]);
      const label = port === this.ports.dynamodb ? `dynamodb ${target}` : port === this.ports.aws ? `aws ${target}` : `http ${request.method} ${routeOf(request.path)}`;
      this.records.push({ side: 'client', label, ms: performance.now() - t0 });
    });
    subscribe('undici:request:create', (message) => {
      this.started.set((message as { request: object }).request, performance.now());
    });
    subscribe('undici:request:trailers', (message) => {
      const { request } = message as { request: { origin: string; method: string; path: string } };
      const t0 = this.started.get(request);
      if (t0 === undefined || !this.recording) return;
      const port = Number(new URL(request.origin).port);
      const where = port === this.ports.api ? (request.path.startsWith('/__simulator/') ? 'simulator' : 'api') : `port ${port}`;
      this.records.push({ side: 'client', label: `fetch → ${where} ${request.method} ${routeOf(request.path)}`, ms: performance.now() - t0 });
    });
    subscribe('http.server.request.start', (message) => {
      this.started.set((message as { request: IncomingMessage }).request, performance.now());
    });
    subscribe('http.server.response.finish', (message) => {
      const { request, server } = message as { request: IncomingMessage; server: Server };
      const t0 = this.started.get(request);
      if (t0 === undefined || !this.recording) return;
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const target = String(request.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const label = port === this.ports.aws ? `aws stand-in ${target}` : `${request.method} ${routeOf(request.url ?? '')}`;
      this.records.push({ side: 'server', label, ms: performance.now() - t0 });
    });
  }

  take(): { side: string; label: string; count: number; ms: LatencySummary }[] {
    const groups = new Map<string, HttpRecord[]>();
    for (const record of this.records.splice(0)) {
      const key = `${record.side}\t${record.label}`;
      const list = groups.get(key) ?? [];
      list.push(record);
      groups.set(key, list);
    }
    return [...groups]
      .map(([key, list]) => {
        const [side = '', label = ''] = key.split('\t');
        return { side, label, count: list.length, ms: roundSummary(summarize(list.map((r) => r.ms))) };
      })
      .sort((a, b) => a.side.localeCompare(b.side) || b.count - a.count || a.label.localeCompare(b.label));
  }
}

/**
 * A GetItem every 100 ms from a separate Node process, straight to DynamoDB Local: how fast
 * DynamoDB Local itself answers while the load runs, without this process's event loop in the way.
 */
function startDynamoDbProbe(endpoint: string, tableName: string): { stop(): Promise<number[]> } {
  const script = `
    const { DynamoDBClient, GetItemCommand } = require('@aws-sdk/client-dynamodb');
    const client = new DynamoDBClient({ endpoint: process.argv[1], region: '${LOCAL_REGION}', credentials: ${JSON.stringify(LOCAL_CREDENTIALS)} });
    const ms = [];
    let stopping = false;
    process.on('SIGTERM', () => (stopping = true));
    (async () => {
      while (!stopping) {
        const t0 = performance.now();
        await client.send(new GetItemCommand({ TableName: process.argv[2], Key: { ${TABLE_DEFINITION.partitionKey.name}: { S: 'PROBE' }, ${TABLE_DEFINITION.sortKey.name}: { S: 'PROBE' } } }));
        ms.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 100));
      }
      process.stdout.write(JSON.stringify(ms));
      client.destroy();
    })();`;
  const child = spawn(process.execPath, ['-e', script, endpoint, tableName], { cwd: PROCESS_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      // Its first requests open the connection and warm the client: not DynamoDB Local's answer time.
      return ((JSON.parse(out || '[]') as number[]) ?? []).slice(5);
    },
  };
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Where a profiled function lives: a package under node_modules, a folder of this project, or V8/Node itself. */
function ownerOf(url: string): string {
  if (url === '') return '(V8 / native)';
  if (url.startsWith('node:')) return 'node: (built-ins)';
  const path = url.replace(/^file:\/\//, '');
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (modules?.[1]) return modules[1];
  const own = relative(PROCESS_ROOT, path);
  if (!own.startsWith('..')) return own.split('/').slice(0, own.startsWith('lambdas/') ? 3 : 2).join('/');
  return path;
}

/**
 * Where the sampled CPU time went. `byOwner`: each sample goes to the nearest frame of its stack
 * (the sampled function or a caller) that belongs to a package or to this project, so native work
 * (crypto, socket writes, JSON) counts for the code that asked for it; the AWS SDK's packages
 * (@aws-sdk/*, @smithy/*) are one owner. `selfByFunction`: the sampled functions themselves.
 */
function summarizeCpuProfile(profile: { nodes: CpuProfileNode[]; samples?: number[]; startTime: number; endTime: number }) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const samples = profile.samples?.length ?? 0;
  const perSample = samples > 0 ? (profile.endTime - profile.startTime) / 1000 / samples : 0;
  const byOwner = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms);
  let all = 0;
  for (const node of profile.nodes) {
    const self = (node.hitCount ?? 0) * perSample;
    if (self === 0) continue;
    all += self;
    const { functionName, url, lineNumber } = node.callFrame;
    add(selfByFunction, `${functionName || '(anonymous)'}${url ? ` ${relative(PROCESS_ROOT, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : ''}`, self);
    let owner = ['(garbage collector)', '(idle)', '(program)'].includes(functionName) ? functionName : undefined;
    for (let frame: CpuProfileNode | undefined = node; owner === undefined && frame; frame = byId.get(parentOf.get(frame.id) ?? -1)) {
      const candidate = ownerOf(frame.callFrame.url);
      if (!candidate.startsWith('(') && !candidate.startsWith('node:')) owner = /^@(aws-sdk|smithy)\//.test(candidate) ? 'AWS SDK v3 (@aws-sdk/*, @smithy/*)' : candidate;
    }
    add(byOwner, owner ?? `Node/V8 with no package caller (${functionName || 'anonymous'})`, self);
  }
  const top = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms: round(ms, 0), percent: round((100 * ms) / Math.max(1, all), 1) }));
  return { profiledMs: round(all, 0), byOwner: top(byOwner, 30), selfByFunction: top(selfByFunction, 30) };
}

function phaseTable(single: PhaseBreakdown, loaded: PhaseBreakdown, concurrency: number): string {
  const names = phaseNames(single, loaded);
  const cell = (s: LatencySummary | undefined, key: 'p50' | 'p99') => (s ? s[key].toFixed(1) : '-');
  const rows = names.map((name) => [
    name,
    cell(single.phases[name], 'p50'),
    cell(single.phases[name], 'p99'),
    cell(loaded.phases[name], 'p50'),
    cell(loaded.phases[name], 'p99'),
    (loaded.slowestOnePercentMeans[name] ?? Number.NaN).toFixed(1),
  ]);
  const header = ['phase (ms)', '1 client p50', 'p99', `${concurrency} clients p50`, 'p99', 'slowest 1 % mean'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell2, c) => (c === 0 ? cell2.padEnd(widths[c] ?? 0) : cell2.padStart(widths[c] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

function httpTable(single: ReturnType<HttpTimer['take']>, loaded: ReturnType<HttpTimer['take']>, singleSyncs: number, loadedSyncs: number): string {
  const keys = [...new Set([...single, ...loaded].map((g) => `${g.side}\t${g.label}`))];
  const find = (list: ReturnType<HttpTimer['take']>, key: string) => list.find((g) => `${g.side}\t${g.label}` === key);
  const rows = keys.map((key) => {
    const a = find(single, key);
    const b = find(loaded, key);
    return [
      key.replace('\t', ' '),
      a ? (a.count / Math.max(1, singleSyncs)).toFixed(2) : '-',
      a ? a.ms.p50.toFixed(1) : '-',
      a ? a.ms.p99.toFixed(1) : '-',
      b ? (b.count / Math.max(1, loadedSyncs)).toFixed(2) : '-',
      b ? b.ms.p50.toFixed(1) : '-',
      b ? b.ms.p99.toFixed(1) : '-',
    ];
  });
  const header = ['HTTP request (ms)', 'per sync (1)', 'p50', 'p99', 'per sync (load)', 'p50', 'p99'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      samples: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '16' },
      'cpu-profile': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const positive = (value: string | undefined, name: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${value}`);
    return n;
  };
  const samples = positive(values.samples, 'samples');
  const seconds = positive(values.seconds, 'seconds');
  const concurrency = positive(values.concurrency, 'concurrency');
  const log = (line: string) => process.stderr.write(`[profile] ${line}\n`);
  const loadAtStart = loadAverage();
  log(`load average ${loadAtStart.join(' / ')}; starting the bench stack`);
  let bench: BenchStack | undefined = await startBenchStack();
  const stopOnSignal = () => void (bench?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    const { stack } = bench;
    const http = new HttpTimer({ dynamodb: Number(new URL(stack.dynamodb.endpoint).port), aws: Number(new URL(stack.awsUrl).port), api: stack.port });

    let probe: ReturnType<typeof startDynamoDbProbe> | undefined;
    log(`one at a time: 20 warm-up + ${samples}`);
    await measureLatency(bench, { samples: 20, appleLatencyMs: 0, warmup: 0 });
    const single = await measureLatency(bench, {
      samples,
      appleLatencyMs: 0,
      warmup: 0,
      onTimingStart: () => {
        http.recording = true;
        probe = startDynamoDbProbe(stack.dynamodb.endpoint, LOCAL_TABLE_NAME);
        return Promise.resolve();
      },
    });
    const singleProbe = roundSummary(summarize((await probe?.stop()) ?? []));
    http.recording = false;
    const singleHttp = http.take();

    log(`sustained: ${concurrency} clients for ${seconds} s`);
    const session = values['cpu-profile'] ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 500 });
    }
    const loaded = await measureSustained(bench, {
      seconds,
      concurrency,
      poolSize: seconds * 40,
      onTimingStart: async () => {
        http.recording = true;
        probe = startDynamoDbProbe(stack.dynamodb.endpoint, LOCAL_TABLE_NAME);
        if (session) await session.post('Profiler.start');
      },
    });
    const loadedProbe = roundSummary(summarize((await probe?.stop()) ?? []));
    http.recording = false;
    const loadedHttp = http.take();
    const cpu = session ? ((await session.post('Profiler.stop')) as { profile: Parameters<typeof summarizeCpuProfile>[0] }).profile : undefined;
    session?.disconnect();

    const out: string[] = [];
    out.push(`load average at start ${loadAtStart.join(' / ')}, after the single-client run ${single.process.loadAverageAtEnd.join(' / ')}, after the sustained run ${loaded.process.loadAverageAtEnd.join(' / ')}`);
    out.push(
      `register → finalized: 1 client p50 ${single.registerToFinalizedMs.p50} p95 ${single.registerToFinalizedMs.p95} p99 ${single.registerToFinalizedMs.p99} ms (${single.samples}); ` +
        `${concurrency} clients p50 ${loaded.registerToFinalizedMs.p50} p95 ${loaded.registerToFinalizedMs.p95} p99 ${loaded.registerToFinalizedMs.p99} ms, ` +
        `${loaded.finalizedPerSecond} finalized/s (${loaded.registerToFinalizedMs.count} measured, non-202 ${JSON.stringify(loaded.nonAccepted)})`,
    );
    out.push('', phaseTable(single.phases, loaded.phases, concurrency));
    out.push('', httpTable(singleHttp, loadedHttp, single.samples, loaded.registerToFinalizedMs.count));
    out.push(
      `DynamoDB Local answering a probe GetItem every 100 ms from another process (no event loop of ours in the way): ` +
        `1 client p50 ${singleProbe.p50} p99 ${singleProbe.p99} ms (${singleProbe.count}), ${concurrency} clients p50 ${loadedProbe.p50} p99 ${loadedProbe.p99} ms (${loadedProbe.count})`,
    );
    const proc = (label: string, p: ProcessFigures) =>
      `${label}: node ${p.nodeCpuPercent} % of a core, DynamoDB Local JVM ${p.javaCpuPercent} %, others ${p.othersCpuPercent} %, machine busy ${p.machineBusyPercent} % of ${cpus().length} cores; event loop busy ${Math.round(p.eventLoopUtilization * 100)} %, delay p50 ${p.eventLoopDelayMs.p50} p99 ${p.eventLoopDelayMs.p99} max ${p.eventLoopDelayMs.max} ms (${p.wallSeconds} s)`;
    out.push('', proc('1 client', single.process), proc(`${concurrency} clients`, loaded.process));
    const perSync = (p: ProcessFigures, syncs: number) =>
      `node ${round((p.nodeCpuSeconds * 1000) / Math.max(1, syncs), 1)} ms, DynamoDB Local JVM ${round((p.javaCpuSeconds * 1000) / Math.max(1, syncs), 1)} ms`;
    out.push(
      `CPU per synchronization under load (${loaded.registerToFinalizedMs.count} in ${loaded.process.wallSeconds} s): ${perSync(loaded.process, loaded.registerToFinalizedMs.count)}` +
        ' (the window also runs the publish, MarkPublished and webhook fan-out of each, off the measured path)',
    );
    let cpuSummary: ReturnType<typeof summarizeCpuProfile> | undefined;
    if (cpu && values['cpu-profile']) {
      writeFileSync(values['cpu-profile'], JSON.stringify(cpu));
      cpuSummary = summarizeCpuProfile(cpu);
      out.push('', `CPU profile of the sustained window (${cpuSummary.profiledMs} ms sampled), by the package or project folder that asked for the work:`);
      for (const row of cpuSummary.byOwner) out.push(`  ${String(row.ms).padStart(7)} ms ${row.percent.toFixed(1).padStart(5)} %  ${row.name}`);
      out.push('', 'self time by function:');
      for (const row of cpuSummary.selfByFunction) out.push(`  ${String(row.ms).padStart(7)} ms ${row.percent.toFixed(1).padStart(5)} %  ${row.name}`);
      out.push(`(profile written to ${values['cpu-profile']})`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    if (values.json) {
      writeFileSync(
        values.json,
        `${JSON.stringify({ loadAtStart, single: { ...single, http: singleHttp, dynamodbProbeMs: singleProbe }, loaded: { ...loaded, http: loadedHttp, dynamodbProbeMs: loadedProbe }, cpu: cpuSummary }, null, 2)}\n`,
      );
    }
  } finally {
    await bench?.stop();
    bench = undefined;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`profile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
