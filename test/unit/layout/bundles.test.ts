import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SourceMapPayload } from 'node:module';
import { build } from 'esbuild';
import { buildLambdas, esbuildOptions, packageOf, type BundleSize } from '../../../lib/build-lambdas';
import { mapStack } from '../../../lib/map-stack';
import { PROJECT_ROOT } from '../../../lib/constructs/lambda-function';

// What the deployed bundles carry, from esbuild's metafile (no timings: `npm run bench` measures those).
// Builds four small bundles and one fixture, a few seconds in all.

const outDir = mkdtempSync(path.join(tmpdir(), 'iap-sync-bundles-test-'));
const bundles = new Map<string, BundleSize>();

beforeAll(async () => {
  for (const size of await buildLambdas({ outDir, ids: ['VerifyApplePurchase', 'VerifyGooglePurchase', 'RegisterGooglePurchase', 'GetOpenApi'] })) {
    bundles.set(size.id, size);
  }
});
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

function packagesOf(id: string): string[] {
  const size = bundles.get(id);
  if (!size) throw new Error(`${id} was not built`);
  return size.packages.map((entry) => entry.name);
}

const GOOGLE_CLIENT = ['@googleapis/androidpublisher', 'googleapis-common', 'google-auth-library', 'gaxios'];
const APPLE_LIBRARY = ['@apple/app-store-server-library', 'jsrsasign', 'jsonwebtoken'];

describe('deployed bundles', () => {
  it('the Apple verification carries Apple\'s library and nothing of Google\'s client', () => {
    expect(packagesOf('VerifyApplePurchase')).toEqual(expect.arrayContaining(APPLE_LIBRARY));
    expect(packagesOf('VerifyApplePurchase').filter((name) => GOOGLE_CLIENT.includes(name))).toEqual([]);
  });

  it('the Google verification carries Google\'s client and nothing of Apple\'s library', () => {
    expect(packagesOf('VerifyGooglePurchase')).toEqual(expect.arrayContaining(['@googleapis/androidpublisher']));
    expect(packagesOf('VerifyGooglePurchase').filter((name) => APPLE_LIBRARY.includes(name))).toEqual([]);
  });

  it('a Google route carries neither store\'s library', () => {
    expect(packagesOf('RegisterGooglePurchase').filter((name) => [...APPLE_LIBRARY, ...GOOGLE_CLIENT].includes(name))).toEqual([]);
  });

  it('GetOpenApi, which only renders schemas, carries no AWS SDK (the slices\' index.ts re-exports it never uses are left out)', () => {
    expect(packagesOf('GetOpenApi').filter((name) => name.startsWith('@aws-sdk/') || name.startsWith('@smithy/'))).toEqual([]);
  });

  it('Apple\'s node-fetch gets Node\'s own URL: no whatwg-url or tr46 (lambdas/platform/whatwg-url.ts)', () => {
    expect(packagesOf('VerifyApplePurchase')).toContain('node-fetch');
    expect(packagesOf('VerifyApplePurchase').filter((name) => ['whatwg-url', 'tr46'].includes(name))).toEqual([]);
  });

  it('ships a linked source map without the sources', () => {
    const size = bundles.get('GetOpenApi');
    const code = readFileSync(size?.outfile ?? '', 'utf8');
    expect(code.trimEnd().endsWith('//# sourceMappingURL=index.js.map')).toBe(true);
    const map = JSON.parse(readFileSync(`${size?.outfile}.map`, 'utf8')) as Partial<SourceMapPayload>;
    expect(map.sources?.length).toBeGreaterThan(0);
    expect(map.sourcesContent).toBeUndefined();
  });

  it.each([
    ['node_modules/@smithy/core/dist-es/submodules/schema/index.js', '@smithy/core'],
    ['node_modules/aws-xray-sdk-core/node_modules/semver/index.js', 'semver'],
    ['node_modules/zod/v4/core/util.js', 'zod'],
    ['lambdas/platform/http.ts', 'lambdas/platform'],
  ])('counts %s as %s', (input, name) => {
    expect(packageOf(input)).toBe(name);
  });
});

describe('lambdas/package.json ("sideEffects": false)', () => {
  /** Every .ts file under lambdas/. */
  function sources(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const file = path.join(dir, name);
      return statSync(file).isDirectory() ? sources(file) : file.endsWith('.ts') ? [file] : [];
    });
  }

  it('holds: no module under lambdas/ is imported only for what it does when loaded', () => {
    const bare = sources(path.join(PROJECT_ROOT, 'lambdas')).filter((file) => /^import\s+['"]/m.test(readFileSync(file, 'utf8')));
    expect(bare.map((file) => path.relative(PROJECT_ROOT, file))).toEqual([]);
  });
});

describe('lib/map-stack.ts', () => {
  it('maps a stack logged by a bundle run without --enable-source-maps back to the source line', async () => {
    const entry = path.relative(PROJECT_ROOT, path.join(__dirname, 'fixtures', 'throws.ts'));
    const outfile = path.join(outDir, 'Fixture', 'index.js');
    await build(esbuildOptions(entry, outfile));
    let stack = '';
    try {
      execFileSync(process.execPath, ['-e', `require(${JSON.stringify(outfile)}).handler()`], { stdio: 'pipe', env: { PATH: process.env.PATH ?? '' } });
    } catch (error) {
      stack = String((error as { stderr?: Buffer }).stderr ?? '');
    }
    expect(stack).toMatch(/index\.js:\d+:\d+/);
    const map = JSON.parse(readFileSync(`${outfile}.map`, 'utf8')) as SourceMapPayload;
    const mapped = mapStack(stack, map, path.dirname(outfile));
    // The `throw` of failDeep() in the fixture, line 5, column 9.
    expect(mapped).toContain(`${entry}:5:9`);
    expect(mapped).not.toMatch(/index\.js:\d+:\d+/);
  });
});
