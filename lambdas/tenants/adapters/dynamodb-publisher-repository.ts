import { GetCommand, PutCommand, ScanCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
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
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: this.tableName, Item: { ...keys.publisher(publisher.publisherId), type: 'publisher', publisher } } },
          this.listedInDirectory(publisher.publisherId),
        ],
      }),
    );
  }

  async createPublisherIfAbsent(input: Publisher): Promise<boolean> {
    const publisher = checkedForWrite(input);
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { ...keys.publisher(publisher.publisherId), type: 'publisher', publisher },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            this.listedInDirectory(publisher.publisherId),
          ],
        }),
      );
      return true;
    } catch (error) {
      if (isProfileConditionFailure(error)) return false;
      throw error;
    }
  }

  /** The directory's part of a publisher write: its id added to the set (idempotent). */
  private listedInDirectory(publisherId: number) {
    return {
      Update: {
        TableName: this.tableName,
        Key: keys.publisherDirectory(),
        UpdateExpression: 'ADD publisherIds :id SET #t = :t',
        ExpressionAttributeNames: { '#t': 'type' },
        ExpressionAttributeValues: { ':id': new Set([publisherId]), ':t': 'publisherDirectory' },
      },
    };
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

  /**
   * Every publisher's id, ascending: one GetItem of the directory (keys.publisherDirectory), which
   * every publisher write keeps up to date. Publishers written before the directory existed are
   * added by the first listing that finds it without `complete`: one Scan (as the listing always
   * did), then the ids are added to the set and `complete` set, so later listings never scan. Ids
   * only ever join the set, so publishers created during that scan are kept too. A directory write
   * that fails (a function that may only read) only means the next listing scans again.
   */
  async listPublisherIds(): Promise<number[]> {
    // Unwrapped like the other administrative calls: the command line explains the SDK's own errors.
    const out = await this.db.send(new GetCommand({ TableName: this.tableName, Key: keys.publisherDirectory(), ConsistentRead: true }));
    const listed = numberSet(out.Item?.publisherIds);
    if (out.Item?.complete === true) return [...listed].sort((a, b) => a - b);
    const scanned = await this.scanPublisherIds();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keys.publisherDirectory(),
          UpdateExpression: `${scanned.length > 0 ? 'ADD publisherIds :ids ' : ''}SET complete = :complete, #t = :t`,
          ExpressionAttributeNames: { '#t': 'type' },
          ExpressionAttributeValues: { ':complete': true, ':t': 'publisherDirectory', ...(scanned.length > 0 ? { ':ids': new Set(scanned) } : {}) },
        }),
      );
    } catch {
      // Listed all the same; the next listing scans and tries again.
    }
    return [...new Set([...listed, ...scanned])].sort((a, b) => a - b);
  }

  /** The listing before the directory: a filtered Scan of the whole table (the directory's one-time migration). */
  private async scanPublisherIds(): Promise<number[]> {
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

/** A stored number set (the DocumentClient reads one as a Set), as numbers; anything else is empty. */
function numberSet(value: unknown): Set<number> {
  if (!(value instanceof Set)) return new Set();
  return new Set([...(value as Set<unknown>)].filter((item): item is number => typeof item === 'number' && Number.isInteger(item)));
}

/** The profile's `attribute_not_exists` failed (the publisher exists), not some other part of the transaction. */
function isProfileConditionFailure(error: unknown): boolean {
  const { name, CancellationReasons } = error as { name?: string; CancellationReasons?: { Code?: string }[] };
  return name === 'TransactionCanceledException' && CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed';
}
