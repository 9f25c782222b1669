import { GetCommand, PutCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Publisher } from '../domain/publisher';
import type { Store } from '../domain/results';
import type { PublisherAdmin } from '../ports/publisher-repository';
import { callAws } from '../shared/aws-errors';
import { keys } from './dynamodb-table';

/** Publishers, customers and offer mappings in the iap-sync table. */
export class DynamoDbPublisherRepository implements PublisherAdmin {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async getPublisher(publisherId: number): Promise<Publisher | undefined> {
    const out = await callAws('get publisher', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.publisher(publisherId) })),
    );
    return out.Item ? (out.Item.publisher as Publisher) : undefined;
  }

  async customerExists(publisherId: number, customerId: number): Promise<boolean> {
    const out = await callAws('get customer', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.customer(publisherId, customerId), ProjectionExpression: 'pk' }),
      ),
    );
    return out.Item !== undefined;
  }

  async getOfferId(publisherId: number, store: Store, productId: string): Promise<string | undefined> {
    const out = await callAws('get offer', () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.offer(publisherId, store, productId) })),
    );
    return typeof out.Item?.offerId === 'string' ? out.Item.offerId : undefined;
  }

  async putPublisher(publisher: Publisher): Promise<void> {
    await this.db.send(
      new PutCommand({ TableName: this.tableName, Item: { ...keys.publisher(publisher.publisherId), type: 'publisher', publisher } }),
    );
  }

  async createPublisherIfAbsent(publisher: Publisher): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...keys.publisher(publisher.publisherId), type: 'publisher', publisher },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async putCustomer(publisherId: number, customerId: number): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...keys.customer(publisherId, customerId), type: 'customer', publisherId, customerId },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    ).catch((error: Error) => {
      if (error.name !== 'ConditionalCheckFailedException') throw error;
    });
  }

  async putOffer(publisherId: number, store: Store, productId: string, offerId: string): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...keys.offer(publisherId, store, productId), type: 'offer', publisherId, store, productId, offerId },
      }),
    );
  }

  /** Administrative listing (command line); a scan is fine at the scale of a publisher list. */
  async listPublisherIds(): Promise<number[]> {
    const ids: number[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'type' },
          ExpressionAttributeValues: { ':t': 'publisher' },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) ids.push((item.publisher as Publisher).publisherId);
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return ids.sort((a, b) => a - b);
  }
}
