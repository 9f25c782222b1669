/**
 * Which iap-sync stack the command line manages, and how it reaches that stack's data and secrets.
 *
 * Local (the default): the stack started by `npm start` with the same `--data-dir` (default
 * `.iap-sync`). ASSUMPTION: DynamoDB Local listens on a port that changes at every start and
 * `local.json` does not say which, so this file reads `<data-dir>/runtime.json`, written by
 * local/stack.ts at start-up:
 *
 *   { "dynamodbEndpoint": "http://127.0.0.1:NNNN", "tableName": "iap-sync-local" }
 *
 * (extra fields are ignored). `local.json` is read too, only for the API URL. Secrets are files
 * under `<data-dir>/secrets`, referenced as `file:<name>` (the scheme lambdas/platform/reference-secret-store.ts
 * resolves in local mode).
 *
 * Deployed (`--stack NAME [--region R]`): the stack's CloudFormation outputs `TableName`, `ApiUrl`,
 * `EventBusName` and `StateMachineArn`, with the AWS credentials of the shell. Secrets go to
 * Secrets Manager as `iap-sync/<stack>/<purpose>` (the functions may read only `iap-sync/<stack>/*`) and are
 * referenced by ARN.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { createDocumentClient } from '../lambdas/platform/dynamodb-client';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/dynamodb-local';
import type { LocalJson } from '../local/stack';
import { CommandError, UsageError } from './commands';

export const DEFAULT_DATA_DIR = '.iap-sync';
export const RUNTIME_JSON = 'runtime.json';
export const LOCAL_JSON = 'local.json';

/** The stack a command acts on. */
export interface StackTarget {
  readonly kind: 'local' | 'deployed';
  /** For messages: `local stack in <dir>` or `stack <name> (<region>)`. */
  readonly description: string;
  readonly db: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly apiUrl?: string;
  /** Local only: the folder `file:` secret references are relative to. */
  readonly secretsDir?: string;
  /**
   * Stores a secret and answers its reference: `file:<purpose>` locally, the Secrets Manager ARN
   * of `iap-sync/<stack>/<purpose>` when deployed. `purpose` is a file-name-safe word.
   */
  storeSecret(purpose: string, value: string): Promise<string>;
  /** Deployed only: sends a message to the webhook delivery queue (replays run in the delivery Lambda). */
  enqueueDelivery?(message: object): Promise<void>;
  /** Releases the SDK clients (lets the process exit). */
  close(): void;
}

const RuntimeJson = z.object({
  dynamodbEndpoint: z.string().regex(/^https?:\/\/[^\s/]+$/, 'an http(s)://host:port URL'),
  tableName: z.string().min(3).max(255),
});

const SECRET_PURPOSE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkPurpose(purpose: string): void {
  // The name becomes a file name (local) or the last part of a secret name: keep it to one plain word.
  if (!SECRET_PURPOSE.test(purpose) || purpose.includes('..')) throw new CommandError(`Invalid secret name: ${purpose}`);
}

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
  return {
    kind: 'local',
    description: `local stack in ${dir}`,
    db: createDocumentClient(client),
    tableName: runtime.data.tableName,
    ...(apiUrl ? { apiUrl } : {}),
    secretsDir,
    async storeSecret(purpose, value) {
      checkPurpose(purpose);
      mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
      const path = join(secretsDir, purpose);
      writeFileSync(path, value, { mode: 0o600 });
      // `mode` applies only when the file is created; an overwritten file keeps its old mode otherwise.
      chmodSync(path, 0o600);
      return `file:${purpose}`;
    },
    close: () => client.destroy(),
  };
}

/** Stack outputs the command line needs (lib/iap-sync-stack.ts declares them). */
export interface StackOutputs {
  TableName: string;
  ApiUrl: string;
  EventBusName: string;
  StateMachineArn: string;
}

const REQUIRED_OUTPUTS = ['TableName', 'ApiUrl', 'EventBusName', 'StateMachineArn'] as const;

/** The two AWS calls of a deployed target, overridable so tests never touch the network. */
export interface DeployedIo {
  describeStackOutputs(stackName: string): Promise<Record<string, string>>;
  /** Creates (or, when it exists, updates) a secret named `name`; answers its ARN. */
  putSecret(name: string, value: string, description: string): Promise<string>;
  sendMessage(queueUrl: string, body: string): Promise<void>;
  db: DynamoDBDocumentClient;
  close(): void;
}

function awsIo(region: string | undefined): DeployedIo {
  const config = region ? { region } : {};
  const cloudFormation = new CloudFormationClient(config);
  const secrets = new SecretsManagerClient(config);
  const dynamodb = new DynamoDBClient(config);
  const sqs = new SQSClient(config);
  return {
    async sendMessage(queueUrl, body) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    },
    async describeStackOutputs(stackName) {
      const out = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
      const outputs: Record<string, string> = {};
      for (const output of out.Stacks?.[0]?.Outputs ?? []) {
        if (output.OutputKey && output.OutputValue !== undefined) outputs[output.OutputKey] = output.OutputValue;
      }
      return outputs;
    },
    async putSecret(name, value, description) {
      try {
        const out = await secrets.send(new CreateSecretCommand({ Name: name, SecretString: value, Description: description }));
        if (!out.ARN) throw new CommandError(`Secrets Manager returned no ARN for ${name}`);
        return out.ARN;
      } catch (error) {
        // Re-configuring (a new Apple key) or a retried create: keep the name, store a new version.
        if ((error as Error).name !== 'ResourceExistsException') throw error;
        const out = await secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
        if (!out.ARN) throw new CommandError(`Secrets Manager returned no ARN for ${name}`);
        return out.ARN;
      }
    },
    db: createDocumentClient(dynamodb),
    close() {
      cloudFormation.destroy();
      secrets.destroy();
      dynamodb.destroy();
      sqs.destroy();
    },
  };
}

/** CloudFormation stack names: letters, digits and hyphens, starting with a letter, ≤ 128. */
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

/** A deployed stack, found by name through its CloudFormation outputs. */
export async function deployedTarget(stackName: string, region?: string, io: DeployedIo = awsIo(region)): Promise<StackTarget> {
  if (!STACK_NAME.test(stackName)) {
    io.close();
    throw new UsageError(`Invalid --stack: ${stackName} (letters, digits and hyphens, starting with a letter)`);
  }
  let outputs: Record<string, string>;
  try {
    outputs = await io.describeStackOutputs(stackName);
  } catch (error) {
    io.close();
    throw new CommandError(`Cannot describe stack ${stackName}: ${(error as Error).name}: ${(error as Error).message}`);
  }
  const missing = REQUIRED_OUTPUTS.filter((key) => !outputs[key]);
  if (missing.length > 0) {
    io.close();
    throw new CommandError(`Stack ${stackName} has no output ${missing.join(', ')}: is it an iap-sync stack?`);
  }
  const stack = outputs as unknown as StackOutputs;
  return {
    kind: 'deployed',
    description: `stack ${stackName}${region ? ` (${region})` : ''}`,
    db: io.db,
    tableName: stack.TableName,
    apiUrl: stack.ApiUrl,
    async storeSecret(purpose, value) {
      checkPurpose(purpose);
      return io.putSecret(`iap-sync/${stackName}/${purpose}`, value, `iap-sync ${stackName}: ${purpose}`);
    },
    ...(outputs.WebhookQueueUrl
      ? { enqueueDelivery: (message: object) => io.sendMessage(String(outputs.WebhookQueueUrl), JSON.stringify(message)) }
      : {}),
    close: () => io.close(),
  };
}

export interface TargetOptions {
  dataDir?: string;
  stack?: string;
  region?: string;
}

/** `--stack` selects a deployed stack; otherwise the local one of `--data-dir`. */
export async function resolveTarget(options: TargetOptions): Promise<StackTarget> {
  if (options.stack === undefined) {
    if (options.region !== undefined) throw new UsageError('--region needs --stack NAME (the local stack has no region)');
    return localTarget(options.dataDir ?? DEFAULT_DATA_DIR);
  }
  if (options.dataDir !== undefined) throw new UsageError('--data-dir is for the local stack; do not combine it with --stack');
  return deployedTarget(options.stack, options.region);
}
