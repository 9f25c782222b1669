import * as path from 'node:path';
import { type Duration, Token, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { loadConfig } from '../../lambdas/platform/config';
import { METRICS_NAMESPACE } from '../../lambdas/platform/metric-names';
import { memoryMbOf } from '../catalog';

/** The repository root: catalog entries and the ASL path are relative to it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Packages replaced in every bundle, package name → stand-in module (esbuild's `--alias`):
 * - `@aws-sdk/credential-provider-node`: the default credential chain, cut to what Lambda uses (the
 *   role's credentials in the environment); see lambdas/platform/lambda-credentials.ts.
 * - `whatwg-url`: node-fetch 2's fallback URL parser, never used on Node (which has the same WHATWG
 *   URL built in) and 290 kB of every Apple bundle with tr46; see lambdas/platform/whatwg-url.ts.
 * Tests and `npm start` run the real packages; the stand-ins only exist in the deployed bundles.
 */
export const BUNDLE_ALIASES: Record<string, string> = {
  '@aws-sdk/credential-provider-node': path.join(PROJECT_ROOT, 'lambdas', 'platform', 'lambda-credentials.ts'),
  'whatwg-url': path.join(PROJECT_ROOT, 'lambdas', 'platform', 'whatwg-url.ts'),
};

/**
 * esbuild options of every function, shared with lib/build-lambdas.ts so the measured bundles
 * are the deployed ones (test/cdk/stack.test.ts compares the bytes). The AWS SDK is bundled (empty
 * externalModules, house style): a pinned client that does not change under us. What keeps the
 * bundles small (`npm run bench` prints each one's size and largest packages): `module` first, so
 * esbuild reads the SDK's ES modules and tree-shakes them (the CommonJS builds are single files it
 * must take whole); the BUNDLE_ALIASES stand-ins; and lambdas/package.json's `"sideEffects": false`,
 * which lets esbuild leave out what a handler imports through a slice's index.ts but never uses
 * (GetOpenApi went from 337 to 117 kB: it no longer carries the AWS SDK).
 *
 * Source maps: a linked .map without `sourcesContent` (it names each source file and position; the
 * sources are this repository at the deployed commit), and no `--enable-source-maps` at run time
 * (LAMBDA_NODE_OPTIONS). Under that flag Node reads and parses the whole .map when it loads the
 * bundle, so every cold start paid for stack traces that only matter once something failed.
 * Measured on Node 20 (CPU time of require() in a fresh process, median of 10, one run): with the
 * sources inlined (maps 4 times the bundle) the flag cost 23 ms (GetSynchronization) to 107 ms (the
 * single VerifyPurchase of the time); without them still 10 to 27 ms, a tenth to a quarter of an API
 * function's cold start. Also measured and left: keepNames (5 to 7 % more bytes, for named frames)
 * and minifying whitespace and syntax but not identifiers (40 to 53 % more bytes); neither loaded
 * faster beyond the noise of a shared machine. A logged stack names index.js positions: `npx tsx lib/map-stack.ts <FunctionId> < stack.txt` maps
 * them to source files and lines with the function's .map, rebuilt at the same commit (the same
 * bytes); or set NODE_OPTIONS=--enable-source-maps on one function while debugging it.
 */
export const LAMBDA_BUNDLING = {
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  target: 'node20',
  format: OutputFormat.CJS,
  externalModules: [] as string[],
  mainFields: ['module', 'main'],
  esbuildArgs: Object.fromEntries(Object.entries(BUNDLE_ALIASES).map(([name, standIn]) => [`--alias:${name}`, standIn])),
  // esbuild's per-bundle size summary is noise in `cdk synth` and the test output; warnings still show.
  logLevel: LogLevel.WARNING,
} satisfies BundlingOptions;

/**
 * NODE_OPTIONS of every function: none (no `--enable-source-maps`; LAMBDA_BUNDLING says why and
 * how a logged stack is read instead). bench/bundles.ts measures cold starts with this setting.
 */
export const LAMBDA_NODE_OPTIONS: string | undefined = undefined;

/** Lambda allows 4 KB of environment variables in all (names and values). */
const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;
/** Room kept for a value that is a token at synth (an ARN or generated name) when checking that limit. */
const TOKEN_VALUE_ESTIMATE_BYTES = 160;

/**
 * Variables that exist for `npm start` only: store base URLs (the simulator), the local secrets folder
 * and the webhook switches that allow loopback/private receivers and shrink the retry schedule. A
 * deployed function never gets one, whatever the stage: a loopback webhook from Lambda would reach the
 * Lambda Runtime API on 127.0.0.1, and a base URL could point verification at a fake store.
 */
export const LOCAL_ONLY_VARIABLES = [
  'APPLE_API_BASE_URL_PRODUCTION',
  'APPLE_API_BASE_URL_SANDBOX',
  'GOOGLE_API_ROOT_URL',
  'GOOGLE_OAUTH_TOKEN_URL',
  // A deployed stack trusts Google's own keys for push tokens, never another key set.
  'GOOGLE_PUSH_JWKS_URL',
  'LOCAL_SECRETS_DIR',
  'WEBHOOK_ALLOW_PRIVATE_NETWORKS',
  'WEBHOOK_SCHEDULE_SCALE',
] as const;

/** Why the runtime is nodejs22.x and not the newest one cdk-nag knows (AwsSolutions-L1). */
const RUNTIME_REASON =
  'nodejs22.x is a supported Lambda runtime (Node.js 22 LTS). The bundles target node20 and the test suite runs on Node 20, ' +
  'so the deployed runtime stays one major version from what is tested; moving to the newest runtime cdk-nag knows is a ' +
  'deliberate upgrade with a test run on that version, not a side effect of upgrading aws-cdk-lib.';


/** Inputs of {@link createLambdaFunction}. */
export interface LambdaFunctionProps {
  /** Handler module relative to the project root (a catalog `entry`); it exports `handler`. */
  entry: string;
  /** Lambda timeout. */
  timeout: Duration;
  /** Variables read by lambdas/platform/config.ts; validated against that schema at synth. */
  environment: Record<string, string>;
  /**
   * `iap-sync-<stage>`: POWERTOOLS_SERVICE_NAME of the function and the `service` dimension of its
   * metrics (lambdas/platform/metric-names.ts), which the dashboard and alarms read.
   */
  service: string;
  /**
   * Reserved concurrency: 1 for the scheduled jobs, so a run never overlaps the previous one (a
   * scheduled invocation that finds it still running is throttled and dropped, see the callers).
   * @default none: the account's unreserved pool
   */
  reservedConcurrency?: number;
}

/**
 * A NodejsFunction with the house defaults: Node.js 22 on arm64, esbuild bundle with a linked source map,
 * X-Ray tracing, Powertools service name and metrics namespace, and its own log group kept 30 days.
 * Its role may write to that log group only (instead of AWSLambdaBasicExecutionRole, which lets a
 * function create and write any log group of the account); callers grant the rest.
 */
export function createLambdaFunction(scope: Construct, id: string, props: LambdaFunctionProps): NodejsFunction {
  const environment = {
    ...(LAMBDA_NODE_OPTIONS ? { NODE_OPTIONS: LAMBDA_NODE_OPTIONS } : {}),
    POWERTOOLS_SERVICE_NAME: props.service,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    ...props.environment,
  };
  checkEnvironment(id, environment);

  const logGroup = new LogGroup(scope, `${id}Logs`, { retention: RetentionDays.ONE_MONTH });
  const role = new Role(scope, `${id}Role`, {
    assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    description: `${props.service} ${id} function`,
  });
  logGroup.grantWrite(role);
  const fn = new NodejsFunction(scope, id, {
    entry: path.join(PROJECT_ROOT, props.entry),
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    runtime: Runtime.NODEJS_22_X,
    architecture: Architecture.ARM_64,
    memorySize: memoryMbOf(id),
    timeout: props.timeout,
    tracing: Tracing.ACTIVE,
    logGroup,
    role,
    bundling: LAMBDA_BUNDLING,
    environment,
    ...(props.reservedConcurrency !== undefined ? { reservedConcurrentExecutions: props.reservedConcurrency } : {}),
  });
  Validations.of(fn).acknowledge({ id: 'AwsSolutions-L1', reason: RUNTIME_REASON });
  // Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which have no resource-level
  // permissions (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html).
  Validations.of(role.node.findChild('DefaultPolicy')).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'Only X-Ray trace writes (xray:PutTraceSegments, xray:PutTelemetryRecords) use Resource *; X-Ray has no resource-level permissions for them.',
  });
  return fn;
}

/** Fails the synth, not the first invocation, when a function would reject its own configuration. */
function checkEnvironment(id: string, environment: Record<string, string>): void {
  const localOnly = LOCAL_ONLY_VARIABLES.filter((name) => name in environment);
  if (localOnly.length > 0) {
    throw new Error(`${id}: ${localOnly.join(', ')} exist for npm start only; a deployed function never gets them`);
  }
  try {
    loadConfig(environment);
  } catch (error) {
    throw new Error(`${id}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const bytes = Object.entries(environment).reduce(
    (total, [name, value]) =>
      total + Buffer.byteLength(name) + (Token.isUnresolved(value) ? TOKEN_VALUE_ESTIMATE_BYTES : Buffer.byteLength(value)),
    0,
  );
  if (bytes > LAMBDA_ENVIRONMENT_LIMIT_BYTES) {
    throw new Error(
      `${id}: its environment variables take about ${bytes} bytes, over Lambda's ${LAMBDA_ENVIRONMENT_LIMIT_BYTES}-byte limit ` +
        '(too many Apple root certificates? StoreKit 2 signed data chains to Apple Root CA - G3).',
    );
  }
}
