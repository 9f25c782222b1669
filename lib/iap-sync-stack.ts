import { Annotations, ArnFormat, Aws, CfnOutput, CfnRule, Duration, Fn, RemovalPolicies, RemovalPolicy, Stack, type StackProps, Token, Validations } from 'aws-cdk-lib';
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
import { checkThrottles, type CustomDomain, SyncHttpApi, type ThrottleLimits } from './constructs/http-api';
import { createLambdaFunction } from './constructs/lambda-function';
import { Monitoring, type MonitoringThresholds } from './constructs/monitoring';
import { defaultWorkflowLogging, SyncWorkflow, type WorkflowLogging } from './constructs/sync-workflow';
import { checkWebhookMaxConcurrency, WebhookDelivery } from './constructs/webhook-delivery';
import { iam5ResourceFinding } from './nag';
import { checkRetryBudget } from './retry-budget';
import { SECRET_SCOPES, secretNamePattern, type SecretScope } from './secret-scopes';

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
  /**
   * Deployment stage, lowercase letters, digits and dashes (STAGE_NAME); names the stack
   * (`IapSync-<stage>` in bin/app.ts), the event bus and the API (`iap-sync-<stage>`). `prod` also keeps
   * the log groups on destroy, refuses unknown Apple roots and warns without an alarm topic.
   */
  stage: string;
  /**
   * Step Functions workflow type. STANDARD waits out a store outage inside the execution (exactly
   * once, 5 billed transitions per synchronization). EXPRESS is about 7× cheaper; its executions end
   * at 5 minutes, so while a store is down they park the synchronization and the recovery sweeper
   * (every minute on EXPRESS) starts each next attempt: the same retry budget, at-least-once executions
   * (a duplicate does not publish twice), and a Google acknowledgement it cannot get through within
   * about a minute is left to the hourly reconciliation (as on STANDARD).
   * @default 'EXPRESS'
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
  /**
   * Most webhook delivery functions running at once (2 to 1000).
   * @default DEFAULT_WEBHOOK_MAX_CONCURRENCY (5) in lib/constructs/webhook-delivery.ts
   */
  webhookMaxConcurrency?: number;
  /**
   * Use this existing DynamoDB table (a table kept by `cdk destroy`, or a restored one) instead of
   * creating one. It must have the shape of TABLE_DEFINITION. @default a new table
   */
  existingTableName?: string;
  /** Serve the API on a custom domain too; output `CustomDomainUrl` and `CustomDomainTarget`. @default none */
  customDomain?: CustomDomain;
}

/** The Lambdas' own defaults (lambdas/platform/config.ts): 8 attempts, 15 s doubling, 960 s cap. */
export const DEFAULT_RETRY: Readonly<RetryBudget> = resolveRetry(undefined);

const API_TIMEOUT = Duration.seconds(10);
const LOG_LEVEL = 'info';

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;
const snsTopicArn = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;
const acmCertificateArn = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[A-Za-z0-9-]+$/;
const hostName = /^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/**
 * Stage names: lowercase letters, digits and single dashes, starting with a letter, at most 20
 * characters, so every name built from them (`IapSync-<stage>`, `iap-sync-<stage>-<region>` dashboards,
 * alarm names, log groups) stays within its service's limits.
 */
export const STAGE_NAME = /^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$/;
export const STAGE_NAME_MAX_LENGTH = 20;

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
    checkStage(props.stage);
    const workflowType = props.workflowType ?? 'EXPRESS';
    const retry = resolveRetry(props.retry);
    checkRetryBudget(retry, workflowType);
    const appleRoots = checkAppleRoots(props.appleRootCertificates);
    const appleOnlineChecks = props.appleOnlineChecks ?? loadConfig({}).APPLE_ONLINE_CHECKS === 'true';
    const alarmTopicArn = checkAlarmTopic(props);
    if (alarmTopicArn !== undefined) this.requireStackRegion('AlarmTopic', regionOf(snsTopicArn, alarmTopicArn), 'alarmTopicArn', 'CloudWatch alarms notify topics of their own region only');
    if (props.customDomain) {
      checkCustomDomain(props.customDomain);
      this.requireStackRegion(
        'Certificate',
        regionOf(acmCertificateArn, props.customDomain.certificateArn),
        'customDomain certificateArn',
        'a regional API domain takes a certificate of its own region',
      );
    }
    checkWebhookMaxConcurrency(props.webhookMaxConcurrency);
    checkThrottles(props.throttle, props.routeThrottles ?? {});
    const alarmTopic = props.alarmTopic ?? (alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', alarmTopicArn) : undefined);
    /** POWERTOOLS_SERVICE_NAME of every function and the `service` dimension of every metric. */
    const service = `iap-sync-${props.stage}`;

    const data = new DataTable(this, 'Data', props.existingTableName !== undefined ? { existingTableName: props.existingTableName } : {});
    const { table } = data;
    const events = new SyncEventBus(this, 'Events', { eventBusName: `iap-sync-${props.stage}` });
    const common = { TABLE_NAME: table.tableName, LOG_LEVEL };
    // The command line stores publishers' secrets as iap-sync/<stack name>/<purpose> (cli/target/deployed.ts),
    // every purpose starting with the prefix of its scope (lib/secret-scopes.ts). Each function may read the
    // scopes the catalog gives it and no other: the API functions customers' JWT secrets only, never a store
    // key or a webhook signing secret; and a dev stack nothing of the prod stack's in the same account.
    const grantSecrets = (fn: IFunction, scopes: readonly SecretScope[], action = 'secretsmanager:GetSecretValue') => {
      if (scopes.length === 0) return;
      const resources = scopes.map((scope) =>
        this.formatArn({
          service: 'secretsmanager',
          resource: 'secret',
          resourceName: secretNamePattern(this.stackName, scope),
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      );
      fn.addToRolePolicy(new PolicyStatement({ actions: [action], resources }));
      for (const [index, scope] of scopes.entries()) {
        Validations.of(fn.role?.node.tryFindChild('DefaultPolicy') ?? fn).acknowledge({
          id: iam5ResourceFinding(this, resources[index] ?? ''),
          reason:
            `Publishers' ${SECRET_SCOPES[scope].holds} are created at run time by the iap-sync command line as ` +
            `${secretNamePattern(this.stackName, scope)}, one per publisher (and endpoint), so their names are unknown at deploy ` +
            `time; the prefix confines the function to this stack's secrets of that one purpose (${action}).`,
        });
      }
    };

    // Workflow functions first: the state machine needs their ARNs, and the register function
    // needs the state machine's ARN, so this order keeps the template free of cycles.
    const workflowExtras: Record<string, Record<string, string>> = {
      VerifyApplePurchase: {
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
        service,
        timeout: Duration.seconds(entry.timeoutSeconds),
        environment: { ...common, ...workflowExtras[entry.id] },
      });
      data.grantItems(fn, 'readwrite');
      // Publishers' App Store Connect keys and Google service accounts are read from Secrets Manager.
      grantSecrets(fn, entry.secrets);
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
      grantSecrets(fn, access.secrets);
      apiFunctions.set(entry.id, fn);
    }

    const webhooks = new WebhookDelivery(this, 'Webhooks', {
      bus: events.bus,
      data,
      logLevel: LOG_LEVEL,
      service,
      ...(alarmTopic ? { alarmTopic } : {}),
      ...(props.webhookMaxConcurrency !== undefined ? { maxConcurrency: props.webhookMaxConcurrency } : {}),
    });
    grantSecrets(webhooks.fn, WEBHOOK_FUNCTION.secrets);
    // It also deletes an endpoint's signing secrets once a rotation has retired them (lambdas/webhooks/domain/
    // deliver-webhooks.ts): webhook signing secrets only, which no other function may read.
    grantSecrets(webhooks.fn, ['webhook'], 'secretsmanager:DeleteSecret');

    const http = new SyncHttpApi(this, 'Http', {
      apiName: `iap-sync-${props.stage}`,
      functions: apiFunctions,
      throttle: props.throttle,
      routeThrottles: props.routeThrottles,
      ...(props.customDomain ? { customDomain: props.customDomain } : {}),
    });

    const sweeper = this.recoverySweeper(data, stateMachine, events.bus, service, workflowType);
    const reconciler = this.reconciliation(data, stateMachine, service, appleRoots, appleOnlineChecks);
    grantSecrets(reconciler, RECONCILE_FUNCTION.secrets);

    const monitoring = new Monitoring(this, 'Monitoring', {
      service,
      api: http.api,
      stateMachine,
      functions: new Map([...apiFunctions, ...workflowFunctions, [WEBHOOK_FUNCTION.id, webhooks.fn], [SWEEPER_FUNCTION.id, sweeper], [RECONCILE_FUNCTION.id, reconciler]]),
      taskFunctions: new Set(WORKFLOW_FUNCTIONS.map((entry) => entry.id)),
      singleRunFunctions: new Set([SWEEPER_FUNCTION.id]),
      table,
      tableIndexNames: [TABLE_DEFINITION.openIndex.indexName, TABLE_DEFINITION.reconcileIndex.indexName],
      sweeperScheduleMinutes: SWEEPER_FUNCTION.scheduleMinutes[workflowType],
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
      data.imported
        ? 'This stack uses an existing DynamoDB table (existingTableName) and never changes or deletes it.'
        : 'cdk destroy keeps this DynamoDB table (RETAIN and deletion protection; its name is the TableName output); delete it yourself ' +
            'after turning deletion protection off, if you really mean to lose every entitlement.',
    );
    if (props.stage === 'prod' && alarmTopic === undefined) {
      Annotations.of(this).addWarningV2(
        'iap-sync:no-alarm-topic',
        'No alarm topic (context alarmTopicArn): the prod alarms will change state in the console but notify nobody.',
      );
    }

    new CfnOutput(this, 'ApiUrl', { value: http.url, description: 'Base URL of the HTTP API' });
    if (props.customDomain && http.domain) {
      new CfnOutput(this, 'CustomDomainUrl', { value: `https://${props.customDomain.domainName}/`, description: 'Base URL of the HTTP API on its custom domain' });
      new CfnOutput(this, 'CustomDomainTarget', {
        value: http.domain.regionalDomainName,
        description: `DNS: a CNAME (or an alias record) of ${props.customDomain.domainName} to this name`,
      });
    }
    new CfnOutput(this, 'TableName', {
      value: table.tableName,
      description: data.imported
        ? 'An existing table this stack uses (existingTableName); cdk destroy leaves it alone'
        : 'Kept by cdk destroy (RETAIN and deletion protection): entitlements outlive the stack',
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
    const scheduleMinutes = SWEEPER_FUNCTION.scheduleMinutes[workflowType];
    const fn = createLambdaFunction(this, SWEEPER_FUNCTION.id, {
      entry: SWEEPER_FUNCTION.entry,
      service,
      timeout: Duration.seconds(SWEEPER_FUNCTION.timeoutSeconds),
      // One sweep at a time: two would restart the same synchronization twice (on EXPRESS a sweep can
      // outlast its 1-minute schedule).
      reservedConcurrency: 1,
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
      schedule: Schedule.rate(Duration.minutes(scheduleMinutes)),
      targets: [new LambdaFunction(fn, { retryAttempts: 0 })],
    });
    // A scheduled run throttled because the previous one is still going is dropped after one interval
    // (Lambda would otherwise keep retrying it for 6 hours), and a failed run is not retried: the next
    // scheduled one is the retry.
    fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(scheduleMinutes) });
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
  ): IFunction {
    const fn = createLambdaFunction(this, RECONCILE_FUNCTION.id, {
      entry: RECONCILE_FUNCTION.entry,
      service,
      timeout: Duration.seconds(RECONCILE_FUNCTION.timeoutSeconds),
      // One run at a time: two would read the same history pages and advance the same cursor.
      reservedConcurrency: 1,
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
    // Publishers are listed from one directory item; a stack whose publishers predate it is migrated
    // by the first listing, a single Scan (tenants/adapters/dynamodb-publisher-repository.ts).
    fn.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Scan'], resources: [data.table.tableArn] }));
    stateMachine.grantStartExecution(fn);
    // Secrets (RECONCILE_FUNCTION.secrets) are granted by the caller: App Store Connect keys sign the Get
    // Notification History requests, Google service accounts re-read due Google purchases.
    new Rule(this, 'ReconcileSchedule', {
      description: 'iap-sync reconciliation: catches up lost store notifications and re-checks expired purchases',
      schedule: Schedule.rate(Duration.minutes(RECONCILE_FUNCTION.scheduleMinutes)),
      targets: [new LambdaFunction(fn, { retryAttempts: 0 })],
    });
    // As the sweeper's: a run the previous one still blocks is dropped, not queued; the next run resumes from the cursor.
    fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(RECONCILE_FUNCTION.scheduleMinutes) });
    return fn;
  }

  /**
   * `what` must be in the stack's region. Refused at synth when the stack's region is known (an `env`,
   * or CDK_DEFAULT_REGION in bin/app.ts); otherwise a template rule refuses the deploy in another region
   * before anything is created.
   */
  private requireStackRegion(id: string, region: string, what: string, why: string): void {
    if (!Token.isUnresolved(this.region)) {
      if (region !== this.region) throw new Error(`${what} is in ${region}, not in the stack's region ${this.region}: ${why}.`);
      return;
    }
    new CfnRule(this, `${id}InStackRegion`, {
      assertions: [{ assert: Fn.conditionEquals(Aws.REGION, region), assertDescription: `${what} is in ${region}: deploy this stack in ${region} (${why}).` }],
    });
  }
}

function checkStage(stage: string): void {
  if (!STAGE_NAME.test(stage) || stage.length > STAGE_NAME_MAX_LENGTH) {
    throw new Error(
      `stage "${stage}" must be lowercase letters, digits and single dashes, start with a letter and end with a letter or digit, at most ${STAGE_NAME_MAX_LENGTH} characters`,
    );
  }
}

function regionOf(pattern: RegExp, arn: string): string {
  const region = pattern.exec(arn)?.[1];
  if (region === undefined) throw new Error(`No region in ${arn}`);
  return region;
}

function checkCustomDomain(domain: CustomDomain): void {
  if (!hostName.test(domain.domainName)) throw new Error(`customDomain domainName "${domain.domainName}" is not a lowercase host name (api.example.com)`);
  if (!acmCertificateArn.test(domain.certificateArn)) {
    throw new Error(`customDomain certificateArn "${domain.certificateArn}" is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)`);
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
