import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  WORKFLOW_DEFINITION_FILE,
  WORKFLOW_FUNCTIONS,
  type WORKFLOW_VALUE_SUBSTITUTIONS,
} from '../../lambdas/shared/catalog';
import { EVENT_SOURCE, SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/schemas/events';
import { PROJECT_ROOT } from './lambda-function';

/** Props of {@link SyncWorkflow}. */
export interface SyncWorkflowProps {
  /** The function of every WORKFLOW_FUNCTIONS entry, keyed by its `id`. */
  functions: ReadonlyMap<string, IFunction>;
  /** Where the PublishResult state puts `inappPurchaseSyncResult`. */
  eventBus: IEventBus;
  /** STANDARD (up to a year, exactly-once) or EXPRESS (at most 5 minutes, cheaper). */
  stateMachineType: StateMachineType;
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

  constructor(scope: Construct, id: string, props: SyncWorkflowProps) {
    super(scope, id);
    const definition = readFileSync(path.join(PROJECT_ROOT, WORKFLOW_DEFINITION_FILE), 'utf8');

    const values: Record<(typeof WORKFLOW_VALUE_SUBSTITUTIONS)[number], string> = {
      EventBusName: props.eventBus.eventBusName,
      EventSource: EVENT_SOURCE,
      EventDetailType: SYNC_RESULT_DETAIL_TYPE,
    };
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
    const logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: substitutions,
      stateMachineType: props.stateMachineType,
      tracingEnabled: true,
      logs: {
        destination: logGroup,
        // STANDARD keeps its full history in the console, so only errors are logged; EXPRESS has no
        // history, so every transition is. Never the payloads: they carry signed transactions.
        level: isExpress ? LogLevel.ALL : LogLevel.ERROR,
        includeExecutionData: false,
      },
    });

    for (const fn of invoked) fn.grantInvoke(this.stateMachine);
    props.eventBus.grantPutEventsTo(this.stateMachine);
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
