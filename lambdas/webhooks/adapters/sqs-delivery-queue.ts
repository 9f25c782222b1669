import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DeleteCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DeadLetterQueue, Delivery, DeliveryMessage, DeliveryQueue, PoisonMessage, PoisonMessageQueue } from '../ports';
import { callAws } from '../../platform/aws-errors';
import { awsClientConfig } from '../../platform/aws-client-config';

/** SQS caps a message delay at 15 minutes; longer waits are hops (the use case re-enqueues). */
const SQS_MAX_DELAY_SECONDS = 900;

/** The webhook delivery queue on SQS: scheduled attempts are messages with a delay. */
export class SqsDeliveryQueue implements DeliveryQueue {
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient = new SQSClient(awsClientConfig()),
  ) {}

  async enqueue(message: DeliveryMessage, delaySeconds: number): Promise<void> {
    const delay = Math.min(SQS_MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds)));
    await callAws('enqueue webhook attempt', () =>
      this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message), DelaySeconds: delay })),
    );
  }
}

/** Longest reason carried in a message attribute (the message body is the poison message itself). */
const MAX_REASON_LENGTH = 256;

/**
 * Poison messages, sent as they came to a dead-letter queue at once (the delivery queue's redrive
 * policy would set them aside only after 5 receives). The reason and the original message id travel
 * as message attributes; the body stays intact, so moving the message back to the delivery queue
 * (SQS redrive) once its cause is fixed hands the handler exactly what it got.
 */
export class SqsPoisonMessageQueue implements PoisonMessageQueue {
  constructor(
    private readonly queueUrl: string,
    private readonly sqs: SQSClient = new SQSClient(awsClientConfig()),
  ) {}

  async put(message: PoisonMessage): Promise<void> {
    await callAws('dead-letter a poison webhook message', () =>
      this.sqs.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: message.body,
          MessageAttributes: {
            reason: { DataType: 'String', StringValue: message.reason.slice(0, MAX_REASON_LENGTH) || 'unknown' },
            sourceMessageId: { DataType: 'String', StringValue: message.messageId },
          },
        }),
      ),
    );
  }
}

const DEAD_LETTER_PK = 'WEBHOOK_DEAD_LETTERS';

/**
 * Deliveries whose every attempt failed: kept in the table (listable and removable for replay) and
 * also sent to an SQS queue whose depth the stack alarms on.
 */
export class DynamoDbDeadLetterQueue implements DeadLetterQueue {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly alarmQueueUrl?: string,
    private readonly sqs: SQSClient = new SQSClient(awsClientConfig()),
  ) {}

  async put(delivery: Delivery): Promise<void> {
    await callAws('store dead letter', () =>
      this.db.send(new PutCommand({ TableName: this.tableName, Item: { pk: DEAD_LETTER_PK, sk: delivery.webhookId, type: 'deadLetter', delivery } })),
    );
    const queueUrl = this.alarmQueueUrl;
    if (queueUrl) {
      await callAws('signal dead letter', () =>
        this.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ webhookId: delivery.webhookId, publisherId: delivery.publisherId }) })),
      );
    }
  }

  async list(): Promise<Delivery[]> {
    const out: Delivery[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callAws('list dead letters', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': DEAD_LETTER_PK },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) out.push(item.delivery as Delivery);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  async remove(webhookId: string): Promise<boolean> {
    const out = await callAws('remove dead letter', () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: DEAD_LETTER_PK, sk: webhookId }, ReturnValues: 'ALL_OLD' })),
    );
    return out.Attributes !== undefined;
  }
}
