import type { ThrottleLimits } from './constructs/http-api';
import { DEFAULT_THROTTLE } from './constructs/http-api';
import type { WorkflowLogging } from './constructs/sync-workflow';
import { DEFAULT_WEBHOOK_MAX_CONCURRENCY } from './constructs/webhook-delivery';
import { DEFAULT_RETRY, type IapSyncStackProps, type RetryBudget, STAGE_NAME, STAGE_NAME_MAX_LENGTH } from './iap-sync-stack';

/**
 * The CDK context keys of bin/app.ts (cdk.json or `-c key=value`), read into stack props here so
 * they can be tested without a synth. Every key is listed in CONTEXT_KEYS with its default and
 * meaning (the README's configuration table). None of them reaches a store base URL, the local
 * secrets folder or the webhook private-network switch: a deployed stack has no way to set those.
 */
export const CONTEXT_KEYS = {
  stage: {
    default: 'dev',
    meaning:
      'lowercase letters, digits and dashes (`dev`, `staging`, `prod-eu`; at most 20); names the stack `IapSync-<stage>`, the bus, the API, the dashboard ' +
      'and the metrics `service`; only `prod` keeps the log groups on destroy, refuses unknown Apple roots and warns without an alarm topic',
  },
  workflowType: {
    default: 'EXPRESS',
    meaning:
      '`EXPRESS` or `STANDARD`. EXPRESS is about 7× cheaper: 5-minute, at-least-once executions; during a store outage they park the synchronization ' +
      'and the recovery sweeper, every minute, starts each next attempt. STANDARD keeps each execution\'s history for 90 days (console, redrive)',
  },
  appleRootsDir: { default: 'config/apple-roots', meaning: 'folder of Apple root certificates (DER `*.cer`), fingerprint-checked; unknown files refused on prod' },
  appleOnlineChecks: { default: 'true', meaning: 'OCSP revocation checks of Apple certificate chains' },
  retryMaxAttempts: { default: '8', meaning: 'store verifications before a synchronization fails for good' },
  retryBaseSeconds: { default: '15', meaning: 'first wait between store retries; each later wait doubles' },
  retryMaxWaitSeconds: { default: '960', meaning: 'cap on one wait between store retries' },
  throttleBurstLimit: { default: String(DEFAULT_THROTTLE.burstLimit), meaning: 'HTTP API stage burst limit (requests), the default of every route' },
  throttleRateLimit: { default: String(DEFAULT_THROTTLE.rateLimit), meaning: 'HTTP API stage steady rate (requests per second), the default of every route' },
  routeThrottles: {
    default: '(none)',
    meaning: 'per-route limits, JSON: `{"POST /storekit2/purchases":{"burstLimit":50,"rateLimit":20}}`; route keys as in the API',
  },
  workflowLogLevel: {
    default: 'ERROR (STANDARD), ALL (EXPRESS)',
    meaning: 'Step Functions log level: `ALL`, `ERROR`, `FATAL` or `OFF`',
  },
  workflowLogExecutionData: {
    default: 'false',
    meaning: 'also log state inputs and outputs (signed transactions, customer ids; several times the log volume)',
  },
  alarmTopicArn: {
    default: '(none)',
    meaning: "ARN of an existing SNS topic that receives every alarm and its return to OK; in the stack's region (another region is refused)",
  },
  webhookMaxConcurrency: {
    default: String(DEFAULT_WEBHOOK_MAX_CONCURRENCY),
    meaning: 'most webhook delivery functions running at once (2 to 1000), so a backlog to slow endpoints cannot take the API\'s Lambda concurrency',
  },
  existingTableName: {
    default: '(none: a new table)',
    meaning: 'use this existing DynamoDB table (kept by an earlier `cdk destroy`, or restored) instead of creating one; same keys and indexes',
  },
  apiDomainName: { default: '(none)', meaning: 'custom domain of the API (`api.example.com`), with apiCertificateArn; output CustomDomainUrl and CustomDomainTarget' },
  apiCertificateArn: { default: '(none)', meaning: "ARN of the ACM certificate of apiDomainName, in the stack's region" },
} as const;

export type ContextKey = keyof typeof CONTEXT_KEYS;

/** A context value the stack cannot use; bin/app.ts prints the message and exits 1. */
export class ContextError extends Error {
  override readonly name = 'ContextError';
}

/** Reads one context value (`app.node.tryGetContext`). */
export type ContextReader = (key: ContextKey) => unknown;

/** Stack props from the context, except the Apple roots (bin/app.ts reads and checks those files). */
export type ContextProps = Omit<IapSyncStackProps, 'appleRootCertificates' | 'env'>;

export function stackPropsFromContext(read: ContextReader): ContextProps {
  const text = (key: ContextKey): string | undefined => {
    const value = read(key);
    return value === undefined || value === null || value === '' ? undefined : typeof value === 'string' ? value : JSON.stringify(value);
  };
  const oneOf = <T extends string>(key: ContextKey, allowed: readonly T[]): T | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) throw new ContextError(`Context ${key}=${value} is not one of ${allowed.join(', ')}`);
    return value as T;
  };
  const number = (key: ContextKey, integer: boolean): number | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (integer ? !Number.isInteger(parsed) : !Number.isFinite(parsed)) {
      throw new ContextError(`Context ${key}=${value} is not ${integer ? 'an integer' : 'a number'}`);
    }
    return parsed;
  };

  const stage = text('stage') ?? 'dev';
  if (!STAGE_NAME.test(stage) || stage.length > STAGE_NAME_MAX_LENGTH) {
    throw new ContextError(
      `Context stage=${stage} must be lowercase letters, digits and single dashes, start with a letter and end with a letter or digit, at most ${STAGE_NAME_MAX_LENGTH} characters`,
    );
  }
  const props: ContextProps = {
    stage,
    workflowType: oneOf('workflowType', ['STANDARD', 'EXPRESS'] as const) ?? 'EXPRESS',
  };
  const onlineChecks = oneOf('appleOnlineChecks', ['true', 'false'] as const);
  if (onlineChecks !== undefined) props.appleOnlineChecks = onlineChecks === 'true';
  const retry = retryBudget(number('retryMaxAttempts', true), number('retryBaseSeconds', true), number('retryMaxWaitSeconds', true));
  if (retry) props.retry = retry;

  const burstLimit = number('throttleBurstLimit', true);
  const rateLimit = number('throttleRateLimit', false);
  if (burstLimit !== undefined || rateLimit !== undefined) {
    props.throttle = { burstLimit: burstLimit ?? DEFAULT_THROTTLE.burstLimit, rateLimit: rateLimit ?? DEFAULT_THROTTLE.rateLimit };
  }
  const routeThrottles = parseRouteThrottles(read('routeThrottles'));
  if (routeThrottles) props.routeThrottles = routeThrottles;

  const logLevel = oneOf('workflowLogLevel', ['ALL', 'ERROR', 'FATAL', 'OFF'] as const);
  const executionData = oneOf('workflowLogExecutionData', ['true', 'false'] as const);
  if (logLevel !== undefined || executionData !== undefined) {
    const logging: WorkflowLogging = {
      level: logLevel ?? (props.workflowType === 'EXPRESS' ? 'ALL' : 'ERROR'),
      includeExecutionData: executionData === 'true',
    };
    props.workflowLogging = logging;
  }

  const alarmTopicArn = text('alarmTopicArn');
  if (alarmTopicArn !== undefined) props.alarmTopicArn = alarmTopicArn;

  const webhookMaxConcurrency = number('webhookMaxConcurrency', true);
  if (webhookMaxConcurrency !== undefined) props.webhookMaxConcurrency = webhookMaxConcurrency;
  const existingTableName = text('existingTableName');
  if (existingTableName !== undefined) props.existingTableName = existingTableName;
  const domainName = text('apiDomainName');
  const certificateArn = text('apiCertificateArn');
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new ContextError('Context apiDomainName and apiCertificateArn go together: give both or neither');
  }
  if (domainName !== undefined && certificateArn !== undefined) props.customDomain = { domainName, certificateArn };
  return props;
}

/** A partial override keeps the defaults for the other two. */
function retryBudget(maxAttempts?: number, baseSeconds?: number, maxWaitSeconds?: number): RetryBudget | undefined {
  if (maxAttempts === undefined && baseSeconds === undefined && maxWaitSeconds === undefined) return undefined;
  return {
    maxAttempts: maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    baseSeconds: baseSeconds ?? DEFAULT_RETRY.baseSeconds,
    maxWaitSeconds: maxWaitSeconds ?? DEFAULT_RETRY.maxWaitSeconds,
  };
}

/**
 * `routeThrottles` is an object in cdk.json and a JSON string on the command line. Route keys and
 * limits are checked by the stack (SyncHttpApi), which knows the routes.
 */
function parseRouteThrottles(value: unknown): Record<string, ThrottleLimits> | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new ContextError(`Context routeThrottles is not JSON: ${value}`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ContextError('Context routeThrottles must be a JSON object of route key -> {"burstLimit":N,"rateLimit":N}');
  }
  const result: Record<string, ThrottleLimits> = {};
  for (const [routeKey, limits] of Object.entries(parsed)) {
    const { burstLimit, rateLimit } = (typeof limits === 'object' && limits !== null ? limits : {}) as Record<string, unknown>;
    if (typeof burstLimit !== 'number' || typeof rateLimit !== 'number') {
      throw new ContextError(`Context routeThrottles["${routeKey}"] needs numeric burstLimit and rateLimit`);
    }
    result[routeKey] = { burstLimit, rateLimit };
  }
  return result;
}
