import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ApiError, type ERROR_CODES } from '../lambdas/platform/errors';
import { errorResult } from '../lambdas/platform/http';
import { lambdaContext, type LambdaEntry } from './lambda-context';

export interface LocalRoute {
  routeKey: string;
  method: string;
  pattern: RegExp;
  paramNames: string[];
  functionName: string;
  handler: LambdaEntry;
}

/** Compiles `METHOD /path/{param}` route keys (the same strings the CDK stack deploys). */
export function compileRoute(routeKey: string, functionName: string, handler: LambdaEntry): LocalRoute {
  const [method = '', path = ''] = routeKey.split(' ');
  const paramNames: string[] = [];
  const source = path
    .split('/')
    .map((segment) => {
      const param = /^\{([A-Za-z0-9_]+)\}$/.exec(segment);
      if (param?.[1]) {
        paramNames.push(param[1]);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { routeKey, method, pattern: new RegExp(`^${source}$`), paramNames, functionName, handler };
}

const TEXT_TYPES = /^(application\/(json|.*\+json|x-www-form-urlencoded)|text\/)/i;

/** The API Gateway HTTP API (payload format 2.0) event for a request, as the deployed stack would pass it. */
export function toApiEvent(req: IncomingMessage, url: URL, body: Buffer, route: LocalRoute, match: RegExpExecArray): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  // The deployed API Gateway terminates TLS and says `https`; this server speaks plain http.
  headers['x-forwarded-proto'] ??= 'http';
  const pathParameters: Record<string, string> = {};
  route.paramNames.forEach((name, index) => {
    const raw = match[index + 1] ?? '';
    try {
      pathParameters[name] = decodeURIComponent(raw);
    } catch {
      pathParameters[name] = raw;
    }
  });
  const query: Record<string, string> = {};
  url.searchParams.forEach((value, key) => (query[key] = query[key] ? `${query[key]},${value}` : value));
  const isText = body.length === 0 || TEXT_TYPES.test(headers['content-type'] ?? '');
  const now = new Date();
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(route.paramNames.length ? { pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: route.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: !isText,
  };
}

export function sendResult(res: ServerResponse, result: APIGatewayProxyStructuredResultV2 | undefined): void {
  const statusCode = result?.statusCode ?? 200;
  const headers = { ...(result?.headers ?? {}) } as Record<string, string | number | boolean>;
  const body = result?.body ? (result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body)) : Buffer.alloc(0);
  res.writeHead(statusCode, { ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])), 'content-length': body.length });
  res.end(body);
}

export function sendError(res: ServerResponse, code: keyof typeof ERROR_CODES): void {
  // The same answer (headers included) a Lambda gives for the code.
  sendResult(res, errorResult(new ApiError(code)));
}

/** Finds the route and calls its handler in-process; answers REQ0008 when no route matches. */
export async function dispatchApi(
  routes: LocalRoute[],
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: Buffer,
): Promise<void> {
  for (const route of routes) {
    if (route.method !== req.method) continue;
    const match = route.pattern.exec(url.pathname);
    if (!match) continue;
    const event = toApiEvent(req, url, body, route, match);
    const result = (await route.handler(event, lambdaContext(route.functionName))) as APIGatewayProxyStructuredResultV2;
    sendResult(res, result);
    return;
  }
  sendError(res, 'REQ0008');
}
