import { Duration, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { DataTable } from './data-table';
import { Rule, type IEventBus } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { WEBHOOK_EVENT_PATTERN } from '../../lambdas/events/schemas';
import { WEBHOOK_FUNCTION } from '../catalog';
import { toCdkEventPattern } from './event-bus';
import { createLambdaFunction } from './lambda-function';

/** Props of {@link WebhookDelivery}. */
export interface WebhookDeliveryProps {
  bus: IEventBus;
  /** The table: deliveries and their log. */
  data: DataTable;
  /**
   * Most delivery functions the queue runs at once (the event source mapping's maximum concurrency,
   * 2 to 1000): a backlog to slow endpoints then cannot take the account's Lambda concurrency from the
   * API. @default DEFAULT_WEBHOOK_MAX_CONCURRENCY
   */
  maxConcurrency?: number;
  /** Receives the dead-letter alarms (and their return to OK) when given. */
  alarmTopic?: ITopic;
  logLevel: string;
  /** `iap-sync-<stage>`: the Powertools service name and metric `service` dimension of the delivery function. */
  service: string;
}

/**
 * Delivery functions at once by default. Each takes a batch of 10 and sends its deliveries
 * concurrently, so 5 send on the order of a hundred webhooks a second to endpoints that answer within
 * a few hundred milliseconds, while a backlog to slow ones (15 s per attempt) holds 5 of the account's
 * concurrent executions (1,000 by default), not all of them.
 */
export const DEFAULT_WEBHOOK_MAX_CONCURRENCY = 5;

/** SQS event source mappings take a maximum concurrency of 2 to 1000. */
export function checkWebhookMaxConcurrency(value: number | undefined): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 2 || value > 1000)) {
    throw new Error(`webhookMaxConcurrency ${value} must be an integer from 2 to 1000 (an SQS event source's maximum concurrency)`);
  }
}

/**
 * Events → webhooks: a rule on the bus (the shared WEBHOOK_EVENT_PATTERN: every detail-type is a
 * topic; the function picks the endpoints subscribed to each event's topic) → an SQS queue (its own
 * dead-letter queue for events that cannot be handled) → the delivery Lambda with partial batch
 * responses; scheduled retries go back to the queue with a delay; exhausted deliveries are kept for
 * replay and signalled on a second dead-letter queue. Both dead-letter queues alarm at one message.
 */
export class WebhookDelivery extends Construct {
  readonly queue: Queue;
  readonly eventDeadLetters: Queue;
  readonly deliveryDeadLetters: Queue;
  readonly fn: NodejsFunction;
  /** One alarm per dead-letter queue, at one visible message. */
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: WebhookDeliveryProps) {
    super(scope, id);
    const secure = { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true };
    this.eventDeadLetters = new Queue(this, 'EventDeadLetters', { ...secure, retentionPeriod: Duration.days(14) });
    this.deliveryDeadLetters = new Queue(this, 'DeliveryDeadLetters', { ...secure, retentionPeriod: Duration.days(14) });
    Validations.of(this.deliveryDeadLetters).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue: the delivery function sends it the deliveries that exhausted their retry ' +
        'schedule (SQS redrive cannot express the 7-attempt, 10-hour schedule). It is alarmed at one message and its ' +
        'deliveries stay replayable from the table.',
    });
    this.queue = new Queue(this, 'Deliveries', {
      ...secure,
      // SQS asks for six times the function timeout, so a slow batch is not delivered twice.
      visibilityTimeout: Duration.seconds(WEBHOOK_FUNCTION.timeoutSeconds * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.eventDeadLetters, maxReceiveCount: 5 },
    });
    // The construct id predates the second topic; kept so deployed stacks update the rule's pattern
    // in place instead of replacing the rule (a replacement briefly runs two rules into the queue).
    new Rule(this, 'SyncResultToWebhooks', {
      eventBus: props.bus,
      eventPattern: toCdkEventPattern(WEBHOOK_EVENT_PATTERN),
      targets: [new SqsQueue(this.queue, { deadLetterQueue: this.eventDeadLetters, retryAttempts: 185, maxEventAge: Duration.hours(24) })],
    });
    this.fn = createLambdaFunction(scope, WEBHOOK_FUNCTION.id, {
      entry: WEBHOOK_FUNCTION.entry,
      service: props.service,
      timeout: Duration.seconds(WEBHOOK_FUNCTION.timeoutSeconds),
      environment: {
        TABLE_NAME: props.data.table.tableName,
        LOG_LEVEL: props.logLevel,
        WEBHOOK_QUEUE_URL: this.queue.queueUrl,
        WEBHOOK_DEAD_LETTER_QUEUE_URL: this.deliveryDeadLetters.queueUrl,
        // A message the function can never read (poison) goes here at once, not after five receives.
        WEBHOOK_EVENT_DEAD_LETTER_QUEUE_URL: this.eventDeadLetters.queueUrl,
      },
    });
    checkWebhookMaxConcurrency(props.maxConcurrency);
    this.fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: props.maxConcurrency ?? DEFAULT_WEBHOOK_MAX_CONCURRENCY,
      }),
    );
    props.data.grantItems(this.fn, 'readwrite');
    this.queue.grantSendMessages(this.fn);
    this.deliveryDeadLetters.grantSendMessages(this.fn);
    this.eventDeadLetters.grantSendMessages(this.fn);
    // The stack grants the endpoints' signing secrets (WEBHOOK_FUNCTION.secrets), as for every function.

    for (const [name, alarmName, queue, what] of [
      [
        'EventDeadLettersAlarm',
        'webhook-event-dead-letters',
        this.eventDeadLetters,
        `events (${WEBHOOK_EVENT_PATTERN['detail-type'].join(', ')}) that never reached the delivery function (move them back to the delivery queue once the cause is fixed)`,
      ],
      [
        'DeliveryDeadLettersAlarm',
        'webhook-delivery-dead-letters',
        this.deliveryDeadLetters,
        'webhook deliveries that exhausted their retry schedule (replay them with iap-sync webhook replay)',
      ],
    ] as const) {
      const alarm = new Alarm(this, name, {
        alarmName: `${props.service}-${alarmName}`,
        metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription:
          `A dead-letter queue holds ${what}. ` +
          `Runbook: README, Operations, alarm ${props.service}-${alarmName}.`,
      });
      if (props.alarmTopic) {
        alarm.addAlarmAction(new SnsAction(props.alarmTopic));
        alarm.addOkAction(new SnsAction(props.alarmTopic));
      }
      this.alarms.push(alarm);
    }
  }
}
