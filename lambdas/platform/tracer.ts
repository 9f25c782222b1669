import type { Tracer as PowertoolsTracer } from '@aws-lambda-powertools/tracer';

/**
 * X-Ray through Powertools Tracer, for the workflow functions that call the stores (VerifyApplePurchase,
 * VerifyGooglePurchase and AcknowledgePurchase): a `## <function>` subsegment per invocation, annotated with its
 * synchronizationId; their DynamoDB calls and the fetch calls to Apple and Google as subsegments.
 * Lambda active tracing already records every function's invocation; what it cannot show is which
 * of Apple's three calls (transaction, statuses, OCSP) or Google's two (token, API) was slow.
 *
 * Not in the API functions: Tracer (aws-xray-sdk-core and cls-hooked) adds a sizeable share to the
 * bundle and to a cold `require` of functions whose budget is tight (`npm run bench` measures both).
 *
 * Loaded only when running in Lambda with tracing on: aws-xray-sdk-core enables an async hook
 * (cls-hooked) as soon as it is required, which made each `await` about 15 times slower in a
 * micro-benchmark. In the local runtime, which runs every function in one process, that would slow
 * the whole stack, and it could never trace there anyway.
 */
export interface Tracing {
  /** The AWS SDK client, recorded as subsegments when tracing (`captureAWSv3Client`). */
  captureClient<T>(client: T): T;
  /** The handler inside its own subsegment when tracing; as it is otherwise. */
  wrap<E, C, R>(handler: (event: E, context: C) => Promise<R>): (event: E, context: C) => Promise<R>;
}

export const noTracing: Tracing = { captureClient: (client) => client, wrap: (handler) => handler };

function synchronizationIdOf(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null || !('synchronizationId' in event)) return undefined;
  return typeof event.synchronizationId === 'string' ? event.synchronizationId : undefined;
}

export function createTracing(env: NodeJS.ProcessEnv = process.env): Tracing {
  if (env.AWS_LAMBDA_FUNCTION_NAME === undefined || env.POWERTOOLS_TRACE_ENABLED === 'false') return noTracing;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- required here, not imported: see above (async hook at load).
  const { Tracer } = require('@aws-lambda-powertools/tracer') as { Tracer: typeof PowertoolsTracer };
  const tracer = new Tracer();
  if (!tracer.isTracingEnabled()) return noTracing;
  const name = `## ${env.AWS_LAMBDA_FUNCTION_NAME}`;
  return {
    captureClient: (client) => tracer.captureAWSv3Client(client),
    wrap: (handler) => async (event, context) => {
      const parent = tracer.getSegment();
      const segment = parent?.addNewSubsegment(name);
      if (!parent || !segment) return handler(event, context);
      tracer.setSegment(segment);
      tracer.annotateColdStart();
      tracer.addServiceNameAnnotation();
      const synchronizationId = synchronizationIdOf(event);
      if (synchronizationId !== undefined) tracer.putAnnotation('synchronizationId', synchronizationId);
      try {
        return await handler(event, context);
      } catch (error) {
        tracer.addErrorAsMetadata(error as Error);
        throw error;
      } finally {
        segment.close();
        tracer.setSegment(parent);
      }
    },
  };
}
