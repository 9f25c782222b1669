import { Duration, Stack } from 'aws-cdk-lib';
import type { IHttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  type AlarmProps,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IMetric,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { STORES, SYNC_RESULTS } from '../../lambdas/events/vocabulary';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/platform/metric-names';

/** When the alarms of {@link Monitoring} fire. */
export interface MonitoringThresholds {
  /** API 5xx responses, in percent of requests over 5 minutes. @default 5 */
  api5xxPercent: number;
  /**
   * Requests in a 5-minute period below which the 5xx rate does not count: one error in two
   * requests at 3 a.m. is 50 % and nobody should be woken for it. @default 20
   */
  apiMinimumRequests: number;
  /** Failed store calls per 5 minutes, per store, sustained for 3 periods in a row. @default 5 */
  storeErrorsPerPeriod: number;
  /**
   * Refreshes the hourly reconciliation may start before it alarms: each is a lost notification or
   * a purchase past its expiry that no notification settled. @default 50
   */
  reconcileRefreshesPerHour: number;
  /**
   * Errors (an uncaught exception or a timeout) of an API, webhook or scheduled function in a
   * 5-minute period. Their handlers answer or record failures themselves, so any error is a crash. @default 1
   */
  functionErrorsPerPeriod: number;
  /**
   * Errors of a workflow Task function per 5-minute period, 3 periods in a row: they throw retryable
   * errors on purpose (a store or the table unavailable) and the workflow retries them. @default 5
   */
  taskErrorsPerPeriod: number;
  /** Age of the oldest webhook delivery waiting in the queue, in seconds (retries are new messages, so their wait does not count). @default 1800 */
  webhookOldestMessageSeconds: number;
  /** DynamoDB read and write throttle events (table and indexes) per 5-minute period, in 2 of 3 periods. @default 5 */
  tableThrottleEventsPerPeriod: number;
  /**
   * Hours in a row (hourly reconciliation runs) that ended with at least one Google acknowledgement
   * still pending before it alarms: Google refunds what stays unacknowledged for three days. @default 3
   */
  acknowledgementPendingHours: number;
}

export const DEFAULT_THRESHOLDS: Readonly<MonitoringThresholds> = {
  api5xxPercent: 5,
  apiMinimumRequests: 20,
  storeErrorsPerPeriod: 5,
  reconcileRefreshesPerHour: 50,
  functionErrorsPerPeriod: 1,
  taskErrorsPerPeriod: 5,
  webhookOldestMessageSeconds: 1800,
  tableThrottleEventsPerPeriod: 5,
  acknowledgementPendingHours: 3,
};

/** Props of {@link Monitoring}. */
export interface MonitoringProps {
  /** `iap-sync-<stage>`: the `service` dimension of every iap-sync metric, and the prefix of alarm names. */
  service: string;
  api: IHttpApi;
  stateMachine: IStateMachine;
  /** Every function of the stack, keyed by catalog id; one line each in the Lambda widgets, and an errors and a throttles alarm each. */
  functions: ReadonlyMap<string, IFunction>;
  /** Catalog ids of the workflow's Task functions, whose errors the workflow retries by design (taskErrorsPerPeriod). */
  taskFunctions: ReadonlySet<string>;
  /**
   * Catalog ids of functions with reserved concurrency 1 run every few minutes, where a throttle is a
   * run that found the previous one still going: their throttles alarm only when sustained (3 periods).
   */
  singleRunFunctions: ReadonlySet<string>;
  /** The table, and its global secondary indexes by name: read and write throttle events. */
  table: ITable;
  tableIndexNames: readonly string[];
  /** Minutes between two recovery sweeps: its heartbeat alarm expects a StuckSynchronizations value every run. */
  sweeperScheduleMinutes: number;
  /** The webhook delivery queue (depth and age on the dashboard; its oldest message's age alarms). */
  webhookQueue: IQueue;
  /** Dead-letter queues to chart, by label. */
  deadLetterQueues: ReadonlyArray<{ label: string; queue: IQueue }>;
  /** Alarms made elsewhere (the dead-letter alarms) to show in the alarm widget. */
  otherAlarms?: readonly IAlarm[];
  /** Receives every alarm and its return to OK. Without it the alarms only change state in the console. */
  alarmTopic?: ITopic;
  thresholds?: Partial<MonitoringThresholds>;
}

const FIVE_MINUTES = Duration.minutes(5);
/**
 * Period of the stuck-synchronization alarm: at least the recovery sweeper's schedule (5 minutes),
 * so one sweep that found some keeps the alarm up until a later sweep finds none.
 */
const STUCK_PERIOD = Duration.minutes(15);

/**
 * CloudWatch dashboard and alarms of one iap-sync stack, all alarms to `alarmTopic`. iap-sync's own
 * metrics (namespace IapSync, lambdas/platform/metric-names.ts) are read with the known dimension
 * values where the code defines them (results, stores), so a typo cannot hide a line and a result
 * added to RESULTS appears by itself; webhook outcomes and recovery actions are named only in
 * comments, so their widgets use SEARCH and show whatever value the functions publish.
 */
export class Monitoring extends Construct {
  readonly dashboard: Dashboard;
  /** Console address of the dashboard. */
  readonly dashboardUrl: string;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const thresholds = { ...DEFAULT_THRESHOLDS, ...props.thresholds };
    const { service } = props;
    const region = Stack.of(this).region;
    const own = (name: string, dimensions: Record<string, string> = {}, statistic: string = Stats.SUM, period = FIVE_MINUTES) =>
      new Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { service, ...dimensions }, statistic, period });
    const search = (metricName: string, dimension: string, statistic: string) =>
      new MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},${dimension},service} MetricName="${metricName}" service="${service}"', '${statistic}', 300)`,
        usingMetrics: {},
        label: '',
        period: FIVE_MINUTES,
      });
    const alarm = (name: string, description: string, options: Omit<AlarmProps, 'alarmName' | 'alarmDescription'>) => {
      const created = new Alarm(this, name, {
        // No data means no requests, executions or store calls: nothing is failing.
        treatMissingData: TreatMissingData.NOT_BREACHING,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        ...options,
        alarmName: `${service}-${kebab(name)}`,
        alarmDescription: `${description} Runbook: README, Operations, alarm ${service}-${kebab(name)}.`,
      });
      if (props.alarmTopic) {
        created.addAlarmAction(new SnsAction(props.alarmTopic));
        created.addOkAction(new SnsAction(props.alarmTopic));
      }
      this.alarms.push(created);
      return created;
    };

    // --- API -----------------------------------------------------------------------------------
    const requests = props.api.metricCount({ period: FIVE_MINUTES, statistic: Stats.SUM, label: 'requests' });
    const clientErrors = props.api.metricClientError({ period: FIVE_MINUTES, statistic: Stats.SUM, label: '4xx' });
    const serverErrors = props.api.metricServerError({ period: FIVE_MINUTES, statistic: Stats.SUM, label: '5xx' });
    const serverErrorRate = new MathExpression({
      expression: `IF(requests >= ${thresholds.apiMinimumRequests}, 100 * FILL(errors, 0) / requests, 0)`,
      usingMetrics: { requests, errors: serverErrors },
      label: `5xx % (0 under ${thresholds.apiMinimumRequests} requests)`,
      period: FIVE_MINUTES,
    });
    alarm(
      'Api5xxRate',
      `More than ${thresholds.api5xxPercent} % of API requests answered 5xx in 2 of the last 3 five-minute periods ` +
        `(periods with fewer than ${thresholds.apiMinimumRequests} requests count as 0 %).`,
      { metric: serverErrorRate, threshold: thresholds.api5xxPercent, evaluationPeriods: 3, datapointsToAlarm: 2 },
    );

    // --- Workflow ------------------------------------------------------------------------------
    const machine = props.stateMachine;
    // Unlabelled: a labelled metric turns an alarm into a metric-math alarm for nothing; the dashboard labels them.
    const executions = {
      started: machine.metricStarted({ period: FIVE_MINUTES }),
      succeeded: machine.metricSucceeded({ period: FIVE_MINUTES }),
      failed: machine.metricFailed({ period: FIVE_MINUTES }),
      timedOut: machine.metricTimedOut({ period: FIVE_MINUTES }),
      aborted: machine.metricAborted({ period: FIVE_MINUTES }),
    };
    alarm(
      'WorkflowFailed',
      'A purchase-sync execution failed: every failure path finalizes first, so this is FinalizationFailed or PublishFailed ' +
        '(the table or the bus refused through all retries) or an unexpected error; the recovery sweeper finishes the synchronization.',
      { metric: executions.failed, threshold: 1, evaluationPeriods: 1 },
    );
    alarm(
      'WorkflowTimedOut',
      'A purchase-sync execution hit the workflow timeout before finalizing; its lock is released when the lease ends and the sweeper finishes it.',
      { metric: executions.timedOut, threshold: 1, evaluationPeriods: 1 },
    );
    alarm(
      'WorkflowAborted',
      'A purchase-sync execution was stopped (StopExecution, by a person or a script) before finalizing.',
      { metric: executions.aborted, threshold: 1, evaluationPeriods: 1 },
    );

    // --- Stores --------------------------------------------------------------------------------
    for (const store of STORES) {
      alarm(
        `StoreErrors${store === 'apple' ? 'Apple' : 'Google'}`,
        `At least ${thresholds.storeErrorsPerPeriod} failed ${store} store calls (5xx, 429, timeouts, network, 401/403) in each of ` +
          '3 five-minute periods in a row: synchronizations are retrying and will finalize SYNCHRONIZATION_FAILED if it lasts.',
        {
          metric: own(METRIC.storeErrors.name, { [METRIC.storeErrors.dimension]: store }),
          threshold: thresholds.storeErrorsPerPeriod,
          evaluationPeriods: 3,
        },
      );
    }

    // Every failed attempt counts (the workflow's, a few within a minute per purchase, and the
    // reconciliation's): failures in three ten-minute periods in a row are Google refusing or not
    // answering for half an hour while purchases keep coming, not a blip.
    alarm(
      'GoogleAcknowledgementFailing',
      'Google refused or did not answer purchase acknowledgements for 30 minutes: Google refunds a subscription left unacknowledged for three days. ' +
        'Check the service account (Play Console permissions) and StoreErrorsGoogle; the acknowledgements the workflow could not get through are pending, and the hourly reconciliation asks again.',
      { metric: own(METRIC.acknowledgeFailures.name, {}, Stats.SUM, Duration.minutes(10)), threshold: 1, evaluationPeriods: 3 },
    );
    // Published by every reconciliation run (zero included) after its attempts: a minimum of at least
    // one, hour after hour, is an acknowledgement Google has kept refusing, whatever else came and went.
    alarm(
      'GoogleAcknowledgementPending',
      `At least one Google acknowledgement has stayed pending through ${thresholds.acknowledgementPendingHours} hourly reconciliation runs in a row: ` +
        'Google refunds a purchase left unacknowledged for three days. `iap-sync sync show` of its synchronization shows the last error; fix the cause (service account, Play Console permissions).',
      {
        metric: own(METRIC.acknowledgementsPending.name, {}, Stats.MINIMUM, Duration.hours(1)),
        threshold: 1,
        evaluationPeriods: thresholds.acknowledgementPendingHours,
      },
    );
    alarm(
      'GoogleAcknowledgementGivenUp',
      'A Google purchase could not be acknowledged within its three days, or Google refused the acknowledgement for good: Google refunds (or has refunded) it. ' +
        'The reconciliation log line "acknowledgement given up" names the synchronization; the customer keeps access until the refund arrives as a notification.',
      { metric: own(METRIC.acknowledgementsGivenUp.name, {}, Stats.SUM, Duration.hours(1)), threshold: 1, evaluationPeriods: 1 },
    );

    // --- Recovery ------------------------------------------------------------------------------
    const stuck = own(METRIC.stuck.name, {}, Stats.MAXIMUM, STUCK_PERIOD);
    alarm(
      'StuckSynchronizations',
      'The recovery sweeper found open synchronizations whose execution is no longer running (it restarts or fails them).',
      { metric: stuck, threshold: 1, evaluationPeriods: 1 },
    );
    // The sweeper publishes StuckSynchronizations at the end of every sweep, zero included
    // (lambdas/lifecycle/handlers/recover-synchronizations.ts): no sample in two windows of at least three
    // sweeps means it is not running (schedule disabled, a crash before the metrics flush, throttled).
    const heartbeatPeriod = Duration.minutes(Math.max(15, 3 * props.sweeperScheduleMinutes));
    alarm(
      'RecoverySweeperSilent',
      `The recovery sweeper (every ${props.sweeperScheduleMinutes} min) has not reported a sweep for ${heartbeatPeriod.toMinutes() * 2} minutes: ` +
        'lost executions are not being finished. A new stack raises it until the first sweep.',
      {
        metric: own(METRIC.stuck.name, {}, Stats.SAMPLE_COUNT, heartbeatPeriod),
        threshold: 1,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: TreatMissingData.BREACHING,
      },
    );

    // --- Reconciliation ------------------------------------------------------------------------
    // ReconcileErrors is published by every run, zero included: no data for two hours means the
    // hourly job is not running (a broken schedule, a crash before the metrics flush).
    const reconcileErrors = own(METRIC.reconcileErrors.name, {}, Stats.SUM, Duration.hours(1));
    alarm(
      'ReconciliationFailing',
      'The reconciliation could not catch up Apple notification history or re-check due purchases (store down, credentials refused), or it has not run for two hours.',
      { metric: reconcileErrors, threshold: 1, evaluationPeriods: 2, treatMissingData: TreatMissingData.BREACHING },
    );
    const reconcileRefreshes = own(METRIC.reconcileRefreshes.name, {}, Stats.SUM, Duration.hours(1));
    alarm(
      'ReconciliationCorrections',
      'The reconciliation started many refreshes in an hour: store notifications are being lost (check the notification URL in App Store Connect and the API 4xx/5xx).',
      { metric: reconcileRefreshes, threshold: thresholds.reconcileRefreshesPerHour, evaluationPeriods: 1 },
    );

    // --- Functions -----------------------------------------------------------------------------
    for (const [fnId, fn] of props.functions) {
      const task = props.taskFunctions.has(fnId);
      alarm(
        `${fnId}Errors`,
        task
          ? `${fnId} failed at least ${thresholds.taskErrorsPerPeriod} times in each of 3 five-minute periods in a row; the workflow retries ` +
              'its errors, so this is a store, the table or the function itself failing for 15 minutes.'
          : `${fnId} failed (an uncaught error or a timeout) in the last 5 minutes.`,
        task
          ? { metric: fn.metricErrors({ period: FIVE_MINUTES, statistic: Stats.SUM }), threshold: thresholds.taskErrorsPerPeriod, evaluationPeriods: 3 }
          : { metric: fn.metricErrors({ period: FIVE_MINUTES, statistic: Stats.SUM }), threshold: thresholds.functionErrorsPerPeriod, evaluationPeriods: 1 },
      );
      const singleRun = props.singleRunFunctions.has(fnId);
      alarm(
        `${fnId}Throttles`,
        singleRun
          ? `${fnId} (reserved concurrency 1) was throttled in 3 five-minute periods in a row: each run outlasts its schedule.`
          : `Lambda throttled ${fnId} in the last 5 minutes: the account's concurrency (or the function's) is used up.`,
        { metric: fn.metricThrottles({ period: FIVE_MINUTES, statistic: Stats.SUM }), threshold: 1, evaluationPeriods: singleRun ? 3 : 1 },
      );
    }

    // --- Webhook queue and table -----------------------------------------------------------------
    alarm(
      'WebhookQueueBacklog',
      `The oldest webhook delivery has waited more than ${thresholds.webhookOldestMessageSeconds / 60} minutes in the queue: the delivery ` +
        'function is failing, throttled or at its maximum concurrency behind slow endpoints.',
      {
        metric: props.webhookQueue.metricApproximateAgeOfOldestMessage({ period: FIVE_MINUTES, statistic: Stats.MAXIMUM }),
        threshold: thresholds.webhookOldestMessageSeconds,
        evaluationPeriods: 1,
      },
    );
    const throttleEvents: Record<string, IMetric> = {};
    for (const [index, indexName] of [undefined, ...props.tableIndexNames].entries()) {
      for (const kind of ['Read', 'Write'] as const) {
        throttleEvents[`${kind.toLowerCase()}${index}`] = new Metric({
          namespace: 'AWS/DynamoDB',
          metricName: `${kind}ThrottleEvents`,
          dimensionsMap: { TableName: props.table.tableName, ...(indexName ? { GlobalSecondaryIndexName: indexName } : {}) },
          statistic: Stats.SUM,
          period: FIVE_MINUTES,
        });
      }
    }
    // DynamoDB publishes throttle events only when there are some: FILL keeps one quiet index from hiding another's.
    const tableThrottles = new MathExpression({
      expression: Object.keys(throttleEvents).map((id) => `FILL(${id}, 0)`).join(' + '),
      usingMetrics: throttleEvents,
      label: 'throttle events (table and indexes)',
      period: FIVE_MINUTES,
    });
    alarm(
      'TableThrottled',
      `DynamoDB throttled at least ${thresholds.tableThrottleEventsPerPeriod} reads or writes of the table or its indexes in 2 of the last 3 ` +
        'five-minute periods: on-demand capacity is adapting to a traffic jump, or one partition is hot.',
      { metric: tableThrottles, threshold: thresholds.tableThrottleEventsPerPeriod, evaluationPeriods: 3, datapointsToAlarm: 2 },
    );

    // --- Dashboard -----------------------------------------------------------------------------
    // Dashboard names are unique per account, not per region.
    const dashboardName = `${service}-${region}`;
    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName, defaultInterval: Duration.hours(6) });
    this.dashboardUrl = `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${dashboardName}`;
    const graph = (title: string, left: IMetric[], options: { right?: IMetric[]; width?: number; stacked?: boolean } = {}) =>
      new GraphWidget({ title, left, right: options.right ?? [], width: options.width ?? 12, height: 6, stacked: options.stacked ?? false });
    const perFunction = (title: string, metric: (fn: IFunction, id: string) => IMetric) =>
      graph(title, [...props.functions].map(([fnId, fn]) => metric(fn, fnId)), { width: 8 });

    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          `# ${service}\nAlarms go to ${props.alarmTopic ? 'the alarm topic' : '**no topic** (set the alarmTopicArn context key)'}. ` +
          'Runbook: README, Operations. Metrics of iap-sync itself are in namespace `' + METRICS_NAMESPACE + '`.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', alarms: [...this.alarms, ...(props.otherAlarms ?? [])], width: 24, height: 6 }),
    );
    this.dashboard.addWidgets(
      graph('API requests, 4xx, 5xx', [requests, clientErrors, serverErrors], { right: [serverErrorRate] }),
      graph('API latency (ms)', [
        props.api.metricLatency({ period: FIVE_MINUTES, statistic: Stats.p(50), label: 'latency p50' }),
        props.api.metricLatency({ period: FIVE_MINUTES, statistic: Stats.p(99), label: 'latency p99' }),
        props.api.metricIntegrationLatency({ period: FIVE_MINUTES, statistic: Stats.p(99), label: 'integration p99' }),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Accepted (by store) and finalized (by result)',
        STORES.map((store) => own(METRIC.accepted.name, { [METRIC.accepted.dimension]: store }).with({ label: `accepted ${store}` })),
        {
          right: SYNC_RESULTS.map((result) =>
            own(METRIC.finalized.name, { [METRIC.finalized.dimension]: result }).with({ label: result }),
          ),
        },
      ),
      graph(
        'Store retries (by store)',
        STORES.map((store) => own(METRIC.storeRetries.name, { [METRIC.storeRetries.dimension]: store }).with({ label: `retries ${store}` })),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Store errors (by store), Google acknowledgements failed, pending, given up',
        [
          ...STORES.map((store) => own(METRIC.storeErrors.name, { [METRIC.storeErrors.dimension]: store }).with({ label: `errors ${store}` })),
          own(METRIC.acknowledgeFailures.name).with({ label: 'acknowledgements failed' }),
          own(METRIC.acknowledgementsPending.name, {}, Stats.MAXIMUM).with({ label: 'acknowledgements pending' }),
          own(METRIC.acknowledgementsGivenUp.name).with({ label: 'acknowledgements given up' }),
        ],
      ),
      graph(
        'Store latency p50 / p99 (ms)',
        STORES.flatMap((store) =>
          [Stats.p(50), Stats.p(99)].map((statistic) =>
            own(METRIC.storeLatency.name, { [METRIC.storeLatency.dimension]: store }, statistic).with({ label: `${store} ${statistic}` }),
          ),
        ),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Workflow executions',
        Object.entries(executions).map(([name, metric]) => metric.with({ label: kebab(name).replace('-', ' ') })),
      ),
      graph('Webhook attempts (by outcome)', [search(METRIC.webhookAttempts.name, METRIC.webhookAttempts.dimension, 'Sum')]),
    );
    this.dashboard.addWidgets(
      graph(
        'Webhook queues: messages visible',
        props.deadLetterQueues.map(({ label, queue }) =>
          queue.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: Stats.MAXIMUM, label }),
        ),
        {
          right: [
            props.webhookQueue.metricApproximateAgeOfOldestMessage({ period: FIVE_MINUTES, statistic: Stats.MAXIMUM, label: 'deliveries: oldest (s)' }),
          ],
        },
      ),
      graph('Stuck (max per sweep) and recovered (by action)', [stuck.with({ label: 'stuck' })], {
        right: [search(METRIC.recovered.name, METRIC.recovered.dimension, 'Sum')],
      }),
    );
    this.dashboard.addWidgets(
      graph('Reconciliation: history notifications (by outcome; accepted = lost and caught up)', [
        search(METRIC.reconcileNotifications.name, METRIC.reconcileNotifications.dimension, 'Sum'),
      ]),
      graph(
        'Reconciliation: refreshes, due purchases, errors (per hour)',
        [
          reconcileRefreshes.with({ label: 'refreshes started' }),
          own(METRIC.reconcileDuePurchases.name, {}, Stats.SUM, Duration.hours(1)).with({ label: 'due purchases' }),
        ],
        { right: [reconcileErrors.with({ label: 'errors' })] },
      ),
    );
    this.dashboard.addWidgets(
      perFunction('Lambda errors', (fn, fnId) => fn.metricErrors({ period: FIVE_MINUTES, label: fnId })),
      perFunction('Lambda throttles', (fn, fnId) => fn.metricThrottles({ period: FIVE_MINUTES, label: fnId })),
      perFunction('Lambda duration p99 (ms)', (fn, fnId) => fn.metricDuration({ period: FIVE_MINUTES, statistic: Stats.p(99), label: fnId })),
    );
  }
}

/** `Api5xxRate` → `api-5xx-rate`. */
function kebab(name: string): string {
  return name
    .replace(/([a-z])([A-Z0-9])/g, '$1-$2')
    .replace(/([0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();
}
