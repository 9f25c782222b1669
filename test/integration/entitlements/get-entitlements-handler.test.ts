import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Entitlement } from '../../../lambdas/entitlements/domain/entitlement';
import { handler } from '../../../lambdas/entitlements/handlers/get-entitlements';
import { EntitlementsResponse } from '../../../lambdas/entitlements/schemas';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys } from '../../../lambdas/platform/dynamodb-table';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants';
import { hashPublisherToken } from '../../../lambdas/tenants/domain/authenticate';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { apiEvent, testContext } from '../../support/api-events';

/*
 * The deployed module: `handler` builds its runtime from the environment on first call, as in
 * Lambda, and reads a real table. Only the environment differs from AWS.
 */
const TABLE = 'get-entitlements-handler-test';
const TOKEN = 'pt_handler_test_token';
const ENV_NAMES = ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL_DYNAMODB', 'TABLE_NAME', 'LOG_LEVEL'] as const;
const savedEnv = new Map<string, string | undefined>(ENV_NAMES.map((name) => [name, process.env[name]]));
let dynamodb: DynamoDbLocal;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  Object.assign(process.env, {
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamodb.endpoint,
    TABLE_NAME: TABLE,
    LOG_LEVEL: 'silent',
  });
  const db = createDocumentClient(dynamodb.client);
  const publishers = new DynamoDbPublisherRepository(db, TABLE);
  await publishers.putPublisher({
    publisherId: 3,
    name: 'Handler test',
    tokenHash: hashPublisherToken(TOKEN),
    jwt: {},
    storeKit: { activated: true, migrationInProgress: false },
    ownershipPolicy: 'keep',
  });
  await publishers.putCustomer(3, 301);
  await publishers.putCustomer(3, 302);
  const stored: Entitlement[] = [
    {
      publisherId: 3,
      customerId: 301,
      store: 'apple',
      purchaseKey: '2000000100',
      offerId: 'S100000001_US',
      productId: 'premium_monthly',
      state: 'active',
      // Far enough ahead that the system clock keeps it active, and one already past.
      expiresAt: '2999-01-01T00:00:00.000Z',
      gracePeriodExpiresAt: null,
      willRenew: true,
      environment: 'Sandbox',
      transactionId: '2000000200',
      originalTransactionId: '2000000100',
      purchaseToken: null,
      packageName: null,
      ownershipVersion: 2,
      updatedAt: '2026-12-01T00:00:00.000Z',
    },
    {
      publisherId: 3,
      customerId: 301,
      store: 'google',
      purchaseKey: 'token-301',
      offerId: 'S200000002_US',
      productId: 'premium_yearly',
      state: 'active',
      expiresAt: '2020-01-01T00:00:00.000Z',
      gracePeriodExpiresAt: null,
      willRenew: false,
      environment: 'Production',
      transactionId: null,
      originalTransactionId: null,
      purchaseToken: 'token-301',
      packageName: 'com.example.app',
      ownershipVersion: 1,
      updatedAt: '2026-12-05T00:00:00.000Z',
    },
  ];
  for (const entitlement of stored) {
    await db.send(
      new PutCommand({
        TableName: TABLE,
        Item: { ...keys.entitlement(3, 301, entitlement.store, entitlement.purchaseKey), type: 'entitlement', ...entitlement },
      }),
    );
  }
});
afterAll(async () => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await dynamodb?.stop();
});

async function get(cleengCustomerId: string) {
  const result = await handler(
    apiEvent({
      method: 'GET',
      path: `/customers/${cleengCustomerId}/entitlements`,
      routeKey: 'GET /customers/{cleengCustomerId}/entitlements',
      headers: { 'x-publisher-id': '3', 'x-publisher-token': TOKEN },
      pathParameters: { cleengCustomerId },
    }),
    testContext,
  );
  const body: unknown = JSON.parse(result.body ?? 'null');
  return { status: result.statusCode, body };
}

describe('GET /customers/{cleengCustomerId}/entitlements, handler module on DynamoDB Local', () => {
  it('lists the stored entitlements, active first, with active decided now', async () => {
    const res = await get('301');
    expect(res.status).toBe(200);
    const body = EntitlementsResponse.parse(res.body);
    expect(body.cleengCustomerId).toBe(301);
    expect(body.entitlements.map((e) => [e.store, e.active, e.state])).toEqual([
      ['apple', true, 'active'],
      ['google', false, 'active'],
    ]);
  });

  it('answers [] for a known customer without entitlements and 404 REQ0101 for an unknown one', async () => {
    expect(await get('302')).toEqual({ status: 200, body: { cleengCustomerId: 302, entitlements: [] } });
    expect(await get('399')).toMatchObject({ status: 404, body: { code: 'REQ0101' } });
  });
});
