import { Annotations, ArnFormat, CfnOutput, Duration, RemovalPolicies, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { type StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import type { Construct } from 'constructs';
import type { RetryPolicy } from '../lambdas/purchases/domain/retry-policy';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { API_FUNCTIONS, RECONCILE_FUNCTION, SWEEPER_FUNCTION, WEBHOOK_FUNCTION, WORKFLOW_FUNCTIONS } from './catalog';
import { TABLE_DEFINITION } from '../lambdas/platform/dynamodb-table';
import { loadConfig } from '../lambdas/platform/config';
import { DataTable } from './constructs/data-table';
import { SyncEventBus } from './constructs/event-bus';
import { checkThrottles, SyncHttpApi, type ThrottleLimits } from './constructs/http-api';
import { createLambdaFunction } from './constructs/lambda-function';
import { Monitoring, type MonitoringThresholds } from './constructs/monitoring';
import { defaultWorkflowLogging, SyncWorkflow, type WorkflowLogging } from './constructs/sync-workflow';
import { WebhookDelivery } from './constructs/webhook-delivery';
import { iam5ResourceFinding } from './nag';

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
   * Step Functions workflow type. STANDARD waits out a store outage inside the execution (exactly
   * once, 5 billed transitions per synchronization). EXPRESS is about 7× cheaper; its executions end
   * at 5 minutes, so while a store is down they park the synchronization and the recovery sweeper
   * (every minute on EXPRESS) starts each next attempt: the same retry budget, at-least-once executions
   * (a duplicate does not publish twice).
   * @default 'STANDARD'
   */
  workflowType?: 'STANDARD' | 'EXPRESS';
  /**
   * Trusted roots for Apple's signed data: base64 DER certificates (see lib/apple-roots.ts).
   * At least one is required; the stack refuses to synthesize without.
   */
  appleRootCertificates: string[];
  /**
   * Store retry budget (both workflow types).
   * @default the Lambdas' own defaults: 8 attempts, 15 s doubling, 960 s cap (about 32 minutes of waits)
   */
  retry?: RetryBudget;
  /**
   * OCSP revocation checks of Apple's certificate chain.
   * @default true
   */
  appleOnlineChecks?: boolean;
  /**
   * Receives every alarm (and its return to OK). Give this or {@link alarmTopicArn}, not both.
   * Without either the alarms only change state in the console (a prod synth warns).
   */
  alarmTopic?: ITopic;
  /** ARN of an existing SNS topic to receive the alarms (context key `alarmTopicArn`). */
  alarmTopicArn?: string;
  /** HTTP API stage throttling, the default of every route. @default { burstLimit: 200, rateLimit: 100 } */
  throttle?: ThrottleLimits;
  /**
   * Per-route throttling, keyed by route key (`POST /storekit2/purchases`); unknown route keys are
   * refused at synth. @default none: every route gets {@link throttle}
   */
  routeThrottles?: Readonly<Record<string, ThrottleLimits>>;
  /**
   * Step Functions execution logging.
   * @default ERROR without execution data for STANDARD, ALL without execution data for EXPRESS
   */
  workflowLogging?: WorkflowLogging;
  /** When the alarms fire. @default see DEFAULT_THRESHOLDS in lib/constructs/monitoring.ts */
  monitoringThresholds?: Partial<MonitoringThresholds>;
}

/** The Lambdas' own defaults (lambdas/platform/config.ts): 8 attempts, 15 s doubling, 960 s cap. */
export const DEFAULT_RETRY: Readonly<RetryBudget> = resolveRetry(undefined);

const API_TIMEOUT = Duration.seconds(10);
const LOG_LEVEL = 'info';

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;
const snsTopicArn = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;

/**
 * iap-sync: HTTP API -> register Lambda -> purchase-sync state machine (verify, retry, finalize)
 * -> `inappPurchaseSyncResult` on the service's event bus, with one DynamoDB table behind it.
 */
export class IapSyncStack extends Stack {
  constructor(scope: Construct, id: string, props: IapSyncStackProps) {
    super(scope, id, {
      description:
        `iap-sync ${props.stage}: in-app purchase synchronization. cdk destroy keeps the DynamoDB table ` +
        '(deletion protection and RETAIN)' +
        (props.stage === 'prod' ? ' and the log groups.' : '; it deletes the log groups.'),
      ...props,
    });
    // Everything that can be wrong with the props is checked before any construct exists, so a bad
    // configuration fails in milliseconds instead of after bundling six functions.
    const workflowType = props.workflowType ?? 'STANDARD';
    const retry = resolveRetry(props.retry);
    const appleRoots = checkAppleRoots(props.appleRootCertificates);
    const appleOnlineChecks = props.appleOnlineChecks ?? loadConfig({}).APPLE_ONLINE_CHECKS === 'true';
    const alarmTopicArn = checkAlarmTopic(props);
    checkThrottles(props.throttle, props.routeThrottles ?? {});
    const alarmTopic = props.alarmTopic ?? (alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', alarmTopicArn) : undefined);
    /** POWERTOOLS_SERVICE_NAME of every function and the `service` dimension of every metric. */
    const service = `iap-sync-${props.stage}`;

    const data = new DataTable(this, 'Data');
    const { table } = data;
    const events = new SyncEventBus(this, 'Events', { eventBusName: `iap-sync-${props.stage}` });
    const common = { TABLE_NAME: table.tableName, LOG_LEVEL };
    // The command line stores publishers' secrets as iap-sync/<stack name>/<purpose> (cli/target/deployed.ts),
    // so a dev stack cannot read the prod stack's keys in the same account.
    const secretsPrefix = `iap-sync/${this.stackName}/`;
    const publisherSecrets = this.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${secretsPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const readSecrets = new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [publisherSecrets] });
    const readSecretsFinding = iam5ResourceFinding(this, publisherSecrets);
    const acknowledgeReadSecrets = (fn: IFunction) =>
      Validations.of(fn.role?.node.tryFindChild('DefaultPolicy') ?? fn).acknowledge({
        id: readSecretsFinding,
        reason:
          `Publishers' secrets (App Store Connect keys, Google service accounts, JWT and webhook signing secrets) are created at ` +
          `run time by the iap-sync command line under ${secretsPrefix}<purpose>, one per publisher and endpoint, so their names ` +
          "are unknown at deploy time; the prefix confines the function to this stack's secrets, read-only (GetSecretValue).",
      });

    // Workflow functions first: the state machine needs their ARNs, and the register function
    // needs the state machine's ARN, so this order keeps the template free of cycles.
    const workflowExtras: Record<string, Record<string, string>> = {
      VerifyPurchase: {
        APPLE_ROOT_CERTIFICATES: appleRoots.join(','),
        APPLE_ONLINE_CHECKS: String(appleOnlineChecks),
      },
      MarkRetrying: {
        WORKFLOW_TYPE: workflowType,
        RETRY_MAX_ATTEMPTS: String(retry.maxAttempts),
        RETRY_BASE_SECONDS: String(retry.baseSeconds),
        RETRY_MAX_WAIT_SECONDS: String(retry.maxWaitSeconds),
      },
      // The finalize names the bus in the PutEvents entries the workflow's PublishResult state sends.
      FinalizeSynchronization: { EVENT_BUS_NAME: events.bus.eventBusName },
    };
    const workflowFunctions = new Map<string, IFunction>();
    for (const entry of WORKFLOW_FUNCTIONS) {
      const fn = createLambdaFunction(this, entry.id, {
        entry: entry.entry,
        kind: 'workflow',
        service,
        timeout: Duration.seconds(entry.timeoutSeconds),
        environment: { ...common, ...workflowExtras[entry.id] },
      });
      data.grantItems(fn, 'readwrite');
      // Publishers' App Store Connect keys and Google service accounts are read from Secrets Manager.
      if (entry.readsSecrets) {
        fn.addToRolePolicy(readSecrets);
        acknowledgeReadSecrets(fn);
      }
      workflowFunctions.set(entry.id, fn);
    }

    const { stateMachine } = new SyncWorkflow(this, 'Workflow', {
      functions: workflowFunctions,
      eventBus: events.bus,
      data,
      stateMachineType: workflowType === 'EXPRESS' ? StateMachineType.EXPRESS : StateMachineType.STANDARD,
      logging: props.workflowLogging ?? defaultWorkflowLogging(workflowType),
    });

    const apiFunctions = new Map<string, IFunction>();
    for (const entry of API_FUNCTIONS) {
      const { access } = entry;
      const fn = createLambdaFunction(this, entry.id, {
        entry: entry.entry,
        kind: 'api',
        service,
        timeout: API_TIMEOUT,
        environment: {
          ...common,
          ...(access.startsWorkflow ? { STATE_MACHINE_ARN: stateMachine.stateMachineArn } : {}),
          ...(entry.verifiesAppleSignatures
            ? { APPLE_ROOT_CERTIFICATES: appleRoots.join(','), APPLE_ONLINE_CHECKS: String(appleOnlineChecks) }
            : {}),
        },
      });
      // Exactly what the catalog says the function needs (GetOpenApi: nothing at all).
      if (access.table !== 'none') data.grantItems(fn, access.table);
      if (access.startsWorkflow) stateMachine.grantStartExecution(fn);
      // Customer tokens are HS256 JWTs keyed by a per-publisher secret in Secrets Manager.
      if (access.readsSecrets) {
        fn.addToRolePolicy(readSecrets);
        acknowledgeReadSecrets(fn);
      }
      apiFunctions.set(entry.id, fn);
    }

    const webhooks = new WebhookDelivery(this, 'Webhooks', {
      bus: events.bus,
      data,
      readSecrets,
      logLevel: LOG_LEVEL,
      service,
      ...(alarmTopic ? { alarmTopic } : {}),
    });
    acknowledgeReadSecrets(webhooks.fn);

    const http = new SyncHttpApi(this, 'Http', {
      apiName: `iap-sync-${props.stage}`,
      functions: apiFunctions,
      throttle: props.throttle,
      routeThrottles: props.routeThrottles,
    });

    const sweeper = this.recoverySweeper(data, stateMachine, events.bus, service, workflowType);
    const reconciler = this.reconciliation(data, stateMachine, service, appleRoots, appleOnlineChecks, readSecrets);
    acknowledgeReadSecrets(reconciler);

    const monitoring = new Monitoring(this, 'Monitoring', {
      service,
      api: http.api,
      stateMachine,
      functions: new Map([...apiFunctions, ...workflowFunctions, [WEBHOOK_FUNCTION.id, webhooks.fn], [SWEEPER_FUNCTION.id, sweeper], [RECONCILE_FUNCTION.id, reconciler]]),
      webhookQueue: webhooks.queue,
      deadLetterQueues: [
        { label: 'event dead letters', queue: webhooks.eventDeadLetters },
        { label: 'delivery dead letters', queue: webhooks.deliveryDeadLetters },
      ],
      otherAlarms: webhooks.alarms,
      ...(alarmTopic ? { alarmTopic } : {}),
      ...(props.monitoringThresholds ? { thresholds: props.monitoringThresholds } : {}),
    });

    // Entitlements and ownership history outlive the stack (DataTable: RETAIN and deletion protection).
    // Log groups: a prod stack keeps them for an investigation after teardown (their 30-day retention
    // still expires the events); a dev stack leaves nothing behind.
    RemovalPolicies.of(this).apply(props.stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY, {
      applyToResourceTypes: ['AWS::Logs::LogGroup'],
    });
    Annotations.of(table).addInfo(
      'cdk destroy keeps this DynamoDB table (RETAIN and deletion protection; its name is the TableName output); delete it yourself ' +
        'after turning deletion protection off, if you really mean to lose every entitlement.',
    );
    if (props.stage === 'prod' && alarmTopic === undefined) {
      Annotations.of(this).addWarningV2(
        'iap-sync:no-alarm-topic',
        'No alarm topic (context alarmTopicArn): the prod alarms will change state in the console but notify nobody.',
      );
    }

    new CfnOutput(this, 'ApiUrl', { value: http.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'TableName', {
      value: table.tableName,
      description: 'Kept by cdk destroy (RETAIN and deletion protection): entitlements outlive the stack',
    });
    new CfnOutput(this, 'EventBusName', { value: events.bus.eventBusName });
    new CfnOutput(this, 'StateMachineArn', { value: stateMachine.stateMachineArn });
    new CfnOutput(this, 'WebhookQueueUrl', { value: webhooks.queue.queueUrl, description: 'Delivery queue (iap-sync webhook replay sends here)' });
    new CfnOutput(this, 'WebhookEventDeadLettersUrl', {
      value: webhooks.eventDeadLetters.queueUrl,
      description: 'Events that never reached the delivery function (alarm webhook-event-dead-letters)',
    });
    new CfnOutput(this, 'WebhookDeliveryDeadLettersUrl', {
      value: webhooks.deliveryDeadLetters.queueUrl,
      description: 'Deliveries that exhausted their retries (alarm webhook-delivery-dead-letters; replay, then purge)',
    });
    new CfnOutput(this, 'DashboardUrl', { value: monitoring.dashboardUrl, description: 'CloudWatch dashboard of this stack' });
    new CfnOutput(this, 'RetainedOnDestroy', {
      value: props.stage === 'prod' ? `${table.tableName} and the log groups` : table.tableName,
      description: 'What cdk destroy leaves in the account',
    });
  }

  /**
   * The recovery sweeper (lambdas/lifecycle/domain/recover-synchronizations.ts), every SWEEPER_FUNCTION.scheduleMinutes
   * (1 minute on EXPRESS, where it also starts the next attempt of parked synchronizations):
   * restarts open synchronizations whose execution ended or never started, gives up on them after
   * RECOVERY_MAX_RESTARTS, and publishes events an ended execution left unpublished.
   */
  private recoverySweeper(data: DataTable, stateMachine: StateMachine, bus: IEventBus, service: string, workflowType: 'STANDARD' | 'EXPRESS'): IFunction {
    const fn = createLambdaFunction(this, SWEEPER_FUNCTION.id, {
      entry: SWEEPER_FUNCTION.entry,
      kind: 'workflow',
      service,
      timeout: Duration.seconds(SWEEPER_FUNCTION.timeoutSeconds),
      environment: {
        TABLE_NAME: data.table.tableName,
        LOG_LEVEL,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        EVENT_BUS_NAME: bus.eventBusName,
        WORKFLOW_TYPE: workflowType,
      },
    });
    data.grantItems(fn, 'readwrite');
    data.grantOpenIndexQuery(fn);
    stateMachine.grantStartExecution(fn);
    bus.grantPutEventsTo(fn);
    // DescribeExecution takes an execution ARN: <state machine's ARN with :execution:>:<name>. Names are
    // synchronization ids, unknown at deploy time.
    const executions = this.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    fn.addToRolePolicy(new PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executions] }));
    Validations.of(fn.role?.node.tryFindChild('DefaultPolicy') ?? fn).acknowledge({
      id: iam5ResourceFinding(this, executions),
      reason:
        "DescribeExecution of this stack's state machine only: its executions are named after synchronization ids, " +
        'which exist only at run time; the action is read-only.',
    });
    new Rule(this, 'RecoverySchedule', {
      description: 'iap-sync recovery sweeper: finishes synchronizations whose workflow was lost',
      schedule: Schedule.rate(Duration.minutes(SWEEPER_FUNCTION.scheduleMinutes[workflowType])),
      targets: [new LambdaFunction(fn, { retryAttempts: 0 })],
    });
    return fn;
  }

  /**
   * The scheduled reconciliation (lambdas/lifecycle/domain/reconcile-purchases.ts), every
   * RECONCILE_FUNCTION.scheduleMinutes: catches up Apple's Get Notification History from where the
   * last run ended and re-checks purchases whose expiry (plus grace) has passed, through the same
   * intake and workflow as the notification route.
   */
  private reconciliation(
    data: DataTable,
    stateMachine: StateMachine,
    service: string,
    appleRoots: string[],
    appleOnlineChecks: boolean,
    readSecrets: PolicyStatement,
  ): IFunction {
    const fn = createLambdaFunction(this, RECONCILE_FUNCTION.id, {
      entry: RECONCILE_FUNCTION.entry,
      kind: 'workflow',
      service,
      timeout: Duration.seconds(RECONCILE_FUNCTION.timeoutSeconds),
      environment: {
        TABLE_NAME: data.table.tableName,
        LOG_LEVEL,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        APPLE_ROOT_CERTIFICATES: appleRoots.join(','),
        APPLE_ONLINE_CHECKS: String(appleOnlineChecks),
      },
    });
    data.grantItems(fn, 'readwrite');
    // The reconcile-due index by its own ARN (never <table>/index/*).
    fn.addToRolePolicy(
      new PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${data.table.tableArn}/index/${TABLE_DEFINITION.reconcileIndex.indexName}`] }),
    );
    // The list of publishers is a filtered Scan (a publisher index is left for later: see the README).
    fn.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Scan'], resources: [data.table.tableArn] }));
    stateMachine.grantStartExecution(fn);
    // Publishers' App Store Connect keys sign the Get Notification History requests.
    fn.addToRolePolicy(readSecrets);
    new Rule(this, 'ReconcileSchedule', {
      description: 'iap-sync reconciliation: catches up lost store notifications and re-checks expired purchases',
      schedule: Schedule.rate(Duration.minutes(RECONCILE_FUNCTION.scheduleMinutes)),
      targets: [new LambdaFunction(fn, { retryAttempts: 0 })],
    });
    return fn;
  }
}

function checkAlarmTopic(props: IapSyncStackProps): string | undefined {
  if (props.alarmTopic && props.alarmTopicArn) throw new Error('Give alarmTopic or alarmTopicArn, not both');
  if (props.alarmTopicArn !== undefined && !snsTopicArn.test(props.alarmTopicArn)) {
    throw new Error(`alarmTopicArn "${props.alarmTopicArn}" is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)`);
  }
  return props.alarmTopicArn;
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


function checkAppleRoots(roots: string[]): string[] {
  if (roots.length === 0) {
    throw new Error('appleRootCertificates is empty: without a trusted Apple root no purchase can be verified.');
  }
  for (const [index, root] of roots.entries()) {
    if (!base64.test(root)) throw new Error(`appleRootCertificates[${index}] is not base64 DER`);
  }
  return roots;
}
