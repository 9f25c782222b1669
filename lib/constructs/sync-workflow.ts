import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Annotations, Aws, Fn, Stack, Validations } from 'aws-cdk-lib';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { WORKFLOW_DEFINITION_FILE, WORKFLOW_FUNCTIONS, workflowValueSubstitutions } from '../catalog';
import type { DataTable } from './data-table';
import { PROJECT_ROOT } from './lambda-function';

/** Step Functions execution logging to CloudWatch Logs. */
export interface WorkflowLogging {
  /** Which history events are logged: every event, errors (failed, timed out, aborted), fatal only, or none. */
  level: 'ALL' | 'ERROR' | 'FATAL' | 'OFF';
  /** Log state inputs and outputs too. They carry signed store transactions and customer ids. */
  includeExecutionData: boolean;
}

/**
 * What logging ALL events would cost, for the AwsSolutions-SF1 acknowledgement. A synchronization
 * writes about ten history events of about 1 KB each: about 10 GB per million synchronizations, $5 of
 * ingestion at $0.50/GB, and several times that with execution data (state inputs and outputs carry
 * signed store transactions of several KB). The whole EXPRESS pipeline costs about $17.61 per million
 * (README, Benchmarks), so ALL would add more than a quarter to it, and with execution data about as
 * much again as the product itself.
 */
export const WORKFLOW_LOG_COST_NOTE =
  'Logging ALL events costs about $5 per million synchronizations (about 10 history events of ~1 KB each, ' +
  '$0.50/GB ingestion), several times that with execution data; the whole EXPRESS pipeline costs about $17.61 per million.';

/** Props of {@link SyncWorkflow}. */
export interface SyncWorkflowProps {
  /** The function of every WORKFLOW_FUNCTIONS entry, keyed by its `id`. */
  functions: ReadonlyMap<string, IFunction>;
  /** Where the PublishResult state puts `inappPurchaseSyncResult`. */
  eventBus: IEventBus;
  /** The table whose synchronization record the MarkPublished state updates. */
  data: DataTable;
  /** STANDARD (up to a year, exactly-once) or EXPRESS (at most 5 minutes, cheaper). */
  stateMachineType: StateMachineType;
  /**
   * Execution logs.
   * @default ERROR without execution data for STANDARD (its full history stays in the console for 90 days),
   * ALL without execution data for EXPRESS (which has no history: the log is the only trace of a run)
   */
  logging?: WorkflowLogging;
}

/** The default of {@link SyncWorkflowProps.logging} for a workflow type. */
export function defaultWorkflowLogging(type: 'STANDARD' | 'EXPRESS'): WorkflowLogging {
  return { level: type === 'EXPRESS' ? 'ALL' : 'ERROR', includeExecutionData: false };
}

/** `${Name}` placeholders, the syntax of CloudFormation's DefinitionSubstitutions. */
const PLACEHOLDER = /\$\{([A-Za-z0-9]+)\}/g;

/** Names of the `${…}` placeholders of an ASL document. */
export function definitionPlaceholders(definition: string): Set<string> {
  return new Set([...definition.matchAll(PLACEHOLDER)].map((match) => match[1] ?? ''));
}

/**
 * The purchase-sync state machine, built from the one ASL file the local runtime also runs. The
 * definition is inlined (not an S3 asset) so tests can read it, and the Lambda and EventBridge
 * permissions are granted explicitly because the CDK cannot infer them from a string definition.
 */
export class SyncWorkflow extends Construct {
  readonly stateMachine: StateMachine;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: SyncWorkflowProps) {
    super(scope, id);
    const definition = readFileSync(path.join(PROJECT_ROOT, WORKFLOW_DEFINITION_FILE), 'utf8');

    // The service integrations' ARNs carry the stack's partition (aws-cn, aws-us-gov), never a literal `aws`.
    const values = workflowValueSubstitutions({ tableName: props.data.table.tableName, partition: Stack.of(this).partition });
    const invoked: IFunction[] = [];
    const substitutions: Record<string, string> = { ...values };
    for (const entry of WORKFLOW_FUNCTIONS) {
      const fn = props.functions.get(entry.id);
      if (fn === undefined) throw new Error(`SyncWorkflow: no function given for workflow function ${entry.id}`);
      substitutions[entry.substitution] = fn.functionArn;
      invoked.push(fn);
    }
    checkPlaceholders(definition, substitutions);

    const isExpress = props.stateMachineType === StateMachineType.EXPRESS;
    const logging = props.logging ?? defaultWorkflowLogging(isExpress ? 'EXPRESS' : 'STANDARD');
    this.logGroup = new LogGroup(this, 'Logs', {
      // Under /aws/vendedlogs/ Step Functions delivers logs without adding the log group to the account's
      // CloudWatch Logs resource policy, whose 5,120 characters run out after a few dozen log groups
      // (https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html). The stack id's UUID part keeps
      // the name free after a `cdk destroy` that retained the old group (prod), so the stack can be created again.
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-purchase-sync-${Fn.select(2, Fn.split('/', Aws.STACK_ID))}`,
      retention: RetentionDays.ONE_MONTH,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: substitutions,
      stateMachineType: props.stateMachineType,
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: LogLevel[logging.level],
        includeExecutionData: logging.includeExecutionData,
      },
    });

    // The ASL calls each function by its unqualified ARN, so no `:*` (versions and aliases) grant.
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: invoked.map((fn) => fn.functionArn) }),
    );
    props.eventBus.grantPutEventsTo(this.stateMachine);
    props.data.grantUpdateItem(this.stateMachine);

    Validations.of(this.stateMachine.role.node.findChild('DefaultPolicy')).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only X-Ray trace writes (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and ' +
        'CloudWatch Logs vended log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ' +
        'ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) use Resource *: neither supports ' +
        'resource-level permissions (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).',
    });
    if (logging.level !== 'ALL') {
      Validations.of(this.stateMachine).acknowledge({
        id: 'AwsSolutions-SF1',
        reason:
          `Logs ${logging.level} events only (stack prop workflowLogging, context workflowLogLevel). ${WORKFLOW_LOG_COST_NOTE} ` +
          (isExpress
            ? 'Failed, timed out and aborted executions are still logged and alarmed.'
            : 'STANDARD executions keep their full event history in the Step Functions console for 90 days at no cost, and ' +
              'failed, timed out and aborted executions are logged and alarmed.'),
      });
    }
    if (logging.includeExecutionData) {
      Annotations.of(this).addWarningV2(
        'iap-sync:workflow-execution-data',
        'workflowLogExecutionData=true writes state inputs and outputs (signed store transactions, customer ids) to CloudWatch Logs.',
      );
    }
  }
}

/** A placeholder left unsubstituted fails only at deploy time, an unused one hints at a renamed state. */
function checkPlaceholders(definition: string, substitutions: Record<string, string>): void {
  const found = definitionPlaceholders(definition);
  const given = new Set(Object.keys(substitutions));
  const missing = [...found].filter((name) => !given.has(name));
  const unused = [...given].filter((name) => !found.has(name));
  if (missing.length > 0 || unused.length > 0) {
    throw new Error(
      `${WORKFLOW_DEFINITION_FILE} and its substitutions disagree: ` +
        `no value for [${missing.join(', ')}], not in the file [${unused.join(', ')}]`,
    );
  }
}
