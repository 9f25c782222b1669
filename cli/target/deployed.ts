/**
 * A deployed stack (`--stack NAME [--region R]`): the stack's CloudFormation outputs `TableName`,
 * `ApiUrl`, `EventBusName` and `StateMachineArn`, with the AWS credentials of the shell. Secrets go
 * to Secrets Manager as `iap-sync/<stack>/<purpose>` and are referenced by ARN; each purpose starts
 * with the prefix of its scope (lib/secret-scopes.ts), and each function may read only its scopes.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DescribeStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { CommandError, UsageError } from '../errors';
import { checkPurpose, type StackTarget } from './stack-target';
import { SECRET_SCOPES, secretScopeOf, stackSecretsPrefix } from '../../lib/secret-scopes';

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
  /** Step Functions (`sync retry`): StartExecution, DescribeExecution, DescribeStateMachine. */
  sfn?: SFNClient;
  close(): void;
}

function awsIo(region: string | undefined): DeployedIo {
  const config = region ? { region } : {};
  const cloudFormation = new CloudFormationClient(config);
  const secrets = new SecretsManagerClient(config);
  const dynamodb = new DynamoDBClient(config);
  const sqs = new SQSClient(config);
  const sfn = new SFNClient(config);
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
    sfn,
    close() {
      sfn.destroy();
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
  const { sfn } = io;
  let workflowType: Promise<'STANDARD' | 'EXPRESS'> | undefined;
  return {
    kind: 'deployed',
    description: `stack ${stackName}${region ? ` (${region})` : ''}`,
    db: io.db,
    tableName: stack.TableName,
    apiUrl: stack.ApiUrl,
    ...(sfn
      ? {
          workflow: {
            stateMachineArn: stack.StateMachineArn,
            client: sfn,
            workflowType: () =>
              (workflowType ??= sfn.send(new DescribeStateMachineCommand({ stateMachineArn: stack.StateMachineArn })).then((out) => (out.type === 'STANDARD' ? 'STANDARD' : 'EXPRESS'))),
          },
        }
      : {}),
    async storeSecret(purpose, value) {
      checkPurpose(purpose);
      // The stack grants each function the name prefixes of its scopes only: a secret outside them no function could read.
      if (secretScopeOf(purpose) === undefined) {
        const prefixes = Object.values(SECRET_SCOPES).map((scope) => scope.prefix);
        throw new CommandError(`Secret name ${purpose} starts with none of the prefixes the stack's functions may read (${prefixes.join(', ')})`);
      }
      return io.putSecret(`${stackSecretsPrefix(stackName)}${purpose}`, value, `iap-sync ${stackName}: ${purpose}`);
    },
    ...(outputs.WebhookQueueUrl
      ? { enqueueDelivery: (message: object) => io.sendMessage(String(outputs.WebhookQueueUrl), JSON.stringify(message)) }
      : {}),
    close: () => io.close(),
  };
}
