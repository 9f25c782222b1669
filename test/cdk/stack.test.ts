import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { TABLE_DEFINITION } from '../../lambdas/adapters/dynamodb-table';
import { SYNC_RESULT_EVENT_PATTERN } from '../../lambdas/schemas/events';
import { API_FUNCTIONS, WEBHOOK_FUNCTION, WORKFLOW_DEFINITION_FILE, WORKFLOW_FUNCTIONS } from '../../lambdas/shared/catalog';
import { IapSyncStack, type IapSyncStackProps } from '../../lib/iap-sync-stack';

// Two synths in the whole file (each bundles six functions with esbuild): one per workflow type.

const ROOT = path.resolve(__dirname, '..', '..');
/** The same context `cdk synth` uses (feature flags included), so the template is the deployed one. */
const CDK_CONTEXT = (JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> })
  .context;
const ASL = readFileSync(path.join(ROOT, WORKFLOW_DEFINITION_FILE), 'utf8');
const ASL_PLACEHOLDERS = [...new Set([...ASL.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1]))].sort();
const MADE_UP_ROOT = Buffer.from('made-up root certificate').toString('base64');
const SHORT_RETRY = { maxAttempts: 3, baseSeconds: 15, maxWaitSeconds: 60 };

type WorkflowType = 'STANDARD' | 'EXPRESS';
type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

function stackProps(workflowType: WorkflowType, overrides: Partial<IapSyncStackProps> = {}): IapSyncStackProps {
  return {
    stage: 'dev',
    workflowType,
    appleRootCertificates: [MADE_UP_ROOT],
    retry: workflowType === 'EXPRESS' ? SHORT_RETRY : undefined,
    ...overrides,
  };
}

const templates = new Map<WorkflowType, Template>();

beforeAll(() => {
  for (const workflowType of ['STANDARD', 'EXPRESS'] as const) {
    const app = new App({ context: CDK_CONTEXT });
    templates.set(workflowType, Template.fromStack(new IapSyncStack(app, `IapSync-${workflowType}`, stackProps(workflowType))));
  }
});

function template(workflowType: WorkflowType = 'STANDARD'): Template {
  const found = templates.get(workflowType);
  if (!found) throw new Error(`no ${workflowType} template`);
  return found;
}

function only(type: string, workflowType: WorkflowType = 'STANDARD'): [string, Resource] {
  const found = Object.entries(template(workflowType).findResources(type)) as [string, Resource][];
  expect(found).toHaveLength(1);
  return found[0] as [string, Resource];
}

/** Logical id of the catalog function `id` (a top-level construct: id plus an 8-hex hash). */
function functionLogicalId(id: string): string {
  const ids = Object.keys(template().findResources('AWS::Lambda::Function')).filter((logicalId) =>
    new RegExp(`^${id}[0-9A-F]{8}$`).test(logicalId),
  );
  expect(ids).toHaveLength(1);
  return ids[0] as string;
}

/** Every statement of every inline policy attached to the role of the catalog function `id`. */
function statementsOf(id: string): Statement[] {
  const fn = template().findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource;
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return Object.values(template().findResources('AWS::IAM::Policy') as Record<string, Resource>)
    .filter((policy) => (policy.Properties.Roles as unknown[]).some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })))
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

const actions = (statement: Statement): string[] => [statement.Action].flat();

describe('data table', () => {
  it('has the key schema, attributes and TTL of TABLE_DEFINITION', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    const { partitionKey, sortKey, timeToLiveAttribute } = TABLE_DEFINITION;
    expect(table.Properties.KeySchema).toEqual([
      { AttributeName: partitionKey.name, KeyType: 'HASH' },
      { AttributeName: sortKey.name, KeyType: 'RANGE' },
    ]);
    expect(table.Properties.AttributeDefinitions).toEqual([
      { AttributeName: partitionKey.name, AttributeType: partitionKey.type },
      { AttributeName: sortKey.name, AttributeType: sortKey.type },
    ]);
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: timeToLiveAttribute, Enabled: true });
  });

  it('is on-demand, recoverable to a point in time, encrypted with the AWS managed key and kept on stack deletion', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    });
    // SSEEnabled without a key id is the AWS managed key (aws/dynamodb); absent would be AWS-owned.
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });
});

describe('event bus', () => {
  it('archives exactly the events SYNC_RESULT_EVENT_PATTERN selects, for 30 days, from its own bus', () => {
    const [busId, bus] = only('AWS::Events::EventBus');
    const [, archive] = only('AWS::Events::Archive');
    expect(bus.Properties.Name).toBe('iap-sync-dev');
    expect(archive.Properties.EventPattern).toEqual(SYNC_RESULT_EVENT_PATTERN);
    expect(archive.Properties.RetentionDays).toBe(30);
    expect(archive.Properties.SourceArn).toEqual({ 'Fn::GetAtt': [busId, 'Arn'] });
  });
});

describe.each(['STANDARD', 'EXPRESS'] as const)('%s state machine', (workflowType) => {
  it('is the ASL file verbatim, with a substitution for each of its placeholders and no other', () => {
    const [, machine] = only('AWS::StepFunctions::StateMachine', workflowType);
    expect(machine.Properties.DefinitionString).toBe(ASL);
    expect(Object.keys(machine.Properties.DefinitionSubstitutions as object).sort()).toEqual(ASL_PLACEHOLDERS);
  });

  it('has the requested type, tracing, and logs without execution data', () => {
    const [, machine] = only('AWS::StepFunctions::StateMachine', workflowType);
    expect(machine.Properties.StateMachineType).toBe(workflowType);
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine.Properties.LoggingConfiguration).toMatchObject({
      Level: workflowType === 'EXPRESS' ? 'ALL' : 'ERROR',
      IncludeExecutionData: false,
    });
  });
});

describe('state machine permissions', () => {
  it.each(WORKFLOW_FUNCTIONS.map((entry) => [entry.id, entry.substitution]))(
    'substitutes and may invoke %s',
    (id, substitution) => {
      const [, machine] = only('AWS::StepFunctions::StateMachine');
      const logicalId = functionLogicalId(id);
      expect((machine.Properties.DefinitionSubstitutions as Record<string, unknown>)[substitution]).toEqual({
        'Fn::GetAtt': [logicalId, 'Arn'],
      });
      const roleId = ((machine.Properties.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'] ?? [])[0];
      const statements = Object.values(template().findResources('AWS::IAM::Policy') as Record<string, Resource>)
        .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleId}"`))
        .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
      const invoke = statements.filter((statement) => actions(statement).includes('lambda:InvokeFunction'));
      expect(JSON.stringify(invoke)).toContain(`"${logicalId}"`);
    },
  );
});

describe('Lambda functions', () => {
  const catalog = [
    ...API_FUNCTIONS.map((entry) => ({ id: entry.id, memory: 256, timeout: 10 })),
    ...WORKFLOW_FUNCTIONS.map((entry) => ({ id: entry.id, memory: 512, timeout: entry.timeoutSeconds })),
    { id: WEBHOOK_FUNCTION.id, memory: 512, timeout: WEBHOOK_FUNCTION.timeoutSeconds },
  ];
  const extraEnvironment: Record<string, string[]> = {
    RegisterApplePurchase: ['STATE_MACHINE_ARN'],
    TransferApplePurchase: ['STATE_MACHINE_ARN'],
    RegisterGooglePurchase: ['STATE_MACHINE_ARN'],
    TransferGooglePurchase: ['STATE_MACHINE_ARN'],
    VerifyPurchase: ['APPLE_ROOT_CERTIFICATES', 'APPLE_ONLINE_CHECKS'],
    MarkRetrying: ['RETRY_MAX_ATTEMPTS', 'RETRY_BASE_SECONDS', 'RETRY_MAX_WAIT_SECONDS'],
    DeliverWebhooks: ['WEBHOOK_QUEUE_URL', 'WEBHOOK_DEAD_LETTER_QUEUE_URL'],
  };

  it('are one per catalog entry', () => {
    expect(Object.keys(template().findResources('AWS::Lambda::Function'))).toHaveLength(catalog.length);
  });

  it.each(catalog)('$id runs Node.js 22 on arm64 with $memory MB, a $timeout s timeout and X-Ray', ({ id, memory, timeout }) => {
    const fn = template().findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource;
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: memory,
      Timeout: timeout,
      TracingConfig: { Mode: 'Active' },
    });
    const logGroupId = ((fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup ?? { Ref: '' }).Ref;
    expect(template().findResources('AWS::Logs::LogGroup')[logGroupId]?.Properties).toMatchObject({ RetentionInDays: 30 });
  });

  it.each(catalog)('$id gets exactly its configuration variables', ({ id }) => {
    const fn = template().findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource;
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(variables).sort()).toEqual(
      ['NODE_OPTIONS', 'TABLE_NAME', 'LOG_LEVEL', ...(extraEnvironment[id] ?? [])].sort(),
    );
    expect(variables.NODE_OPTIONS).toBe('--enable-source-maps');
  });

  it('hand VerifyPurchase the roots and MarkRetrying the retry budget', () => {
    const variables = (id: string) =>
      ((template('EXPRESS').findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource).Properties
        .Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables('VerifyPurchase')).toMatchObject({ APPLE_ROOT_CERTIFICATES: MADE_UP_ROOT, APPLE_ONLINE_CHECKS: 'true' });
    expect(variables('MarkRetrying')).toMatchObject({
      RETRY_MAX_ATTEMPTS: String(SHORT_RETRY.maxAttempts),
      RETRY_BASE_SECONDS: String(SHORT_RETRY.baseSeconds),
      RETRY_MAX_WAIT_SECONDS: String(SHORT_RETRY.maxWaitSeconds),
    });
  });
});

describe('least privilege', () => {
  it.each(['RegisterApplePurchase', 'TransferApplePurchase', 'RegisterGooglePurchase', 'TransferGooglePurchase'])('lets %s start executions of this state machine only', (id) => {
    const [machineId] = only('AWS::StepFunctions::StateMachine');
    const states = statementsOf(id).filter((statement) => actions(statement).some((action) => action.startsWith('states:')));
    expect(states).toEqual([{ Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: machineId } }]);
  });

  it.each(['GetSynchronization', 'GetOpenApi', ...WORKFLOW_FUNCTIONS.map((entry) => entry.id)])('%s cannot start executions', (id) => {
    expect(statementsOf(id).flatMap(actions).filter((action) => action.startsWith('states:'))).toEqual([]);
  });

  it.each([
    ['RegisterApplePurchase', true, true],
    ['TransferApplePurchase', true, true],
    ['RegisterGooglePurchase', true, true],
    ['TransferGooglePurchase', true, true],
    ['GetSynchronization', true, false],
    ['GetOpenApi', false, false],
    ...WORKFLOW_FUNCTIONS.map((entry) => [entry.id, true, true] as const),
    [WEBHOOK_FUNCTION.id, true, true],
  ] as const)('%s: reads the table %s, writes it %s', (id, reads, writes) => {
    const dynamo = statementsOf(id).flatMap(actions).filter((action) => action.startsWith('dynamodb:'));
    expect(dynamo.includes('dynamodb:GetItem')).toBe(reads);
    expect(dynamo.includes('dynamodb:PutItem')).toBe(writes);
  });

  it.each([
    ['VerifyPurchase', true],
    ['AcknowledgePurchase', true],
    ['RegisterApplePurchase', true],
    ['TransferApplePurchase', true],
    ['RegisterGooglePurchase', true],
    ['TransferGooglePurchase', true],
    ['GetSynchronization', true],
    ['GetOpenApi', false],
    ['DeliverWebhooks', true],
    ['MarkRetrying', false],
    ['FinalizeSynchronization', false],
  ] as const)('%s: may read iap-sync/* secrets %s', (id, allowed) => {
    const secrets = statementsOf(id).filter((statement) => actions(statement).includes('secretsmanager:GetSecretValue'));
    if (!allowed) {
      expect(secrets).toEqual([]);
      return;
    }
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0]?.Resource)).toMatch(/:secretsmanager:.*:secret:iap-sync\/\*"/);
  });
});

describe('webhook delivery', () => {
  it('routes the shared event pattern from the bus to an encrypted queue, with a dead-letter queue for failed events', () => {
    const rules = Object.values(template().findResources('AWS::Events::Rule')) as Resource[];
    const rule = rules.find((candidate) => JSON.stringify(candidate.Properties.EventPattern) === JSON.stringify(SYNC_RESULT_EVENT_PATTERN));
    expect(rule).toBeDefined();
    const [target] = rule?.Properties.Targets as { Arn: unknown; DeadLetterConfig?: unknown }[];
    expect(target?.DeadLetterConfig).toBeDefined();
    const queues = Object.values(template().findResources('AWS::SQS::Queue')) as Resource[];
    expect(queues).toHaveLength(3);
    for (const queue of queues) expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
  });

  it('feeds the delivery function in batches with partial batch failure reporting', () => {
    const [, mapping] = only('AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties).toMatchObject({ BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] });
  });

  it('alarms on both dead-letter queues at one message', () => {
    const alarms = Object.values(template().findResources('AWS::CloudWatch::Alarm')) as Resource[];
    expect(alarms.filter((alarm) => alarm.Properties.MetricName === 'ApproximateNumberOfMessagesVisible' && alarm.Properties.Threshold === 1)).toHaveLength(2);
  });
});

describe('HTTP API', () => {
  it.each(API_FUNCTIONS.flatMap((entry) => entry.routes.map((routeKey) => [routeKey, entry.id])))(
    'routes %s to %s',
    (routeKey, id) => {
      const routes = template().findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: routeKey } });
      expect(Object.keys(routes)).toHaveLength(1);
      const target = JSON.stringify(Object.values(routes)[0]?.Properties.Target);
      const integrationId = /"Ref":"([A-Za-z0-9]+)"/.exec(target)?.[1] ?? '';
      const integration = template().findResources('AWS::ApiGatewayV2::Integration')[integrationId] as Resource;
      expect(integration.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
      expect(JSON.stringify(integration.Properties.IntegrationUri)).toContain(`"${functionLogicalId(id)}"`);
    },
  );

  it('serves an auto-deployed $default stage with throttling and access logs', () => {
    const [, stage] = only('AWS::ApiGatewayV2::Stage');
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingBurstLimit: 200, ThrottlingRateLimit: 100 },
    });
    expect(stage.Properties.AccessLogSettings).toMatchObject({ DestinationArn: expect.anything(), Format: expect.any(String) });
  });
});

describe('outputs', () => {
  it.each(['ApiUrl', 'TableName', 'EventBusName', 'StateMachineArn'])('exports %s', (name) => {
    expect(Object.keys(template().findOutputs(name))).toEqual([name]);
  });
});

describe('configuration the stack refuses', () => {
  const slowRetry = { maxAttempts: 8, baseSeconds: 15, maxWaitSeconds: 960 };
  it.each<[string, IapSyncStackProps, RegExp]>([
    ['EXPRESS with the 30-minute retry budget', stackProps('EXPRESS', { retry: slowRetry }), /EXPRESS workflows end at 5 minutes.*1905 s/],
    ['EXPRESS with the default retry budget', stackProps('EXPRESS', { retry: undefined }), /EXPRESS workflows end at 5 minutes/],
    ['no Apple root certificate', stackProps('STANDARD', { appleRootCertificates: [] }), /appleRootCertificates is empty/],
    ['a root that is not base64', stackProps('STANDARD', { appleRootCertificates: ['not base64!'] }), /not base64/],
    ['zero retry attempts', stackProps('STANDARD', { retry: { ...slowRetry, maxAttempts: 0 } }), /RETRY_MAX_ATTEMPTS/],
  ])('%s', (_name, props, message) => {
    expect(() => new IapSyncStack(new App({ context: CDK_CONTEXT }), 'Refused', props)).toThrow(message);
  });
});
