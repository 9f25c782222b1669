import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

/** Starts the local stack on port 0 in a fresh temp data dir; `stop` also removes the dir. */
export async function startTestStack(options: Partial<LocalStackOptions> = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'iap-sync-test-'));
  const stack = await startLocalStack({ port: 0, dataDir, inMemory: true, logLevel: 'silent', ...options });
  return {
    stack,
    dataDir,
    client: new LocalClient(stack),
    stop: async (removeDir = true) => {
      await stack.stop();
      if (removeDir && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export class LocalClient {
  readonly token: string;
  constructor(readonly stack: LocalStack) {
    this.token = stack.localJson.publisherToken;
  }

  async request(method: string, path: string, options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Reply> {
    const res = await fetch(`${this.stack.url}${path}`, {
      method,
      headers: options.headers ?? {},
      ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
    });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = {};
    }
    return { status: res.status, headers: res.headers, text, body };
  }

  publisherHeaders(extra: Record<string, string> = {}) {
    return { 'content-type': 'application/json', 'x-publisher-id': '1', 'x-publisher-token': this.token, ...extra };
  }

  customerHeaders(customerId: number, extra: Record<string, string> = {}) {
    const jwt = this.stack.localJson.customerJwts[String(customerId)];
    return { 'content-type': 'application/json', 'x-publisher-id': '1', authorization: `Bearer ${jwt}`, ...extra };
  }

  async createTransaction(body: Record<string, unknown> = { productId: 'premium_monthly' }) {
    const reply = await this.request('POST', '/__simulator/apple/transactions', { headers: { 'content-type': 'application/json' }, body });
    if (reply.status !== 201) throw new Error(`simulator answered ${reply.status}: ${reply.text}`);
    return reply.body as { transactionId: string; originalTransactionId: string };
  }

  register(body: Record<string, unknown>, headers: Record<string, string> = this.publisherHeaders()) {
    return this.request('POST', '/storekit2/purchases', { headers, body });
  }

  status(id: string, headers: Record<string, string> = this.publisherHeaders()) {
    return this.request('GET', `/storekit2/purchases/synchronizations/${id}`, { headers });
  }

  /** Polls the status route until `finalized`; answers every distinct status seen on the way. */
  async waitFinalized(id: string, headers?: Record<string, string>, timeoutMs = 30_000) {
    const seen: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = await this.status(id, headers);
      const status = String(reply.body.status);
      if (seen.at(-1) !== status) seen.push(status);
      if (status === 'finalized') return { final: reply.body, seen };
      if (reply.status !== 200 || Date.now() > deadline) throw new Error(`not finalized: ${reply.status} ${reply.text}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Registers a fresh simulator transaction for customer 101 and waits for the result. */
  async registerAndWait(transaction: Record<string, unknown> = { productId: 'premium_monthly' }, customerId = 101) {
    const { transactionId } = await this.createTransaction(transaction);
    const accepted = await this.register({ cleengCustomerId: customerId, transactionId, ipAddress: '203.0.113.7' });
    if (accepted.status !== 202) throw new Error(`register answered ${accepted.status}: ${accepted.text}`);
    const synchronizationId = String(accepted.body.synchronizationId);
    return { transactionId, synchronizationId, ...(await this.waitFinalized(synchronizationId)) };
  }

  /** The `inappPurchaseSyncResult` events of a synchronization. */
  eventsFor(synchronizationId: string) {
    return this.stack.bus.events.filter(
      (event) => event['detail-type'] === 'inappPurchaseSyncResult' && event.detail.synchronizationId === synchronizationId,
    );
  }

  /** The `inappEntitlementChanged` events, optionally of one customer, oldest first. */
  entitlementEvents(customerId?: number) {
    return this.stack.bus.events.filter(
      (event) => event['detail-type'] === 'inappEntitlementChanged' && (customerId === undefined || event.detail.cleengCustomerId === customerId),
    );
  }

  /** Events are published after finalize becomes visible: wait for the execution to end. */
  async settled() {
    await this.stack.stepFunctions.drain();
  }
}
