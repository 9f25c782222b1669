import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildLambdas } from './build-lambdas';
import { PROJECT_ROOT } from './constructs/lambda-function';

/** A frame position in a bundle, as a stack prints it: `/var/task/index.js:1:23456`. */
const BUNDLE_POSITION = /(?:file:\/\/)?[^\s()]*index\.js:(\d+):(\d+)/g;

/**
 * Rewrites the bundle positions of a logged stack (`index.js:<line>:<column>`) to the source files
 * and positions the bundle's source map gives, relative to the project root; a position the map
 * does not cover is left as it is. `mapDir`: the folder the .map's `sources` are relative to.
 */
export function mapStack(stack: string, map: SourceMapPayload, mapDir: string): string {
  const sourceMap = new SourceMap(map);
  return stack.replace(BUNDLE_POSITION, (position, line: string, column: string) => {
    const origin = sourceMap.findOrigin(Number(line), Number(column));
    if (!('fileName' in origin)) return position;
    const file = path.relative(PROJECT_ROOT, path.resolve(mapDir, origin.fileName));
    return `${file}:${origin.lineNumber}:${origin.columnNumber}`;
  });
}

/**
 * Maps a stack logged by a deployed function: builds that function's bundle again (the same bytes as
 * the deployed one when run at the deployed commit; test/cdk/stack.test.ts checks the build is the
 * one NodejsFunction makes) and reads its .map. The functions run without --enable-source-maps
 * (lib/constructs/lambda-function.ts), so their logs carry bundle positions.
 */
export async function mapFunctionStack(functionId: string, stack: string): Promise<string> {
  const outDir = mkdtempSync(path.join(tmpdir(), 'iap-sync-map-stack-'));
  try {
    const [bundle] = await buildLambdas({ outDir, ids: [functionId] });
    if (!bundle) throw new Error(`no function ${functionId} in lib/catalog.ts`);
    const map = JSON.parse(readFileSync(`${bundle.outfile}.map`, 'utf8')) as SourceMapPayload;
    return mapStack(stack, map, path.dirname(bundle.outfile));
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const [functionId, file] = process.argv.slice(2);
  if (!functionId) {
    process.stderr.write('usage: npx tsx lib/map-stack.ts <FunctionId> [stack.txt]   (the stack on stdin without a file)\n');
    process.exitCode = 2;
  } else {
    mapFunctionStack(functionId, readFileSync(file ?? 0, 'utf8'))
      .then((mapped) => process.stdout.write(mapped.endsWith('\n') ? mapped : `${mapped}\n`))
      .catch((error: unknown) => {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      });
  }
}
