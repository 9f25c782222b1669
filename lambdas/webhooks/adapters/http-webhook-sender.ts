import { promises as dns } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { classifyAddress, type AddressClass } from '../../platform/ssrf';
import { DELIVERY_TIMEOUT_MS, type DeliveryAttemptResult, type TransportFailure } from '../domain/delivery-policy';
import { CREDENTIALS_IN_URL_MESSAGE, hasUrlCredentials } from '../domain/endpoint-url';

/**
 * Webhook transport over node:http/node:https. Not fetch: undici offers no per-request `lookup`,
 * and the SSRF guard has to see the address the socket actually connects to. Checking a name
 * once and connecting later leaves a DNS-rebinding gap (the second answer can be 127.0.0.1).
 */

/** Receivers' answers are read up to this and discarded; a bigger body is cut off. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

const USER_AGENT = 'iap-sync-webhooks/1';

/** Resolves a host name to every address it has (the seam tests replace). */
export type ResolveAddresses = (hostname: string) => Promise<string[]>;

const systemResolve: ResolveAddresses = async (hostname) =>
  (await dns.lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

export interface WebhookSendRequest {
  url: string;
  /** The exact bytes that were signed. */
  body: string;
  /** The Standard Webhooks headers and any others; Content-Type defaults to application/json. */
  headers: Readonly<Record<string, string>>;
  /** Bound on the whole attempt: DNS, connect, TLS, request and response headers. */
  timeoutMs?: number;
}

export type WebhookSendResult = DeliveryAttemptResult;

export interface HttpWebhookSenderOptions {
  /**
   * False on deployed stacks: every address the endpoint resolves to must be public (checked at
   * connect time). True only in local mode, where receivers run on 127.0.0.1.
   */
  allowPrivateNetworks: boolean;
  /** DNS seam for tests; defaults to the system resolver (`dns.lookup`, all addresses). */
  resolve?: ResolveAddresses;
}

/** The resolver answered with an address the guard refuses; carried through net's lookup callback. */
export class ForbiddenAddressError extends Error {
  override readonly name = 'ForbiddenAddressError';
  readonly retryable = false;
  constructor(
    readonly hostname: string,
    readonly address: string,
    readonly addressClass: AddressClass | 'invalid',
  ) {
    super(`${hostname} resolves to ${address} (${addressClass}), which webhooks may not reach.`);
  }
}

/** `[::1]` → `::1`; URL keeps IPv6 literals bracketed. */
function hostOf(url: URL): string {
  const { hostname } = url;
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function classOf(address: string): AddressClass | 'invalid' {
  try {
    return classifyAddress(address);
  } catch {
    return 'invalid';
  }
}

/** The first address a guarded stack may not reach, if any. */
function firstForbidden(addresses: readonly string[]): { address: string; addressClass: AddressClass | 'invalid' } | undefined {
  for (const address of addresses) {
    const addressClass = classOf(address);
    if (addressClass !== 'public') return { address, addressClass };
  }
  return undefined;
}

function wantedFamily(family: number | string | undefined): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

/**
 * A `lookup` for net.connect that refuses the connection when any resolved address is forbidden
 * (`guard` true) — all of them, not only the first: with several A/AAAA records net may try each
 * in turn. `onRefused` tells the caller the error came from the guard, not from DNS.
 */
export function guardedLookup(resolve: ResolveAddresses, guard: boolean, onRefused: () => void): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const forbidden = guard ? firstForbidden(addresses) : undefined;
        if (forbidden) {
          onRefused();
          callback(new ForbiddenAddressError(hostname, forbidden.address, forbidden.addressClass), []);
          return;
        }
        const family = wantedFamily(options.family);
        const usable = addresses
          .map((address) => ({ address, family: isIP(address) }))
          .filter((entry) => entry.family !== 0 && (family === 0 || entry.family === family));
        const first = usable[0];
        if (first === undefined) {
          const error: NodeJS.ErrnoException = new Error(`No usable address for ${hostname}.`);
          error.code = 'ENOTFOUND';
          callback(error, []);
        } else if (options.all) {
          callback(null, usable);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), []),
    );
  };
}

function parseUrl(text: string): URL | undefined {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends one webhook attempt. Never follows redirects (a 3xx comes back as its status with error
 * `redirect`), never throws for anything the receiver or the network does, and bounds the
 * attempt by `timeoutMs` (contract: 15 s).
 */
export class HttpWebhookSender {
  private readonly allowPrivateNetworks: boolean;
  private readonly resolve: ResolveAddresses;

  constructor(options: HttpWebhookSenderOptions) {
    this.allowPrivateNetworks = options.allowPrivateNetworks;
    this.resolve = options.resolve ?? systemResolve;
  }

  send({ url, body, headers, timeoutMs = DELIVERY_TIMEOUT_MS }: WebhookSendRequest): Promise<WebhookSendResult> {
    const started = performance.now();
    const latencyMs = (): number => Math.round(performance.now() - started);
    const target = parseUrl(url);
    if (!target) return Promise.resolve({ latencyMs: latencyMs(), error: 'invalid-url' });
    // node:http would send them as an Authorization: Basic header; the use case refuses them first.
    if (hasUrlCredentials(url)) return Promise.resolve({ latencyMs: latencyMs(), error: 'credentials-in-url' });
    const host = hostOf(target);
    // net.connect skips `lookup` for a literal address, so the guard checks literals itself.
    if (!this.allowPrivateNetworks && isIP(host) !== 0 && classOf(host) !== 'public') {
      return Promise.resolve({ latencyMs: latencyMs(), error: 'ssrf' });
    }

    return new Promise<WebhookSendResult>((resolve) => {
      let settled = false;
      let refused = false;
      let timedOut = false;
      let status: number | undefined;
      let retryAfter: string | undefined;

      const requestHeaders: Record<string, string> = { 'content-type': 'application/json', 'user-agent': USER_AGENT };
      for (const [name, value] of Object.entries(headers)) requestHeaders[name.toLowerCase()] = value;
      requestHeaders['content-length'] = String(Buffer.byteLength(body));

      const client = target.protocol === 'https:' ? https : http;
      const request = client.request(target, {
        method: 'POST',
        headers: requestHeaders,
        // A fresh connection per attempt: a pooled socket would skip the lookup (and its guard).
        agent: false,
        lookup: guardedLookup(this.resolve, !this.allowPrivateNetworks, () => {
          refused = true;
        }),
      });

      const finish = (error?: TransportFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        const result: WebhookSendResult = { latencyMs: latencyMs() };
        if (status !== undefined) {
          // The receiver answered: what happens to its body afterwards does not change the answer.
          result.status = status;
          if (retryAfter !== undefined) result.retryAfter = retryAfter;
          if (status >= 300 && status <= 399) result.error = 'redirect';
        } else if (error !== undefined) {
          result.error = error;
        }
        resolve(result);
      };

      const timer = setTimeout(() => {
        timedOut = true;
        finish('timeout');
      }, timeoutMs);

      request.on('response', (response) => {
        status = response.statusCode;
        const header = response.headers['retry-after'];
        if (typeof header === 'string') retryAfter = header;
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received >= MAX_RESPONSE_BYTES) finish();
        });
        response.on('end', () => finish());
        response.on('error', () => finish());
        response.on('close', () => finish());
      });
      request.on('error', () => finish(refused ? 'ssrf' : timedOut ? 'timeout' : 'connection'));
      request.end(body);
    });
  }
}

export interface EndpointUrlCheckOptions {
  /** False on deployed stacks: every resolved address must be public. */
  allowPrivateNetworks: boolean;
  /** True on deployed stacks (contract §8 / issue: https required). */
  requireHttps: boolean;
  /** DNS seam for tests; defaults to the system resolver. */
  resolve?: ResolveAddresses;
}

export type EndpointUrlCheck =
  | { ok: true; url: string; addresses: string[] }
  | {
      ok: false;
      reason: 'invalid-url' | 'credentials-in-url' | 'https-required' | 'forbidden-address' | 'unresolvable';
      message: string;
      address?: string;
      addressClass?: AddressClass | 'invalid';
    };

/**
 * Registration-time check of an endpoint URL. The sender checks again at every connect, because
 * DNS answers change; this one gives the user an early, readable refusal.
 */
export async function checkEndpointUrl(url: string, options: EndpointUrlCheckOptions): Promise<EndpointUrlCheck> {
  const target = parseUrl(url);
  if (!target) return { ok: false, reason: 'invalid-url', message: 'The endpoint must be an absolute http(s) URL.' };
  // Locally too: the URL is stored, listed and logged as it is.
  if (hasUrlCredentials(url)) return { ok: false, reason: 'credentials-in-url', message: CREDENTIALS_IN_URL_MESSAGE };
  if (options.requireHttps && target.protocol !== 'https:') {
    return { ok: false, reason: 'https-required', message: 'The endpoint must use https.' };
  }
  const host = hostOf(target);
  const literal = isIP(host) !== 0;
  if (options.allowPrivateNetworks) return { ok: true, url: target.href, addresses: literal ? [host] : [] };

  const refuse = (address: string, addressClass: AddressClass | 'invalid'): EndpointUrlCheck => ({
    ok: false,
    reason: 'forbidden-address',
    message: `The endpoint resolves to ${address} (${addressClass}); only public addresses are allowed.`,
    address,
    addressClass,
  });
  if (literal) {
    const addressClass = classOf(host);
    return addressClass === 'public' ? { ok: true, url: target.href, addresses: [host] } : refuse(host, addressClass);
  }
  // RFC 6761: `localhost` and `*.localhost` are loopback whatever a resolver says.
  const name = host.replace(/\.$/, '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return refuse(host, 'loopback');

  let addresses: string[];
  try {
    addresses = await (options.resolve ?? systemResolve)(host);
  } catch {
    return { ok: false, reason: 'unresolvable', message: `The endpoint host ${host} does not resolve.` };
  }
  if (addresses.length === 0) {
    return { ok: false, reason: 'unresolvable', message: `The endpoint host ${host} does not resolve.` };
  }
  const forbidden = firstForbidden(addresses);
  return forbidden ? refuse(forbidden.address, forbidden.addressClass) : { ok: true, url: target.href, addresses };
}
