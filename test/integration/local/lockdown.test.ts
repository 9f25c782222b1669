import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { webhookAdd } from '../../../cli/commands/webhook';
import { localTarget } from '../../../cli/target';
import { LOCAL_BUS_NAME, LOCAL_STATE_MACHINE_ARN } from '../../../local/stack';
import { startTestStack, type LocalClient } from '../../support/local-client';

/*
 * The local stack serves the developer's machine only, and a web page the developer visits can
 * reach localhost too: the AWS stand-ins are off the API port, `/__simulator` and `/__local` answer
 * loopback Hosts and JSON control POSTs only, and malformed or aborted requests cost one log line.
 */

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
}

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let receiver: Server;
let receiverUrl: string;
const received: Array<{ synchronizationId: unknown }> = [];
const warnings: string[] = [];

beforeAll(async () => {
  env = await startTestStack({ webhookScheduleScale: 0.0001, warn: (line) => warnings.push(line) });
  api = env.client;
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { synchronizationId: unknown } };
      received.push({ synchronizationId: body.data.synchronizationId });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks`;
  const target = localTarget(env.dataDir);
  try {
    await webhookAdd(target, { publisher: '1', url: receiverUrl });
  } finally {
    target.close();
  }
});
afterAll(async () => {
  await env?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
});

/** A request through node:http, which (unlike fetch) lets the test choose the Host header. */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = {};
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const call = (method: string, path: string, headers?: Record<string, string>, body?: string) => send(env.stack.url, method, path, headers, body);

/** The inappPurchaseSyncResult events the bus holds for a synchronization id, read as a developer would. */
async function eventsOf(synchronizationId: string): Promise<unknown[]> {
  const reply = await call('GET', `/__local/events?detailType=inappPurchaseSyncResult&synchronizationId=${encodeURIComponent(synchronizationId)}`);
  expect(reply.status).toBe(200);
  return reply.json.events as unknown[];
}

/** Waits until every execution and webhook delivery settled. */
async function settle(): Promise<void> {
  await api.settled();
  await env.stack.webhooks.drain();
}

/** The webhooks the receiver got about a synchronization, once everything settled. */
async function deliveredFor(synchronizationId: string) {
  await settle();
  return received.filter((r) => r.synchronizationId === synchronizationId);
}

/** A copy of a real inappPurchaseSyncResult under another synchronization id, as a PutEvents body. */
async function forgedPutEvents(forgedId: string): Promise<string> {
  const { synchronizationId } = await api.registerAndWait();
  await api.settled();
  const [real] = (await eventsOf(synchronizationId)) as Array<{ source: string; 'detail-type': string; detail: Record<string, unknown> }>;
  if (!real) throw new Error('the register published no event');
  const detail = { ...real.detail, synchronizationId: forgedId };
  return JSON.stringify({ Entries: [{ Source: real.source, DetailType: real['detail-type'], EventBusName: LOCAL_BUS_NAME, Detail: JSON.stringify(detail) }] });
}

const AWS_JSON = (target: string) => ({ 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.1' });

describe('the Step Functions and EventBridge stand-ins', () => {
  // A UUID like a real synchronization id, so the webhook sender would deliver it (see the last test).
  const forgedId = randomUUID();
  let forged: string;

  beforeAll(async () => {
    forged = await forgedPutEvents(forgedId);
  });

  it('are not on the API port: a forged PutEvents is no route, publishes nothing and sends no webhook', async () => {
    const reply = await call('POST', '/', AWS_JSON('AWSEvents.PutEvents'), forged);
    expect(reply.status).toBe(404);
    expect(reply.json.code).toBe('REQ0008');

    // The stand-ins still serve the stack's own clients: a register finalizes and its event and webhook arrive.
    const { synchronizationId } = await api.registerAndWait();
    expect(await deliveredFor(synchronizationId)).toHaveLength(1);
    expect(await eventsOf(synchronizationId)).toHaveLength(1);
    expect(await eventsOf(forgedId)).toEqual([]);
    expect(await deliveredFor(forgedId)).toEqual([]);
  });

  it('are not on the API port: a forged StartExecution is no route and starts nothing', async () => {
    const name = `forged-${randomUUID()}`;
    const body = JSON.stringify({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name, input: '{}' });
    const reply = await call('POST', '/', AWS_JSON('AWSStepFunctions.StartExecution'), body);
    expect(reply.status).toBe(404);
    expect(reply.json.code).toBe('REQ0008');
    const executionArn = `${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`;
    await expect(env.stack.stepFunctions.call('DescribeExecution', { executionArn })).rejects.toMatchObject({ type: 'ExecutionDoesNotExist' });
  });

  it('refuse a Host that is not loopback on their own listener', async () => {
    const reply = await send(env.stack.awsUrl, 'POST', '/', { ...AWS_JSON('AWSEvents.PutEvents'), host: 'evil.example' }, forged);
    expect(reply.status).toBe(403);
    expect(await eventsOf(forgedId)).toEqual([]);
  });

  it('answer the same request on their own loopback listener (what the API port refused was the port, not the request)', async () => {
    expect(new URL(env.stack.awsUrl).hostname).toBe('127.0.0.1');
    expect(env.stack.awsUrl).not.toBe(env.stack.url);
    const reply = await send(env.stack.awsUrl, 'POST', '/', AWS_JSON('AWSEvents.PutEvents'), forged);
    expect(reply.status).toBe(200);
    expect(reply.json.FailedEntryCount).toBe(0);
    expect(await eventsOf(forgedId)).toHaveLength(1);
    expect(await deliveredFor(forgedId)).toHaveLength(1);
  });
});

describe('control and inspection POSTs need Content-Type: application/json', () => {
  let notificationId: string;

  beforeAll(async () => {
    await api.createTransaction();
    notificationId = env.stack.outbox.list('apple').at(-1)?.id ?? '';
    expect(notificationId).not.toBe('');
  });
  afterEach(() => env.stack.faults.clear());

  const sent = () => env.stack.outbox.list().length;

  it.each([
    ['a fault', '/__simulator/faults', { 'content-type': 'text/plain' }, { store: 'apple', status: 503, count: 1 }],
    ['an Apple purchase', '/__simulator/apple/transactions', { 'content-type': 'text/plain' }, { productId: 'premium_monthly' }],
    ['a Google purchase', '/__simulator/google/subscriptions', { 'content-type': 'application/x-www-form-urlencoded' }, { productId: 'premium_monthly' }],
    ['a test notification', '/__simulator/google/test-notification', {}, {}],
  ])('refuses %s sent as a cross-site form could (415), and nothing happens', async (_what, path, headers, body) => {
    const before = sent();
    const reply = await call('POST', path, headers, JSON.stringify(body));
    expect(reply.status).toBe(415);
    expect(reply.json.error).toEqual(expect.any(String));
    expect(env.stack.faults.take('apple')).toBeUndefined();
    expect(sent()).toBe(before);
  });

  it('refuses a resend without the JSON type, even with no body (a replayed notification), and allows it with one', async () => {
    const before = sent();
    expect((await call('POST', `/__simulator/notifications/${notificationId}/resend`)).status).toBe(415);
    expect(sent()).toBe(before);
    const allowed = await call('POST', `/__simulator/notifications/${notificationId}/resend`, JSON_TYPE);
    expect(allowed.status).toBe(200);
    expect(sent()).toBe(before + 1);
  });

  it('refuses a webhook replay sent as text/plain, and replays nothing', async () => {
    // At least one delivery a replay would send again.
    expect(await deliveredFor((await api.registerAndWait()).synchronizationId)).toHaveLength(1);
    const before = received.length;
    const reply = await call('POST', '/__local/webhooks/replay', { 'content-type': 'text/plain' }, JSON.stringify({ publisherId: 1, since: new Date(0).toISOString() }));
    expect(reply.status).toBe(415);
    expect(reply.json.message).toEqual(expect.any(String));
    await settle();
    expect(received).toHaveLength(before);
  });

  it('accepts application/json with parameters', async () => {
    const reply = await call('POST', '/__simulator/faults', { 'content-type': 'Application/JSON; charset=utf-8' }, JSON.stringify({ store: 'apple', status: 503, count: 1 }));
    expect(reply.status).toBe(200);
    expect(env.stack.faults.take('apple')).toBe(503);
  });

  it('leaves the store API stand-ins their real clients\' content types: the OAuth token endpoint reads a form', async () => {
    const reply = await call('POST', '/__simulator/google/oauth2/token', { 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=password');
    expect(reply.status).toBe(400);
    expect(reply.json.error).toBe('unsupported_grant_type');
  });
});

describe('/__simulator and /__local answer loopback Hosts only', () => {
  afterEach(() => env.stack.faults.clear());

  it.each([
    ['GET', '/__local/events', 'evil.example', 'message'],
    ['GET', '/__local/webhooks/dead-letters', 'evil.example:3000', 'message'],
    ['GET', '/__simulator/notifications', 'evil.example', 'error'],
    ['GET', '/__simulator/apple/inApps/v1/transactions/2000000000000001', 'localhost.evil.example', 'error'],
    ['POST', '/__simulator/faults', '127.0.0.1.evil.example', 'error'],
  ])('%s %s with Host %s: 403', async (method, path, host, key) => {
    const body = method === 'POST' ? JSON.stringify({ store: 'apple', status: 503, count: 1 }) : undefined;
    const reply = await call(method, path, { ...JSON_TYPE, host }, body);
    expect(reply.status).toBe(403);
    expect(reply.json[key]).toEqual(expect.any(String));
    expect(env.stack.faults.take('apple')).toBeUndefined();
  });

  it.each(['localhost', 'LOCALHOST:3000', '127.0.0.1', '[::1]:8080'])('serves Host %s', async (host) => {
    expect((await call('GET', '/__local/events?detailType=none', { host })).status).toBe(200);
  });

  it('leaves the API routes to any Host, as API Gateway serves its own domain names', async () => {
    expect((await call('GET', '/openapi.json', { host: 'evil.example' })).status).toBe(200);
  });
});

/** Writes raw bytes on a fresh connection; resolves with everything the server answered once it closes. */
function raw(bytes: string, then?: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(env.stack.port, '127.0.0.1', () => {
      socket.write(bytes);
      then?.(socket);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

/** Polls until the condition holds (the test's own timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('malformed and aborted requests', () => {
  let stderr: jest.SpyInstance;
  const stackTraces = () => stderr.mock.calls.map(([chunk]) => String(chunk)).filter((text) => text.includes('local server error'));

  beforeEach(() => {
    warnings.length = 0;
    stderr = jest.spyOn(process.stderr, 'write');
  });
  afterEach(() => stderr.mockRestore());

  it('answers a malformed absolute URL with 400 REQ0001 and one line, and stays up', async () => {
    const answer = await raw('GET http://[bad/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown).toMatchObject({ code: 'REQ0001' });
    expect(warnings).toEqual([expect.stringMatching(/malformed URL/)]);
    expect(stackTraces()).toEqual([]);
    expect((await call('GET', '/openapi.json')).status).toBe(200);
  });

  it.each([['/storekit2/purchases'], ['/__simulator/apple/transactions'], ['/__local/webhooks/replay']])(
    'drops an upload to %s aborted halfway with one line, no stack trace, and stays up',
    async (path) => {
      const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"productId":`;
      await raw(head, (socket) => socket.end());
      await until(() => warnings.length > 0 || stackTraces().length > 0);
      expect(warnings).toEqual([expect.stringContaining(path)]);
      expect(warnings[0]).not.toMatch(/\n/);
      expect(stackTraces()).toEqual([]);
      expect((await call('GET', '/openapi.json')).status).toBe(200);
    },
  );
});
