import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLambdas } from '../lib/build-lambdas';
import { API_FUNCTIONS } from '../lib/catalog';
import { median, round } from './stats';

export interface BundleReport {
  id: string;
  kind: 'api' | 'workflow';
  /** Minified index.js as deployed (esbuild options of lib/build-lambdas.ts), without its .map. */
  bytes: number;
  gzipBytes: number;
  /** Median time to require() the bundle in a fresh Node process, with --enable-source-maps as deployed. */
  requireMs: number;
  /** The same without --enable-source-maps (median of half as many runs). */
  requireMsNoSourceMaps: number;
  /** Median wall time of the whole fresh process (Node start, require, exit), with source maps. */
  processMs: number;
  /** First call of the handler after the require, where it needs no network (GetOpenApi). */
  firstCallMs?: number;
}

export interface BundlesReport {
  runs: number;
  bundles: BundleReport[];
  note: string;
}

/** Functions whose handler can be called once with no network: the call is part of the cold start. */
const CALLABLE_OFFLINE = new Set(['GetOpenApi']);

/** What the fresh process runs: time the require (and the one call), print JSON. */
const PROBE = `
const start = performance.now();
const mod = require(process.env.BENCH_BUNDLE);
const requireMs = performance.now() - start;
(async () => {
  let firstCallMs;
  if (process.env.BENCH_CALL === '1') {
    const t = performance.now();
    const result = await mod.handler({ version: '2.0', routeKey: 'GET /openapi.json', rawPath: '/openapi.json', headers: {}, requestContext: { http: { method: 'GET' } } }, {});
    firstCallMs = performance.now() - t;
    if (!result || result.statusCode !== 200) throw new Error('handler answered ' + (result && result.statusCode));
  }
  process.stdout.write(JSON.stringify({ requireMs, firstCallMs }));
})().catch((error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); });
`;

interface ProbeResult {
  requireMs: number;
  firstCallMs?: number;
  processMs: number;
}

function probe(bundle: string, options: { sourceMaps: boolean; call: boolean }): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...(options.sourceMaps ? ['--enable-source-maps'] : []), '-e', PROBE], {
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
        resolve({ ...(JSON.parse(out) as { requireMs: number; firstCallMs?: number }), processMs });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/**
 * Builds every function with the deployed esbuild options (into a temporary folder, so a
 * concurrent `npm run build` into dist/ is not disturbed) and measures each bundle's cold
 * initialisation: the median of `runs` fresh Node processes requiring it, one process at a time.
 */
export async function measureBundles(runs: number): Promise<BundlesReport> {
  const outDir = mkdtempSync(join(tmpdir(), 'iap-sync-bench-bundles-'));
  try {
    const sizes = await buildLambdas({ outDir });
    const apiIds = new Set(API_FUNCTIONS.map((fn) => fn.id));
    const bundles: BundleReport[] = [];
    for (const size of sizes) {
      const call = CALLABLE_OFFLINE.has(size.id);
      const withMaps: ProbeResult[] = [];
      const withoutMaps: ProbeResult[] = [];
      for (let i = 0; i < runs; i++) {
        withMaps.push(await probe(size.outfile, { sourceMaps: true, call }));
        // Informative only (not what is deployed): half as many runs keeps the bench short.
        if (i % 2 === 0) withoutMaps.push(await probe(size.outfile, { sourceMaps: false, call: false }));
      }
      const calls = withMaps.flatMap((r) => (r.firstCallMs !== undefined ? [r.firstCallMs] : []));
      bundles.push({
        id: size.id,
        kind: apiIds.has(size.id) ? 'api' : 'workflow',
        bytes: size.bytes,
        gzipBytes: size.gzipBytes,
        requireMs: round(median(withMaps.map((r) => r.requireMs)), 1),
        requireMsNoSourceMaps: round(median(withoutMaps.map((r) => r.requireMs)), 1),
        processMs: round(median(withMaps.map((r) => r.processMs)), 1),
        ...(calls.length > 0 ? { firstCallMs: round(median(calls), 1) } : {}),
      });
    }
    return {
      runs,
      bundles,
      note:
        `Cold init = median of ${runs} fresh \`node\` processes (Node ${process.version}, this machine, not Lambda's arm64) timing require() of the bundle; ` +
        'deployed functions run with NODE_OPTIONS=--enable-source-maps, so that column is the one compared with the target. ' +
        'The Lambda runtime adds its own bootstrap (not measured here).',
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
