import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbPublisherRepository } from '../tenants';
import { createDocumentClient, createDynamoDbClient } from '../platform/dynamodb-client';
import { ReferenceSecretStore } from '../platform/reference-secret-store';
import { systemClock, type Clock } from '../platform/clock';
import { loadConfig, required, type Config } from '../platform/config';
import { createLogger, type FunctionLogger } from '../platform/logger';
import { createMetrics, type MetricsRecorder } from '../platform/metrics';
import { DynamoDbEntitlementRepository } from './adapters/dynamodb-entitlement-repository';

/**
 * The entitlements slice's composition root: configuration read once, clients built once per
 * container. Its own (not the purchases runtime) because entitlements must not depend on purchases,
 * and its bundle then carries no workflow or store client.
 */
export interface EntitlementsRuntime {
  config: Config;
  logger: FunctionLogger;
  metrics: MetricsRecorder;
  clock: Clock;
  publishers: DynamoDbPublisherRepository;
  entitlements: DynamoDbEntitlementRepository;
  /** Customer JWTs signed with HS256 are checked with a publisher's secret read from here. */
  secrets: ReferenceSecretStore;
}

/** Options of {@link createEntitlementsRuntime}. */
export interface EntitlementsRuntimeOptions {
  /** Wraps the DynamoDB client, e.g. `Tracer.captureAWSv3Client` in traced functions. */
  captureClient?: (client: DynamoDBClient) => DynamoDBClient;
}

/** Builds the runtime from the environment (`TABLE_NAME` required). */
export function createEntitlementsRuntime(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
  options: EntitlementsRuntimeOptions = {},
): EntitlementsRuntime {
  const config = loadConfig(env);
  const db = createDocumentClient(options.captureClient ? options.captureClient(createDynamoDbClient(env)) : createDynamoDbClient(env));
  const tableName = required(config, 'TABLE_NAME');
  const logger = createLogger(service, config.LOG_LEVEL);
  return {
    config,
    logger,
    metrics: createMetrics(env),
    clock: systemClock,
    publishers: new DynamoDbPublisherRepository(db, tableName),
    entitlements: new DynamoDbEntitlementRepository(db, tableName, logger),
    secrets: new ReferenceSecretStore({
      ...(config.LOCAL_SECRETS_DIR ? { localDir: config.LOCAL_SECRETS_DIR } : {}),
      cacheSeconds: config.SECRET_CACHE_SECONDS,
    }),
  };
}
