import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

/** An API Gateway HTTP API (2.0) event, as the deployed API and the local server produce. */
export function apiEvent(options: {
  method?: string;
  path: string;
  routeKey?: string;
  headers?: Record<string, string>;
  body?: string;
  pathParameters?: Record<string, string>;
}): APIGatewayProxyEventV2 {
  const method = options.method ?? 'POST';
  return {
    version: '2.0',
    routeKey: options.routeKey ?? `${method} ${options.path}`,
    rawPath: options.path,
    rawQueryString: '',
    headers: Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    ...(options.pathParameters ? { pathParameters: options.pathParameters } : {}),
    requestContext: {
      accountId: '1',
      apiId: 'test',
      domainName: 'test',
      domainPrefix: 'test',
      http: { method, path: options.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      requestId: 'r',
      routeKey: `${method} ${options.path}`,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
    ...(options.body !== undefined ? { body: options.body } : {}),
    isBase64Encoded: false,
  };
}

export const testContext = { awsRequestId: 'test-request-id', functionName: 'test' } as Context;
