import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbWebhookEndpointRepository } from '../../lambdas/webhooks/adapters/dynamodb-webhook-repository';
import { hashPublisherToken } from '../../lambdas/tenants/domain/authenticate';
import { generateWebhookSecret } from '../../lambdas/webhooks/domain/signature';
import { SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/events/schemas';
import { LOCAL_TABLE_NAME, type LocalStack } from '../../local/stack';
import { issueCustomerJwt } from '../../local/seed';
import { runPool } from '../local';
import type { ObservedStatus, ReceivedWebhook } from './reconcile';

export const IP_ADDRESS = '203.0.113.7';
export type Store = 'apple' | 'google';

// ---------------------------------------------------------------------------------------------
// HTTP: node:http rather than fetch, so the fuzz can send what fetch refuses (a body on GET, any
// method, raw bytes) and every scenario shares one keep-alive agent.

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body, undefined when the body is not JSON. */
  json: unknown;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, 'utf8');
    const req = httpRequest(
      url,
      {
        method: options.method ?? 'GET',
        agent,
        headers: { ...(options.headers ?? {}), ...(body ? { 'content-length': String(body.length) } : {}) },
        timeout: options.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${options.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  return send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

export function field(json: unknown, name: string): string | undefined {
  if (json === null || typeof json !== 'object') return undefined;
  const value = (json as Record<string, unknown>)[name];
  return value === undefined || value === null ? undefined : String(value);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Purchases and credentials

export interface Credential {
  label: string;
  publisherId: number;
  /** The customer a JWT speaks for; undefined for a publisher token. */
  customerId?: number;
  headers: Record<string, string>;
}

export function publisherCredential(publisherId: number, token: string): Credential {
  return { label: `P${publisherId} token`, publisherId, headers: { 'x-publisher-id': String(publisherId), 'x-publisher-token': token } };
}

export function customerCredential(publisherId: number, customerId: number, jwt: string): Credential {
  return { label: `P${publisherId} C${customerId} JWT`, publisherId, customerId, headers: { 'x-publisher-id': String(publisherId), authorization: `Bearer ${jwt}` } };
}

/** A purchase the simulator made: an Apple transaction id or a Google purchase token. */
export interface Purchase {
  store: Store;
  id: string;
  key: string;
}

export async function createPurchase(baseUrl: string, store: Store, productId = 'premium_monthly'): Promise<Purchase> {
  if (store === 'apple') {
    const reply = await postJson(`${baseUrl}/__simulator/apple/transactions`, { productId, environment: 'Production' });
    const id = field(reply.json, 'transactionId');
    if (reply.status !== 201 || !id) throw new Error(`apple simulator answered ${reply.status}: ${reply.text}`);
    return { store, id, key: `apple:${id}` };
  }
  const reply = await postJson(`${baseUrl}/__simulator/google/subscriptions`, { productId });
  const id = field(reply.json, 'purchaseToken');
  if (reply.status !== 201 || !id) throw new Error(`google simulator answered ${reply.status}: ${reply.text}`);
  return { store, id, key: `google:${id}` };
}

export async function createPurchases(baseUrl: string, stores: Store[], concurrency = 8): Promise<Purchase[]> {
  const out = new Array<Purchase>(stores.length);
  await runPool(stores.length, concurrency, async (i) => {
    out[i] = await createPurchase(baseUrl, stores[i] ?? 'apple');
  });
  return out;
}

export function registerBody(purchase: Purchase, customerId: number, packageName: string, withIp = true): Record<string, unknown> {
  const ip = withIp ? { ipAddress: IP_ADDRESS } : {};
  return purchase.store === 'apple'
    ? { cleengCustomerId: customerId, transactionId: purchase.id, ...ip }
    : { cleengCustomerId: customerId, purchaseToken: purchase.id, packageName, productType: 'subscription', ...ip };
}

export const registerPath = (store: Store) => (store === 'apple' ? '/storekit2/purchases' : '/google-play/purchases');
export const statusPath = (store: Store, id: string) =>
  `${store === 'apple' ? '/storekit2' : '/google-play'}/purchases/synchronizations/${encodeURIComponent(id)}`;

export interface RegisterOutcome {
  purchase: Purchase;
  status: number;
  code?: string;
  synchronizationId?: string;
  retryAfter?: string;
  sentAt: number;
  answeredAt: number;
}

export async function register(
  baseUrl: string,
  purchase: Purchase,
  customerId: number,
  credential: Credential,
  options: { packageName: string; correlationId?: string } ,
): Promise<RegisterOutcome> {
  const sentAt = Date.now();
  const reply = await postJson(`${baseUrl}${registerPath(purchase.store)}`, registerBody(purchase, customerId, options.packageName, credential.customerId === undefined), {
    ...credential.headers,
    ...(options.correlationId ? { 'correlation-id': options.correlationId } : {}),
  });
  const synchronizationId = reply.status === 202 ? field(reply.json, 'synchronizationId') : undefined;
  const code = field(reply.json, 'code');
  const retryAfter = reply.headers['retry-after'];
  return {
    purchase,
    status: reply.status,
    ...(code ? { code } : {}),
    ...(synchronizationId ? { synchronizationId } : {}),
    ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
    sentAt,
    answeredAt: Date.now(),
  };
}

export async function readStatus(baseUrl: string, store: Store, id: string, credential: Credential): Promise<ObservedStatus> {
  try {
    const reply = await send(`${baseUrl}${statusPath(store, id)}`, { headers: credential.headers });
    const status = field(reply.json, 'status');
    const result = field(reply.json, 'result');
    return { httpStatus: reply.status, ...(status ? { status } : {}), ...(result ? { result } : {}) };
  } catch {
    return { httpStatus: 0 };
  }
}

/**
 * Polls the status route of every synchronization until all are finalized or the deadline passes;
 * answers the last status read of each (the reconciliation's "finalized" and "stuck").
 */
export async function waitFinalized(
  baseUrl: string,
  syncs: { id: string; store: Store }[],
  credential: Credential,
  deadline: number,
  onPoll?: (id: string, status: ObservedStatus) => void,
): Promise<Record<string, ObservedStatus>> {
  const statuses: Record<string, ObservedStatus> = {};
  let open = syncs;
  for (;;) {
    await runPool(open.length, 8, async (i) => {
      const s = open[i];
      if (!s) return;
      const status = await readStatus(baseUrl, s.store, s.id, credential);
      statuses[s.id] = status;
      onPoll?.(s.id, status);
    });
    open = open.filter((s) => statuses[s.id]?.status !== 'finalized' && statuses[s.id]?.httpStatus !== 404);
    if (open.length === 0 || Date.now() > deadline) return statuses;
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// Tenants: extra publishers (copies of the demo publisher's store configuration) and customers

export function tableClient(stack: LocalStack): DynamoDBDocumentClient {
  return createDocumentClient(stack.dynamodb.client);
}

export function dataDirOf(stack: LocalStack): string {
  return dirname(stack.localJsonPath);
}

export interface Tenant {
  publisherId: number;
  token: string;
  jwtSecret: string;
  customerIds: number[];
  jwts: Record<number, string>;
}

/**
 * A publisher with its own token and HS256 secret but the demo's Apple and Google configuration
 * (the simulator signs for those), the demo's offer mappings, and the given customers.
 */
export async function addPublisher(stack: LocalStack, publisherId: number, customerIds: number[]): Promise<Tenant> {
  const publishers = new DynamoDbPublisherRepository(tableClient(stack), LOCAL_TABLE_NAME);
  const demo = await publishers.getPublisher(stack.localJson.publisherId);
  if (!demo) throw new Error('demo publisher missing');
  const token = `pt_${randomBytes(24).toString('base64url')}`;
  const jwtSecret = randomBytes(32).toString('base64url');
  const secretFile = `resilience-jwt-publisher-${publisherId}`;
  writeFileSync(join(dataDirOf(stack), 'secrets', secretFile), jwtSecret, { mode: 0o600 });
  await publishers.putPublisher({ ...demo, publisherId, name: `Resilience ${publisherId}`, tokenHash: hashPublisherToken(token), jwt: { hs256SecretRef: `file:${secretFile}` } });
  for (const customerId of customerIds) await publishers.putCustomer(publisherId, customerId);
  for (const [productId, offerId] of Object.entries(stack.localJson.apple.products)) await publishers.putOffer(publisherId, 'apple', productId, offerId);
  for (const [productId, offerId] of Object.entries(stack.localJson.google.products)) await publishers.putOffer(publisherId, 'google', productId, offerId);
  const jwts: Record<number, string> = {};
  for (const customerId of customerIds) jwts[customerId] = await issueCustomerJwt(jwtSecret, publisherId, customerId);
  return { publisherId, token, jwtSecret, customerIds, jwts };
}

// ---------------------------------------------------------------------------------------------
// Webhooks: a receiver of our own and its endpoint registration (as the e2e tests do)

export type ReceiverMode = 'ok' | 'down' | 'gone';

export interface ReceiverAttempt {
  webhookId: string;
  answered: number;
  at: number;
  signatureValid: boolean;
}

function synchronizationIdOf(body: string): string {
  try {
    const data = (JSON.parse(body) as { data?: { synchronizationId?: unknown } }).data;
    return typeof data?.synchronizationId === 'string' ? data.synchronizationId : '';
  } catch {
    return '';
  }
}

/** A webhook receiver on 127.0.0.1:0 that answers by mode and verifies every signature. */
export class WebhookReceiver {
  mode: ReceiverMode = 'ok';
  /** POSTs answered 2xx (the reconciliation's "delivered"). */
  readonly received: ReceivedWebhook[] = [];
  readonly attempts: ReceiverAttempt[] = [];
  url = '';
  private server: Server | undefined;
  private readonly verifiers: Webhook[] = [];

  /** Adds a signing secret (one per endpoint registered at this receiver); a signature is valid if one verifies it. */
  setSecret(secret: string): void {
    this.verifiers.push(new Webhook(secret));
  }

  async start(path = '/hooks'): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const webhookId = String(req.headers['webhook-id'] ?? '');
        const signatureValid = this.verifiers.some((verifier) => {
          try {
            verifier.verify(body, {
              'webhook-id': webhookId,
              'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
              'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
            });
            return true;
          } catch {
            return false;
          }
        });
        const answered = this.mode === 'ok' ? 204 : this.mode === 'gone' ? 410 : 503;
        this.attempts.push({ webhookId, answered, at: Date.now(), signatureValid });
        if (answered === 204) {
          this.received.push({ webhookId, synchronizationId: synchronizationIdOf(body), body });
        }
        res.writeHead(answered).end();
      });
    });
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}${path}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

/** Registers `url` as an enabled endpoint of the publisher, its secret as a `file:` reference. */
export async function addWebhookEndpoint(
  db: DynamoDBDocumentClient,
  secretsDir: string,
  publisherId: number,
  url: string,
): Promise<{ endpointId: string; secret: string }> {
  const endpointId = `ep_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const secret = generateWebhookSecret();
  writeFileSync(join(secretsDir, `resilience-${endpointId}`), secret, { mode: 0o600 });
  const now = new Date().toISOString();
  await new DynamoDbWebhookEndpointRepository(db, LOCAL_TABLE_NAME).put({
    publisherId,
    endpointId,
    url,
    topics: [SYNC_RESULT_DETAIL_TYPE],
    enabled: true,
    secretRef: `file:resilience-${endpointId}`,
    createdAt: now,
    updatedAt: now,
  });
  return { endpointId, secret };
}

export function endpointRepository(db: DynamoDBDocumentClient): DynamoDbWebhookEndpointRepository {
  return new DynamoDbWebhookEndpointRepository(db, LOCAL_TABLE_NAME);
}

/** Waits until `check` holds or the deadline passes; answers whether it held. */
export async function until(check: () => boolean | Promise<boolean>, deadline: number, everyMs = 100): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}
