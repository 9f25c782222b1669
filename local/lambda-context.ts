import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

/** The slice of the Lambda context our handlers read (request id, function name), for in-process calls. */
export function lambdaContext(functionName: string): Context {
  const deadline = Date.now() + 60_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** A Lambda entry point as exported by our handler modules. */
export type LambdaEntry = (event: unknown, context: Context) => Promise<unknown>;
