import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { LookupAddress } from 'node:dns';
import {
  ForbiddenAddressError,
  HttpWebhookSender,
  guardedLookup,
  MAX_RESPONSE_BYTES,
  checkEndpointUrl,
  type EndpointUrlCheck,
  type ResolveAddresses,
} from '../../../lambdas/webhooks/adapters/http-webhook-sender';
import type { AddressClass } from '../../../lambdas/platform/ssrf';
import { nextAttempt, outcomeOf } from '../../../lambdas/webhooks/domain/delivery-policy';
import { generateWebhookSecret, newWebhookId, webhookHeaders } from '../../../lambdas/webhooks/domain/signature';

/**
 * A real receiver on 127.0.0.1, port 0. Every request it sees is recorded, so the tests can prove
 * that refused attempts never reached it and that redirects were not followed.
 */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const received: Received[] = [];
const hits = (path?: string): number => received.filter((request) => path === undefined || request.path === path).length;
const slowTimers = new Set<NodeJS.Timeout>();

const receiver: Server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const path = req.url ?? '/';
    received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    switch (path) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
        return;
      case '/no-content':
        res.writeHead(204).end();
        return;
      case '/fail':
        res.writeHead(500).end('boom');
        return;
      case '/gone':
        res.writeHead(410).end();
        return;
      case '/redirect':
        res.writeHead(302, { location: '/redirect-target' }).end();
        return;
      case '/redirect-target':
        res.writeHead(200).end();
        return;
      case '/busy':
        res.writeHead(503, { 'retry-after': '120' }).end();
        return;
      case '/busy-until':
        res.writeHead(429, { 'retry-after': 'Wed, 21 Oct 2037 07:28:00 GMT' }).end();
        return;
      case '/slow': {
        const timer = setTimeout(() => res.writeHead(200).end(), 2000);
        slowTimers.add(timer);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case '/slow-body':
        // Answers at once, then never finishes the body.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        return;
      case '/big-endless':
        // 128 KiB at once, then the body never ends: only the 64 KiB cap lets the sender return early.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(128 * 1024, 0x61));
        return;
      default:
        res.writeHead(404).end();
    }
  });
});

let port = 0;
let base = '';
const local = new HttpWebhookSender({ allowPrivateNetworks: true });
const guarded = new HttpWebhookSender({ allowPrivateNetworks: false });
const body = JSON.stringify({ broadcasterId: 123, topic: 'inappPurchaseSyncResult', data: { ownershipVersion: 3 } });

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const timer of slowTimers) clearTimeout(timer);
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
});

describe('HttpWebhookSender against a local receiver (local mode)', () => {
  it('delivers a signed POST that the Standard Webhooks reference verifier accepts', async () => {
    const secret = generateWebhookSecret();
    const id = newWebhookId();
    const headers = webhookHeaders([secret], id, Math.floor(Date.now() / 1000), body);

    const result = await local.send({ url: `${base}/ok`, body, headers });

    expect(result.status).toBe(200);
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(result.latencyMs).toBeLessThan(5000);
    expect(hits('/ok')).toBe(1);
    const [request] = received;
    expect(request?.body).toBe(body);
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(request?.headers['webhook-id']).toBe(id);
    const receivedHeaders = Object.fromEntries(
      Object.entries(request?.headers ?? {}).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
    expect(new Webhook(secret).verify(request?.body ?? '', receivedHeaders)).toEqual(JSON.parse(body));
  });

  it.each([
    ['204 No Content', '/no-content', { status: 204 }, { action: 'done' }],
    ['500', '/fail', { status: 500 }, { action: 'retry', delaySeconds: 5 }],
    ['410 Gone', '/gone', { status: 410 }, { action: 'disable-endpoint' }],
    ['503 with Retry-After: 120', '/busy', { status: 503, retryAfter: '120' }, { action: 'retry', delaySeconds: 120 }],
    [
      '429 with a far Retry-After date (capped at 10 h)',
      '/busy-until',
      { status: 429, retryAfter: 'Wed, 21 Oct 2037 07:28:00 GMT' },
      { action: 'retry', delaySeconds: 36000 },
    ],
  ])('returns %s as it is, and the domain decides', async (_case, path, expected, decision) => {
    const result = await local.send({ url: `${base}${path}`, body, headers: {} });
    expect(result).toMatchObject(expected);
    expect(result.error).toBeUndefined();
    expect(hits(path)).toBe(1);
    expect(nextAttempt(1, outcomeOf(result), result.retryAfter)).toEqual(decision);
  });

  it('does not follow a 302: the target is never requested', async () => {
    const result = await local.send({ url: `${base}/redirect`, body, headers: {} });
    expect(result).toMatchObject({ status: 302, error: 'redirect' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hits('/redirect')).toBe(1);
    expect(hits('/redirect-target')).toBe(0);
    expect(nextAttempt(1, outcomeOf(result))).toEqual({ action: 'retry', delaySeconds: 5 });
  });

  it('gives up on a receiver that answers after the time budget', async () => {
    const result = await local.send({ url: `${base}/slow`, body, headers: {}, timeoutMs: 200 });
    expect(result.error).toBe('timeout');
    expect(result.status).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThanOrEqual(190);
    expect(result.latencyMs).toBeLessThan(1500);
    expect(hits('/slow')).toBe(1);
  });

  it('keeps the status of a receiver that answered in time but never finished its body', async () => {
    const result = await local.send({ url: `${base}/slow-body`, body, headers: {}, timeoutMs: 200 });
    expect(result).toMatchObject({ status: 200 });
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeLessThan(1500);
  });

  it(`stops reading a large response after ${MAX_RESPONSE_BYTES} bytes instead of waiting for its end`, async () => {
    const result = await local.send({ url: `${base}/big-endless`, body, headers: {}, timeoutMs: 3000 });
    expect(result).toMatchObject({ status: 200 });
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeLessThan(1500);
  });

  it('reports a refused connection', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const result = await local.send({ url: `http://127.0.0.1:${closedPort}/ok`, body, headers: {}, timeoutMs: 2000 });
    expect(result.error).toBe('connection');
    expect(result.status).toBeUndefined();
  });

  it.each([['not a url'], ['ftp://127.0.0.1/hook'], ['file:///etc/passwd'], ['javascript:alert(1)']])(
    'refuses %s before any connection',
    async (url) => {
      const result = await local.send({ url, body, headers: {} });
      expect(result.error).toBe('invalid-url');
      expect(hits()).toBe(0);
    },
  );

  it('connects to the address its resolver gives (the lookup seam is the one used)', async () => {
    const resolve = jest.fn<Promise<string[]>, [string]>(async () => ['127.0.0.1']);
    const sender = new HttpWebhookSender({ allowPrivateNetworks: true, resolve });
    const result = await sender.send({ url: `http://receiver.test:${port}/ok`, body, headers: {} });
    expect(result.status).toBe(200);
    expect(resolve).toHaveBeenCalledWith('receiver.test');
    expect(received[0]?.headers.host).toBe(`receiver.test:${port}`);
  });
});

describe('HttpWebhookSender with the SSRF guard (deployed stacks)', () => {
  it.each([
    ['the loopback literal', () => `http://127.0.0.1:${port}/ok`],
    ['localhost, through the system resolver', () => `http://localhost:${port}/ok`],
    ['an IPv4-mapped loopback literal', () => `http://[::ffff:127.0.0.1]:${port}/ok`],
    ['the IPv6 loopback literal', () => `http://[::1]:${port}/ok`],
    ['a short-form loopback the URL parser expands', () => `http://127.1:${port}/ok`],
  ])('refuses %s and the receiver sees nothing', async (_case, url) => {
    const result = await guarded.send({ url: url(), body, headers: {} });
    expect(result.error).toBe('ssrf');
    expect(result.status).toBeUndefined();
    expect(hits()).toBe(0);
  });

  it('refuses a public-looking name that resolves to loopback at connect time', async () => {
    const sender = new HttpWebhookSender({ allowPrivateNetworks: false, resolve: async () => ['127.0.0.1'] });
    const result = await sender.send({ url: `http://hooks.example.test:${port}/ok`, body, headers: {} });
    expect(result.error).toBe('ssrf');
    expect(hits()).toBe(0);
  });

  it('refuses when any of the addresses is forbidden, not only the first', async () => {
    const sender = new HttpWebhookSender({ allowPrivateNetworks: false, resolve: async () => ['::1', '127.0.0.1'] });
    const result = await sender.send({ url: `http://hooks.example.test:${port}/ok`, body, headers: {} });
    expect(result.error).toBe('ssrf');
    expect(hits()).toBe(0);
  });

  it('closes the DNS-rebinding gap: a name that was public at registration is checked again at connect', async () => {
    let answers = 0;
    const rebinding: ResolveAddresses = async () => (answers++ === 0 ? ['93.184.216.34'] : ['127.0.0.1']);

    const registration = await checkEndpointUrl(`https://rebind.example.test:${port}/ok`, {
      allowPrivateNetworks: false,
      requireHttps: true,
      resolve: rebinding,
    });
    expect(registration).toEqual({ ok: true, url: `https://rebind.example.test:${port}/ok`, addresses: ['93.184.216.34'] });

    const sender = new HttpWebhookSender({ allowPrivateNetworks: false, resolve: rebinding });
    const result = await sender.send({ url: `http://rebind.example.test:${port}/ok`, body, headers: {} });
    expect(result.error).toBe('ssrf');
    expect(answers).toBe(2);
    expect(hits()).toBe(0);
  });

  it('a DNS failure is a connection failure, not an SSRF refusal', async () => {
    const failing: ResolveAddresses = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    };
    const sender = new HttpWebhookSender({ allowPrivateNetworks: false, resolve: failing });
    const result = await sender.send({ url: `http://nowhere.test:${port}/ok`, body, headers: {} });
    expect(result.error).toBe('connection');
    expect(hits()).toBe(0);
  });
});

describe('the guarded lookup handed to net.connect', () => {
  type Answer = { error: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };
  const ask = (addresses: string[], options: { all?: boolean; family?: number }, guard = true): Promise<Answer & { refused: boolean }> =>
    new Promise((resolve) => {
      let refused = false;
      const lookup = guardedLookup(async () => addresses, guard, () => {
        refused = true;
      });
      lookup('hooks.example.test', options, (error, address, family) => resolve({ error, address, family, refused }));
    });

  it.each([
    ['a forbidden address after a public one', ['93.184.216.34', '10.0.0.5'], '10.0.0.5', 'private'],
    ['a forbidden IPv6 address after public IPv4', ['93.184.216.34', 'fd00:ec2::254'], 'fd00:ec2::254', 'metadata'],
    ['something that is not an address', ['93.184.216.34', 'not-an-ip'], 'not-an-ip', 'invalid'],
  ])('refuses %s', async (_case, addresses, address, addressClass) => {
    const answer = await ask(addresses, { all: true });
    expect(answer.refused).toBe(true);
    expect(answer.error).toBeInstanceOf(ForbiddenAddressError);
    expect(answer.error).toMatchObject({ hostname: 'hooks.example.test', address, addressClass });
  });

  it.each<[string, string[], { all?: boolean; family?: number }, Partial<Answer>]>([
    [
      'every address when net asks for all',
      ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
      { all: true },
      { address: [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 }] },
    ],
    ['the first address when net asks for one', ['93.184.216.34', '1.1.1.1'], {}, { address: '93.184.216.34', family: 4 }],
    ['the first of the family asked for', ['93.184.216.34', '2606:4700::1111'], { family: 6 }, { address: '2606:4700::1111', family: 6 }],
  ])('passes public answers through: %s', async (_case, addresses, options, expected) => {
    const answer = await ask(addresses, options);
    expect(answer.error).toBeNull();
    expect(answer.refused).toBe(false);
    expect(answer).toMatchObject(expected);
  });

  it('passes private answers through when not guarding (local mode)', async () => {
    const answer = await ask(['127.0.0.1'], {}, false);
    expect(answer).toMatchObject({ error: null, address: '127.0.0.1', family: 4, refused: false });
  });

  it('answers ENOTFOUND when no address has the family asked for', async () => {
    const answer = await ask(['93.184.216.34'], { family: 6 });
    expect(answer.error?.code).toBe('ENOTFOUND');
    expect(answer.refused).toBe(false);
  });
});

describe('checkEndpointUrl at registration', () => {
  const deployed = { allowPrivateNetworks: false, requireHttps: true };
  const forbidden = (address: string, addressClass: AddressClass): Partial<EndpointUrlCheck> => ({
    ok: false,
    reason: 'forbidden-address',
    address,
    addressClass,
  });

  it.each<[string, string, Partial<EndpointUrlCheck>]>([
    ['plain http when https is required', 'http://hooks.example.com/iap', { ok: false, reason: 'https-required' }],
    ['an unparsable URL', 'hooks.example.com/iap', { ok: false, reason: 'invalid-url' }],
    ['another scheme', 'ftp://hooks.example.com/iap', { ok: false, reason: 'invalid-url' }],
    ['a loopback literal', 'https://127.0.0.1/iap', forbidden('127.0.0.1', 'loopback')],
    ['an IPv6 loopback literal', 'https://[::1]/iap', forbidden('::1', 'loopback')],
    ['a private literal', 'https://10.1.2.3/iap', forbidden('10.1.2.3', 'private')],
    ['a CGNAT literal', 'https://100.64.1.1/iap', forbidden('100.64.1.1', 'cgnat')],
    ['the metadata service', 'https://169.254.169.254/latest/meta-data', forbidden('169.254.169.254', 'metadata')],
    ['the metadata service, IPv4-mapped', 'https://[::ffff:a9fe:a9fe]/', forbidden('::ffff:a9fe:a9fe', 'metadata')],
    ['the metadata service in hex form', 'https://0xa9fea9fe/', forbidden('169.254.169.254', 'metadata')],
    ['the IPv6 metadata service', 'https://[fd00:ec2::254]/', forbidden('fd00:ec2::254', 'metadata')],
    ['localhost', 'https://localhost/iap', forbidden('localhost', 'loopback')],
    ['a *.localhost name', 'https://app.localhost./iap', forbidden('app.localhost.', 'loopback')],
  ])('refuses %s', async (_case, url, expected) => {
    const resolve = jest.fn<Promise<string[]>, [string]>(async () => ['93.184.216.34']);
    const result = await checkEndpointUrl(url, { ...deployed, resolve });
    expect(result).toMatchObject(expected);
    expect(resolve).not.toHaveBeenCalled();
  });

  it.each([
    ['a public IPv4 literal', 'https://93.184.216.34/hooks', ['93.184.216.34']],
    ['a public IPv6 literal', 'https://[2606:4700:4700::1111]:8443/hooks', ['2606:4700:4700::1111']],
    ['a NAT64 address of a public IPv4', 'https://[64:ff9b::5db8:d822]/hooks', ['64:ff9b::5db8:d822']],
  ])('accepts %s without a network call', async (_case, url, addresses) => {
    const resolve = jest.fn<Promise<string[]>, [string]>(async () => {
      throw new Error('no DNS in this test');
    });
    expect(await checkEndpointUrl(url, { ...deployed, resolve })).toEqual({ ok: true, url, addresses });
    expect(resolve).not.toHaveBeenCalled();
  });

  it.each<[string, () => Promise<string[]>, Partial<EndpointUrlCheck>]>([
    ['only public addresses', async () => ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'], { ok: true }],
    ['one private address among public ones', async () => ['93.184.216.34', '10.0.0.5'], forbidden('10.0.0.5', 'private')],
    ['a link-local IPv6 address', async () => ['fe80::1'], forbidden('fe80::1', 'link-local')],
    ['no address', async () => [], { ok: false, reason: 'unresolvable' }],
    [
      'a resolver error',
      async () => {
        throw new Error('ENOTFOUND');
      },
      { ok: false, reason: 'unresolvable' },
    ],
  ])('a host name resolving to %s', async (_case, resolve, expected) => {
    const result = await checkEndpointUrl('https://hooks.example.com/iap', { ...deployed, resolve });
    expect(result).toMatchObject(expected);
  });

  it('allows plain http and loopback in local mode, without resolving', async () => {
    const resolve = jest.fn<Promise<string[]>, [string]>(async () => ['127.0.0.1']);
    const localMode = { allowPrivateNetworks: true, requireHttps: false, resolve };
    expect(await checkEndpointUrl('http://127.0.0.1:8080/hook', localMode)).toEqual({
      ok: true,
      url: 'http://127.0.0.1:8080/hook',
      addresses: ['127.0.0.1'],
    });
    expect(await checkEndpointUrl('http://localhost:8080/hook', localMode)).toMatchObject({ ok: true });
    expect(resolve).not.toHaveBeenCalled();
  });
});
