import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { DynamoDbPublisherRepository } from '../adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../adapters/dynamodb-synchronization-repository';
import { createDocumentClient } from '../adapters/dynamodb-client';
import { ReferenceSecretStore } from '../adapters/secret-store';
import { systemClock } from '../ports/clock';
import { loadConfig, required, type Config } from './config';
import { createLogger, type FunctionLogger } from './logger';
import { createMetrics, type MetricsRecorder } from './metrics';

/**
 * The composition root shared by handlers: configuration read once, clients built once per
 * container. Store adapters are built by the handlers that need them, so API bundles stay small.
 */
export interface Runtime {
  config: Config;
  logger: FunctionLogger;
  metrics: MetricsRecorder;
  publishers: DynamoDbPublisherRepository;
  syncs: DynamoDbSynchronizationRepository;
  secrets: ReferenceSecretStore;
}

export interface RuntimeOptions {
  /** Wraps the DynamoDB client, e.g. `Tracer.captureAWSv3Client` in the traced functions. */
  captureClient?: (client: DynamoDBClient) => DynamoDBClient;
}

export function createRuntime(service: string, env: NodeJS.ProcessEnv = process.env, options: RuntimeOptions = {}): Runtime {
  const config = loadConfig(env);
  const db = createDocumentClient(options.captureClient ? options.captureClient(new DynamoDBClient({})) : undefined);
  const tableName = required(config, 'TABLE_NAME');
  return {
    config,
    logger: createLogger(service, config.LOG_LEVEL),
    metrics: createMetrics(env),
    publishers: new DynamoDbPublisherRepository(db, tableName),
    syncs: new DynamoDbSynchronizationRepository(db, tableName, () => systemClock.now().getTime()),
    secrets: new ReferenceSecretStore({
      ...(config.LOCAL_SECRETS_DIR ? { localDir: config.LOCAL_SECRETS_DIR } : {}),
      cacheSeconds: config.SECRET_CACHE_SECONDS,
    }),
  };
}

/** Builds the handler on first call (after the environment is set) and reuses it for the container's life. */
export function lazyHandler<E, C, R>(build: () => (event: E, context: C) => Promise<R>) {
  let built: ((event: E, context: C) => Promise<R>) | undefined;
  return (event: E, context: C): Promise<R> => {
    built ??= build();
    return built(event, context);
  };
}

function isLambdaContext(value: unknown): value is Context {
  return typeof value === 'object' && value !== null && 'awsRequestId' in value;
}

/**
 * One invocation's observability around a handler: the Lambda context on the log entries (in
 * Lambda only, where a container runs one invocation at a time; the local runtime runs many
 * concurrently in one process and would mix them up), then, whatever the outcome, one metrics flush.
 */
export function instrument<E, C, R>(
  telemetry: { logger: FunctionLogger; metrics: MetricsRecorder },
  handler: (event: E, context: C) => Promise<R>,
  env: NodeJS.ProcessEnv = process.env,
): (event: E, context: C) => Promise<R> {
  const inLambda = env.AWS_LAMBDA_FUNCTION_NAME !== undefined;
  return async (event, context) => {
    if (inLambda && isLambdaContext(context)) telemetry.logger.addContext(context);
    try {
      return await handler(event, context);
    } finally {
      try {
        telemetry.metrics.flush();
      } catch (error) {
        // Never let a metrics problem replace the handler's own answer or error.
        telemetry.logger.warn('metrics flush failed', { error });
      }
    }
  };
}
