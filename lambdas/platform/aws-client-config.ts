import * as z from 'zod';
import { AWS_CLIENT_ENV } from './config';

/** The settings of every AWS SDK client of the functions (AWS_CLIENT_ENV in config.ts). */
export interface AwsClientSettings {
  connectionTimeoutMs: number;
  /** Per attempt, from the request's start to the response's headers; also the socket's idle limit. */
  requestTimeoutMs: number;
  maxAttempts: number;
}

/** What the SDK v3 clients take: NodeHttpHandler options and the attempts of the standard retry mode. */
export interface AwsClientConfig {
  maxAttempts: number;
  requestHandler: { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: true; socketTimeout: number };
}

const AwsClientEnv = z.object(AWS_CLIENT_ENV);

export function awsClientSettings(env: NodeJS.ProcessEnv = process.env): AwsClientSettings {
  const parsed = AwsClientEnv.parse(env);
  return {
    connectionTimeoutMs: parsed.AWS_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: parsed.AWS_REQUEST_TIMEOUT_MS,
    maxAttempts: parsed.AWS_MAX_ATTEMPTS,
  };
}

/**
 * Constructor options for an AWS SDK client: without them a call to a dependency that accepts the
 * connection and never answers waits for ever, and API Gateway answers its own 503 after the
 * function's 10 s. With them the SDK gives up (TimeoutError, which callAws turns into
 * DependencyUnavailableError: 503 S0002, or the workflow's Retry) within awsCallWorstCaseMs.
 * `throwOnRequestTimeout`: without it this SDK only logs a warning when requestTimeout passes.
 */
export function awsClientConfig(env: NodeJS.ProcessEnv = process.env): AwsClientConfig {
  const settings = awsClientSettings(env);
  return {
    maxAttempts: settings.maxAttempts,
    requestHandler: {
      connectionTimeout: settings.connectionTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      throwOnRequestTimeout: true,
      socketTimeout: settings.requestTimeoutMs,
    },
  };
}

/**
 * The SDK's standard retry mode waits a random time below base × 2^retry before retry n (counted
 * from 0): base 100 ms after a timeout or a 5xx, 500 ms after throttling. The worst case takes the
 * throttling base, so it bounds every mix of failures.
 */
const THROTTLING_BACKOFF_BASE_MS = 500;

/**
 * The longest one AWS call can take before the SDK gives up: every attempt runs to its request
 * timeout, and every back-off to its ceiling.
 */
export function awsCallWorstCaseMs(settings: AwsClientSettings): number {
  let backoff = 0;
  for (let retry = 0; retry < settings.maxAttempts - 1; retry += 1) backoff += THROTTLING_BACKOFF_BASE_MS * 2 ** retry;
  return settings.maxAttempts * settings.requestTimeoutMs + backoff;
}
