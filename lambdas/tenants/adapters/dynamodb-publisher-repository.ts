import { GetCommand, PutCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigurationError } from '../../platform/errors';
import type { JwtSettings, Publisher } from '../domain/publisher';
import type { Store } from '../../events/vocabulary';
import { jwksUrlProblem } from '../ports/credential-verifier';
import type { PublisherAdmin } from '../ports/publisher-repository';
import { callAws } from '../../platform/aws-errors';
import { keys } from '../../platform/dynamodb-table';

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The stored `jwt` map as the verifier may use it: only known string fields, and a JWKS URL only
 * when it follows the rule (https, or http on loopback). A record written around this repository
 * with a plain-http URL therefore fails closed (its RS256/ES256 tokens are refused, AUTH0002)
 * instead of fetching keys over an unauthenticated channel.
 */
export function toJwtSettings(stored: unknown): JwtSettings {
  const raw = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>) : {};
  const hs256SecretRef = nonEmptyString(raw.hs256SecretRef);
  const jwksUrl = nonEmptyString(raw.jwksUrl);
  const issuer = nonEmptyString(raw.issuer);
  const audience = nonEmptyString(raw.audience);
  return {
    ...(hs256SecretRef !== undefined ? { hs256SecretRef } : {}),
    ...(jwksUrl !== undefined && jwksUrlProblem(jwksUrl) === undefined ? { jwksUrl } : {}),
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  };
}

/** Configuration time: a publisher is never stored with a JWKS URL that breaks the rule. */
function checkedForWrite(publisher: Publisher): Publisher {
  const { jwksUrl } = publisher.jwt;
  const problem = jwksUrl !== undefined ? jwksUrlProblem(jwksUrl) : undefined;
  if (problem !== undefined) throw new ConfigurationError(`publisher ${publisher.publisherId}: the JWKS URL ${problem}`);
  return { ...publisher, jwt: toJwtSettings(publisher.jwt) };
}

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
    if (!out.Item) return undefined;
    const stored = out.Item.publisher as Publisher;
    return { ...stored, jwt: toJwtSettings(stored.jwt) };
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

  async putPublisher(input: Publisher): Promise<void> {
    const publisher = checkedForWrite(input);
    await this.db.send(
      new PutCommand({ TableName: this.tableName, Item: { ...keys.publisher(publisher.publisherId), type: 'publisher', publisher } }),
    );
  }

  async createPublisherIfAbsent(input: Publisher): Promise<boolean> {
    const publisher = checkedForWrite(input);
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
