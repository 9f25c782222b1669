import type { Context } from 'aws-lambda';
import type { FunctionLogger } from './logger';
import type { MetricsRecorder } from './metrics';

/** Builds the handler on first call (after the environment is set) and reuses it for the container's life. */
export function lazyHandler<E, C, R>(build: () => (event: E, context: C) => Promise<R>) {
  let built: ((event: E, context: C) => Promise<R>) | undefined;
  return (event: E, context: C): Promise<R> => {
    built ??= build();
    return built(event, context);
  };
}

function isLambdaContext(value: unknown): value is Context {
  return typeof value === 'object' && value !== null && 'awsRequestId' in value;
}

/**
 * One invocation's observability around a handler: the Lambda context on the log entries (in
 * Lambda only, where a container runs one invocation at a time; the local runtime runs many
 * concurrently in one process and would mix them up), then, whatever the outcome, one metrics flush.
 */
export function instrument<E, C, R>(
  telemetry: { logger: FunctionLogger; metrics: MetricsRecorder },
  handler: (event: E, context: C) => Promise<R>,
  env: NodeJS.ProcessEnv = process.env,
): (event: E, context: C) => Promise<R> {
  const inLambda = env.AWS_LAMBDA_FUNCTION_NAME !== undefined;
  return async (event, context) => {
    if (inLambda && isLambdaContext(context)) telemetry.logger.addContext(context);
    try {
      return await handler(event, context);
    } finally {
      try {
        telemetry.metrics.flush();
      } catch (error) {
        // Never let a metrics problem replace the handler's own answer or error.
        telemetry.logger.warn('metrics flush failed', { error });
      }
    }
  };
}
