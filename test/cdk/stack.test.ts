import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { TABLE_DEFINITION } from '../../lambdas/platform/dynamodb-table';
import { STORES } from '../../lambdas/events/vocabulary';
import { EVENT_DETAIL_TYPES, SYNC_RESULT_EVENT_PATTERN, WEBHOOK_EVENT_PATTERN } from '../../lambdas/events/schemas';
import { API_FUNCTIONS, RECONCILE_FUNCTION, SWEEPER_FUNCTION, WEBHOOK_FUNCTION, WORKFLOW_DEFINITION_FILE, WORKFLOW_FUNCTIONS } from '../../lib/catalog';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/platform/metric-names';
import { createLambdaFunction, LOCAL_ONLY_VARIABLES } from '../../lib/constructs/lambda-function';
import { buildLambdas } from '../../lib/build-lambdas';
import { DEFAULT_WEBHOOK_MAX_CONCURRENCY } from '../../lib/constructs/webhook-delivery';
import { IapSyncStack, type IapSyncStackProps } from '../../lib/iap-sync-stack';
import { SECRET_SCOPE_NAMES, SECRET_SCOPES, type SecretScope } from '../../lib/secret-scopes';

// Two synths in the whole file (each bundles every function with esbuild): STANDARD on prod (what a
// publisher deploys: alarm topic, per-route throttles) and EXPRESS on dev. cdk-nag checks both apps.
// A third, small one without bundling ('aws:cdk:bundling-stacks': []) has the options that change the
// shape of the stack: an existing table, a custom domain, a stage of its own and an explicit region.

const ROOT = path.resolve(__dirname, '..', '..');
/** The same context `cdk synth` uses (feature flags included), so the template is the deployed one. */
const CDK_CONTEXT = (JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> })
  .context;
const ASL = readFileSync(path.join(ROOT, WORKFLOW_DEFINITION_FILE), 'utf8');
const ASL_PLACEHOLDERS = [...new Set([...ASL.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1]))].sort();
const MADE_UP_ROOT = Buffer.from('made-up root certificate').toString('base64');
const SHORT_RETRY = { maxAttempts: 3, baseSeconds: 15, maxWaitSeconds: 60 };
const ALARM_TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:iap-sync-alarms';
const ROUTE_THROTTLES = { 'POST /storekit2/purchases': { burstLimit: 50, rateLimit: 20 } };

type WorkflowType = 'STANDARD' | 'EXPRESS';
/** The stage each template is synthesized for. */
const STAGE = { STANDARD: 'prod', EXPRESS: 'dev' } as const;
type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

function stackProps(workflowType: WorkflowType, overrides: Partial<IapSyncStackProps> = {}): IapSyncStackProps {
  return {
    stage: STAGE[workflowType],
    workflowType,
    appleRootCertificates: [MADE_UP_ROOT],
    retry: workflowType === 'EXPRESS' ? SHORT_RETRY : undefined,
    ...(workflowType === 'STANDARD' ? { alarmTopicArn: ALARM_TOPIC_ARN, routeThrottles: ROUTE_THROTTLES } : {}),
    ...overrides,
  };
}

const templates = new Map<WorkflowType, Template>();
const apps = new Map<WorkflowType, App>();

/**
 * Runs a synth without CDK's "Bundling asset …" progress lines (written straight to stderr, one per
 * function), so `npm test` keeps one line per test file; anything else on stderr still shows.
 */
function withoutBundlingProgress<T>(synth: () => T): T {
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    String(chunk).startsWith('Bundling asset ') ? true : write(chunk, ...rest)) as typeof process.stderr.write;
  try {
    return synth();
  } finally {
    process.stderr.write = write;
  }
}

beforeAll(() => {
  for (const workflowType of ['STANDARD', 'EXPRESS'] as const) {
    const app = new App({ context: CDK_CONTEXT });
    templates.set(workflowType, withoutBundlingProgress(() => Template.fromStack(new IapSyncStack(app, `IapSync-${STAGE[workflowType]}`, stackProps(workflowType)))));
    apps.set(workflowType, app);
  }
});

function appOf(workflowType: WorkflowType): App {
  const found = apps.get(workflowType);
  if (!found) throw new Error(`no ${workflowType} app`);
  return found;
}

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
    const { partitionKey, sortKey, timeToLiveAttribute, openIndex, reconcileIndex } = TABLE_DEFINITION;
    expect(table.Properties.KeySchema).toEqual([
      { AttributeName: partitionKey.name, KeyType: 'HASH' },
      { AttributeName: sortKey.name, KeyType: 'RANGE' },
    ]);
    expect(table.Properties.AttributeDefinitions).toEqual([
      { AttributeName: partitionKey.name, AttributeType: partitionKey.type },
      { AttributeName: sortKey.name, AttributeType: sortKey.type },
      { AttributeName: openIndex.partitionKey.name, AttributeType: openIndex.partitionKey.type },
      { AttributeName: openIndex.sortKey.name, AttributeType: openIndex.sortKey.type },
      { AttributeName: reconcileIndex.partitionKey.name, AttributeType: reconcileIndex.partitionKey.type },
      { AttributeName: reconcileIndex.sortKey.name, AttributeType: reconcileIndex.sortKey.type },
    ]);
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: timeToLiveAttribute, Enabled: true });
    expect(table.Properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: openIndex.indexName,
        KeySchema: [
          { AttributeName: openIndex.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: openIndex.sortKey.name, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: openIndex.projection },
      },
      {
        IndexName: reconcileIndex.indexName,
        KeySchema: [
          { AttributeName: reconcileIndex.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: reconcileIndex.sortKey.name, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: reconcileIndex.projection, NonKeyAttributes: [...reconcileIndex.nonKeyAttributes] },
      },
    ]);
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
    expect(bus.Properties.Name).toBe('iap-sync-prod');
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
      // The ASL calls the unqualified ARN: no grant on versions and aliases (`<arn>:*`).
      expect(JSON.stringify(invoke)).not.toContain(':*');
    },
  );
});

describe('state machine role', () => {
  it('uses Resource * only for X-Ray and CloudWatch Logs delivery, which have no resource-level permissions', () => {
    const [, machine] = only('AWS::StepFunctions::StateMachine');
    const roleId = (machine.Properties.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const statements = Object.values(template().findResources('AWS::IAM::Policy') as Record<string, Resource>)
      .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleId}"`))
      .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const everything = statements.filter((statement) => [statement.Resource].flat().includes('*')).flatMap(actions);
    expect(everything.length).toBeGreaterThan(0);
    expect(everything.filter((action) => !/^(xray|logs):/.test(action))).toEqual([]);
  });
});

describe('any partition and region', () => {
  it('the ASL names no partition: its service integrations take ${Partition}, the stack substitutes its own', () => {
    expect(ASL).not.toContain('arn:aws:');
    expect(ASL).toContain('"arn:${Partition}:states:::events:putEvents"');
    expect(ASL).toContain('"arn:${Partition}:states:::dynamodb:updateItem"');
    for (const workflowType of ['STANDARD', 'EXPRESS'] as const) {
      const [, machine] = only('AWS::StepFunctions::StateMachine', workflowType);
      expect((machine.Properties.DefinitionSubstitutions as Record<string, unknown>).Partition).toEqual({ Ref: 'AWS::Partition' });
    }
  });

  it.each(['STANDARD', 'EXPRESS'] as const)('no %s policy or workflow definition holds a literal arn:aws:', (workflowType) => {
    const policies = template(workflowType).findResources('AWS::IAM::Policy');
    expect(Object.keys(policies).length).toBeGreaterThan(0);
    expect(JSON.stringify(policies)).not.toContain('arn:aws:');
    expect(JSON.stringify(template(workflowType).findResources('AWS::StepFunctions::StateMachine'))).not.toContain('arn:aws:');
  });

  it('logs the workflow under /aws/vendedlogs/states/, named after the stack and unique to each stack instance', () => {
    const [, machine] = only('AWS::StepFunctions::StateMachine');
    const destination = JSON.stringify((machine.Properties.LoggingConfiguration as { Destinations: unknown[] }).Destinations);
    const logGroupId = /"Fn::GetAtt":\["([A-Za-z0-9]+)","Arn"\]/.exec(destination)?.[1] ?? '';
    const name = JSON.stringify(template().findResources('AWS::Logs::LogGroup')[logGroupId]?.Properties.LogGroupName);
    expect(name).toContain('"/aws/vendedlogs/states/IapSync-prod-purchase-sync-"');
    // The stack id's UUID: a prod stack re-created after `cdk destroy` kept the old group does not collide with it.
    expect(name).toContain('{"Ref":"AWS::StackId"}');
  });

  it('a stack of unknown region refuses at deploy an alarm topic of another region (a template rule)', () => {
    const rules = template().toJSON().Rules as Record<string, { Assertions: { Assert: unknown }[] }>;
    expect(rules.AlarmTopicInStackRegion?.Assertions[0]?.Assert).toEqual({ 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'eu-west-1'] });
    expect(Object.keys(template('EXPRESS').toJSON().Rules ?? {})).not.toContain('AlarmTopicInStackRegion');
  });
});

describe('Lambda functions', () => {
  const catalog = [
    ...API_FUNCTIONS.map((entry) => ({ id: entry.id, memory: 256, timeout: 10 })),
    // Waiting on a store, DynamoDB or EventBridge needs no more than the API's 256 MB; the hourly reconciliation keeps 512.
    ...WORKFLOW_FUNCTIONS.map((entry) => ({ id: entry.id, memory: 256, timeout: entry.timeoutSeconds })),
    { id: WEBHOOK_FUNCTION.id, memory: 256, timeout: WEBHOOK_FUNCTION.timeoutSeconds },
    { id: SWEEPER_FUNCTION.id, memory: 256, timeout: SWEEPER_FUNCTION.timeoutSeconds },
    { id: RECONCILE_FUNCTION.id, memory: 512, timeout: RECONCILE_FUNCTION.timeoutSeconds },
  ];
  const extraEnvironment: Record<string, string[]> = {
    RegisterApplePurchase: ['STATE_MACHINE_ARN', 'APPLE_ROOT_CERTIFICATES', 'APPLE_ONLINE_CHECKS'],
    TransferApplePurchase: ['STATE_MACHINE_ARN', 'APPLE_ROOT_CERTIFICATES', 'APPLE_ONLINE_CHECKS'],
    RegisterGooglePurchase: ['STATE_MACHINE_ARN'],
    TransferGooglePurchase: ['STATE_MACHINE_ARN'],
    VerifyApplePurchase: ['APPLE_ROOT_CERTIFICATES', 'APPLE_ONLINE_CHECKS'],
    ReceiveAppleNotification: ['STATE_MACHINE_ARN', 'APPLE_ROOT_CERTIFICATES', 'APPLE_ONLINE_CHECKS'],
    ReceiveGoogleNotification: ['STATE_MACHINE_ARN'],
    FinalizeSynchronization: ['EVENT_BUS_NAME'],
    MarkRetrying: ['WORKFLOW_TYPE', 'RETRY_MAX_ATTEMPTS', 'RETRY_BASE_SECONDS', 'RETRY_MAX_WAIT_SECONDS'],
    DeliverWebhooks: ['WEBHOOK_QUEUE_URL', 'WEBHOOK_DEAD_LETTER_QUEUE_URL', 'WEBHOOK_EVENT_DEAD_LETTER_QUEUE_URL'],
    RecoverSynchronizations: ['STATE_MACHINE_ARN', 'EVENT_BUS_NAME', 'WORKFLOW_TYPE'],
    ReconcilePurchases: ['STATE_MACHINE_ARN', 'APPLE_ROOT_CERTIFICATES', 'APPLE_ONLINE_CHECKS'],
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

  it.each(catalog)('$id gets exactly its configuration variables, Powertools names included', ({ id }) => {
    const fn = template().findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource;
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    // No NODE_OPTIONS: --enable-source-maps would parse the bundle's .map at every cold start (lib/constructs/lambda-function.ts).
    expect(Object.keys(variables).sort()).toEqual(
      [
        'POWERTOOLS_SERVICE_NAME',
        'POWERTOOLS_METRICS_NAMESPACE',
        'TABLE_NAME',
        'LOG_LEVEL',
        ...(extraEnvironment[id] ?? []),
      ].sort(),
    );
    expect(variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'iap-sync-prod',
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    });
  });

  it.each(['GetOpenApi', 'VerifyApplePurchase'])(
    '%s: the bundle NodejsFunction made is byte for byte the one lib/build-lambdas.ts builds (and npm run bench measures), its .map without sources',
    async (id) => {
      const fn = template().findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource;
      const key = (fn.Properties.Code as { S3Key?: unknown }).S3Key;
      if (typeof key !== 'string') throw new Error(`${id}: no asset S3Key in the template`);
      const asset = path.join(appOf('STANDARD').outdir, `asset.${key.replace(/\.zip$/, '')}`);
      const outDir = mkdtempSync(path.join(tmpdir(), 'iap-sync-stack-bundle-'));
      try {
        const [built] = await buildLambdas({ outDir, ids: [id] });
        const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
        expect(sha256(path.join(asset, 'index.js'))).toBe(sha256(built?.outfile ?? ''));
        const map = JSON.parse(readFileSync(path.join(asset, 'index.js.map'), 'utf8')) as { sources?: string[]; sourcesContent?: unknown };
        expect(map.sources?.length).toBeGreaterThan(0);
        expect(map.sourcesContent).toBeUndefined();
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }
    },
  );

  it('name the service after the stage', () => {
    const services = Object.values(template('EXPRESS').findResources('AWS::Lambda::Function')).map(
      (fn) => ((fn as Resource).Properties.Environment as { Variables: Record<string, unknown> }).Variables.POWERTOOLS_SERVICE_NAME,
    );
    expect(new Set(services)).toEqual(new Set(['iap-sync-dev']));
  });

  it('hand VerifyApplePurchase the roots and MarkRetrying the retry budget', () => {
    const variables = (id: string) =>
      ((template('EXPRESS').findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource).Properties
        .Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables('VerifyApplePurchase')).toMatchObject({ APPLE_ROOT_CERTIFICATES: MADE_UP_ROOT, APPLE_ONLINE_CHECKS: 'true' });
    expect(variables('MarkRetrying')).toMatchObject({
      WORKFLOW_TYPE: 'EXPRESS',
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
});

describe('secrets', () => {
  /** The Secrets Manager names iap-sync/<stack>/<purpose>-<6 random characters> of one secret of each scope. */
  const SAMPLE_NAMES = Object.fromEntries(
    SECRET_SCOPE_NAMES.map((scope) => [scope, `iap-sync/IapSync-prod/${SECRET_SCOPES[scope].prefix}7-AbCdEf`]),
  ) as Record<SecretScope, string>;

  /** The secret name patterns (IAM wildcards) a function may read (GetSecretValue). */
  function secretPatterns(id: string, action = 'secretsmanager:GetSecretValue'): string[] {
    const grants = statementsOf(id).filter((statement) => actions(statement).includes(action));
    return grants
      .flatMap((statement) => [statement.Resource].flat())
      .map((resource) => {
        const pattern = /:secret:([^"]+)"\]\]\}$/.exec(JSON.stringify(resource))?.[1];
        if (pattern === undefined) throw new Error(`not a secret ARN: ${JSON.stringify(resource)}`);
        return pattern;
      });
  }
  /** Whether an IAM resource wildcard (`*` any characters) covers a name. */
  const covers = (pattern: string, name: string) =>
    new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(name);
  const readable = (id: string): SecretScope[] =>
    SECRET_SCOPE_NAMES.filter((scope) => secretPatterns(id).some((pattern) => covers(pattern, SAMPLE_NAMES[scope])));

  it.each<[string, SecretScope[]]>([
    ...API_FUNCTIONS.map((entry) => [entry.id, [...entry.access.secrets]] as [string, SecretScope[]]),
    ...WORKFLOW_FUNCTIONS.map((entry) => [entry.id, [...entry.secrets]] as [string, SecretScope[]]),
    [WEBHOOK_FUNCTION.id, [...WEBHOOK_FUNCTION.secrets]],
    [RECONCILE_FUNCTION.id, [...RECONCILE_FUNCTION.secrets]],
    [SWEEPER_FUNCTION.id, []],
  ])('%s may read exactly the %j secrets of this stack', (id, scopes) => {
    expect(readable(id)).toEqual(scopes);
    // Each pattern is one scope's prefix in this stack, never the whole stack (iap-sync/<stack>/*).
    for (const pattern of secretPatterns(id)) expect(pattern).toMatch(/^iap-sync\/IapSync-prod\/[a-z0-9-]+-\*$/);
  });

  it('the catalog gives each store credential and the webhook secrets to the functions that use them', () => {
    expect(WORKFLOW_FUNCTIONS.find((entry) => entry.id === 'VerifyApplePurchase')?.secrets).toEqual(['apple']);
    expect(WORKFLOW_FUNCTIONS.find((entry) => entry.id === 'VerifyGooglePurchase')?.secrets).toEqual(['google']);
    expect(WORKFLOW_FUNCTIONS.find((entry) => entry.id === 'AcknowledgePurchase')?.secrets).toEqual(['google']);
    expect(WEBHOOK_FUNCTION.secrets).toEqual(['webhook']);
  });

  it('only the delivery function may delete a secret, and only webhook signing secrets (retired by a rotation)', () => {
    const ids = [...API_FUNCTIONS, ...WORKFLOW_FUNCTIONS, WEBHOOK_FUNCTION, RECONCILE_FUNCTION, SWEEPER_FUNCTION].map((entry) => entry.id);
    for (const id of ids) {
      const secretActions = statementsOf(id).flatMap(actions).filter((action) => action.startsWith('secretsmanager:'));
      expect(secretActions.filter((action) => !['secretsmanager:GetSecretValue', 'secretsmanager:DeleteSecret'].includes(action))).toEqual([]);
      const deletable = SECRET_SCOPE_NAMES.filter((scope) =>
        secretPatterns(id, 'secretsmanager:DeleteSecret').some((pattern) => covers(pattern, SAMPLE_NAMES[scope])),
      );
      expect(deletable).toEqual(id === WEBHOOK_FUNCTION.id ? ['webhook'] : []);
    }
  });

  it('no internet-facing API function may read an App Store key, a Google service account or a webhook signing secret', () => {
    for (const entry of API_FUNCTIONS) {
      expect(readable(entry.id).filter((scope) => scope !== 'jwt')).toEqual([]);
    }
    expect(API_FUNCTIONS.filter((entry) => readable(entry.id).includes('jwt')).length).toBeGreaterThan(0);
  });

  it("no function may read another stack's secrets", () => {
    const ids = [...API_FUNCTIONS, ...WORKFLOW_FUNCTIONS, WEBHOOK_FUNCTION, RECONCILE_FUNCTION].map((entry) => entry.id);
    for (const id of ids) {
      for (const name of Object.values(SAMPLE_NAMES)) {
        const elsewhere = name.replace('IapSync-prod/', 'IapSync-prod-2/');
        expect(secretPatterns(id).filter((pattern) => covers(pattern, elsewhere))).toEqual([]);
      }
    }
  });
});

describe('function roles', () => {
  const roles = () => Object.entries(template().findResources('AWS::IAM::Role')) as [string, Resource][];

  it('use no AWS managed policy (AWSLambdaBasicExecutionRole would let a function write any log group)', () => {
    for (const [, role] of roles()) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it.each([...API_FUNCTIONS.map((entry) => entry.id), ...WORKFLOW_FUNCTIONS.map((entry) => entry.id), WEBHOOK_FUNCTION.id])(
    '%s writes logs to its own log group only, and uses Resource * for X-Ray alone',
    (id) => {
      const fn = template().findResources('AWS::Lambda::Function')[functionLogicalId(id)] as Resource;
      const logGroupId = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      const statements = statementsOf(id);
      const logs = statements.filter((statement) => actions(statement).some((action) => action.startsWith('logs:')));
      expect(logs).toEqual([
        { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] } },
      ]);
      const everything = statements.filter((statement) => [statement.Resource].flat().includes('*'));
      expect(everything.flatMap(actions).sort()).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    },
  );
});

describe('webhook delivery', () => {
  it('routes the shared webhook pattern (every topic) from the bus to an encrypted queue, with a dead-letter queue for failed events', () => {
    const rules = Object.values(template().findResources('AWS::Events::Rule')) as Resource[];
    const rule = rules.find((candidate) => JSON.stringify(candidate.Properties.EventPattern) === JSON.stringify(WEBHOOK_EVENT_PATTERN));
    expect(rule).toBeDefined();
    expect(rule?.Properties.EventPattern).toEqual({ source: ['iap-sync'], 'detail-type': [...EVENT_DETAIL_TYPES] });
    expect(EVENT_DETAIL_TYPES).toEqual(['inappPurchaseSyncResult', 'inappEntitlementChanged']);
    // One rule feeds the queue: a second one for a single topic would deliver its events twice.
    const [, mapping] = only('AWS::Lambda::EventSourceMapping');
    const queueArn = mapping.Properties.EventSourceArn;
    const feeding = rules.filter((candidate) =>
      (candidate.Properties.Targets as { Arn: unknown }[]).some((target) => JSON.stringify(target.Arn) === JSON.stringify(queueArn)),
    );
    expect(feeding).toEqual([rule]);
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

  it.each(['STANDARD', 'EXPRESS'] as const)(
    'runs at most %s delivery functions at once, so a backlog cannot take the API\'s Lambda concurrency',
    (workflowType) => {
      const [, mapping] = only('AWS::Lambda::EventSourceMapping', workflowType);
      expect(mapping.Properties.ScalingConfig).toEqual({ MaximumConcurrency: DEFAULT_WEBHOOK_MAX_CONCURRENCY });
      expect(DEFAULT_WEBHOOK_MAX_CONCURRENCY).toBe(5);
    },
  );

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

  it('writes one JSON access log line per request, with no header values', () => {
    const [, stage] = only('AWS::ApiGatewayV2::Stage');
    const format = (stage.Properties.AccessLogSettings as { Format: string }).Format;
    const fields = JSON.parse(format) as Record<string, string>;
    expect(Object.keys(fields)).toEqual(
      expect.arrayContaining(['requestId', 'ip', 'routeKey', 'status', 'responseLength', 'integrationError', 'latency', 'integrationLatency']),
    );
    expect(format).not.toMatch(/header|authorization|authorizer/i);
  });

  it('throttles the routes named in routeThrottles on their own, after those routes exist', () => {
    const [, stage] = only('AWS::ApiGatewayV2::Stage');
    expect(stage.Properties.RouteSettings).toEqual({
      'POST /storekit2/purchases': { ThrottlingBurstLimit: 50, ThrottlingRateLimit: 20 },
    });
    const stageResource = Object.values(template().findResources('AWS::ApiGatewayV2::Stage'))[0] as Resource & { DependsOn?: string[] };
    const [routeId] = Object.keys(template().findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: 'POST /storekit2/purchases' } }));
    expect(stageResource.DependsOn).toContain(routeId);
    const [, devStage] = only('AWS::ApiGatewayV2::Stage', 'EXPRESS');
    expect(devStage.Properties.RouteSettings).toBeUndefined();
  });
});

describe('monitoring', () => {
  const alarms = (workflowType: WorkflowType = 'STANDARD') =>
    Object.values(template(workflowType).findResources('AWS::CloudWatch::Alarm')) as Resource[];
  const alarmNamed = (name: string) => {
    const found = alarms().find((alarm) => alarm.Properties.AlarmName === name);
    if (!found) throw new Error(`no alarm ${name}`);
    return found.Properties;
  };
  type MetricStat = { MetricStat: { Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: unknown }[] }; Stat: string; Period: number } };

  /** Every function of the stack, by catalog id. */
  const FUNCTION_IDS = [
    ...API_FUNCTIONS.map((entry) => entry.id),
    ...WORKFLOW_FUNCTIONS.map((entry) => entry.id),
    WEBHOOK_FUNCTION.id,
    SWEEPER_FUNCTION.id,
    RECONCILE_FUNCTION.id,
  ];
  const kebab = (id: string) => id.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();

  it('names every alarm after the service', () => {
    expect(alarms().map((alarm) => alarm.Properties.AlarmName).sort()).toEqual(
      [
        ...FUNCTION_IDS.flatMap((id) => [`${kebab(id)}-errors`, `${kebab(id)}-throttles`]),
        'webhook-queue-backlog',
        'table-throttled',
        'recovery-sweeper-silent',
        'api-5xx-rate',
        'workflow-failed',
        'workflow-timed-out',
        'workflow-aborted',
        'store-errors-apple',
        'store-errors-google',
        'google-acknowledgement-failing',
        'google-acknowledgement-pending',
        'google-acknowledgement-given-up',
        'stuck-synchronizations',
        'reconciliation-failing',
        'reconciliation-corrections',
        'webhook-event-dead-letters',
        'webhook-delivery-dead-letters',
      ]
        .map((name) => `iap-sync-prod-${name}`)
        .sort(),
    );
  });

  it('sends every alarm and its return to OK to the alarm topic, and nowhere without one', () => {
    for (const alarm of alarms()) {
      expect(alarm.Properties).toMatchObject({ AlarmActions: [ALARM_TOPIC_ARN], OKActions: [ALARM_TOPIC_ARN] });
    }
    for (const alarm of alarms('EXPRESS')) {
      expect(alarm.Properties.AlarmActions).toBeUndefined();
      expect(alarm.Properties.OKActions).toBeUndefined();
    }
  });

  it('alarms on the API 5xx rate only above a minimum number of requests, in 2 of 3 five-minute periods', () => {
    const alarm = alarmNamed('iap-sync-prod-api-5xx-rate');
    expect(alarm).toMatchObject({ Threshold: 5, EvaluationPeriods: 3, DatapointsToAlarm: 2, TreatMissingData: 'notBreaching' });
    const queries = alarm.Metrics as ({ Id: string; Expression?: string } & Partial<MetricStat>)[];
    expect(queries.find((query) => query.Expression)?.Expression).toBe('IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)');
    const names = Object.fromEntries(queries.filter((query) => query.MetricStat).map((query) => [query.Id, query.MetricStat?.Metric.MetricName]));
    expect(names).toEqual({ requests: 'Count', errors: '5xx' });
  });

  it('alarms when the reconciliation fails or stops running (no data breaches), and when it corrects too much', () => {
    expect(alarmNamed('iap-sync-prod-reconciliation-failing')).toMatchObject({
      MetricName: 'ReconcileErrors',
      Threshold: 1,
      EvaluationPeriods: 2,
      TreatMissingData: 'breaching',
    });
    expect(alarmNamed('iap-sync-prod-reconciliation-corrections')).toMatchObject({ MetricName: 'ReconcileRefreshesStarted', Threshold: 50 });
  });

  it.each([
    ['iap-sync-prod-workflow-failed', 'ExecutionsFailed'],
    ['iap-sync-prod-workflow-timed-out', 'ExecutionsTimedOut'],
    ['iap-sync-prod-workflow-aborted', 'ExecutionsAborted'],
  ])('%s fires at one %s of the state machine', (name, metricName) => {
    const [machineId] = only('AWS::StepFunctions::StateMachine');
    expect(alarmNamed(name)).toMatchObject({
      Namespace: 'AWS/States',
      MetricName: metricName,
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: machineId } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it.each(STORES)('alarms on %s store errors sustained over 3 five-minute periods', (store) => {
    expect(alarmNamed(`iap-sync-prod-store-errors-${store}`)).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.storeErrors.name,
      Dimensions: expect.arrayContaining([
        { Name: 'service', Value: 'iap-sync-prod' },
        { Name: METRIC.storeErrors.dimension, Value: store },
      ]),
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 3,
      Threshold: 5,
    });
  });

  it('alarms as soon as the recovery sweeper reports one stuck synchronization', () => {
    expect(alarmNamed('iap-sync-prod-stuck-synchronizations')).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.stuck.name,
      Dimensions: [{ Name: 'service', Value: 'iap-sync-prod' }],
      Threshold: 1,
      Period: Duration.minutes(15).toSeconds(),
    });
  });

  it('alarms when Google acknowledgements keep failing for 30 minutes (a blip does not alarm)', () => {
    expect(alarmNamed('iap-sync-prod-google-acknowledgement-failing')).toMatchObject({
      MetricName: 'AcknowledgeFailures',
      Threshold: 1,
      Period: 600,
      EvaluationPeriods: 3,
      TreatMissingData: 'notBreaching',
    });
  });

  it('alarms when a Google acknowledgement stays pending through 3 hourly reconciliations, and at once when one is given up', () => {
    expect(alarmNamed('iap-sync-prod-google-acknowledgement-pending')).toMatchObject({
      MetricName: METRIC.acknowledgementsPending.name,
      Dimensions: [{ Name: 'service', Value: 'iap-sync-prod' }],
      Statistic: 'Minimum',
      Threshold: 1,
      Period: 3600,
      EvaluationPeriods: 3,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(alarmNamed('iap-sync-prod-google-acknowledgement-given-up')).toMatchObject({
      MetricName: METRIC.acknowledgementsGivenUp.name,
      Statistic: 'Sum',
      Threshold: 1,
      Period: 3600,
      EvaluationPeriods: 1,
    });
  });

  const lambdaAlarm = (id: string, metricName: 'Errors' | 'Throttles') => {
    const alarm = alarmNamed(`iap-sync-prod-${kebab(id)}-${metricName.toLowerCase()}`);
    expect(alarm).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: metricName,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionLogicalId(id) } }],
      Statistic: 'Sum',
      Period: 300,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    return alarm;
  };

  it.each(FUNCTION_IDS.filter((id) => !WORKFLOW_FUNCTIONS.some((entry) => entry.id === id)))(
    'alarms at the first error of %s in 5 minutes (its handler answers failures itself, so an error is a crash or a timeout)',
    (id) => {
      expect(lambdaAlarm(id, 'Errors')).toMatchObject({ Threshold: 1, EvaluationPeriods: 1 });
    },
  );

  it.each(WORKFLOW_FUNCTIONS.map((entry) => entry.id))(
    'alarms on errors of the Task function %s only when sustained (the workflow retries them by design)',
    (id) => {
      expect(lambdaAlarm(id, 'Errors')).toMatchObject({ Threshold: 5, EvaluationPeriods: 3 });
    },
  );

  it.each(FUNCTION_IDS)('alarms on throttles of %s', (id) => {
    // The sweeper's reserved concurrency of 1 throttles a sweep that starts while the last one runs: only 15 minutes of it alarm.
    expect(lambdaAlarm(id, 'Throttles')).toMatchObject({ Threshold: 1, EvaluationPeriods: id === SWEEPER_FUNCTION.id ? 3 : 1 });
  });

  it('alarms when the oldest webhook delivery has waited 30 minutes in the queue', () => {
    const [, mapping] = only('AWS::Lambda::EventSourceMapping');
    const queueId = (mapping.Properties.EventSourceArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    expect(alarmNamed('iap-sync-prod-webhook-queue-backlog')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 1800,
      EvaluationPeriods: 1,
    });
  });

  it('alarms on read and write throttle events of the table and of each index, a quiet one counting as zero', () => {
    const [tableId] = only('AWS::DynamoDB::Table');
    const alarm = alarmNamed('iap-sync-prod-table-throttled');
    expect(alarm).toMatchObject({ Threshold: 5, EvaluationPeriods: 3, DatapointsToAlarm: 2, TreatMissingData: 'notBreaching' });
    const queries = alarm.Metrics as ({ Id: string; Expression?: string } & Partial<MetricStat>)[];
    const stats = queries.filter((query) => query.MetricStat).map((query) => query.MetricStat?.Metric);
    const seen = stats.map((metric) => ({
      metricName: metric?.MetricName,
      index: metric?.Dimensions.find((dimension) => dimension.Name === 'GlobalSecondaryIndexName')?.Value ?? null,
    }));
    const indexes = [null, TABLE_DEFINITION.openIndex.indexName, TABLE_DEFINITION.reconcileIndex.indexName];
    expect(seen).toEqual(
      expect.arrayContaining(indexes.flatMap((index) => ['ReadThrottleEvents', 'WriteThrottleEvents'].map((metricName) => ({ metricName, index })))),
    );
    expect(seen).toHaveLength(6);
    for (const metric of stats) {
      expect(metric?.Namespace).toBe('AWS/DynamoDB');
      expect(metric?.Dimensions).toContainEqual({ Name: 'TableName', Value: { Ref: tableId } });
    }
    const expression = queries.find((query) => query.Expression)?.Expression ?? '';
    expect(expression.match(/FILL\(\w+, 0\)/g)).toHaveLength(6);
  });

  it.each(['STANDARD', 'EXPRESS'] as const)(
    'alarms on %s when the recovery sweeper stops reporting: its every-run metric missing for two windows breaches',
    (workflowType) => {
      const found = alarms(workflowType).find((alarm) => String(alarm.Properties.AlarmName).endsWith('-recovery-sweeper-silent'));
      expect(found?.Properties).toMatchObject({
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC.stuck.name,
        Dimensions: [{ Name: 'service', Value: `iap-sync-${STAGE[workflowType]}` }],
        Statistic: 'SampleCount',
        Period: 900,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        EvaluationPeriods: 2,
        TreatMissingData: 'breaching',
      });
    },
  );

  it('has a dashboard with the metrics of every function and of iap-sync itself', () => {
    const [, dashboard] = only('AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const metric of Object.values(METRIC)) expect(body).toContain(metric.name);
    for (const id of [...API_FUNCTIONS, ...WORKFLOW_FUNCTIONS, WEBHOOK_FUNCTION].map((entry) => entry.id)) {
      expect(body).toContain(`"label\\":\\"${id}\\"`);
    }
    expect(body).toContain('PURCHASE_SYNCHRONIZED');
    expect(body).toContain('SEARCH(');
  });
});

describe('outputs', () => {
  it.each([
    'ApiUrl',
    'TableName',
    'EventBusName',
    'StateMachineArn',
    'WebhookQueueUrl',
    'WebhookEventDeadLettersUrl',
    'WebhookDeliveryDeadLettersUrl',
    'DashboardUrl',
    'RetainedOnDestroy',
  ])('exports %s', (name) => {
    expect(Object.keys(template().findOutputs(name))).toEqual([name]);
  });

  it('has no custom domain unless one is asked for', () => {
    expect(template().findResources('AWS::ApiGatewayV2::DomainName')).toEqual({});
    expect(template().findOutputs('CustomDomainUrl')).toEqual({});
  });
});

describe('cdk destroy', () => {
  const policies = (workflowType: WorkflowType) =>
    Object.values(template(workflowType).findResources('AWS::Logs::LogGroup')).map((group) => (group as Resource).DeletionPolicy);

  it('keeps the log groups of a prod stack and deletes those of a dev stack', () => {
    expect(new Set(policies('STANDARD'))).toEqual(new Set(['Retain']));
    expect(new Set(policies('EXPRESS'))).toEqual(new Set(['Delete']));
  });

  it('says what it leaves behind', () => {
    const outputs = template().findOutputs('RetainedOnDestroy');
    expect(JSON.stringify(outputs)).toContain('and the log groups');
    expect(template().toJSON().Description).toMatch(/cdk destroy keeps the DynamoDB table/);
  });
});

describe('a deployed stack never talks to the local stand-ins', () => {
  it.each(['STANDARD', 'EXPRESS'] as const)('no %s function gets a store base URL, local secrets or private-network webhooks', (workflowType) => {
    for (const fn of Object.values(template(workflowType).findResources('AWS::Lambda::Function')) as Resource[]) {
      const variables = Object.keys((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables);
      expect(variables.filter((name) => (LOCAL_ONLY_VARIABLES as readonly string[]).includes(name))).toEqual([]);
      expect(variables.filter((name) => /BASE_URL|ROOT_URL|TOKEN_URL|ALLOW_PRIVATE/.test(name))).toEqual([]);
    }
  });

  it.each(LOCAL_ONLY_VARIABLES)('refuses to build a function with %s', (name) => {
    // Refused before esbuild runs: no bundling in this test.
    const stack = new Stack(new App({ context: CDK_CONTEXT }), 'Refused');
    expect(() =>
      createLambdaFunction(stack, 'Probe', {
        entry: 'lambdas/openapi/get-openapi.ts',
        service: 'iap-sync-prod',
        timeout: Duration.seconds(3),
        environment: { [name]: 'http://127.0.0.1:3000' },
      }),
    ).toThrow(/exist for npm start only/);
  });
});

describe('AWS Solutions checks (cdk-nag)', () => {
  it.each(['STANDARD', 'EXPRESS'] as const)('find nothing unacknowledged in the %s app, errors or warnings', (workflowType) => {
    const report = new AwsSolutionsChecks().validateScope(appOf(workflowType));
    const findings = report.violations.map(
      (violation) => `${violation.severity} ${violation.ruleName}: ${violation.violatingResources.map((resource) => resource.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
  });

  /** Every acknowledgement recorded on the construct tree, with where it was made. */
  function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
    return root.node.findAll().flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) => Object.entries(entry.data as Record<string, string>))
        .map(([id, reason]) => ({ path: construct.node.path, id, reason })),
    );
  }

  it.each(['STANDARD', 'EXPRESS'] as const)('acknowledge in the %s app on resources only, each finding by name, each with a reason', (workflowType) => {
    const found = acknowledgements(appOf(workflowType));
    expect(found.length).toBeGreaterThan(0);
    for (const { path: where, id, reason } of found) {
      // Never the whole app or stack: a new resource must meet the checks on its own.
      expect(where.split('/').length).toBeGreaterThan(1);
      // IAM5 only for one named wildcard, never the rule as a whole.
      if (id.includes('AwsSolutions-IAM5')) expect(id).toMatch(/AwsSolutions-IAM5\[Resource::.+\]$/);
      expect(reason.length).toBeGreaterThan(80);
    }
  });
});

describe('configuration the stack refuses', () => {
  const slowRetry = { maxAttempts: 8, baseSeconds: 15, maxWaitSeconds: 960 };
  it.each<[string, IapSyncStackProps, RegExp]>([
    ['no Apple root certificate', stackProps('STANDARD', { appleRootCertificates: [] }), /appleRootCertificates is empty/],
    ['a root that is not base64', stackProps('STANDARD', { appleRootCertificates: ['not base64!'] }), /not base64/],
    ['zero retry attempts', stackProps('STANDARD', { retry: { ...slowRetry, maxAttempts: 0 } }), /RETRY_MAX_ATTEMPTS/],
    ['an alarm topic ARN that is not one', stackProps('STANDARD', { alarmTopicArn: 'arn:aws:sqs:eu-west-1:123456789012:queue' }), /not an SNS topic ARN/],
    ['a throttle for a route the API does not have', stackProps('STANDARD', { routeThrottles: { 'POST /purchases': { burstLimit: 1, rateLimit: 1 } } }), /"POST \/purchases" is not a route/],
    ['a negative route rate limit', stackProps('STANDARD', { routeThrottles: { 'GET /openapi.json': { burstLimit: 1, rateLimit: -1 } } }), /rateLimit must be a number >= 0/],
    ['a fractional stage burst limit', stackProps('STANDARD', { throttle: { burstLimit: 1.5, rateLimit: 1 } }), /burstLimit must be an integer/],
    ['a stage with capitals', stackProps('STANDARD', { stage: 'Prod' }), /stage "Prod" must be lowercase letters, digits and single dashes/],
    [
      'a retry budget a store outage would outlast the workflow with (20 attempts)',
      stackProps('STANDARD', { retry: { ...slowRetry, maxAttempts: 20 } }),
      /can keep a synchronization open up to \d+ s .* longer than the workflow timeout \(7200 s\) and lock lease \(7800 s\)/,
    ],
    [
      'an alarm topic in another region than the stack',
      stackProps('STANDARD', { env: { account: '123456789012', region: 'us-east-1' } }),
      /alarmTopicArn is in eu-west-1, not in the stack's region us-east-1/,
    ],
    ['a webhook concurrency SQS does not take', stackProps('STANDARD', { webhookMaxConcurrency: 1 }), /webhookMaxConcurrency 1 must be an integer from 2 to 1000/],
    ['an existing table name that is not one', stackProps('STANDARD', { existingTableName: 'a b' }), /existingTableName "a b" is not a DynamoDB table name/],
    [
      'a custom domain that is not a lowercase host name',
      stackProps('STANDARD', { customDomain: { domainName: 'API.example.com', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' } }),
      /domainName "API.example.com" is not a lowercase host name/,
    ],
    [
      'a custom domain certificate in another region than the stack',
      stackProps('STANDARD', {
        env: { account: '123456789012', region: 'eu-west-1' },
        customDomain: { domainName: 'api.example.com', certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/abc' },
      }),
      /customDomain certificateArn is in us-east-1, not in the stack's region eu-west-1/,
    ],
  ])('%s', (_name, props, message) => {
    expect(() => new IapSyncStack(new App({ context: CDK_CONTEXT }), 'Refused', props)).toThrow(message);
  });
});

describe('recovery sweeper', () => {
  const resources = (statement: Statement) => [statement.Resource].flat().map((resource) => JSON.stringify(resource));

  it.each([
    ['STANDARD', SWEEPER_FUNCTION.id, SWEEPER_FUNCTION.scheduleMinutes.STANDARD],
    ['EXPRESS', SWEEPER_FUNCTION.id, SWEEPER_FUNCTION.scheduleMinutes.EXPRESS],
    ['STANDARD', RECONCILE_FUNCTION.id, RECONCILE_FUNCTION.scheduleMinutes],
  ] as const)('%s: %s never runs twice at once, and a run it blocked is dropped after %i minutes, not queued', (workflowType, id, minutes) => {
    const functions = template(workflowType).findResources('AWS::Lambda::Function') as Record<string, Resource>;
    const [logicalId] = Object.keys(functions).filter((candidate) => new RegExp(`^${id}[0-9A-F]{8}$`).test(candidate));
    expect(functions[logicalId ?? '']?.Properties.ReservedConcurrentExecutions).toBe(1);
    const configs = Object.values(template(workflowType).findResources('AWS::Lambda::EventInvokeConfig') as Record<string, Resource>).filter(
      (config) => JSON.stringify(config.Properties.FunctionName) === JSON.stringify({ Ref: logicalId }),
    );
    expect(configs.map((config) => config.Properties)).toEqual([
      expect.objectContaining({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: minutes * 60, Qualifier: '$LATEST' }),
    ]);
  });

  it('only the scheduled jobs reserve concurrency (it comes out of the account\'s pool)', () => {
    const reserved = Object.entries(template().findResources('AWS::Lambda::Function') as Record<string, Resource>)
      .filter(([, fn]) => fn.Properties.ReservedConcurrentExecutions !== undefined)
      .map(([logicalId]) => logicalId);
    expect(reserved.sort()).toEqual([functionLogicalId(RECONCILE_FUNCTION.id), functionLogicalId(SWEEPER_FUNCTION.id)].sort());
  });

  it.each([
    ['STANDARD', 'rate(5 minutes)'],
    ['EXPRESS', 'rate(1 minute)'],
  ] as const)('runs on %s every %s', (workflowType, expression) => {
    const rules = Object.values(template(workflowType).findResources('AWS::Events::Rule') as Record<string, Resource>).filter(
      (rule) => rule.Properties.ScheduleExpression !== undefined && JSON.stringify(rule.Properties.Targets).includes(functionLogicalId(SWEEPER_FUNCTION.id)),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]?.Properties.ScheduleExpression).toBe(expression);
  });

  it('the reconciliation runs hourly and queries only its own index', () => {
    const rules = Object.values(template().findResources('AWS::Events::Rule') as Record<string, Resource>).filter((rule) =>
      JSON.stringify(rule.Properties.Targets ?? []).includes(functionLogicalId(RECONCILE_FUNCTION.id)),
    );
    expect(rules.map((rule) => rule.Properties.ScheduleExpression)).toEqual([`rate(${RECONCILE_FUNCTION.scheduleMinutes / 60} hour)`]);
    const query = statementsOf(RECONCILE_FUNCTION.id).filter((statement) => actions(statement).includes('dynamodb:Query'));
    const indexes = query.flatMap(resources).filter((resource) => resource.includes('/index/'));
    expect(indexes).toHaveLength(1);
    expect(indexes[0]).toContain(`/index/${TABLE_DEFINITION.reconcileIndex.indexName}`);
  });

  it('queries the open index by its own ARN, describes and starts executions and publishes events', () => {
    const statements = statementsOf(SWEEPER_FUNCTION.id);
    const query = statements.filter((statement) => actions(statement).includes('dynamodb:Query'));
    expect(query.flatMap(resources).some((resource) => resource.includes(`/index/${TABLE_DEFINITION.openIndex.indexName}`))).toBe(true);
    const all = statements.flatMap(actions);
    expect(all).toEqual(expect.arrayContaining(['states:DescribeExecution', 'states:StartExecution', 'events:PutEvents']));
  });

  it('no role may touch every index of the table', () => {
    const statements = Object.values(template().findResources('AWS::IAM::Policy') as Record<string, Resource>).flatMap(
      (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    );
    expect(statements.flatMap(resources).filter((resource) => resource.includes('/index/*'))).toEqual([]);
  });

  it('the state machine may UpdateItem on the table (MarkPublished) and nothing else of DynamoDB', () => {
    const [, machine] = only('AWS::StepFunctions::StateMachine');
    const roleId = (machine.Properties.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const dynamo = Object.values(template().findResources('AWS::IAM::Policy') as Record<string, Resource>)
      .filter((policy) => (policy.Properties.Roles as unknown[]).some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })))
      .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
      .flatMap(actions)
      .filter((action) => action.startsWith('dynamodb:'));
    expect(dynamo).toEqual(['dynamodb:UpdateItem']);
  });
});

describe('unknown routes', () => {
  it('a $default route sends every request no other route matches to the GetOpenApi function (404 REQ0008)', () => {
    const routes = Object.values(template().findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: '$default' } })) as Resource[];
    expect(routes).toHaveLength(1);
    const integrationId = /"Ref":"([A-Za-z0-9]+)"/.exec(JSON.stringify(routes[0]?.Properties.Target))?.[1] ?? '';
    const integration = template().findResources('AWS::ApiGatewayV2::Integration')[integrationId] as Resource | undefined;
    expect(integration?.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    expect(JSON.stringify(integration?.Properties.IntegrationUri)).toContain(`"${functionLogicalId('GetOpenApi')}"`);
  });
});

describe('a stack of its own stage on an existing table and a custom domain, in a known region', () => {
  // The one extra synth of this file, without bundling: what differs here is the shape of the stack, not the code.
  const EXISTING_TABLE = 'IapSync-prod-DataTable1A2B3C4D-KEPT';
  const DOMAIN = { domainName: 'api.example.com', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666' };
  let app: App;
  let own: Template;

  beforeAll(() => {
    app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
    const stack = new IapSyncStack(app, 'IapSync-staging', {
      ...stackProps('STANDARD'),
      stage: 'staging',
      env: { account: '123456789012', region: 'eu-west-1' },
      existingTableName: EXISTING_TABLE,
      customDomain: DOMAIN,
      webhookMaxConcurrency: 3,
    });
    own = Template.fromStack(stack);
  });

  const ownStatements = (id: string): Statement[] => {
    const [logicalId] = Object.keys(own.findResources('AWS::Lambda::Function')).filter((candidate) => new RegExp(`^${id}[0-9A-F]{8}$`).test(candidate));
    const fn = own.findResources('AWS::Lambda::Function')[logicalId ?? ''] as Resource;
    const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    return Object.values(own.findResources('AWS::IAM::Policy') as Record<string, Resource>)
      .filter((policy) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
      .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  };

  it('creates no table and hands the existing one to every function, the workflow and the outputs', () => {
    expect(own.findResources('AWS::DynamoDB::Table')).toEqual({});
    for (const fn of Object.values(own.findResources('AWS::Lambda::Function')) as Resource[]) {
      expect((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.TABLE_NAME).toBe(EXISTING_TABLE);
    }
    const [, machine] = Object.entries(own.findResources('AWS::StepFunctions::StateMachine'))[0] as [string, Resource];
    expect((machine.Properties.DefinitionSubstitutions as Record<string, unknown>).TableName).toBe(EXISTING_TABLE);
    expect(own.findOutputs('TableName').TableName?.Value).toBe(EXISTING_TABLE);
  });

  it('grants the existing table and each index the code queries by its own ARN, as on a created table', () => {
    const table = `:table/${EXISTING_TABLE}`;
    const sweeper = JSON.stringify(ownStatements(SWEEPER_FUNCTION.id));
    expect(sweeper).toContain(`${table}/index/${TABLE_DEFINITION.openIndex.indexName}`);
    const reconciler = JSON.stringify(ownStatements(RECONCILE_FUNCTION.id));
    expect(reconciler).toContain(`${table}/index/${TABLE_DEFINITION.reconcileIndex.indexName}`);
    const register = ownStatements('RegisterApplePurchase').filter((statement) => actions(statement).includes('dynamodb:PutItem'));
    expect(JSON.stringify(register)).toContain(`${table}"`);
    expect(JSON.stringify(own.findResources('AWS::IAM::Policy'))).not.toContain('/index/*');
  });

  it('serves the API on the custom domain (regional, TLS 1.2), mapped to the $default stage, and outputs its URL and DNS target', () => {
    const [domainId, domain] = Object.entries(own.findResources('AWS::ApiGatewayV2::DomainName'))[0] as [string, Resource];
    expect(domain.Properties).toEqual({
      DomainName: DOMAIN.domainName,
      DomainNameConfigurations: [{ CertificateArn: DOMAIN.certificateArn, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' }],
    });
    const [apiId] = Object.keys(own.findResources('AWS::ApiGatewayV2::Api'));
    const [stageId] = Object.keys(own.findResources('AWS::ApiGatewayV2::Stage'));
    const mappings = Object.values(own.findResources('AWS::ApiGatewayV2::ApiMapping')) as (Resource & { DependsOn?: string[] })[];
    expect(mappings.map((mapping) => mapping.Properties)).toEqual([{ ApiId: { Ref: apiId }, DomainName: { Ref: domainId }, Stage: '$default' }]);
    // Mapped once the stage exists.
    expect(mappings[0]?.DependsOn).toContain(stageId);
    expect(own.findOutputs('CustomDomainUrl').CustomDomainUrl?.Value).toBe('https://api.example.com/');
    expect(own.findOutputs('CustomDomainTarget').CustomDomainTarget?.Value).toEqual({ 'Fn::GetAtt': [domainId, 'RegionalDomainName'] });
  });

  it('names the bus, the metrics service and the alarms after its stage, and deletes its logs on destroy like any stage but prod', () => {
    expect(Object.values(own.findResources('AWS::Events::EventBus')).map((bus) => (bus as Resource).Properties.Name)).toEqual(['iap-sync-staging']);
    const services = Object.values(own.findResources('AWS::Lambda::Function')).map(
      (fn) => ((fn as Resource).Properties.Environment as { Variables: Record<string, unknown> }).Variables.POWERTOOLS_SERVICE_NAME,
    );
    expect(new Set(services)).toEqual(new Set(['iap-sync-staging']));
    const alarmNames = Object.values(own.findResources('AWS::CloudWatch::Alarm')).map((alarm) => String((alarm as Resource).Properties.AlarmName));
    expect(alarmNames.filter((name) => !name.startsWith('iap-sync-staging-'))).toEqual([]);
    const deletion = Object.values(own.findResources('AWS::Logs::LogGroup')).map((group) => (group as Resource).DeletionPolicy);
    expect(new Set(deletion)).toEqual(new Set(['Delete']));
  });

  it('takes the webhook concurrency asked for', () => {
    const mappings = Object.values(own.findResources('AWS::Lambda::EventSourceMapping')) as Resource[];
    expect(mappings.map((mapping) => mapping.Properties.ScalingConfig)).toEqual([{ MaximumConcurrency: 3 }]);
  });

  it('checks an alarm topic of its own region at synth, so the template needs no rule, and substitutes its partition', () => {
    expect(Object.keys(own.toJSON().Rules ?? {}).filter((rule) => rule.endsWith('InStackRegion'))).toEqual([]);
    const [, machine] = Object.entries(own.findResources('AWS::StepFunctions::StateMachine'))[0] as [string, Resource];
    expect((machine.Properties.DefinitionSubstitutions as Record<string, unknown>).Partition).toBe('aws');
  });

  it('passes the AWS Solutions checks', () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((violation) => `${violation.severity} ${violation.ruleName}`)).toEqual([]);
  });
});
