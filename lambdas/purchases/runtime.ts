import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbPublisherRepository } from '../tenants';
import { DynamoDbSynchronizationRepository } from './adapters/dynamodb-synchronization-repository';
import { createDocumentClient, createDynamoDbClient } from '../platform/dynamodb-client';
import { ReferenceSecretStore } from '../platform/reference-secret-store';
import { systemClock } from '../platform/clock';
import { loadConfig, required, type Config } from '../platform/config';
import { createLogger, type FunctionLogger } from '../platform/logger';
import { createMetrics, type MetricsRecorder } from '../platform/metrics';

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
  const db = createDocumentClient(options.captureClient ? options.captureClient(createDynamoDbClient(env)) : createDynamoDbClient(env));
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

