/**
 * What every stack target provides, and the secret-name rule both kinds enforce. A leaf of
 * cli/target/: local.ts and deployed.ts implement this type and index.ts picks one of them, so the
 * type cannot live in index.ts without an import cycle.
 */
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CommandError } from '../errors';

/** The stack's purchase-sync state machine, for commands that start or look at executions (`sync retry`). */
export interface StackWorkflow {
  readonly stateMachineArn: string;
  readonly client: SFNClient;
  /** How executions end: STANDARD ones can be described, EXPRESS ones end within 5 minutes. */
  workflowType(): Promise<'STANDARD' | 'EXPRESS'>;
}

/** The stack a command acts on. */
export interface StackTarget {
  readonly kind: 'local' | 'deployed';
  /** For messages: `local stack in <dir>` or `stack <name> (<region>)`. */
  readonly description: string;
  readonly db: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly apiUrl?: string;
  /** Local only: the Step Functions and EventBridge stand-ins of the running `npm start` (runtime.json). */
  readonly awsEndpointUrl?: string;
  /** Local only: the folder `file:` secret references are relative to. */
  readonly secretsDir?: string;
  /**
   * Stores a secret and answers its reference: `file:<purpose>` locally, the Secrets Manager ARN
   * of `iap-sync/<stack>/<purpose>` when deployed. `purpose` is a file-name-safe word.
   */
  storeSecret(purpose: string, value: string): Promise<string>;
  /** The state machine; absent when the target cannot reach it (a local stack started before it said where). */
  readonly workflow?: StackWorkflow;
  /** Deployed only: sends a message to the webhook delivery queue (replays run in the delivery Lambda). */
  enqueueDelivery?(message: object): Promise<void>;
  /** Releases the SDK clients (lets the process exit). */
  close(): void;
}

const SECRET_PURPOSE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkPurpose(purpose: string): void {
  // The name becomes a file name (local) or the last part of a secret name: keep it to one plain word.
  if (!SECRET_PURPOSE.test(purpose) || purpose.includes('..')) throw new CommandError(`Invalid secret name: ${purpose}`);
}
