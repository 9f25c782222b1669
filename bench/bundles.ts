import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLambdas, type PackageSize } from '../lib/build-lambdas';
import { API_FUNCTIONS } from '../lib/catalog';
import { LAMBDA_NODE_OPTIONS } from '../lib/constructs/lambda-function';
import { median, round } from './stats';

export interface BundleReport {
  id: string;
  kind: 'api' | 'workflow';
  /** Minified index.js as deployed (esbuild options of lib/build-lambdas.ts), without its .map. */
  bytes: number;
  gzipBytes: number;
  /** Median time to require() the bundle in a fresh Node process, as deployed (the stack's NODE_OPTIONS). */
  requireMs: number;
  /** CPU time (user + system) of that require(), median: less sensitive than wall time to other work on a shared machine. */
  requireCpuMs: number;
  /** Median require() with --enable-source-maps (Node reads the linked .map at load). */
  requireMsSourceMaps: number;
  /** Median require() without --enable-source-maps. One of these two is the deployed column, the other has half as many runs. */
  requireMsNoSourceMaps: number;
  /** Median wall time of the whole fresh process (Node start, require, exit), as deployed. */
  processMs: number;
  /** First call of the handler after the require, where it needs no network (GetOpenApi). */
  firstCallMs?: number;
  /** The three largest packages (or folders of this repository) in the bundle, from esbuild's metafile. */
  largestPackages: PackageSize[];
}

export interface BundlesReport {
  runs: number;
  /** NODE_OPTIONS of the deployed functions (lib/constructs/lambda-function.ts); empty: none. */
  nodeOptions: string;
  bundles: BundleReport[];
  note: string;
}

/** Functions whose handler can be called once with no network: the call is part of the cold start. */
const CALLABLE_OFFLINE = new Set(['GetOpenApi']);

/** What the fresh process runs: time the require (and the one call), print JSON. */
const PROBE = `
const cpu = process.cpuUsage();
const start = performance.now();
const mod = require(process.env.BENCH_BUNDLE);
const requireMs = performance.now() - start;
const used = process.cpuUsage(cpu);
const requireCpuMs = (used.user + used.system) / 1000;
(async () => {
  let firstCallMs;
  if (process.env.BENCH_CALL === '1') {
    const t = performance.now();
    const result = await mod.handler({ version: '2.0', routeKey: 'GET /openapi.json', rawPath: '/openapi.json', headers: {}, requestContext: { http: { method: 'GET' } } }, {});
    firstCallMs = performance.now() - t;
    if (!result || result.statusCode !== 200) throw new Error('handler answered ' + (result && result.statusCode));
  }
  process.stdout.write(JSON.stringify({ requireMs, requireCpuMs, firstCallMs }));
})().catch((error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); });
`;

interface ProbeResult {
  requireMs: number;
  requireCpuMs: number;
  firstCallMs?: number;
  processMs: number;
}

/** `nodeOptions`: the NODE_OPTIONS of the process, e.g. `--enable-source-maps`; empty for none. */
function probe(bundle: string, options: { nodeOptions: string; call: boolean }): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['-e', PROBE], {
      // A Lambda-like environment: the handlers read their configuration lazily, on first call.
      env: {
        PATH: process.env.PATH ?? '',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'bench',
        AWS_SECRET_ACCESS_KEY: 'bench',
        TABLE_NAME: 'iap-sync-bench',
        LOG_LEVEL: 'error',
        BENCH_BUNDLE: bundle,
        BENCH_CALL: options.call ? '1' : '0',
        ...(options.nodeOptions ? { NODE_OPTIONS: options.nodeOptions } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const processMs = performance.now() - started;
      if (code !== 0) return reject(new Error(`probe of ${bundle} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
      try {
        resolve({ ...(JSON.parse(out) as { requireMs: number; requireCpuMs: number; firstCallMs?: number }), processMs });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

const SOURCE_MAPS = '--enable-source-maps';

/**
 * Builds every function with the deployed esbuild options (into a temporary folder, so a
 * concurrent `npm run build` into dist/ is not disturbed) and measures each bundle's cold
 * initialisation: the median of `runs` fresh Node processes requiring it as deployed (the stack's
 * NODE_OPTIONS), and of half as many with source maps the other way round, one process at a time.
 */
export async function measureBundles(runs: number): Promise<BundlesReport> {
  const outDir = mkdtempSync(join(tmpdir(), 'iap-sync-bench-bundles-'));
  const deployed = LAMBDA_NODE_OPTIONS ?? '';
  const deployedWithMaps = deployed.split(/\s+/).includes(SOURCE_MAPS);
  // The other setting: the deployed options with --enable-source-maps added or taken out.
  const other = deployedWithMaps
    ? deployed
        .split(/\s+/)
        .filter((option) => option !== SOURCE_MAPS)
        .join(' ')
    : `${deployed} ${SOURCE_MAPS}`.trim();
  try {
    const sizes = await buildLambdas({ outDir });
    const apiIds = new Set(API_FUNCTIONS.map((fn) => fn.id));
    const bundles: BundleReport[] = [];
    for (const size of sizes) {
      const call = CALLABLE_OFFLINE.has(size.id);
      const asDeployed: ProbeResult[] = [];
      const otherWay: ProbeResult[] = [];
      for (let i = 0; i < runs; i++) {
        asDeployed.push(await probe(size.outfile, { nodeOptions: deployed, call }));
        // Informative (not what is deployed): half as many runs keeps the bench short.
        if (i % 2 === 0) otherWay.push(await probe(size.outfile, { nodeOptions: other, call: false }));
      }
      const calls = asDeployed.flatMap((r) => (r.firstCallMs !== undefined ? [r.firstCallMs] : []));
      const requireMs = (results: ProbeResult[]) => round(median(results.map((r) => r.requireMs)), 1);
      bundles.push({
        id: size.id,
        kind: apiIds.has(size.id) ? 'api' : 'workflow',
        bytes: size.bytes,
        gzipBytes: size.gzipBytes,
        requireMs: requireMs(asDeployed),
        requireCpuMs: round(median(asDeployed.map((r) => r.requireCpuMs)), 1),
        requireMsSourceMaps: requireMs(deployedWithMaps ? asDeployed : otherWay),
        requireMsNoSourceMaps: requireMs(deployedWithMaps ? otherWay : asDeployed),
        processMs: round(median(asDeployed.map((r) => r.processMs)), 1),
        ...(calls.length > 0 ? { firstCallMs: round(median(calls), 1) } : {}),
        largestPackages: size.packages.slice(0, 3),
      });
    }
    return {
      runs,
      nodeOptions: deployed,
      bundles,
      note:
        `Cold init = median of ${runs} fresh \`node\` processes (Node ${process.version}, this machine, not Lambda's arm64) timing require() of the bundle ` +
        `as deployed (NODE_OPTIONS ${deployed ? `\`${deployed}\`` : 'unset'}), the column compared with the targets; the other source-map setting ` +
        `had ${Math.ceil(runs / 2)} runs. CPU ms is the same require's user + system time. The Lambda runtime adds its own bootstrap (not measured here). ` +
        'Largest packages: bytes in index.js per npm package (or folder of this repository), from esbuild\'s metafile.',
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
