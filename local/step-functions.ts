import './polyfills';
import { randomUUID } from 'node:crypto';
import { ExecutionAbortedError, ExecutionError, ExecutionTimeoutError, StateMachine } from 'aws-local-stepfunctions';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';

/** A Task implementation: the same Lambda handler called in-process, or a service integration stand-in. */
export type TaskImplementation = (input: unknown, execution: { executionArn: string; stateMachineArn: string }) => Promise<unknown>;

export interface LocalStepFunctionsOptions {
  /** The ASL after `${…}` substitution, exactly what CloudFormation would deploy. */
  definition: string;
  stateMachineArn: string;
  /** By Task `Resource` (a substituted function ARN, or `arn:aws:states:::events:putEvents`). */
  tasks: Record<string, TaskImplementation>;
  /** Tests shorten Wait states and Retry intervals; `npm start` leaves them real. */
  waitOverrideMs?: number;
  retryOverrideMs?: number;
  onExecutionEnd?: (execution: LocalExecution) => void;
}

type Status = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

interface HistoryEvent {
  id: number;
  previousEventId: number;
  timestamp: number;
  type: string;
  details?: Record<string, unknown>;
}

export interface LocalExecution {
  executionArn: string;
  name: string;
  input: string;
  status: Status;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
  history: HistoryEvent[];
  abort: () => void;
  done: Promise<void>;
}

/** The error shape of the AWS JSON 1.0 protocol, which the unchanged SDK client parses. */
export class AwsJsonError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
  }
}

interface TaskState {
  Type: string;
  Resource?: string;
  States?: Record<string, TaskState>;
  Iterator?: { States: Record<string, TaskState> };
  ItemProcessor?: { States: Record<string, TaskState> };
  Branches?: { States: Record<string, TaskState> }[];
}

function taskStates(states: Record<string, TaskState>, out: Map<string, string> = new Map()): Map<string, string> {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task' && state.Resource) out.set(name, state.Resource);
    if (state.Iterator) taskStates(state.Iterator.States, out);
    if (state.ItemProcessor) taskStates(state.ItemProcessor.States, out);
    for (const branch of state.Branches ?? []) taskStates(branch.States, out);
  }
  return out;
}

const seconds = (ms: number) => ms / 1000;

type LogEvent = { type: string; timestamp: number; state?: { name?: string; type?: string } };

/**
 * Step Functions for `npm start` and the tests: the deployed ASL file executed by
 * aws-local-stepfunctions behind the Step Functions JSON API (StartExecution, DescribeExecution,
 * StopExecution, GetExecutionHistory), reached by the unchanged @aws-sdk/client-sfn.
 * Every Task must map to a local implementation: an unmapped one would be sent to real AWS Lambda,
 * so construction fails instead.
 */
export class LocalStepFunctions {
  private readonly machine: StateMachine;
  private readonly taskByState: Map<string, string>;
  private readonly waitStates: string[];
  private readonly retryStates: string[];
  readonly executions = new Map<string, LocalExecution>();
  /** While set, started executions wait here instead of running (see hold). */
  private held: (() => void)[] | undefined;

  constructor(private readonly options: LocalStepFunctionsOptions) {
    const definition = JSON.parse(options.definition) as StateMachineDefinition & { States: Record<string, TaskState> };
    this.taskByState = taskStates(definition.States);
    const unmapped = [...this.taskByState.entries()].filter(([, resource]) => !options.tasks[resource]);
    if (unmapped.length > 0) {
      throw new Error(`Task states without a local implementation: ${unmapped.map(([name, r]) => `${name} (${r})`).join(', ')}`);
    }
    this.waitStates = Object.entries(definition.States).filter(([, s]) => s.Type === 'Wait').map(([n]) => n);
    this.retryStates = [...this.taskByState.keys()];
    this.machine = new StateMachine(definition);
  }

  /** Dispatches one JSON-protocol call by its X-Amz-Target operation name. */
  async call(operation: string, body: Record<string, unknown>): Promise<unknown> {
    switch (operation) {
      case 'StartExecution':
        return this.start(body);
      case 'DescribeExecution':
        return this.describe(String(body.executionArn ?? ''));
      case 'StopExecution':
        return this.stop(String(body.executionArn ?? ''));
      case 'GetExecutionHistory':
        return this.history(String(body.executionArn ?? ''));
      default:
        throw new AwsJsonError('UnknownOperationException', `Operation ${operation} is not supported locally`);
    }
  }

  /** Resolves when every running execution has ended (shutdown, tests). */
  async drain(): Promise<void> {
    await Promise.all([...this.executions.values()].map((execution) => execution.done));
  }

  /**
   * Benchmarks of the accept path: on AWS the workflow runs on other Lambdas, not in the API's
   * process, so while held StartExecution only records the execution (RUNNING) and `release` runs them.
   */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const queued = this.held ?? [];
    this.held = undefined;
    for (const run of queued) run();
  }

  abortAll(): void {
    this.release();
    for (const execution of this.executions.values()) if (execution.status === 'RUNNING') execution.abort();
  }

  private start(body: Record<string, unknown>) {
    if (body.stateMachineArn !== this.options.stateMachineArn) {
      throw new AwsJsonError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${String(body.stateMachineArn)}'`);
    }
    const name = typeof body.name === 'string' ? body.name : randomUUID();
    const input = typeof body.input === 'string' ? body.input : '{}';
    const executionArn = this.options.stateMachineArn.replace(':stateMachine:', ':execution:') + `:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      // Like Step Functions: the same name and input while running is an idempotent start.
      if (existing.input === input && existing.status === 'RUNNING') {
        return { executionArn, startDate: seconds(existing.startDate) };
      }
      throw new AwsJsonError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    const context = { executionArn, stateMachineArn: this.options.stateMachineArn };
    const taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<never>> = {};
    for (const [stateName, resource] of this.taskByState) {
      const implementation = this.options.tasks[resource];
      if (!implementation) throw new Error(`unmapped task ${stateName}`);
      taskResourceLocalHandlers[stateName] = async (taskInput: unknown) =>
        // A JSON round trip, as the payload of a real invocation would be.
        JSON.parse(JSON.stringify((await implementation(taskInput, context)) ?? null)) as never;
    }
    const execution: LocalExecution = {
      executionArn,
      name,
      input,
      status: 'RUNNING',
      startDate: Date.now(),
      history: [],
      abort: () => undefined,
      done: Promise.resolve(),
    };
    this.executions.set(executionArn, execution);
    const launch = () => this.launch(execution, taskResourceLocalHandlers);
    const held = this.held;
    if (held) {
      execution.done = new Promise<void>((resolveDone) =>
        held.push(() => {
          launch(); // replaces execution.done with the run's promise, which this one then follows
          resolveDone(execution.done);
        }),
      );
    } else {
      launch();
    }
    return { executionArn, startDate: seconds(execution.startDate) };
  }

  private launch(
    execution: LocalExecution,
    taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<never>>,
  ): void {
    const { executionArn, name, input } = execution;
    const waitOverride = this.options.waitOverrideMs;
    const retryOverride = this.options.retryOverrideMs;
    const run = this.machine.run(JSON.parse(input) as never, {
      overrides: {
        taskResourceLocalHandlers,
        ...(waitOverride !== undefined
          ? { waitTimeOverrides: Object.fromEntries(this.waitStates.map((state) => [state, waitOverride])) }
          : {}),
        ...(retryOverride !== undefined
          ? { retryIntervalOverrides: Object.fromEntries(this.retryStates.map((state) => [state, retryOverride])) }
          : {}),
      },
      context: {
        Execution: { Id: executionArn, Name: name, Input: JSON.parse(input) as never, StartTime: new Date().toISOString() },
        StateMachine: { Id: this.options.stateMachineArn, Name: this.options.stateMachineArn.split(':').pop() ?? '' },
      } as never,
    });
    execution.abort = run.abort;
    const record = this.recordHistory(execution, run.eventLogs as unknown as AsyncGenerator<LogEvent>);
    execution.done = run.result
      .then((output) => {
        execution.status = 'SUCCEEDED';
        execution.output = JSON.stringify(output);
      })
      .catch((error: unknown) => {
        if (error instanceof ExecutionAbortedError) execution.status = 'ABORTED';
        else if (error instanceof ExecutionTimeoutError) execution.status = 'TIMED_OUT';
        else {
          execution.status = 'FAILED';
          const failure = error instanceof ExecutionError ? (error as ExecutionError & { cause?: unknown }).cause : error;
          execution.error = (failure as Error)?.name ?? 'Error';
          execution.cause = (failure as Error)?.message ?? String(failure);
        }
      })
      .then(() => record)
      .finally(() => {
        execution.stopDate = Date.now();
        this.options.onExecutionEnd?.(execution);
      });
  }

  private async recordHistory(execution: LocalExecution, events: AsyncGenerator<LogEvent>) {
    let id = 0;
    try {
      for await (const event of events) {
        id += 1;
        const state = event.state;
        // Step Functions names state events after the state type: TaskStateEntered, ChoiceStateExited, TaskFailed...
        const suffix = event.type.slice('State'.length);
        const type = !event.type.startsWith('State') || !state?.type
          ? event.type === 'ExecutionTerminated' ? 'ExecutionAborted' : event.type
          : `${state.type}${suffix === 'Entered' || suffix === 'Exited' ? `State${suffix}` : suffix}`;
        execution.history.push({
          id,
          previousEventId: id - 1,
          timestamp: event.timestamp,
          type,
          ...(state?.name ? { details: { name: state.name } } : {}),
        });
      }
    } catch {
      // The generator ends with the execution; its failure is reported by the result promise.
    }
  }

  private get(executionArn: string): LocalExecution {
    const execution = this.executions.get(executionArn);
    if (!execution) throw new AwsJsonError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return execution;
  }

  private describe(executionArn: string) {
    const e = this.get(executionArn);
    return {
      executionArn: e.executionArn,
      stateMachineArn: this.options.stateMachineArn,
      name: e.name,
      status: e.status,
      startDate: seconds(e.startDate),
      input: e.input,
      ...(e.stopDate !== undefined ? { stopDate: seconds(e.stopDate) } : {}),
      ...(e.output !== undefined ? { output: e.output } : {}),
      ...(e.error !== undefined ? { error: e.error, cause: e.cause } : {}),
    };
  }

  private stop(executionArn: string) {
    const e = this.get(executionArn);
    if (e.status === 'RUNNING') e.abort();
    return { stopDate: seconds(Date.now()) };
  }

  private history(executionArn: string) {
    const e = this.get(executionArn);
    return {
      events: e.history.map((event) => ({
        id: event.id,
        previousEventId: event.previousEventId,
        timestamp: seconds(event.timestamp),
        type: event.type,
        ...(event.details?.name
          ? { stateEnteredEventDetails: { name: event.details.name } }
          : {}),
      })),
    };
  }
}
