import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AppleRootsMissingError, missingAppleRootsHelp, readAppleRootCertificates, type AppleRootFile } from '../lib/apple-roots';
import { CONTEXT_KEYS, ContextError, stackPropsFromContext, type ContextProps } from '../lib/context';
import { IapSyncStack } from '../lib/iap-sync-stack';

/**
 * Context keys (cdk.json or `-c key=value`), each with its default and meaning in lib/context.ts:
 * stage, workflowType, appleRootsDir, appleOnlineChecks, retryMaxAttempts, retryBaseSeconds,
 * retryMaxWaitSeconds, throttleBurstLimit, throttleRateLimit, routeThrottles, workflowLogLevel,
 * workflowLogExecutionData, alarmTopicArn, webhookMaxConcurrency, existingTableName, apiDomainName,
 * apiCertificateArn.
 */
const app = new App();
// AWS Solutions checks run at every synth and deploy: an unacknowledged error stops them.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function appleRoots(stage: ContextProps['stage']): AppleRootFile[] {
  const value: unknown = app.node.tryGetContext('appleRootsDir');
  const dir = typeof value === 'string' && value !== '' ? value : CONTEXT_KEYS.appleRootsDir.default;
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
    // A wrong root lets anyone who holds its key sign "Apple" transactions (the local simulator's root,
    // for one): never in prod.
    if (stage === 'prod') fail(`${message}\nRemove them: a prod stack trusts only Apple's published roots.`);
    console.warn(`WARNING: ${message}\nThe ${stage} stack trusts them anyway; a prod stack would refuse.`);
  }
  return roots;
}

let props: ContextProps;
try {
  props = stackPropsFromContext((key) => app.node.tryGetContext(key));
} catch (error) {
  if (error instanceof ContextError) fail(error.message);
  throw error;
}
new IapSyncStack(app, `IapSync-${props.stage}`, {
  ...props,
  appleRootCertificates: appleRoots(props.stage).map((root) => root.base64),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
