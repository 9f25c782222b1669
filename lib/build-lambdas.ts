import { readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions } from 'esbuild';
import { API_FUNCTIONS, RECONCILE_FUNCTION, SWEEPER_FUNCTION, WEBHOOK_FUNCTION, WORKFLOW_FUNCTIONS } from './catalog';
import { BUNDLE_ALIASES, LAMBDA_BUNDLING, PROJECT_ROOT } from './constructs/lambda-function';

/** Size of one function's bundle. */
export interface BundleSize {
  /** Catalog id. */
  id: string;
  /** Handler module, relative to the project root. */
  entry: string;
  /** Path of the written index.js. */
  outfile: string;
  /** Minified index.js, without its source map. */
  bytes: number;
  /** The same, gzipped: roughly what the deployment zip carries. */
  gzipBytes: number;
}

/** Options of {@link buildLambdas}. */
export interface BuildLambdasOptions {
  /** Output folder; each function goes to `<outDir>/<id>/index.js`. @default <project>/dist/lambdas */
  outDir?: string;
}

/**
 * esbuild options equal to what NodejsFunction runs for LAMBDA_BUNDLING (`--bundle --platform=node
 * --target=node20 --format=cjs --minify --sourcemap --main-fields=module,main --alias:…`, no
 * externals), so these are the deployed bytes.
 * `linked` is what NodejsFunction's `sourceMap: true` produces: an external .map plus the
 * sourceMappingURL comment that --enable-source-maps needs to find it.
 */
function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: LAMBDA_BUNDLING.target,
    format: LAMBDA_BUNDLING.format,
    minify: LAMBDA_BUNDLING.minify,
    sourcemap: LAMBDA_BUNDLING.sourceMap ? 'linked' : false,
    external: LAMBDA_BUNDLING.externalModules,
    mainFields: LAMBDA_BUNDLING.mainFields,
    alias: BUNDLE_ALIASES,
    logLevel: 'silent',
  };
}

/**
 * Bundles every catalog function (API_FUNCTIONS, WORKFLOW_FUNCTIONS and WEBHOOK_FUNCTION) and returns the bundle
 * sizes in catalog order. Rejects, after trying them all, if any bundle fails.
 */
export async function buildLambdas(options: BuildLambdasOptions = {}): Promise<BundleSize[]> {
  const outDir = options.outDir ?? path.join(PROJECT_ROOT, 'dist', 'lambdas');
  const entries = [...API_FUNCTIONS, ...WORKFLOW_FUNCTIONS, WEBHOOK_FUNCTION, SWEEPER_FUNCTION, RECONCILE_FUNCTION].map(({ id, entry }) => ({ id, entry }));
  const results = await Promise.allSettled(
    entries.map(async ({ id, entry }): Promise<BundleSize> => {
      const outfile = path.join(outDir, id, 'index.js');
      rmSync(path.dirname(outfile), { recursive: true, force: true });
      await build(esbuildOptions(entry, outfile));
      return { id, entry, outfile, bytes: statSync(outfile).size, gzipBytes: gzipSync(readFileSync(outfile)).length };
    }),
  );
  const failures = results.flatMap((result, index) =>
    result.status === 'rejected' ? [`${entries[index]?.id ?? index}: ${describe(result.reason)}`] : [],
  );
  if (failures.length > 0) throw new Error(`Bundling failed:\n${failures.join('\n')}`);
  return results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

function describe(reason: unknown): string {
  if (reason && typeof reason === 'object' && 'errors' in reason && Array.isArray(reason.errors)) {
    // esbuild's BuildFailure: one line per error with its location.
    return reason.errors
      .map((error: { text?: string; location?: { file?: string; line?: number } | null }) =>
        error.location ? `${error.location.file}:${error.location.line}: ${error.text}` : `${error.text}`,
      )
      .join('; ');
  }
  return reason instanceof Error ? reason.message : String(reason);
}

/** The table printed by `tsx lib/build-lambdas.ts`. */
export function formatSizes(sizes: BundleSize[]): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const rows = sizes.map((size) => [size.id, kib(size.bytes), kib(size.gzipBytes)]);
  const total = sizes.reduce((sum, size) => sum + size.bytes, 0);
  const totalGzip = sizes.reduce((sum, size) => sum + size.gzipBytes, 0);
  const all = [['Function', 'Minified', 'Gzipped'], ...rows, ['Total', kib(total), kib(totalGzip)]];
  const widths = [0, 1, 2].map((column) => Math.max(...all.map((row) => row[column]?.length ?? 0)));
  const line = (row: string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  const [header, ...body] = all.map(line);
  const footer = body.pop() ?? '';
  return [header, rule, ...body, rule, footer].join('\n');
}

if (require.main === module) {
  buildLambdas()
    .then((sizes) => process.stdout.write(`${formatSizes(sizes)}\n`))
    .catch((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    });
}
