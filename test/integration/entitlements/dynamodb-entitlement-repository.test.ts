import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbEntitlementRepository } from '../../../lambdas/entitlements';
import type { Entitlement } from '../../../lambdas/entitlements/domain/entitlement';
import { DependencyUnavailableError } from '../../../lambdas/platform/errors';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys } from '../../../lambdas/platform/dynamodb-table';
import type { Logger } from '../../../lambdas/platform/logger';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants';
import { freePort, LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { appleEntitlement } from '../../support/fakes';

const TABLE = 'entitlement-repository-test';

class CapturingLogger implements Logger {
  readonly entries: { level: string; message: string; fields: Record<string, unknown> | undefined }[] = [];
  debug(message: string, fields?: Record<string, unknown>) {
    this.entries.push({ level: 'debug', message, fields });
  }
  info(message: string, fields?: Record<string, unknown>) {
    this.entries.push({ level: 'info', message, fields });
  }
  warn(message: string, fields?: Record<string, unknown>) {
    this.entries.push({ level: 'warn', message, fields });
  }
  error(message: string, fields?: Record<string, unknown>) {
    this.entries.push({ level: 'error', message, fields });
  }
}

let dynamodb: DynamoDbLocal;
let db: DynamoDBDocumentClient;
let logger: CapturingLogger;
let repository: DynamoDbEntitlementRepository;
/** A second client on the same table that counts the Query requests it sends. */
let countingClient: DynamoDBClient;
let queriesSent = 0;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  db = createDocumentClient(dynamodb.client);
  const publishers = new DynamoDbPublisherRepository(db, TABLE);
  await publishers.putCustomer(1, 101);
  await publishers.putCustomer(1, 103);
  await publishers.putCustomer(1, 200);
  countingClient = new DynamoDBClient({ endpoint: dynamodb.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  countingClient.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'QueryCommand') queriesSent += 1;
      return next(args);
    },
    { step: 'initialize', name: 'countQueries' },
  );
});
afterAll(async () => {
  countingClient?.destroy();
  await dynamodb?.stop();
});
beforeEach(() => {
  logger = new CapturingLogger();
  repository = new DynamoDbEntitlementRepository(db, TABLE, logger);
});

/** Written as the finalize transaction stores it: the key from `keys.entitlement`, the entitlement's fields flat beside it. */
async function store(entitlement: Entitlement, extra: Record<string, unknown> = {}): Promise<void> {
  await db.send(
    new PutCommand({
      TableName: TABLE,
      Item: {
        ...keys.entitlement(entitlement.publisherId, entitlement.customerId, entitlement.store, entitlement.purchaseKey),
        type: 'entitlement',
        ...entitlement,
        ...extra,
      },
    }),
  );
}

async function storeRaw(item: Record<string, unknown>): Promise<void> {
  await db.send(new PutCommand({ TableName: TABLE, Item: item }));
}

const byKey = (a: Entitlement, b: Entitlement) => a.purchaseKey.localeCompare(b.purchaseKey);

describe('DynamoDB entitlement repository', () => {
  it('reads back what was stored, field for field, and only the customer’s own entitlement items', async () => {
    const apple = appleEntitlement();
    const google = appleEntitlement({
      store: 'google',
      purchaseKey: 'tok.en-101',
      offerId: null,
      productId: 'premium_yearly',
      state: 'expired',
      expiresAt: '2026-11-01T00:00:00.000Z',
      willRenew: false,
      environment: 'Production',
      transactionId: null,
      originalTransactionId: null,
      purchaseToken: 'tok.en-101',
      packageName: 'com.example.app',
      ownershipVersion: 1,
      ttl: 1_800_000_000,
    });
    await store(apple);
    await store(google);
    // Neighbours that must not be read: other sort keys in the partition, the same customer id at
    // another publisher, a customer id that shares the prefix, and the customer record itself.
    await storeRaw({ pk: keys.entitlement(1, 101, 'apple', 'x').pk, sk: 'NOTE#1', type: 'note' });
    await storeRaw({ pk: keys.entitlement(1, 101, 'apple', 'x').pk, sk: 'ENTITLEMENTS', type: 'note' });
    await store(appleEntitlement({ publisherId: 11, purchaseKey: 'other-publisher' }));
    await store(appleEntitlement({ customerId: 1010, purchaseKey: 'other-customer' }));

    const read = await repository.listForCustomer(1, 101);

    expect([...read].sort(byKey)).toEqual([apple, google].sort(byKey));
    expect(logger.entries).toEqual([]);
  });

  it('reads nulls that a writer left out as null', async () => {
    const { offerId: _o, environment: _e, transactionId: _t, gracePeriodExpiresAt: _g, ...sparse } = appleEntitlement({ customerId: 103 });
    await storeRaw({ ...keys.entitlement(1, 103, 'apple', sparse.purchaseKey), type: 'entitlement', ...sparse });
    expect(await repository.listForCustomer(1, 103)).toEqual([
      appleEntitlement({ customerId: 103, offerId: null, environment: null, transactionId: null, gracePeriodExpiresAt: null }),
    ]);
  });

  it('follows LastEvaluatedKey until the partition is read to its end', async () => {
    // Over 1 MB in one partition: DynamoDB answers a Query in pages of at most 1 MB.
    const padding = 'x'.repeat(60_000);
    const stored = Array.from({ length: 25 }, (_, i) => appleEntitlement({ customerId: 200, purchaseKey: `p-${String(i).padStart(2, '0')}` }));
    for (const entitlement of stored) await store(entitlement, { padding });
    const counted = new DynamoDbEntitlementRepository(createDocumentClient(countingClient), TABLE, logger);
    queriesSent = 0;

    const read = await counted.listForCustomer(1, 200);

    expect(queriesSent).toBeGreaterThan(1);
    expect(read.map((e) => e.purchaseKey).sort()).toEqual(stored.map((e) => e.purchaseKey));
  });

  it('leaves out and reports items that are not entitlements of the known shape, without their keys', async () => {
    const good = appleEntitlement({ customerId: 102, purchaseKey: 'good' });
    await store(good);
    await store(appleEntitlement({ customerId: 102, purchaseKey: 'secret-purchase-token' }), { state: 'refunded-ish' });
    // The shape written before entitlements were stored in full: no state, productId, dates…
    await storeRaw({
      ...keys.entitlement(1, 102, 'apple', 'legacy'),
      type: 'entitlement',
      publisherId: 1,
      customerId: 102,
      store: 'apple',
      purchaseKey: 'legacy',
      active: true,
      offerId: 'S1',
      expiresAt: null,
      ownershipVersion: 1,
      updatedAt: '2026-12-01T00:00:00.000Z',
    });

    expect(await repository.listForCustomer(1, 102)).toEqual([good]);
    expect(logger.entries.map((e) => [e.level, e.message])).toEqual([
      ['error', 'stored entitlement unreadable; left out'],
      ['error', 'stored entitlement unreadable; left out'],
    ]);
    expect(logger.entries.flatMap((e) => e.fields?.issues)).toEqual(
      expect.arrayContaining(['state: invalid_value', 'productId: invalid_type', 'willRenew: invalid_type']),
    );
    expect(JSON.stringify(logger.entries)).not.toContain('secret-purchase-token');
  });

  it('answers an empty list for a customer with nothing stored, known or not', async () => {
    expect(await repository.listForCustomer(1, 999)).toEqual([]);
    expect(await repository.listForCustomer(2, 101)).toEqual([]);
  });

  it('tells a known customer from an unknown one by the customer record, not by entitlement items', async () => {
    await store(appleEntitlement({ customerId: 104, purchaseKey: 'no-customer-record' }));
    expect(await repository.customerExists(1, 101)).toBe(true);
    expect(await repository.customerExists(1, 999)).toBe(false);
    expect(await repository.customerExists(11, 101)).toBe(false);
    expect(await repository.customerExists(1, 104)).toBe(false);
  });

  it('turns an unreachable table into DependencyUnavailableError (503 S0002)', async () => {
    const port = await freePort();
    const down = new DynamoDBClient({ endpoint: `http://127.0.0.1:${port}`, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
    const unreachable = new DynamoDbEntitlementRepository(createDocumentClient(down), TABLE, logger);
    try {
      await expect(unreachable.listForCustomer(1, 101)).rejects.toBeInstanceOf(DependencyUnavailableError);
      await expect(unreachable.customerExists(1, 101)).rejects.toBeInstanceOf(DependencyUnavailableError);
    } finally {
      down.destroy();
    }
  });
});
