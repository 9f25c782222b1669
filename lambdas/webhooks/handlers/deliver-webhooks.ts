import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { createDocumentClient } from '../../platform/dynamodb-client';
import { DynamoDbDeliveryLog, DynamoDbWebhookEndpointRepository } from '../adapters/dynamodb-webhook-repository';
import { HttpWebhookSender } from '../adapters/http-webhook-sender';
import { ReferenceSecretStore } from '../../platform/reference-secret-store';
import { DynamoDbDeadLetterQueue, SqsDeliveryQueue, SqsPoisonMessageQueue } from '../adapters/sqs-delivery-queue';
import { InvalidDeliveryMessageError, processDeliveryMessage, type AttemptReport, type DeliverWebhooksDeps } from '../domain/deliver-webhooks';
import { ConfigurationError } from '../../platform/errors';
import { MAX_RETRY_DELAY_SECONDS, RETRY_SCHEDULE_SECONDS, scaleSeconds } from '../domain/delivery-policy';
import { systemClock, type Clock } from '../../platform/clock';
import type { SecretStore } from '../../platform/secret-store';
import type { DeadLetterQueue, DeliveryQueue, PoisonMessageQueue, WebhookSender } from '../ports';
import { loadConfig, required } from '../../platform/config';
import { createLogger, type Logger } from '../../platform/logger';
import { createMetrics, noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { instrument, lazyHandler } from '../../platform/handler';

const ATTEMPT_OUTCOMES: Partial<Record<AttemptReport['outcome'], string>> = {
  done: 'delivered',
  retry: 'retry_scheduled',
  'dead-letter': 'failed_permanently',
  'disable-endpoint': 'endpoint_disabled',
};

/** WebhookAttempts' `outcome` of a report; undefined for deferred hops, skipped and re-queued deliveries, which were not attempts. */
export function webhookAttemptOutcome(report: Pick<AttemptReport, 'outcome'>): string | undefined {
  return ATTEMPT_OUTCOMES[report.outcome];
}

/** A failure that the same message will meet again however often it comes back. */
function isPermanent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === false;
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new InvalidDeliveryMessageError('The message is not JSON');
  }
}

/**
 * The webhook delivery Lambda, fed by the SQS queue the webhook rule targets (every topic of the
 * event registry: WEBHOOK_EVENT_PATTERN) and by its own scheduled attempts and replays. Reports partial batch failures: only the records that threw
 * come back (ReportBatchItemFailures on the event source mapping). A record that failed for good
 * (a poison message: not JSON, not an event or attempt it knows) goes to `deps.poisonMessages` at
 * once instead of coming back five times. Counts WebhookAttempts by outcome.
 */
export function makeDeliverWebhooksHandler(deps: DeliverWebhooksDeps, metrics: MetricsRecorder = noMetrics) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    // Concurrently: one slow receiver (15 s) must not hold back the rest of the batch.
    const settled = await Promise.allSettled(event.Records.map(async (record) => processDeliveryMessage(deps, parseBody(record.body))));
    const batchItemFailures: SQSBatchItemFailure[] = [];
    for (const [index, result] of settled.entries()) {
      const record = event.Records[index];
      if (result.status === 'fulfilled') {
        for (const report of result.value) {
          const outcome = webhookAttemptOutcome(report);
          if (outcome !== undefined) metrics.add('webhookAttempts', outcome);
        }
        continue;
      }
      if (record === undefined) continue;
      if (isPermanent(result.reason) && deps.poisonMessages !== undefined) {
        try {
          const reason = result.reason instanceof Error ? result.reason.message : String(result.reason);
          await deps.poisonMessages.put({ messageId: record.messageId, body: record.body, reason });
          deps.logger.error('webhook message can never be handled; sent to the dead letters', { messageId: record.messageId, error: result.reason });
          continue;
        } catch (error) {
          deps.logger.error('a poison webhook message could not be dead-lettered', { messageId: record.messageId, error });
        }
      }
      deps.logger.error('webhook message failed; the queue will deliver it again', { messageId: record.messageId, error: result.reason });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures };
  };
}

/** Settings of the delivery that only this function reads. */
const WebhookEnv = z.object({
  /** `true` only in local mode, where receivers run on 127.0.0.1; deployed stacks refuse private addresses. */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: z.enum(['true', 'false']).default('false'),
  /** Multiplies the retry schedule (0.001 turns 10 h into 36 s); 1 when deployed. */
  WEBHOOK_SCHEDULE_SCALE: z.coerce.number().min(0).max(1).default(1),
});

export interface DeliveryDepsOptions {
  db: DynamoDBDocumentClient;
  tableName: string;
  secrets: SecretStore;
  logger: Logger;
  queue: DeliveryQueue;
  deadLetters: DeadLetterQueue;
  /** Deployed: where poison messages go at once (see makeDeliverWebhooksHandler). */
  poisonMessages?: PoisonMessageQueue;
  /** True only in local mode (receivers on 127.0.0.1). */
  allowPrivateNetworks: boolean;
  /** Multiplies the retry schedule and the Retry-After ceiling; default 1. */
  scale?: number;
  /** Default: HttpWebhookSender with `allowPrivateNetworks`. */
  sender?: WebhookSender;
  clock?: Clock;
}

/** The delivery's ports over DynamoDB, HTTP and the given queues: one composition for Lambda and `npm start`. */
export function createDeliveryDeps(options: DeliveryDepsOptions): DeliverWebhooksDeps {
  const clock = options.clock ?? systemClock;
  const scale = options.scale ?? 1;
  return {
    endpoints: new DynamoDbWebhookEndpointRepository(options.db, options.tableName),
    log: new DynamoDbDeliveryLog(options.db, options.tableName, () => clock.now().getTime()),
    queue: options.queue,
    deadLetters: options.deadLetters,
    sender: options.sender ?? new HttpWebhookSender({ allowPrivateNetworks: options.allowPrivateNetworks }),
    secrets: options.secrets,
    clock,
    logger: options.logger,
    scheduleSeconds: scale === 1 ? RETRY_SCHEDULE_SECONDS : scaleSeconds(RETRY_SCHEDULE_SECONDS, scale),
    maxRetryDelaySeconds: MAX_RETRY_DELAY_SECONDS * scale,
    ...(options.poisonMessages !== undefined ? { poisonMessages: options.poisonMessages } : {}),
  };
}

/**
 * Where poison messages go: the delivery queue's own dead-letter queue (WEBHOOK_EVENT_DEAD_LETTER_QUEUE_URL,
 * where its redrive policy would put them after 5 receives) when the stack names it, else the
 * delivery dead-letter queue, which the function may already send to and the stack alarms on.
 */
export function poisonMessageQueueUrl(env: NodeJS.ProcessEnv): string | undefined {
  return env.WEBHOOK_EVENT_DEAD_LETTER_QUEUE_URL || env.WEBHOOK_DEAD_LETTER_QUEUE_URL || undefined;
}

/**
 * Deployed queues: attempts go back to the delivery queue with a delay (SQS caps it at 900 s; the
 * use case hops longer waits); exhausted deliveries are kept in the table for replay and signalled
 * on the dead-letter queue the stack alarms on; poison messages go to poisonMessageQueueUrl.
 */
export function createQueueAdapters(
  env: NodeJS.ProcessEnv,
  db: DynamoDBDocumentClient,
  tableName: string,
): { queue: DeliveryQueue; deadLetters: DeadLetterQueue; poisonMessages?: PoisonMessageQueue } {
  const queueUrl = env.WEBHOOK_QUEUE_URL;
  if (!queueUrl) throw new ConfigurationError('WEBHOOK_QUEUE_URL is not configured');
  const poisonQueueUrl = poisonMessageQueueUrl(env);
  return {
    queue: new SqsDeliveryQueue(queueUrl),
    deadLetters: new DynamoDbDeadLetterQueue(db, tableName, env.WEBHOOK_DEAD_LETTER_QUEUE_URL),
    ...(poisonQueueUrl ? { poisonMessages: new SqsPoisonMessageQueue(poisonQueueUrl) } : {}),
  };
}

export const handler = lazyHandler(() => {
  const config = loadConfig();
  const webhookEnv = WebhookEnv.parse(process.env);
  const logger = createLogger('deliver-webhooks', config.LOG_LEVEL);
  const db = createDocumentClient();
  const tableName = required(config, 'TABLE_NAME');
  const metrics = createMetrics();
  const deliver = makeDeliverWebhooksHandler(
    createDeliveryDeps({
      db,
      tableName,
      secrets: new ReferenceSecretStore({
        ...(config.LOCAL_SECRETS_DIR ? { localDir: config.LOCAL_SECRETS_DIR } : {}),
        cacheSeconds: config.SECRET_CACHE_SECONDS,
      }),
      logger,
      ...createQueueAdapters(process.env, db, tableName),
      allowPrivateNetworks: webhookEnv.WEBHOOK_ALLOW_PRIVATE_NETWORKS === 'true',
      scale: webhookEnv.WEBHOOK_SCHEDULE_SCALE,
    }),
    metrics,
  );
  return instrument({ logger, metrics }, (event: SQSEvent, _context: unknown) => deliver(event));
});
