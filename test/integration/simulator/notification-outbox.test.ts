import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FaultInjector, handleFaultRoutes } from '../../../local/simulator/faults';
import {
  createNotificationOutbox,
  NOTIFICATION_LOG_LIMIT,
  type NotificationOutbox,
  type OutgoingNotification,
} from '../../../local/simulator/notifications';

interface Receiver {
  url: string;
  received: Array<{ body: string; headers: IncomingHttpHeaders; path: string }>;
  status: { value: number };
}

interface Reply {
  status: number;
  json: unknown;
}

const servers: Server[] = [];
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'notification-outbox-'));
  tempDirs.push(dir);
  return dir;
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

async function receiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const status = { value: 204 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers, path: req.url ?? '' });
      res.writeHead(status.value).end('ignored');
    });
  });
  return { url: `${await listen(server)}/hook`, received, status };
}

/** The outbox's control routes and the fault routes behind a node:http server. */
async function serve(outbox: NotificationOutbox, withOutboxForFaults = true): Promise<{ baseUrl: string; faults: FaultInjector }> {
  const faults = new FaultInjector();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    void (async () => {
      if (await handleFaultRoutes(req, res, url, faults, withOutboxForFaults ? outbox : undefined)) return;
      if (await outbox.handle(req, res, url)) return;
      res.writeHead(418).end();
    })();
  });
  return { baseUrl: await listen(server), faults };
}

async function call(baseUrl: string, method: string, route: string, body?: unknown): Promise<Reply> {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

let sequence = 0;

function notification(overrides: Partial<OutgoingNotification> = {}): OutgoingNotification {
  sequence += 1;
  return { store: 'apple', id: `n-${sequence}`, type: 'SUBSCRIBED', subtype: 'INITIAL_BUY', body: `{"signedPayload":"payload-${sequence}"}`, ...overrides };
}

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('notification outbox', () => {
  it('POSTs the exact body as JSON to the store\'s target and records the answer', async () => {
    const sink = await receiver();
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    outbox.setTarget('apple', sink.url);
    const sent = notification({ body: '{"signedPayload":"a.b.c"}  ' });
    const record = await outbox.send(sent);

    expect(sink.received).toEqual([{ body: '{"signedPayload":"a.b.c"}  ', headers: expect.objectContaining({ 'content-type': 'application/json' }), path: '/hook' }]);
    expect(record).toEqual({
      id: sent.id,
      store: 'apple',
      type: 'SUBSCRIBED',
      subtype: 'INITIAL_BUY',
      target: sink.url,
      responseStatus: 204,
      dropped: false,
      sentAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(Math.abs(Date.parse(record.sentAt) - Date.now())).toBeLessThan(60_000);
    expect(outbox.list()).toEqual([record]);
  });

  it.each([
    ['no target is set', undefined, false],
    ['the target refuses connections', 'http://127.0.0.1:1/hook', false],
    ['a drop is armed', 'SINK', true],
  ] as const)('records a notification unsent, status null, when %s', async (_name, target, dropped) => {
    const sink = await receiver();
    const warnings: string[] = [];
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true, warn: (line) => warnings.push(line) });
    outbox.setTarget('apple', target === 'SINK' ? sink.url : target);
    if (dropped) outbox.dropNext('apple', 1);
    const record = await outbox.send(notification());
    expect(record).toMatchObject({ responseStatus: null, dropped, target: target === 'SINK' ? sink.url : (target ?? null) });
    expect(sink.received).toHaveLength(0);
    // Only a send that was attempted and failed is reported, once.
    expect(warnings).toHaveLength(target !== undefined && !dropped ? 1 : 0);
  });

  it('records a non-2xx answer as it is', async () => {
    const sink = await receiver();
    sink.status.value = 503;
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    outbox.setTarget('apple', sink.url);
    expect((await outbox.send(notification())).responseStatus).toBe(503);
  });

  it('bounds each attempt with a timeout signal', async () => {
    const signals: unknown[] = [];
    const fetchImpl: typeof fetch = async (_input, init) => {
      signals.push(init?.signal);
      return new Response(null, { status: 200 });
    };
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true, fetchImpl });
    outbox.setTarget('google', 'http://push.invalid/hook');
    await outbox.send(notification({ store: 'google' }));
    expect(signals).toHaveLength(1);
    expect(signals[0]).toBeInstanceOf(AbortSignal);
  });

  it('drops exactly the armed number of the named store\'s notifications, then sends again', async () => {
    const sink = await receiver();
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    outbox.setTarget('apple', sink.url);
    outbox.setTarget('google', sink.url);
    outbox.dropNext('apple', 2);
    const results = [];
    for (const store of ['google', 'apple', 'apple', 'apple'] as const) results.push(await outbox.send(notification({ store })));
    expect(results.map((r) => [r.store, r.dropped])).toEqual([['google', false], ['apple', true], ['apple', true], ['apple', false]]);
    expect(sink.received).toHaveLength(2);
  });

  it('disarms drops with a count of 0', async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    outbox.dropNext('apple', 3);
    outbox.dropNext('apple', 0);
    expect((await outbox.send(notification())).dropped).toBe(false);
  });

  it('resends the same bytes with fresh headers per attempt, as a new record with the same id', async () => {
    const sink = await receiver();
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    outbox.setTarget('google', sink.url);
    let tokens = 0;
    const sent = notification({ store: 'google', headers: async () => ({ authorization: `Bearer token-${++tokens}` }) });
    await outbox.send(sent);
    const again = await outbox.resend(sent.id);

    expect(again).toMatchObject({ id: sent.id, store: 'google', type: 'SUBSCRIBED', responseStatus: 204, dropped: false });
    expect(sink.received.map((r) => [r.body, r.headers.authorization])).toEqual([
      [sent.body, 'Bearer token-1'],
      [sent.body, 'Bearer token-2'],
    ]);
    expect(outbox.list('google').map((r) => r.id)).toEqual([sent.id, sent.id]);
    expect(await outbox.resend('never-sent')).toBeUndefined();
  });

  it('keeps the body of every attempt, dropped ones included, in the store\'s history, oldest first', async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const first = notification();
    outbox.dropNext('apple', 1);
    await outbox.send(first);
    await outbox.send(notification({ store: 'google' }));
    const second = notification({ subtype: undefined });
    await outbox.send(second);

    const history = outbox.history('apple');
    expect(history.map(({ id, body, dropped }) => ({ id, body, dropped }))).toEqual([
      { id: first.id, body: first.body, dropped: true },
      { id: second.id, body: second.body, dropped: false },
    ]);
    expect('subtype' in (history[1] ?? {})).toBe(false);
    expect(outbox.list().map((r) => r.store)).toEqual(['apple', 'google', 'apple']);
  });

  it(`keeps the last ${NOTIFICATION_LOG_LIMIT} attempts and forgets the bodies of older ones`, async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const oldest = notification();
    await outbox.send(oldest);
    for (let i = 0; i < NOTIFICATION_LOG_LIMIT; i += 1) await outbox.send(notification());
    expect(outbox.list()).toHaveLength(NOTIFICATION_LOG_LIMIT);
    expect(outbox.list().some((r) => r.id === oldest.id)).toBe(false);
    expect(await outbox.resend(oldest.id)).toBeUndefined();
  });

  it('keeps the log, bodies included, across a restart', async () => {
    const dataDir = tempDir();
    const sink = await receiver();
    const first = await createNotificationOutbox({ dataDir, inMemory: false });
    const sent = notification();
    await first.send(sent);
    expect(existsSync(path.join(dataDir, 'simulator', 'notifications.json'))).toBe(true);

    const second = await createNotificationOutbox({ dataDir, inMemory: false });
    expect(second.list()).toEqual(first.list());
    second.setTarget('apple', sink.url);
    await second.resend(sent.id);
    expect(sink.received.map((r) => r.body)).toEqual([sent.body]);
  });

  it('writes no file in memory-only mode', async () => {
    const dataDir = tempDir();
    const outbox = await createNotificationOutbox({ dataDir, inMemory: true });
    await outbox.send(notification());
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe('notification outbox routes', () => {
  it('lists the notifications of a store, newest last, without the send date', async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox);
    const a = notification();
    const g = notification({ store: 'google', type: 'SUBSCRIPTION_PURCHASED', subtype: undefined });
    const b = notification({ type: 'DID_RENEW', subtype: undefined });
    for (const n of [a, g, b]) await outbox.send(n);

    expect(await call(baseUrl, 'GET', '/__simulator/notifications?store=apple')).toEqual({
      status: 200,
      json: {
        notifications: [
          { id: a.id, store: 'apple', type: 'SUBSCRIBED', subtype: 'INITIAL_BUY', target: null, responseStatus: null, dropped: false },
          { id: b.id, store: 'apple', type: 'DID_RENEW', target: null, responseStatus: null, dropped: false },
        ],
      },
    });
    const all = await call(baseUrl, 'GET', '/__simulator/notifications');
    expect((all.json as { notifications: Array<{ id: string }> }).notifications.map((n) => n.id)).toEqual([a.id, g.id, b.id]);
  });

  it.each([
    ['GET', '/__simulator/notifications?store=amazon', 400],
    ['POST', '/__simulator/notifications', 405],
    ['GET', '/__simulator/notifications/n-1/resend', 405],
    ['POST', '/__simulator/notifications/unknown-id/resend', 404],
    ['POST', '/__simulator/notifications/%E0%A4%A/resend', 404],
    ['GET', '/__simulator/notifications/elsewhere', 404],
  ])('answers %s %s with %i and a JSON error', async (method, route, status) => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox);
    expect(await call(baseUrl, method, route)).toEqual({ status, json: { error: expect.any(String) } });
  });

  it('leaves paths outside /__simulator/notifications to the next handler', async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox);
    expect((await call(baseUrl, 'GET', '/__simulator/notificationsx')).status).toBe(418);
  });

  it('resends through POST /__simulator/notifications/{id}/resend', async () => {
    const sink = await receiver();
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox);
    const sent = notification({ id: 'id with/slash' });
    await outbox.send(sent);
    outbox.setTarget('apple', sink.url);
    sink.status.value = 200;
    const reply = await call(baseUrl, 'POST', `/__simulator/notifications/${encodeURIComponent(sent.id)}/resend`);
    expect(reply).toEqual({ status: 200, json: { id: sent.id, responseStatus: 200 } });
    expect(sink.received.map((r) => r.body)).toEqual([sent.body]);
  });

  it('arms drops through POST /__simulator/faults and disarms them through DELETE', async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox);
    expect(await call(baseUrl, 'POST', '/__simulator/faults', { store: 'google', dropNotifications: 1 })).toEqual({ status: 200, json: { store: 'google', dropNotifications: 1 } });
    expect((await outbox.send(notification({ store: 'google' }))).dropped).toBe(true);
    expect((await outbox.send(notification({ store: 'google' }))).dropped).toBe(false);

    await call(baseUrl, 'POST', '/__simulator/faults', { store: 'apple', dropNotifications: 10 });
    await call(baseUrl, 'DELETE', '/__simulator/faults');
    expect((await outbox.send(notification())).dropped).toBe(false);
  });

  it.each([
    [{ store: 'apple', dropNotifications: -1 }],
    [{ store: 'apple', dropNotifications: 10_001 }],
    [{ store: 'apple', dropNotifications: 1.5 }],
    [{ store: 'amazon', dropNotifications: 1 }],
    [{ store: 'apple', dropNotifications: 1, status: 503 }],
  ])('refuses the drop fault %j with 400', async (body) => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox);
    expect(await call(baseUrl, 'POST', '/__simulator/faults', body)).toEqual({ status: 400, json: { error: expect.any(String) } });
  });

  it('refuses a drop fault with 400 when the fault routes have no outbox', async () => {
    const outbox = await createNotificationOutbox({ dataDir: tempDir(), inMemory: true });
    const { baseUrl } = await serve(outbox, false);
    expect(await call(baseUrl, 'POST', '/__simulator/faults', { store: 'apple', dropNotifications: 1 })).toEqual({ status: 400, json: { error: expect.any(String) } });
  });
});
