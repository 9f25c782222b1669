import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { STORES } from '../../events/vocabulary';
import { callAws } from '../../platform/aws-errors';
import { keys } from '../../platform/dynamodb-table';
import type { Logger } from '../../platform/logger';
import type { Entitlement } from '../domain/entitlement';
import type { EntitlementRepository } from '../ports';
import { ENTITLEMENT_STATES } from '../schemas';

/** The start of every entitlement sort key (`keys.entitlement`); the integration test fails if they drift apart. */
const ENTITLEMENT_SORT_PREFIX = 'ENTITLEMENT#';

/**
 * A nullable attribute a writer may also have left out (the DocumentClient drops undefined
 * values): both read as null, which is what the domain type says.
 */
const nullableText = () => z.string().nullable().default(null);

/**
 * The stored item, checked field by field instead of cast: attributes that are not part of the
 * entitlement (pk, sk, type) are dropped, and an item of another shape is reported, not trusted.
 */
const StoredEntitlement = z.object({
  publisherId: z.number().int(),
  customerId: z.number().int(),
  store: z.enum(STORES),
  purchaseKey: z.string(),
  offerId: nullableText(),
  productId: z.string(),
  state: z.enum(ENTITLEMENT_STATES),
  expiresAt: nullableText(),
  gracePeriodExpiresAt: nullableText(),
  willRenew: z.boolean(),
  environment: z.enum(['Production', 'Sandbox']).nullable().default(null),
  transactionId: nullableText(),
  originalTransactionId: nullableText(),
  purchaseToken: nullableText(),
  packageName: nullableText(),
  ownershipVersion: z.number().int(),
  updatedAt: z.string(),
  ttl: z.number().optional(),
}) satisfies z.ZodType<Entitlement, unknown>;

/** Entitlement items of the iap-sync table (`keys.entitlement`), read from the customer's own partition. */
export class DynamoDbEntitlementRepository implements EntitlementRepository {
  /**
   * @param logger - receives items that do not read as an entitlement (with their position only:
   *   a Google sort key holds the purchase token, which must not reach the logs).
   */
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly logger: Logger,
  ) {}

  async listForCustomer(publisherId: number, customerId: number): Promise<Entitlement[]> {
    // The partition key does not depend on the store or purchase key, so any values build it.
    const { pk } = keys.entitlement(publisherId, customerId, '', '');
    const entitlements: Entitlement[] = [];
    let startKey: Record<string, unknown> | undefined;
    let position = 0;
    do {
      const page = await callAws('query entitlements', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: { ':pk': pk, ':prefix': ENTITLEMENT_SORT_PREFIX },
            // A client that saw its synchronization finalized must see the entitlement it wrote.
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const parsed = StoredEntitlement.safeParse(item);
        if (parsed.success) {
          entitlements.push(parsed.data);
        } else {
          // Leaving one unreadable item out fails closed (no access from it) and keeps the customer's
          // other entitlements readable; the error log makes the bad item visible.
          this.logger.error('stored entitlement unreadable; left out', {
            publisherId,
            customerId,
            position,
            issues: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.code}`),
          });
        }
        position += 1;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return entitlements;
  }

  async customerExists(publisherId: number, customerId: number): Promise<boolean> {
    const out = await callAws('get customer', () =>
      this.db.send(
        new GetCommand({ TableName: this.tableName, Key: keys.customer(publisherId, customerId), ProjectionExpression: 'pk' }),
      ),
    );
    return out.Item !== undefined;
  }
}
