import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { EventBridgeEventPublisher } from '../../../lambdas/events/adapters/eventbridge-event-publisher';
import { SfnWorkflowStarter } from '../../../lambdas/purchases/adapters/sfn-workflow-starter';
import { awsCallWorstCaseMs, awsClientConfig, awsClientSettings } from '../../../lambdas/platform/aws-client-config';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { DependencyUnavailableError } from '../../../lambdas/platform/errors';
import { apiErrors, type ApiEvent, type ApiResult } from '../../../lambdas/platform/http';
import { createLogger } from '../../../lambdas/platform/logger';
import { ReferenceSecretStore } from '../../../lambdas/platform/reference-secret-store';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants';
import { handler as getEntitlements } from '../../../lambdas/entitlements/handlers/get-entitlements';
import { SqsDeliveryQueue } from '../../../lambdas/webhooks/adapters/sqs-delivery-queue';
import { apiEvent, testContext } from '../../support/api-events';

/**
 * Every AWS SDK client the functions build gives up on a dependency that accepts the connection and
 * never answers: a local TCP server on port 0 that reads and stays silent stands in for DynamoDB,
 * Step Functions, EventBridge, SQS and Secrets Manager. The adapters are built with their default
 * clients, so what is tested is what the functions run; only the timeouts are shortened by the
 * environment variables the functions read (AWS_*_TIMEOUT_MS, AWS_MAX_ATTEMPTS).
 */

/** API functions' timeout: lib/iap-sync-stack.ts API_TIMEOUT (test/cdk checks the template has it). */
const API_FUNCTION_TIMEOUT_MS = 10_000;

let silent: Server;
let endpoint: string;
const sockets = new Set<Socket>();
let connections = 0;

const SHORT = { AWS_CONNECTION_TIMEOUT_MS: '200', AWS_REQUEST_TIMEOUT_MS: '300', AWS_MAX_ATTEMPTS: '2' };
const ENV_NAMES = [
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_ENDPOINT_URL',
  'AWS_CONNECTION_TIMEOUT_MS',
  'AWS_REQUEST_TIMEOUT_MS',
  'AWS_MAX_ATTEMPTS',
  'TABLE_NAME',
  'LOG_LEVEL',
] as const;
const savedEnv = new Map<string, string | undefined>(ENV_NAMES.map((name) => [name, process.env[name]]));

beforeAll(async () => {
  silent = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume(); // reads the request, never answers
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    // Every service's endpoint (the SDK's AWS_ENDPOINT_URL): the silent server.
    AWS_ENDPOINT_URL: endpoint,
    ...SHORT,
    // For the deployed entitlements handler, which builds its runtime from the environment on first call.
    TABLE_NAME: 'table',
    LOG_LEVEL: 'silent',
  });
});

afterAll(async () => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
});

/** The bound of one call with the short settings above, plus scheduling slack. */
const SHORT_BOUND_MS = awsCallWorstCaseMs(awsClientSettings(SHORT)) + 1_000;

async function timed(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await call();
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('the call answered, but the server never does');
}

describe('AWS SDK clients against a dependency that never answers', () => {
  it.each<[string, () => Promise<unknown>]>([
    ['DynamoDB (createDocumentClient)', () => new DynamoDbPublisherRepository(createDocumentClient(), 'table').getPublisher(1)],
    [
      'Step Functions (SfnWorkflowStarter)',
      () =>
        new SfnWorkflowStarter('arn:aws:states:us-east-1:000000000000:stateMachine:x').start({
          synchronizationId: '11111111-2222-4333-8444-555555555555',
          publisherId: 1,
          store: 'apple',
          kind: 'register',
          customerId: 1,
          retry: { attempt: 0 },
        } as never),
    ],
    ['EventBridge (EventBridgeEventPublisher)', () => new EventBridgeEventPublisher('bus').publish('inappPurchaseSyncResult', {})],
    ['SQS (SqsDeliveryQueue)', () => new SqsDeliveryQueue(`${endpoint}/000000000000/deliveries`).enqueue({ kind: 'replay', webhookId: 'msg_x' }, 0)],
    [
      'Secrets Manager (ReferenceSecretStore)',
      () => new ReferenceSecretStore({ cacheSeconds: 0 }).get('arn:aws:secretsmanager:us-east-1:000000000000:secret:iap-sync/x'),
    ],
  ])('%s gives up within attempts × request timeout, as DependencyUnavailableError', async (_name, call) => {
    const before = connections;
    const { error, ms } = await timed(call);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as Error).message).toMatch(/TimeoutError/);
    // It did wait for the server (each attempt to its timeout), and retried, but not for ever.
    expect(ms).toBeGreaterThanOrEqual(2 * 300 * 0.9);
    expect(ms).toBeLessThan(SHORT_BOUND_MS);
    expect(connections - before).toBeGreaterThanOrEqual(1);
  });
});

describe('the API answers 503 S0002 on its own, within its budget', () => {
  it('with the defaults, one call to a stalled dependency gives up well inside the API functions\' 10 s', () => {
    const defaults = awsClientSettings({});
    expect(defaults).toEqual({ connectionTimeoutMs: 1000, requestTimeoutMs: 2000, maxAttempts: 3 });
    // 3 attempts × 2 s + back-off ≤ 0.5 s + 1 s: 7.5 s, leaving time for the rest of the request.
    expect(awsCallWorstCaseMs(defaults)).toBe(7_500);
    expect(awsCallWorstCaseMs(defaults)).toBeLessThanOrEqual(API_FUNCTION_TIMEOUT_MS - 2_000);
    expect(awsClientConfig({}).requestHandler).toEqual({ connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true, socketTimeout: 2000 });
  });

  it('the deployed entitlements handler answers 503 S0002 when DynamoDB never answers', async () => {
    const started = Date.now();
    const result = (await getEntitlements(
      apiEvent({
        method: 'GET',
        path: '/customers/301/entitlements',
        pathParameters: { cleengCustomerId: '301' },
        headers: { 'x-publisher-id': '3', 'x-publisher-token': 'pt_handler_test_token' },
      }),
      testContext,
    )) as ApiResult;
    expect(Date.now() - started).toBeLessThan(SHORT_BOUND_MS);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(String(result.body))).toMatchObject({ code: 'S0002' });
  });

  it.each<[string, Error]>([
    ['the SDK\'s TimeoutError left unwrapped', Object.assign(new Error('socket timed out'), { name: 'TimeoutError' })],
    ['a 5xx the caller did not wrap', Object.assign(new Error('internal'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } })],
  ])('maps %s to 503 S0002, not 500 S0001', async (_name, error) => {
    const handler = middy<ApiEvent, ApiResult, Error, Context>()
      .use(apiErrors(createLogger('t', 'silent')))
      .handler(async () => {
        throw error;
      });
    const result = await handler(apiEvent({ path: '/x' }), testContext);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(String(result.body))).toMatchObject({ code: 'S0002' });
  });

  it('answers 503 S0002 when the function itself is about to time out (middy stops it just before Lambda would)', async () => {
    const handler = middy<ApiEvent, ApiResult, Error, Context>()
      .use(apiErrors(createLogger('t', 'silent')))
      .handler(() => new Promise<ApiResult>(() => undefined));
    const context = { ...testContext, getRemainingTimeInMillis: () => 100 } as Context;
    const result = await handler(apiEvent({ path: '/x' }), context);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(String(result.body))).toMatchObject({ code: 'S0002' });
  });
});
