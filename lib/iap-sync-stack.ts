import { ArnFormat, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { totalWaitSeconds, type RetryPolicy } from '../lambdas/domain/retry-policy';
import { API_FUNCTIONS, WORKFLOW_FUNCTIONS } from '../lambdas/shared/catalog';
import { loadConfig } from '../lambdas/shared/config';
import { DataTable } from './constructs/data-table';
import { SyncEventBus } from './constructs/event-bus';
import { SyncHttpApi } from './constructs/http-api';
import { createLambdaFunction } from './constructs/lambda-function';
import { SyncWorkflow } from './constructs/sync-workflow';
import { WebhookDelivery } from './constructs/webhook-delivery';
import type { ITopic } from 'aws-cdk-lib/aws-sns';

/** Store retry budget handed to MarkRetrying (RETRY_* variables). */
export interface RetryBudget {
  /** Verifications tried before the synchronization fails for good. */
  maxAttempts: number;
  /** First wait; each later wait doubles. */
  baseSeconds: number;
  /** Cap on a single wait. */
  maxWaitSeconds: number;
}

/** Props of {@link IapSyncStack}. */
export interface IapSyncStackProps extends StackProps {
  /** Deployment stage; names the event bus (`iap-sync-<stage>`) and the API. */
  stage: 'dev' | 'prod';
  /**
   * Step Functions workflow type. STANDARD survives the long store retry budget; EXPRESS is cheaper
   * but every execution ends at 5 minutes, so it needs a short retry budget.
   * @default 'STANDARD'
   */
  workflowType?: 'STANDARD' | 'EXPRESS';
  /**
   * Trusted roots for Apple's signed data: base64 DER certificates (see lib/apple-roots.ts).
   * At least one is required; the stack refuses to synthesize without.
   */
  appleRootCertificates: string[];
  /**
   * Store retry budget. With EXPRESS the waits must total under 4 minutes.
   * @default the Lambdas' own defaults: 8 attempts, 15 s doubling, 960 s cap (about 32 minutes of waits)
   */
  retry?: RetryBudget;
  /**
   * OCSP revocation checks of Apple's certificate chain.
   * @default true
   */
  appleOnlineChecks?: boolean;
  /** Receives alarms (webhook dead letters) when given. */
  alarmTopic?: ITopic;
  /** HTTP API stage throttling. @default { burstLimit: 200, rateLimit: 100 } */
  throttle?: { burstLimit: number; rateLimit: number };
}

/** The Lambdas' own defaults (lambdas/shared/config.ts): 8 attempts, 15 s doubling, 960 s cap. */
export const DEFAULT_RETRY: Readonly<RetryBudget> = resolveRetry(undefined);

/** EXPRESS executions end at 5 minutes; keep a minute for the Task states around the waits. */
const EXPRESS_WAIT_BUDGET_SECONDS = 240;
const API_TIMEOUT = Duration.seconds(10);
const LOG_LEVEL = 'info';

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * iap-sync: HTTP API -> register Lambda -> purchase-sync state machine (verify, retry, finalize)
 * -> `inappPurchaseSyncResult` on the service's event bus, with one DynamoDB table behind it.
 */
export class IapSyncStack extends Stack {
  constructor(scope: Construct, id: string, props: IapSyncStackProps) {
    super(scope, id, props);
    // Everything that can be wrong with the props is checked before any construct exists, so a bad
    // configuration fails in milliseconds instead of after bundling six functions.
    const workflowType = props.workflowType ?? 'STANDARD';
    const retry = resolveRetry(props.retry);
    checkRetryFitsWorkflow(workflowType, retry);
    const appleRoots = checkAppleRoots(props.appleRootCertificates);
    const appleOnlineChecks = props.appleOnlineChecks ?? loadConfig({}).APPLE_ONLINE_CHECKS === 'true';

    const { table } = new DataTable(this, 'Data');
    const events = new SyncEventBus(this, 'Events', { eventBusName: `iap-sync-${props.stage}` });
    const common = { TABLE_NAME: table.tableName, LOG_LEVEL };
    const publisherSecrets = this.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: 'iap-sync/*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const readSecrets = new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [publisherSecrets] });

    // Workflow functions first: the state machine needs their ARNs, and the register function
    // needs the state machine's ARN, so this order keeps the template free of cycles.
    const workflowExtras: Record<string, Record<string, string>> = {
      VerifyPurchase: {
        APPLE_ROOT_CERTIFICATES: appleRoots.join(','),
        APPLE_ONLINE_CHECKS: String(appleOnlineChecks),
      },
      MarkRetrying: {
        RETRY_MAX_ATTEMPTS: String(retry.maxAttempts),
        RETRY_BASE_SECONDS: String(retry.baseSeconds),
        RETRY_MAX_WAIT_SECONDS: String(retry.maxWaitSeconds),
      },
    };
    const workflowFunctions = new Map<string, IFunction>();
    for (const entry of WORKFLOW_FUNCTIONS) {
      const fn = createLambdaFunction(this, entry.id, {
        entry: entry.entry,
        kind: 'workflow',
        timeout: Duration.seconds(entry.timeoutSeconds),
        environment: { ...common, ...workflowExtras[entry.id] },
      });
      table.grantReadWriteData(fn);
      // Publishers' App Store Connect keys and Google service accounts are read from Secrets Manager.
      if (entry.readsSecrets) fn.addToRolePolicy(readSecrets);
      workflowFunctions.set(entry.id, fn);
    }

    const { stateMachine } = new SyncWorkflow(this, 'Workflow', {
      functions: workflowFunctions,
      eventBus: events.bus,
      stateMachineType: workflowType === 'EXPRESS' ? StateMachineType.EXPRESS : StateMachineType.STANDARD,
    });

    const apiFunctions = new Map<string, IFunction>();
    for (const entry of API_FUNCTIONS) {
      const { access } = entry;
      const fn = createLambdaFunction(this, entry.id, {
        entry: entry.entry,
        kind: 'api',
        timeout: API_TIMEOUT,
        environment: access.startsWorkflow ? { ...common, STATE_MACHINE_ARN: stateMachine.stateMachineArn } : common,
      });
      // Exactly what the catalog says the function needs (GetOpenApi: nothing at all).
      if (access.table === 'readwrite') table.grantReadWriteData(fn);
      if (access.table === 'read') table.grantReadData(fn);
      if (access.startsWorkflow) stateMachine.grantStartExecution(fn);
      // Customer tokens are HS256 JWTs keyed by a per-publisher secret in Secrets Manager.
      if (access.readsSecrets) fn.addToRolePolicy(readSecrets);
      apiFunctions.set(entry.id, fn);
    }

    const webhooks = new WebhookDelivery(this, 'Webhooks', { bus: events.bus, table, readSecrets, logLevel: LOG_LEVEL, ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}) });

    const http = new SyncHttpApi(this, 'Http', {
      apiName: `iap-sync-${props.stage}`,
      functions: apiFunctions,
      throttle: props.throttle,
    });

    new CfnOutput(this, 'ApiUrl', { value: http.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'TableName', { value: table.tableName });
    new CfnOutput(this, 'EventBusName', { value: events.bus.eventBusName });
    new CfnOutput(this, 'StateMachineArn', { value: stateMachine.stateMachineArn });
    new CfnOutput(this, 'WebhookQueueUrl', { value: webhooks.queue.queueUrl, description: 'Delivery queue (iap-sync webhook replay sends here)' });
  }
}

/** Fills defaults from the Lambdas' own config schema and rejects what MarkRetrying would reject. */
function resolveRetry(retry: RetryBudget | undefined): RetryPolicy {
  const env: Record<string, string> = {};
  if (retry) {
    env.RETRY_MAX_ATTEMPTS = String(retry.maxAttempts);
    env.RETRY_BASE_SECONDS = String(retry.baseSeconds);
    env.RETRY_MAX_WAIT_SECONDS = String(retry.maxWaitSeconds);
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env);
  } catch (error) {
    throw new Error(`Invalid retry budget ${JSON.stringify(retry)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    maxAttempts: config.RETRY_MAX_ATTEMPTS,
    baseSeconds: config.RETRY_BASE_SECONDS,
    maxWaitSeconds: config.RETRY_MAX_WAIT_SECONDS,
  };
}

function checkRetryFitsWorkflow(workflowType: 'STANDARD' | 'EXPRESS', retry: RetryPolicy): void {
  if (workflowType !== 'EXPRESS') return;
  const waits = totalWaitSeconds(retry);
  if (waits >= EXPRESS_WAIT_BUDGET_SECONDS) {
    throw new Error(
      `EXPRESS workflows end at 5 minutes, but the retry budget (${retry.maxAttempts} attempts, ` +
        `${retry.baseSeconds} s doubling, ${retry.maxWaitSeconds} s cap) waits ${waits} s in all; ` +
        `keep the waits under ${EXPRESS_WAIT_BUDGET_SECONDS} s ` +
        '(e.g. -c retryMaxAttempts=3 -c retryBaseSeconds=15 -c retryMaxWaitSeconds=60) or use workflowType STANDARD.',
    );
  }
}

function checkAppleRoots(roots: string[]): string[] {
  if (roots.length === 0) {
    throw new Error('appleRootCertificates is empty: without a trusted Apple root no purchase can be verified.');
  }
  for (const [index, root] of roots.entries()) {
    if (!base64.test(root)) throw new Error(`appleRootCertificates[${index}] is not base64 DER`);
  }
  return roots;
}
