import { DependencyUnavailableError } from './errors';

/** AWS SDK v3 errors that mean "try again later" rather than "this request is wrong". */
const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'InternalServerErrorException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  // The SDK's request and connection timeouts (awsClientConfig), and the services' own.
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TransactionInProgressException',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
]);

/** Network failures, also when the SDK has wrapped them into a plain Error carrying only the message. */
const NETWORK_MESSAGE = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|socket hang up)\b/;

interface SdkErrorShape {
  message?: string;
  name?: string;
  code?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

export function isTransientAwsError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as SdkErrorShape;
  if (e.$retryable) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && TRANSIENT_NAMES.has(e.code)) return true;
  if (typeof e.message === 'string' && NETWORK_MESSAGE.test(e.message)) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  if (e.cause) return isTransientAwsError(e.cause);
  return false;
}

/** Runs an AWS call, turning transient failures into DependencyUnavailableError (retryable everywhere). */
export async function callAws<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (isTransientAwsError(error)) {
      throw new DependencyUnavailableError(`${what}: ${(error as Error).name ?? 'error'}`, { cause: error });
    }
    throw error;
  }
}
