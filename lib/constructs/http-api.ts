import { Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  ApiMapping,
  type CfnStage,
  DomainName,
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
  PayloadFormatVersion,
  SecurityPolicy,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_FUNCTIONS, type ApiFunction } from '../catalog';

/** A custom domain for the API, so apps call `https://<domainName>/` instead of an execute-api address. */
export interface CustomDomain {
  /** The host name, lowercase (`api.example.com`). Point its DNS (CNAME or alias) at the `CustomDomainTarget` output. */
  domainName: string;
  /** ARN of an ACM certificate for that name, in the stack's region (a regional endpoint). */
  certificateArn: string;
}

/** API Gateway throttling: a token bucket of `burstLimit` tokens refilled at `rateLimit` requests per second. */
export interface ThrottleLimits {
  burstLimit: number;
  rateLimit: number;
}

/** Props of {@link SyncHttpApi}. */
export interface SyncHttpApiProps {
  /** Name shown in the API Gateway console. */
  apiName: string;
  /** The function of every API_FUNCTIONS entry, keyed by its `id`. */
  functions: ReadonlyMap<string, IFunction>;
  /** Stage-wide throttling, the default of every route. @default { burstLimit: 200, rateLimit: 100 } */
  throttle?: ThrottleLimits;
  /**
   * Per-route throttling, keyed by route key (`POST /storekit2/purchases`); each must be a route of
   * API_FUNCTIONS. Routes not named here get {@link throttle}. @default none
   */
  routeThrottles?: Readonly<Record<string, ThrottleLimits>>;
  /** Serve the API on this domain too (the execute-api URL keeps working). @default none */
  customDomain?: CustomDomain;
}

/** Stage-wide throttling when the stack gives none. */
export const DEFAULT_THROTTLE: Readonly<ThrottleLimits> = { burstLimit: 200, rateLimit: 100 };

/**
 * Access log fields, one JSON object per request. HTTP API `$context` variables only: request
 * headers and bodies are never logged (Authorization and X-Publisher-Token carry credentials).
 */
export const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  latency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
} as const;

/**
 * The route whose function also takes the `$default` route (every request no other route matches):
 * lambdas/openapi/get-openapi.ts answers its document there and `404 REQ0008` for anything else.
 * It reads no table and no secret, so strangers' requests reach nothing.
 */
export const UNKNOWN_ROUTES_HANDLED_BY = 'GET /openapi.json';

/**
 * The public HTTP API: one route per API_FUNCTIONS route key, each integrated with its Lambda
 * (payload format 2.0), plus a `$default` route answering the contract's 404 for unknown routes,
 * on an auto-deployed `$default` stage with throttling (stage-wide and per route) and JSON access logs.
 */
export class SyncHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;
  /** The custom domain, when one was given: its DNS target is `regionalDomainName`. */
  readonly domain?: DomainName;

  constructor(scope: Construct, id: string, props: SyncHttpApiProps) {
    super(scope, id);
    const routeThrottles = props.routeThrottles ?? {};
    checkThrottles(props.throttle, routeThrottles);

    // The stage is declared here rather than by HttpApi because throttling and access logs are
    // only settable on an HttpStage.
    this.api = new HttpApi(this, 'Api', { apiName: props.apiName, createDefaultStage: false });
    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? DEFAULT_THROTTLE,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    const routes = new Map<string, HttpRoute>();
    let unknownRoutes: { entry: ApiFunction; integration: HttpLambdaIntegration } | undefined;
    for (const entry of API_FUNCTIONS) {
      const fn = props.functions.get(entry.id);
      if (fn === undefined) throw new Error(`SyncHttpApi: no function given for API function ${entry.id}`);
      const integration = new HttpLambdaIntegration(`${entry.id}Integration`, fn, {
        payloadFormatVersion: PayloadFormatVersion.VERSION_2_0,
      });
      if (entry.routes.includes(UNKNOWN_ROUTES_HANDLED_BY)) unknownRoutes = { entry, integration };
      for (const routeKey of entry.routes) {
        const { method, path } = parseRouteKey(routeKey);
        for (const route of this.api.addRoutes({ path, methods: [method], integration })) {
          routes.set(routeKey, route);
          Validations.of(route).acknowledge({ id: 'AwsSolutions-APIG4', reason: authorizationReason(entry) });
        }
      }
    }

    // Without a `$default` route API Gateway answers unknown routes with its own body
    // (`{"message":"Not Found"}`), not the contract's error.
    if (unknownRoutes === undefined || unknownRoutes.entry.access.table !== 'none' || unknownRoutes.entry.access.secrets.length > 0) {
      throw new Error(`SyncHttpApi: the function of ${UNKNOWN_ROUTES_HANDLED_BY} must exist and touch no table or secret to take unknown routes`);
    }
    const defaultRoute = new HttpRoute(this, 'DefaultRoute', {
      httpApi: this.api,
      routeKey: HttpRouteKey.DEFAULT,
      integration: unknownRoutes.integration,
    });
    Validations.of(defaultRoute).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        `The $default route answers requests no other route matches with 404 REQ0008 (and ${UNKNOWN_ROUTES_HANDLED_BY} its document), ` +
        `through ${unknownRoutes.entry.id}, which reads no data and has no permissions: there is nothing to authorize.`,
    });

    const cfnStage = this.stage.node.defaultChild as CfnStage;
    const routeSettings: Record<string, { ThrottlingBurstLimit: number; ThrottlingRateLimit: number }> = {};
    for (const [routeKey, limits] of Object.entries(routeThrottles)) {
      routeSettings[routeKey] = { ThrottlingBurstLimit: limits.burstLimit, ThrottlingRateLimit: limits.rateLimit };
      // API Gateway rejects route settings of a route that does not exist yet.
      const route = routes.get(routeKey);
      if (route) cfnStage.node.addDependency(route);
    }
    if (Object.keys(routeSettings).length > 0) cfnStage.routeSettings = routeSettings;

    if (props.customDomain) {
      const { domainName, certificateArn } = props.customDomain;
      // Regional endpoint, TLS 1.2 at least; the stack checks the name and that the certificate is in its region.
      this.domain = new DomainName(this, 'Domain', {
        domainName,
        certificate: Certificate.fromCertificateArn(this, 'Certificate', certificateArn),
        securityPolicy: SecurityPolicy.TLS_1_2,
      });
      new ApiMapping(this, 'DomainMapping', { api: this.api, domainName: this.domain, stage: this.stage });
    }
  }

  /** Base URL of the `$default` stage, ending with `/`. */
  get url(): string {
    return this.stage.url;
  }
}

/** Why a route has no API Gateway authorizer (AwsSolutions-APIG4), from what the catalog says it touches. */
function authorizationReason(entry: ApiFunction): string {
  if (entry.access.table === 'none' && entry.access.secrets.length === 0) {
    return `${entry.id} serves the public OpenAPI document, built from the code at build time; it reads no data and has no permissions.`;
  }
  return (
    `${entry.id} authenticates every request itself before touching data (contract section 5): X-Publisher-Token is compared ` +
    "with the publisher's stored SHA-256 hash, or the customer JWT is verified against the publisher's own key with the " +
    'algorithm pinned and exp required. Keys differ per publisher (HS256 secrets in Secrets Manager or JWKS), which an HTTP API ' +
    'JWT authorizer (one issuer JWKS, no HS256) cannot check, and a Lambda authorizer would repeat the same publisher read.'
  );
}

const ALL_ROUTE_KEYS = new Set(API_FUNCTIONS.flatMap((entry) => entry.routes));

/** Refuses limits API Gateway would refuse at deploy time, and route keys that are not routes of the API. */
export function checkThrottles(throttle: ThrottleLimits | undefined, routeThrottles: Readonly<Record<string, ThrottleLimits>>): void {
  const problems: string[] = [];
  const check = (name: string, limits: ThrottleLimits) => {
    if (!Number.isInteger(limits.burstLimit) || limits.burstLimit < 0) problems.push(`${name}: burstLimit must be an integer >= 0`);
    if (!Number.isFinite(limits.rateLimit) || limits.rateLimit < 0) problems.push(`${name}: rateLimit must be a number >= 0`);
  };
  if (throttle) check('throttle', throttle);
  for (const [routeKey, limits] of Object.entries(routeThrottles)) {
    if (!ALL_ROUTE_KEYS.has(routeKey)) {
      problems.push(`routeThrottles: "${routeKey}" is not a route (one of: ${[...ALL_ROUTE_KEYS].join(', ')})`);
      continue;
    }
    check(`routeThrottles["${routeKey}"]`, limits);
  }
  if (problems.length > 0) throw new Error(`Invalid API throttling: ${problems.join('; ')}`);
}

const HTTP_METHODS = new Set<string>(Object.values(HttpMethod));

function parseRouteKey(routeKey: string): { method: HttpMethod; path: string } {
  const match = /^([A-Z]+) (\/\S*)$/.exec(routeKey);
  const method = match?.[1];
  const path = match?.[2];
  if (method === undefined || path === undefined || !HTTP_METHODS.has(method)) {
    throw new Error(`Route key "${routeKey}" is not "METHOD /path"`);
  }
  return { method: method as HttpMethod, path };
}
