import { DynamoDbPublisherRepository } from '../adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../adapters/dynamodb-synchronization-repository';
import { createDocumentClient } from '../adapters/dynamodb-client';
import { ReferenceSecretStore } from '../adapters/secret-store';
import { systemClock } from '../ports/clock';
import { loadConfig, required, type Config } from './config';
import { createLogger, type Logger } from './logger';

/**
 * The composition root shared by handlers: configuration read once, clients built once per
 * container. Store adapters are built by the handlers that need them, so API bundles stay small.
 */
export interface Runtime {
  config: Config;
  logger: Logger;
  publishers: DynamoDbPublisherRepository;
  syncs: DynamoDbSynchronizationRepository;
  secrets: ReferenceSecretStore;
}

export function createRuntime(service: string, env: NodeJS.ProcessEnv = process.env): Runtime {
  const config = loadConfig(env);
  const db = createDocumentClient();
  const tableName = required(config, 'TABLE_NAME');
  return {
    config,
    logger: createLogger(service, config.LOG_LEVEL),
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
