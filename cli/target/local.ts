/**
 * The local stack (the default target): the one started by `npm start` with the same `--data-dir`
 * (default `.iap-sync`). ASSUMPTION: DynamoDB Local listens on a port that changes at every start
 * and `local.json` does not say which, so this file reads `<data-dir>/runtime.json`, written by
 * local/stack.ts at start-up:
 *
 *   { "dynamodbEndpoint": "http://127.0.0.1:NNNN", "tableName": "iap-sync-local", "awsEndpointUrl": "http://127.0.0.1:MMMM" }
 *
 * (extra fields are ignored). `awsEndpointUrl`, the Step Functions and EventBridge stand-ins, is
 * there too, not in `local.json`: it is a loopback port of this run, kept off the API port and out
 * of the file app developers are handed. `local.json` is read too, only for the API URL. Secrets are files
 * under `<data-dir>/secrets`, referenced as `file:<name>` (the scheme lambdas/platform/reference-secret-store.ts
 * resolves in local mode).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local';
import { LOCAL_STATE_MACHINE_ARN, type LocalJson } from '../../local/stack';
import { CommandError } from '../errors';
import { checkPurpose, type StackTarget } from './stack-target';

export const DEFAULT_DATA_DIR = '.iap-sync';
export const RUNTIME_JSON = 'runtime.json';
export const LOCAL_JSON = 'local.json';

const RuntimeJson = z.object({
  dynamodbEndpoint: z.string().regex(/^https?:\/\/[^\s/]+$/, 'an http(s)://host:port URL'),
  tableName: z.string().min(3).max(255),
  // Optional: a stack started before the stand-ins had their own listener does not write it.
  awsEndpointUrl: z.string().regex(/^https?:\/\/[^\s/]+$/, 'an http(s)://host:port URL').optional(),
  // Optional too; without it executions are judged as EXPRESS ones (by age), which is never wrong, only slower.
  workflowType: z.enum(['STANDARD', 'EXPRESS']).optional(),
});

function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CommandError(code === 'ENOENT' ? `${what} not found: ${path}` : `Cannot read ${path}: ${code ?? 'error'}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CommandError(`${path} is not valid JSON`);
  }
}

/** The local stack of `npm start` whose data dir is `dataDir`. */
export function localTarget(dataDir: string = DEFAULT_DATA_DIR): StackTarget {
  const dir = resolve(dataDir);
  const runtimePath = join(dir, RUNTIME_JSON);
  if (!existsSync(runtimePath)) {
    throw new CommandError(
      `No local stack found: ${runtimePath} is missing. Start it with \`npm start\` (same --data-dir), or pass --stack NAME for a deployed stack.`,
    );
  }
  const runtime = RuntimeJson.safeParse(readJsonFile(runtimePath, 'runtime.json'));
  if (!runtime.success) {
    throw new CommandError(`${runtimePath} is invalid: ${runtime.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  }
  let apiUrl: string | undefined;
  const localJsonPath = join(dir, LOCAL_JSON);
  if (existsSync(localJsonPath)) {
    const local = readJsonFile(localJsonPath, 'local.json') as Partial<LocalJson> | null;
    if (local && typeof local.apiUrl === 'string') apiUrl = local.apiUrl;
  }
  const secretsDir = join(dir, 'secrets');
  const client = new DynamoDBClient({
    endpoint: runtime.data.dynamodbEndpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    // A stopped local stack should fail fast rather than after the SDK's retries.
    maxAttempts: 2,
  });
  const { awsEndpointUrl, workflowType } = runtime.data;
  const sfn = awsEndpointUrl !== undefined ? new SFNClient({ endpoint: awsEndpointUrl, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 2 }) : undefined;
  return {
    kind: 'local',
    description: `local stack in ${dir}`,
    db: createDocumentClient(client),
    tableName: runtime.data.tableName,
    ...(apiUrl ? { apiUrl } : {}),
    ...(runtime.data.awsEndpointUrl ? { awsEndpointUrl: runtime.data.awsEndpointUrl } : {}),
    secretsDir,
    ...(sfn ? { workflow: { stateMachineArn: LOCAL_STATE_MACHINE_ARN, client: sfn, workflowType: async () => workflowType ?? 'EXPRESS' } } : {}),
    async storeSecret(purpose, value) {
      checkPurpose(purpose);
      mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
      const path = join(secretsDir, purpose);
      writeFileSync(path, value, { mode: 0o600 });
      // `mode` applies only when the file is created; an overwritten file keeps its old mode otherwise.
      chmodSync(path, 0o600);
      return `file:${purpose}`;
    },
    close: () => {
      client.destroy();
      sfn?.destroy();
    },
  };
}
