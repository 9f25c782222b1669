import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination, PayloadFormatVersion } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_FUNCTIONS } from '../../lambdas/shared/catalog';

/** Props of {@link SyncHttpApi}. */
export interface SyncHttpApiProps {
  /** Name shown in the API Gateway console. */
  apiName: string;
  /** The function of every API_FUNCTIONS entry, keyed by its `id`. */
  functions: ReadonlyMap<string, IFunction>;
  /** Stage-wide throttling. @default { burstLimit: 200, rateLimit: 100 } */
  throttle?: { burstLimit: number; rateLimit: number };
}

const DEFAULT_THROTTLE = { burstLimit: 200, rateLimit: 100 };

/**
 * Access log fields. HTTP API `$context` variables only; headers and bodies are never logged
 * (Authorization carries the customer's token).
 */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  routeKey: '$context.routeKey',
  path: '$context.path',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
};

/**
 * The public HTTP API: one route per API_FUNCTIONS route key, each integrated with its Lambda
 * (payload format 2.0), on an auto-deployed `$default` stage with throttling and JSON access logs.
 */
export class SyncHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;

  constructor(scope: Construct, id: string, props: SyncHttpApiProps) {
    super(scope, id);
    // The stage is declared here rather than by HttpApi because throttling and access logs are
    // only settable on an HttpStage.
    this.api = new HttpApi(this, 'Api', { apiName: props.apiName, createDefaultStage: false });
    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? DEFAULT_THROTTLE,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    for (const entry of API_FUNCTIONS) {
      const fn = props.functions.get(entry.id);
      if (fn === undefined) throw new Error(`SyncHttpApi: no function given for API function ${entry.id}`);
      const integration = new HttpLambdaIntegration(`${entry.id}Integration`, fn, {
        payloadFormatVersion: PayloadFormatVersion.VERSION_2_0,
      });
      for (const routeKey of entry.routes) {
        const { method, path } = parseRouteKey(routeKey);
        this.api.addRoutes({ path, methods: [method], integration });
      }
    }
  }

  /** Base URL of the `$default` stage, ending with `/`. */
  get url(): string {
    return this.stage.url;
  }
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
