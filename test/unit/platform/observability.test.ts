import { requestHash } from '../../../lambdas/purchases/domain/accept-purchase';
import { hashPublisherToken } from '../../../lambdas/tenants/domain/authenticate';
import { StoreCredentialsError, StoreUnavailableError, ConfigurationError } from '../../../lambdas/platform/errors';
import type { Publisher } from '../../../lambdas/tenants/domain/publisher';
import type { Store, SyncKind } from '../../../lambdas/events/vocabulary';
import type { SQSRecord } from 'aws-lambda';
import type { DeliverWebhooksDeps } from '../../../lambdas/webhooks/domain/deliver-webhooks';
import { makeDeliverWebhooksHandler, webhookAttemptOutcome } from '../../../lambdas/webhooks/handlers/deliver-webhooks';
import { makeFinalizeHandler } from '../../../lambdas/purchases/handlers/finalize-synchronization';
import { makeMarkRetryingHandler } from '../../../lambdas/purchases/handlers/mark-synchronization-retrying';
import type { AcceptOutcome } from '../../../lambdas/purchases/ports/synchronization-repository';
import { createLogger, purchaseTokenHash, withKeys } from '../../../lambdas/platform/logger';
import { METRIC, METRICS_NAMESPACE } from '../../../lambdas/platform/metric-names';
import { createMetrics, noMetrics, type MetricKey, type MetricsRecorder } from '../../../lambdas/platform/metrics';
import { makePurchaseHandler } from '../../../lambdas/purchases/handlers/purchase-handler';
import { measureStoreCall } from '../../../lambdas/purchases/store-verifiers';
import { createTracing, noTracing } from '../../../lambdas/platform/tracer';
import { apiEvent, testContext } from '../../support/api-events';
import {
  FakeCustomerTokenVerifier,
  FakeDeadLetterQueue,
  FakeDeliveryLog,
  FakeDeliveryQueue,
  FakePublisherRepository,
  FakeSecretStore,
  FakeSynchronizationRepository,
  FakeWebhookEndpointRepository,
  FakeWebhookSender,
  FakeWorkflowStarter,
  FixedClock,
} from '../../support/fakes';
import { googleRegisterSync } from '../../support/synchronizations';
import { instrument } from '../../../lambdas/platform/handler';

const PUBLISHER_TOKEN = 'pt_8cTq2m0Yv4bX9kLrW1sZ7dNfH3jG6pQa';
// A compact JWS as apps send it (header {"alg":"HS256"}, claims {"customerId":42,"publisherId":7}).
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJjdXN0b21lcklkIjo0MiwicHVibGlzaGVySWQiOjd9.Zm9vYmFyYmF6cXV4c2lnbmF0dXJlMTIzNDU2Nzg5MA';
// Google purchase tokens: opaque, ~150 characters of [A-Za-z0-9._-].
const PURCHASE_TOKEN = 'opkhgdlfhcbgnmmdkbljpame.AO-J1OzT7e0bZrZ5K1dW3pQnXq8Y2mR4sV6uH9cE1fL0gB7aT3yN5iK8oP2wQ4eU6rS9dF1gH3jK5lZ7xC9vB1nM3';
const ID = '11111111-2222-4333-8444-555555555555';

const publisher: Publisher = {
  publisherId: 7,
  name: 'P',
  tokenHash: hashPublisherToken(PUBLISHER_TOKEN),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  apple: { bundleId: 'b', issuerId: 'i', keyId: 'k', privateKeyRef: 'file:k', environments: ['Sandbox'] },
  google: { profiles: [{ packageName: 'com.example.iapsync', serviceAccountRef: 'file:sa.json' }] },
  ownershipPolicy: 'keep',
};

/** A MetricsRecorder that keeps what it is given. */
function recordingMetrics() {
  const added: [MetricKey, string | undefined, number][] = [];
  const recorder: MetricsRecorder & { added: typeof added; flushes: number } = {
    added,
    flushes: 0,
    add: (metric, dimensionValue, value = 1) => void added.push([metric, dimensionValue, value]),
    flush: () => void recorder.flushes++,
  };
  return recorder;
}

function purchaseWorld(
  store: Store,
  options: { kind?: SyncKind; outcome?: AcceptOutcome; startFails?: boolean; verifyThrows?: Error; metrics?: MetricsRecorder } = {},
) {
  const lines: string[] = [];
  const logger = createLogger('test', 'debug', (line) => lines.push(line));
  const syncs = new FakeSynchronizationRepository();
  syncs.acceptAnswer = options.outcome;
  const customerTokens = new FakeCustomerTokenVerifier({ [JWT]: { customerId: 42, publisherId: 7 } });
  customerTokens.failure = options.verifyThrows;
  const workflow = new FakeWorkflowStarter();
  if (options.startFails) workflow.failure = new Error('StartExecution failed');
  const handler = makePurchaseHandler(store, options.kind ?? 'register', {
    publishers: new FakePublisherRepository([publisher]),
    customerTokens,
    syncs,
    workflow,
    clock: new FixedClock('2026-11-23T10:00:00Z'),
    logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    leaseSeconds: 7800,
    retryAfterSeconds: 5,
    newId: () => ID,
  });
  const body =
    store === 'apple'
      ? { cleengCustomerId: 42, transactionId: '2000000123456789' }
      : { cleengCustomerId: 42, purchaseToken: PURCHASE_TOKEN, packageName: 'com.example.iapsync', productType: 'subscription' };
  const event = apiEvent({
    path: store === 'apple' ? '/storekit2/purchases' : '/google-play/purchases',
    headers: { 'content-type': 'application/json', 'x-publisher-id': '7', authorization: `Bearer ${JWT}` },
    body: JSON.stringify(body),
  });
  return { handler, event, lines };
}

/** An SQS record as Lambda's event source mapping delivers it. */
function sqsRecord(messageId: string, body: string): SQSRecord {
  return {
    messageId,
    receiptHandle: messageId,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'test', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:000000000000:webhooks',
    awsRegion: 'eu-west-1',
  };
}

/** Captures what Powertools writes to stdout (its own Console over process.stdout) while `run` runs. */
async function captureStdout(run: () => Promise<unknown>): Promise<string[]> {
  const written: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return written.join('').split('\n').filter(Boolean);
}

interface EmfDocument {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

function emfDocuments(lines: string[]): EmfDocument[] {
  return lines.map((line) => JSON.parse(line) as EmfDocument).filter((doc) => doc._aws !== undefined);
}

const APPLE_REQUEST_HASH = requestHash({ route: 'apple-register', publisherId: 7, cleengCustomerId: 42, transactionId: '2000000123456789', ipAddress: null });

const EMF_ENV = { POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME: 'iap-sync-test' };

describe('logs of a register request', () => {
  it.each([
    ['Google register accepted', 'google', {}],
    ['Google register whose workflow cannot start (error lines)', 'google', { startFails: true }],
    ['Apple register accepted', 'apple', {}],
    ['Apple register whose workflow cannot start (error lines)', 'apple', { startFails: true }],
    ['Apple register replayed', 'apple', { outcome: { outcome: 'exists', existing: { ...googleRegisterSync(ID), requestHash: APPLE_REQUEST_HASH } } }],
    // A library that puts the credential in its error message: the line is still written, masked.
    ['a credential check failing with the JWT in its message', 'google', { verifyThrows: new TypeError(`cannot parse ${JWT}`) }],
  ] as const)('%s: neither the purchase token nor the JWT is written', async (_name, store, options) => {
    const { handler, event, lines } = purchaseWorld(store, options);
    await handler(event, testContext);
    expect(lines.length).toBeGreaterThan(0);
    const output = lines.join('\n');
    expect(output).not.toContain(PURCHASE_TOKEN);
    expect(output).not.toContain(JWT);
    // Not even a recognisable part of either.
    expect(output).not.toContain(JWT.split('.')[1]);
    expect(output).not.toContain(PURCHASE_TOKEN.slice(0, 40));
  });

  it('a Google register is logged with publisherId and the token hash, which is the start of its table key', async () => {
    const { handler, event, lines } = purchaseWorld('google');
    expect((await handler(event, testContext)).statusCode).toBe(202);
    const accepted = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.message === 'synchronization accepted');
    expect(accepted).toMatchObject({
      level: 'INFO',
      service: 'test',
      synchronizationId: ID,
      publisherId: 7,
      store: 'google',
      kind: 'register',
      packageName: 'com.example.iapsync',
      purchaseTokenHash: purchaseTokenHash(PURCHASE_TOKEN),
    });
    expect(purchaseTokenHash(PURCHASE_TOKEN)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('an Apple register is logged with publisherId and transactionId', async () => {
    const { handler, event, lines } = purchaseWorld('apple');
    await handler(event, testContext);
    const accepted = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.message === 'synchronization accepted');
    expect(accepted).toMatchObject({ synchronizationId: ID, publisherId: 7, transactionId: '2000000123456789' });
  });
});

describe('logger', () => {
  it('writes one JSON line per entry at or above its level, through Powertools', () => {
    const lines: string[] = [];
    const logger = createLogger('svc', 'warn', (line) => lines.push(line));
    logger.debug('no');
    logger.info('no');
    logger.warn('yes', { synchronizationId: ID });
    logger.error('yes too');
    expect(lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 'WARN', message: 'yes', service: 'svc', synchronizationId: ID, timestamp: expect.any(String) }),
      expect.objectContaining({ level: 'ERROR', message: 'yes too' }),
    ]);
  });

  it('writes nothing when silent', () => {
    const lines: string[] = [];
    createLogger('svc', 'silent', (line) => lines.push(line)).error('nothing');
    expect(lines).toEqual([]);
  });

  it.each([
    ['a purchase token becomes its hash', { purchaseToken: PURCHASE_TOKEN }, { purchaseTokenHash: purchaseTokenHash(PURCHASE_TOKEN) }],
    ['credential-named keys are redacted', { authorization: `Bearer ${JWT}`, publisherToken: PUBLISHER_TOKEN, secret: 's' }, { authorization: '[redacted]', publisherToken: '[redacted]', secret: '[redacted]' }],
    ['a JWT inside any string is masked', { note: `got ${JWT} here` }, { note: 'got [jwt] here' }],
    ['a publisher token inside a string is masked', { note: `token ${PUBLISHER_TOKEN}` }, { note: 'token pt_[redacted]' }],
    ['a webhook secret inside a string is masked', { note: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }, { note: 'whsec_[redacted]' }],
    ['URLs lose user info and query values', { url: 'https://user:pw@hooks.example.com/in?key=abc&x=1' }, { url: 'https://hooks.example.com/in?key=redacted&x=redacted' }],
    ['nested objects are cleaned too', { detail: { purchaseToken: 'abc', jwt: 'x' } }, { detail: { purchaseTokenHash: purchaseTokenHash('abc'), jwt: '[redacted]' } }],
  ])('%s', (_name, fields, expected) => {
    const lines: string[] = [];
    createLogger('svc', 'info', (line) => lines.push(line)).info('entry', fields);
    const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(entry).toMatchObject(expected);
    expect(lines[0]).not.toContain(PURCHASE_TOKEN);
    expect(lines[0]).not.toContain(JWT);
    expect(lines[0]).not.toContain(PUBLISHER_TOKEN);
  });

  it('logs an error by name and message only: SDK errors carry their request, headers included', () => {
    const lines: string[] = [];
    const error = Object.assign(new Error('request failed'), { config: { headers: { Authorization: 'Bearer ya29.secret-access-token' } } });
    createLogger('svc', 'info', (line) => lines.push(line)).error('store call failed', { error });
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ error: { name: 'Error', message: 'request failed' } });
    expect(lines[0]).not.toContain('ya29');
  });

  it('logs the cause and code of an error, down to three causes: "Apple could not be reached: TypeError" says why', () => {
    const lines: string[] = [];
    const refused = Object.assign(new Error('connect ECONNREFUSED 17.0.0.1:443'), { code: 'ECONNREFUSED', config: { headers: { Authorization: 'Bearer ya29.x' } } });
    const fetchFailed = new TypeError('fetch failed', { cause: refused });
    const error = new StoreUnavailableError('Apple could not be reached: TypeError', { cause: fetchFailed });
    createLogger('svc', 'info', (line) => lines.push(line)).warn('store verification failed', { error });
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      error: {
        name: 'StoreUnavailableError',
        message: 'Apple could not be reached: TypeError',
        cause: { name: 'TypeError', message: 'fetch failed', cause: { name: 'Error', message: 'connect ECONNREFUSED 17.0.0.1:443', code: 'ECONNREFUSED' } },
      },
    });
    expect(lines[0]).not.toContain('ya29');
  });

  it('stops after three causes, keeps a cause that is not an Error, and masks credentials in causes', () => {
    const lines: string[] = [];
    let error: Error = new Error(`innermost ${PUBLISHER_TOKEN}`);
    for (const level of [4, 3, 2, 1]) error = new Error(`level ${level}`, { cause: error });
    createLogger('svc', 'info', (line) => lines.push(line)).error('deep', { error, other: new Error('outer', { cause: 'plain text cause' }) });
    const entry = JSON.parse(lines[0] ?? '{}') as { error: Record<string, unknown>; other: Record<string, unknown> };
    expect(entry.error).toEqual({
      name: 'Error',
      message: 'level 1',
      cause: { name: 'Error', message: 'level 2', cause: { name: 'Error', message: 'level 3', cause: { name: 'Error', message: 'level 4' } } },
    });
    expect(entry.other).toEqual({ name: 'Error', message: 'outer', cause: { message: 'plain text cause' } });
    expect(lines[0]).not.toContain(PUBLISHER_TOKEN);
  });

  it('withKeys adds the invocation keys to every entry; the entry fields win', () => {
    const lines: string[] = [];
    const logger = withKeys(createLogger('svc', 'info', (line) => lines.push(line)), { synchronizationId: ID, publisherId: 7 });
    logger.info('one', { publisherId: 8 });
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ synchronizationId: ID, publisherId: 8 });
  });
});

describe('metrics (EMF)', () => {
  it('one register invocation publishes SynchronizationsAccepted = 1 with exactly {service, store}', async () => {
    const metrics = createMetrics(EMF_ENV);
    const { handler, event } = purchaseWorld('apple', { metrics });
    const logger = createLogger('test', 'silent');
    const stdout = await captureStdout(async () => {
      expect((await instrument({ logger, metrics }, handler, {})(event, testContext)).statusCode).toBe(202);
    });
    const docs = emfDocuments(stdout);
    expect(docs).toHaveLength(1);
    expect(docs[0]?._aws.CloudWatchMetrics).toEqual([
      { Namespace: 'IapSync', Dimensions: [['service', 'store']], Metrics: [{ Name: METRIC.accepted.name, Unit: 'Count' }] },
    ]);
    expect(docs[0]).toMatchObject({ service: 'iap-sync-test', store: 'apple', SynchronizationsAccepted: 1 });
  });

  it('a refused request publishes nothing (and the flush still runs once)', async () => {
    const metrics = recordingMetrics();
    const { handler, event } = purchaseWorld('apple', { metrics, outcome: { outcome: 'customer_missing' } });
    const res = await instrument({ logger: createLogger('test', 'silent'), metrics }, handler, {})(event, testContext);
    expect(res.statusCode).toBe(422);
    expect(metrics.added).toEqual([]);
    expect(metrics.flushes).toBe(1);
  });

  it('one flush writes one document per dimension value, each with only its own dimension', async () => {
    const metrics = createMetrics(EMF_ENV);
    const stdout = await captureStdout(async () => {
      metrics.add('webhookAttempts', 'delivered');
      metrics.add('webhookAttempts', 'delivered');
      metrics.add('webhookAttempts', 'retry_scheduled');
      metrics.add('storeLatency', 'google', 120.5);
      metrics.add('storeLatency', 'google', 80);
      metrics.add('storeErrors', 'google');
      metrics.add('stuck', undefined, 3);
      metrics.flush();
      metrics.flush(); // nothing left: writes nothing
    });
    const docs = emfDocuments(stdout);
    const summary = docs.map((doc) => ({
      dimensions: doc._aws.CloudWatchMetrics[0]?.Dimensions,
      metrics: doc._aws.CloudWatchMetrics[0]?.Metrics.map((m) => `${m.Name}:${m.Unit}`).sort(),
    }));
    expect(summary).toEqual([
      { dimensions: [['service', 'outcome']], metrics: ['WebhookAttempts:Count'] },
      { dimensions: [['service', 'outcome']], metrics: ['WebhookAttempts:Count'] },
      { dimensions: [['service', 'store']], metrics: ['StoreErrors:Count', 'StoreLatency:Milliseconds'] },
      { dimensions: [['service']], metrics: ['StuckSynchronizations:Count'] },
    ]);
    expect(docs[0]).toMatchObject({ outcome: 'delivered', WebhookAttempts: 2 });
    expect(docs[1]).toMatchObject({ outcome: 'retry_scheduled', WebhookAttempts: 1 });
    expect(docs[2]).toMatchObject({ store: 'google', StoreLatency: [120.5, 80], StoreErrors: 1 });
    expect(docs[3]).toMatchObject({ StuckSynchronizations: 3 });
    for (const doc of docs) expect(doc.service).toBe('iap-sync-test');
  });

  it('is silent without POWERTOOLS_METRICS_NAMESPACE (npm start, tests): no EMF line at all', async () => {
    const metrics = createMetrics({ POWERTOOLS_SERVICE_NAME: 'iap-sync-test' });
    expect(metrics).toBe(noMetrics);
    const { handler, event } = purchaseWorld('apple', { metrics });
    const stdout = await captureStdout(async () => {
      await instrument({ logger: createLogger('test', 'silent'), metrics }, handler, {})(event, testContext);
    });
    expect(stdout).toEqual([]);
  });

  it('a failing flush does not replace the handler answer', async () => {
    const lines: string[] = [];
    const metrics: MetricsRecorder = {
      add: () => undefined,
      flush: () => {
        throw new Error('EMF too large');
      },
    };
    const wrapped = instrument({ logger: createLogger('test', 'warn', (line) => lines.push(line)), metrics }, async () => 'answer', {});
    await expect(wrapped(undefined, undefined)).resolves.toBe('answer');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ level: 'WARN', message: 'metrics flush failed' });
  });
});

describe('what each function counts', () => {
  it.each([
    ['Apple answered', 'apple', async () => ({}), [['storeLatency', 'apple']]],
    ['Apple unavailable', 'apple', async () => Promise.reject(new StoreUnavailableError('503')), [['storeErrors', 'apple'], ['storeLatency', 'apple']]],
    ['Google refused our key', 'google', async () => Promise.reject(new StoreCredentialsError('401')), [['storeErrors', 'google'], ['storeLatency', 'google']]],
    ['our configuration is wrong (not a store error)', 'google', async () => Promise.reject(new ConfigurationError('no profile')), [['storeLatency', 'google']]],
  ] as const)('a store call: %s', async (_name, store, call, expected) => {
    const metrics = recordingMetrics();
    await measureStoreCall(metrics, store, call).catch(() => undefined);
    expect(metrics.added.map(([metric, dimension]) => [metric, dimension])).toEqual(expected);
    expect(metrics.added.find(([metric]) => metric === 'storeLatency')?.[2]).toBeGreaterThanOrEqual(0);
  });

  it('FinalizeSynchronization counts the result once, not when a retried call answers the stored event', async () => {
    const sync = googleRegisterSync(ID);
    const syncs = new FakeSynchronizationRepository([sync]);
    const publishers = new FakePublisherRepository([{ ...publisher, publisherId: sync.publisherId }]);
    const metrics = recordingMetrics();
    const finalize = makeFinalizeHandler({ syncs, publishers, clock: new FixedClock('2026-11-23T10:00:00Z'), eventBusName: 'bus', logger: createLogger('t', 'silent'), metrics });
    await finalize({ synchronizationId: ID, publisherId: sync.publisherId, failed: true });
    await finalize({ synchronizationId: ID, publisherId: sync.publisherId, failed: true });
    expect(metrics.added).toEqual([['finalized', 'SYNCHRONIZATION_FAILED', 1]]);
  });

  it.each([
    ['a retry', 0, false],
    ['the call that exhausts the budget', 7, true],
  ])('MarkRetrying counts StoreRetries by the execution\'s store and holds the sweeper off until the next attempt: %s', async (_name, attempt, exhausted) => {
    const syncs = new FakeSynchronizationRepository();
    const metrics = recordingMetrics();
    const mark = makeMarkRetryingHandler({
      syncs,
      policy: { maxAttempts: 8, baseSeconds: 15, maxWaitSeconds: 960 },
      clock: new FixedClock('2026-11-23T10:00:00Z'),
      logger: createLogger('t', 'silent'),
      metrics,
    });
    const next = await mark({ synchronizationId: ID, publisherId: 1, store: 'google', retry: { attempt } });
    expect(next.exhausted).toBe(exhausted);
    const marked = syncs.retrying.map(({ attempts, nextAttemptAt }) => [attempts, nextAttemptAt.toISOString()]);
    expect(marked).toEqual(exhausted ? [] : [[1, '2026-11-23T10:00:15.000Z']]);
    expect(metrics.added).toEqual([['storeRetries', 'google', 1]]);
  });

  it.each([
    ['done', 'delivered'],
    ['retry', 'retry_scheduled'],
    ['dead-letter', 'failed_permanently'],
    ['disable-endpoint', 'endpoint_disabled'],
    ['deferred', undefined],
    ['skipped', undefined],
    ['requeued', undefined],
  ] as const)('DeliverWebhooks: a report %s is WebhookAttempts outcome %s', (outcome, expected) => {
    expect(webhookAttemptOutcome({ outcome })).toBe(expected);
  });

  it('DeliverWebhooks counts each attempt of the batch and flushes nothing itself', async () => {
    const metrics = recordingMetrics();
    const deps: DeliverWebhooksDeps = {
      endpoints: new FakeWebhookEndpointRepository(),
      log: new FakeDeliveryLog(),
      queue: new FakeDeliveryQueue(),
      deadLetters: new FakeDeadLetterQueue(),
      sender: new FakeWebhookSender(),
      secrets: new FakeSecretStore(),
      clock: new FixedClock('2026-11-23T10:00:00Z'),
      logger: createLogger('t', 'silent'),
    };
    const handler = makeDeliverWebhooksHandler(deps, metrics);
    // Two messages the use case drops without an attempt, and one it cannot read: nothing to count.
    const res = await handler({
      Records: [
        sqsRecord('1', JSON.stringify({ source: 'iap-sync', 'detail-type': 'otherTopic', detail: {} })),
        sqsRecord('2', '{"kind":"nope"}'),
      ],
    });
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: '2' }]);
    expect(metrics.added).toEqual([]);
    expect(metrics.flushes).toBe(0);
  });
});

describe('tracer', () => {
  it('is not loaded outside Lambda (its async hook would slow the local runtime)', () => {
    expect(createTracing({})).toBe(noTracing);
    expect(createTracing({ AWS_LAMBDA_FUNCTION_NAME: 'f', POWERTOOLS_TRACE_ENABLED: 'false' })).toBe(noTracing);
  });
});
