import type { SQSClient } from '@aws-sdk/client-sqs';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { DynamoDbDeadLetterQueue, SqsDeliveryQueue, SqsPoisonMessageQueue } from '../../../lambdas/webhooks/adapters/sqs-delivery-queue';
import { createQueueAdapters, poisonMessageQueueUrl } from '../../../lambdas/webhooks/handlers/deliver-webhooks';
import type { Delivery } from '../../../lambdas/webhooks/ports';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';

const TABLE = 'dead-letter-test';
let dynamodb: DynamoDbLocal;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
});
afterAll(async () => dynamodb?.stop());

function fakeSqs() {
  const sent: Record<string, unknown>[] = [];
  const client = { send: async (command: { input: Record<string, unknown> }) => void sent.push(command.input) } as unknown as SQSClient;
  return { client, sent };
}

const delivery = (webhookId: string): Delivery => ({
  webhookId,
  publisherId: 1,
  endpointId: 'ep_1',
  topic: 'inappPurchaseSyncResult',
  body: '{"broadcasterId":1}',
  attempt: 8,
});

describe('SQS delivery queue', () => {
  it.each([
    [0, 0],
    [0.2, 1],
    [300, 300],
    [36_000, 900],
  ])('a delay of %s s is sent as DelaySeconds %i (whole seconds, at most 900)', async (delay, expected) => {
    const { client, sent } = fakeSqs();
    await new SqsDeliveryQueue('https://sqs.example/q', client).enqueue({ kind: 'attempt', delivery: delivery('msg_a') }, delay);
    expect(sent).toEqual([{ QueueUrl: 'https://sqs.example/q', MessageBody: JSON.stringify({ kind: 'attempt', delivery: delivery('msg_a') }), DelaySeconds: expected }]);
  });
});

describe('poison messages', () => {
  it('go to the dead-letter queue as they came, with the reason and the original message id as attributes', async () => {
    const { client, sent } = fakeSqs();
    await new SqsPoisonMessageQueue('https://sqs.example/events-dlq', client).put({ messageId: 'm-1', body: '{', reason: 'x'.repeat(300) });
    expect(sent).toEqual([
      {
        QueueUrl: 'https://sqs.example/events-dlq',
        MessageBody: '{',
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: 'x'.repeat(256) },
          sourceMessageId: { DataType: 'String', StringValue: 'm-1' },
        },
      },
    ]);
  });

  it.each([
    ['the delivery queue\'s own dead-letter queue when the stack names it', { WEBHOOK_EVENT_DEAD_LETTER_QUEUE_URL: 'https://sqs.example/events-dlq' }, 'https://sqs.example/events-dlq'],
    ['else the alarmed delivery dead-letter queue', {}, 'https://sqs.example/dlq'],
  ])('are sent to %s', (_name, extra, expected) => {
    const env = { WEBHOOK_QUEUE_URL: 'https://sqs.example/q', WEBHOOK_DEAD_LETTER_QUEUE_URL: 'https://sqs.example/dlq', ...extra };
    expect(poisonMessageQueueUrl(env)).toBe(expected);
    expect(createQueueAdapters(env, createDocumentClient(dynamodb.client), TABLE).poisonMessages).toBeInstanceOf(SqsPoisonMessageQueue);
  });

  it('have nowhere to go without a dead-letter queue (then they fail like any message)', () => {
    expect(createQueueAdapters({ WEBHOOK_QUEUE_URL: 'https://sqs.example/q' }, createDocumentClient(dynamodb.client), TABLE).poisonMessages).toBeUndefined();
  });
});

describe('dead letters in the table', () => {
  it('keeps deliveries until removed, and signals each on the alarm queue', async () => {
    const { client, sent } = fakeSqs();
    const deadLetters = new DynamoDbDeadLetterQueue(createDocumentClient(dynamodb.client), TABLE, 'https://sqs.example/dlq', client);
    await deadLetters.put(delivery('msg_1'));
    await deadLetters.put(delivery('msg_2'));
    expect((await deadLetters.list()).map((d) => d.webhookId).sort()).toEqual(['msg_1', 'msg_2']);
    expect(sent.map((input) => input.QueueUrl)).toEqual(['https://sqs.example/dlq', 'https://sqs.example/dlq']);
    expect(await deadLetters.remove('msg_1')).toBe(true);
    expect(await deadLetters.remove('msg_1')).toBe(false);
    expect((await deadLetters.list()).map((d) => d.webhookId)).toEqual(['msg_2']);
  });
});
