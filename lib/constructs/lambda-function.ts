import * as path from 'node:path';
import { type Duration, Token } from 'aws-cdk-lib';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { loadConfig } from '../../lambdas/shared/config';

/** The repository root: catalog entries and the ASL path are relative to it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/**
 * esbuild options of every function, shared with lib/build-lambdas.ts so the measured bundles
 * are the deployed ones. The AWS SDK is bundled (empty externalModules): a pinned, tree-shaken client
 * starts faster than the runtime's copy and does not change under us.
 */
export const LAMBDA_BUNDLING = {
  minify: true,
  sourceMap: true,
  target: 'node20',
  format: OutputFormat.CJS,
  externalModules: [] as string[],
} satisfies BundlingOptions;

/** Lambda allows 4 KB of environment variables in all (names and values). */
const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;
/** Room kept for a value that is a token at synth (an ARN or generated name) when checking that limit. */
const TOKEN_VALUE_ESTIMATE_BYTES = 160;

/** `api` functions answer HTTP requests; `workflow` functions are Task states of the state machine. */
export type LambdaKind = 'api' | 'workflow';

/** Inputs of {@link createLambdaFunction}. */
export interface LambdaFunctionProps {
  /** Handler module relative to the project root (a catalog `entry`); it exports `handler`. */
  entry: string;
  /** Chooses the memory size: 512 MB for workflow functions, 256 MB for API ones. */
  kind: LambdaKind;
  /** Lambda timeout. */
  timeout: Duration;
  /** Variables read by lambdas/shared/config.ts; validated against that schema at synth. */
  environment: Record<string, string>;
}

/**
 * A NodejsFunction with the house defaults: Node.js 22 on arm64, esbuild bundle with source maps,
 * X-Ray tracing, and its own log group kept 30 days.
 */
export function createLambdaFunction(scope: Construct, id: string, props: LambdaFunctionProps): NodejsFunction {
  const environment = { NODE_OPTIONS: '--enable-source-maps', ...props.environment };
  checkEnvironment(id, environment);

  const logGroup = new LogGroup(scope, `${id}Logs`, { retention: RetentionDays.ONE_MONTH });
  return new NodejsFunction(scope, id, {
    entry: path.join(PROJECT_ROOT, props.entry),
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    runtime: Runtime.NODEJS_22_X,
    architecture: Architecture.ARM_64,
    memorySize: props.kind === 'workflow' ? 512 : 256,
    timeout: props.timeout,
    tracing: Tracing.ACTIVE,
    logGroup,
    bundling: LAMBDA_BUNDLING,
    environment,
  });
}

/** Fails the synth, not the first invocation, when a function would reject its own configuration. */
function checkEnvironment(id: string, environment: Record<string, string>): void {
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
