import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { AppleRootsMissingError, missingAppleRootsHelp, readAppleRootCertificates, type AppleRootFile } from '../lib/apple-roots';
import { DEFAULT_RETRY, IapSyncStack, type IapSyncStackProps, type RetryBudget } from '../lib/iap-sync-stack';

/**
 * Context keys (cdk.json or `-c key=value`): stage, workflowType, appleRootsDir, appleOnlineChecks,
 * retryMaxAttempts, retryBaseSeconds, retryMaxWaitSeconds.
 */
const app = new App();

function context(name: string): string | undefined {
  const value: unknown = app.node.tryGetContext(name);
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = context(name) ?? fallback;
  return (allowed as readonly string[]).includes(value)
    ? (value as T)
    : fail(`Context ${name}=${value} is not one of ${allowed.join(', ')}`);
}

function integer(name: string): number | undefined {
  const value = context(name);
  if (value === undefined) return undefined;
  const parsed = Number(value);
  return Number.isInteger(parsed) ? parsed : fail(`Context ${name}=${value} is not an integer`);
}

function retryBudget(): RetryBudget | undefined {
  const maxAttempts = integer('retryMaxAttempts');
  const baseSeconds = integer('retryBaseSeconds');
  const maxWaitSeconds = integer('retryMaxWaitSeconds');
  if (maxAttempts === undefined && baseSeconds === undefined && maxWaitSeconds === undefined) return undefined;
  // A partial override keeps the defaults for the other two.
  return {
    maxAttempts: maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    baseSeconds: baseSeconds ?? DEFAULT_RETRY.baseSeconds,
    maxWaitSeconds: maxWaitSeconds ?? DEFAULT_RETRY.maxWaitSeconds,
  };
}

function appleRoots(stage: IapSyncStackProps['stage']): AppleRootFile[] {
  const dir = context('appleRootsDir') ?? 'config/apple-roots';
  let roots: AppleRootFile[];
  try {
    roots = readAppleRootCertificates(path.resolve(dir));
  } catch (error) {
    if (error instanceof AppleRootsMissingError) fail(missingAppleRootsHelp(dir));
    throw error;
  }
  const unknown = roots.filter((root) => root.knownAs === undefined);
  if (unknown.length > 0) {
    const list = unknown.map((root) => `  ${root.file}  SHA-256 ${root.sha256}`).join('\n');
    const message = `These files in ${dir} are not known Apple root certificates:\n${list}`;
    // A wrong root lets anyone who holds its key sign "Apple" transactions: never in prod.
    if (stage === 'prod') fail(`${message}\nRemove them: a prod stack trusts only Apple's published roots.`);
    console.warn(`WARNING: ${message}\nThe ${stage} stack trusts them anyway; a prod stack would refuse.`);
  }
  return roots;
}

const stage = oneOf('stage', ['dev', 'prod'] as const, 'dev');
const onlineChecks = context('appleOnlineChecks');
new IapSyncStack(app, `IapSync-${stage}`, {
  stage,
  workflowType: oneOf('workflowType', ['STANDARD', 'EXPRESS'] as const, 'STANDARD'),
  appleRootCertificates: appleRoots(stage).map((root) => root.base64),
  retry: retryBudget(),
  appleOnlineChecks: onlineChecks === undefined ? undefined : oneOf('appleOnlineChecks', ['true', 'false'] as const, 'true') === 'true',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
