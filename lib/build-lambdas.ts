import { readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type Metafile } from 'esbuild';
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
  /** What the bytes are, largest first: each npm package, and each folder of this repository, with its bytes in index.js. */
  packages: PackageSize[];
}

/** Bytes one package (or one folder of this repository, e.g. `lambdas/platform`) takes in a bundle. */
export interface PackageSize {
  name: string;
  bytes: number;
}

/** Options of {@link buildLambdas}. */
export interface BuildLambdasOptions {
  /** Output folder; each function goes to `<outDir>/<id>/index.js`. @default <project>/dist/lambdas */
  outDir?: string;
  /** Catalog ids to build. @default every function */
  ids?: readonly string[];
}

/**
 * esbuild options equal to what NodejsFunction runs for LAMBDA_BUNDLING (`--bundle --platform=node
 * --target=node20 --format=cjs --minify --sourcemap --sources-content=false --main-fields=module,main
 * --alias:…`, no externals), so these are the deployed bytes (test/cdk/stack.test.ts compares them).
 * `linked` is what NodejsFunction's `sourceMap: true` produces: an external .map plus the
 * sourceMappingURL comment that --enable-source-maps and lib/map-stack.ts use to find it.
 */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    outfile,
    // NodejsFunction runs esbuild in the project root: the same relative paths in the .map and metafile.
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    platform: 'node',
    target: LAMBDA_BUNDLING.target,
    format: LAMBDA_BUNDLING.format,
    minify: LAMBDA_BUNDLING.minify,
    sourcemap: LAMBDA_BUNDLING.sourceMap ? 'linked' : false,
    sourcesContent: LAMBDA_BUNDLING.sourcesContent,
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
  const entries = [...API_FUNCTIONS, ...WORKFLOW_FUNCTIONS, WEBHOOK_FUNCTION, SWEEPER_FUNCTION, RECONCILE_FUNCTION]
    .map(({ id, entry }) => ({ id, entry }))
    .filter(({ id }) => options.ids === undefined || options.ids.includes(id));
  const results = await Promise.allSettled(
    entries.map(async ({ id, entry }): Promise<BundleSize> => {
      const outfile = path.join(outDir, id, 'index.js');
      rmSync(path.dirname(outfile), { recursive: true, force: true });
      // The metafile only describes the build (it is not written): the same bytes as NodejsFunction's.
      const { metafile } = await build({ ...esbuildOptions(entry, outfile), metafile: true });
      return {
        id,
        entry,
        outfile,
        bytes: statSync(outfile).size,
        gzipBytes: gzipSync(readFileSync(outfile)).length,
        packages: packageSizes(metafile, outfile),
      };
    }),
  );
  const failures = results.flatMap((result, index) =>
    result.status === 'rejected' ? [`${entries[index]?.id ?? index}: ${describe(result.reason)}`] : [],
  );
  if (failures.length > 0) throw new Error(`Bundling failed:\n${failures.join('\n')}`);
  return results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

/** The npm package of an input path (`node_modules/@scope/name/…` → `@scope/name`), else its first two folders. */
export function packageOf(input: string): string {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return input.split('/').slice(0, 2).join('/');
  const [first = '', second = ''] = input.slice(at + 'node_modules/'.length).split('/');
  return first.startsWith('@') ? `${first}/${second}` : first;
}

/** Bytes per package in one output of an esbuild metafile, largest first. */
export function packageSizes(metafile: Metafile, outfile: string): PackageSize[] {
  const output = Object.entries(metafile.outputs).find(([file]) => path.resolve(PROJECT_ROOT, file) === path.resolve(outfile))?.[1];
  if (!output) throw new Error(`no output ${outfile} in the esbuild metafile`);
  const bytes = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input);
    bytes.set(name, (bytes.get(name) ?? 0) + bytesInOutput);
  }
  return [...bytes].map(([name, size]) => ({ name, bytes: size })).filter((entry) => entry.bytes > 0).sort((a, b) => b.bytes - a.bytes);
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

/** The largest packages of a bundle, e.g. `jsrsasign 306, @smithy/core 114, zod 93` (kB). */
export function largestPackages(size: Pick<BundleSize, 'packages'>, count = 3): string {
  return size.packages
    .slice(0, count)
    .map((entry) => `${entry.name} ${(entry.bytes / 1000).toFixed(0)}`)
    .join(', ');
}

/** The table printed by `tsx lib/build-lambdas.ts`. */
export function formatSizes(sizes: BundleSize[]): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const rows = sizes.map((size) => [size.id, kib(size.bytes), kib(size.gzipBytes), largestPackages(size)]);
  const total = sizes.reduce((sum, size) => sum + size.bytes, 0);
  const totalGzip = sizes.reduce((sum, size) => sum + size.gzipBytes, 0);
  const all = [['Function', 'Minified', 'Gzipped', 'Largest packages (kB)'], ...rows, ['Total', kib(total), kib(totalGzip), '']];
  const widths = [0, 1, 2, 3].map((column) => Math.max(...all.map((row) => row[column]?.length ?? 0)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => (column === 0 || column === 3 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
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
