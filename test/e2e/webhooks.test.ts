import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { EntitlementChangedWebhookBody, SyncResultWebhookBody } from '../../lambdas/events/schemas';
import { localTarget } from '../../cli/target';
import { webhookAdd, webhookDeliveries, webhookList } from '../../cli/commands/webhook';
import { startTestStack, type LocalClient } from '../support/local-client';

interface Received {
  /** The receiver path, one per endpoint. */
  path: string;
  id: string;
  body: string;
  headers: IncomingMessage['headers'];
}

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let receiver: Server;
let receiverUrl: string;
let failNext = 0;
const received: Received[] = [];

beforeAll(async () => {
  // 0.0001 turns the contract's 5 s, 5 min, 30 min … into 0.5 ms, 30 ms, 180 ms …
  env = await startTestStack({ webhookScheduleScale: 0.0001 });
  api = env.client;
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (failNext > 0) {
        failNext -= 1;
        res.writeHead(503).end();
        return;
      }
      received.push({ path: req.url ?? '/', id: String(req.headers['webhook-id']), body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks`;
});
afterAll(async () => {
  await env?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
});

interface ReceivedBody {
  topic: string;
  data: { synchronizationId: string | null };
}

/** What the endpoint at `path` received about a synchronization (both topics carry its id), once everything settled. */
async function deliveredFor(synchronizationId: string, path = '/hooks'): Promise<Received[]> {
  await api.settled();
  await env.stack.webhooks.drain();
  return received.filter((r) => r.path === path && (JSON.parse(r.body) as ReceivedBody).data.synchronizationId === synchronizationId);
}

function verify(delivery: Received, secret: string): unknown {
  return new Webhook(secret).verify(delivery.body, {
    'webhook-id': String(delivery.headers['webhook-id']),
    'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
    'webhook-signature': String(delivery.headers['webhook-signature']),
  });
}

describe('inappPurchaseSyncResult webhooks on the local stack', () => {
  let secret: string;

  beforeAll(async () => {
    const target = localTarget(env.dataDir);
    const added = await webhookAdd(target, { publisher: '1', url: receiverUrl });
    secret = added.secret;
    expect(secret).toMatch(/^whsec_/);
  });

  it('delivers one signed POST per synchronization, verified by the Standard Webhooks reference verifier', async () => {
    const { synchronizationId } = await api.registerAndWait();
    const deliveries = await deliveredFor(synchronizationId);
    expect(deliveries).toHaveLength(1);
    const [delivery] = deliveries;
    if (!delivery) throw new Error('no delivery');
    const body = SyncResultWebhookBody.parse(verify(delivery, secret));
    expect(body).toMatchObject({ broadcasterId: 1, topic: 'inappPurchaseSyncResult', data: { synchronizationId, result: 'PURCHASE_SYNCHRONIZED' } });
    expect(Object.keys(body.data)).not.toContain('broadcasterId');
  });

  it('a receiver that is down, then back, gets every event exactly once per webhook-id', async () => {
    failNext = 6;
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push((await api.registerAndWait()).synchronizationId);
    const all = (await Promise.all(ids.map((id) => deliveredFor(id)))).flat();
    expect(new Set(all.map((d) => d.id)).size).toBe(3);
    expect(all).toHaveLength(3);
    const log = await webhookDeliveries(localTarget(env.dataDir), { publisher: '1', limit: '100' });
    expect(JSON.stringify(log)).toContain('503');
  });
});

describe('inappEntitlementChanged webhooks on the local stack', () => {
  let secret: string;

  beforeAll(async () => {
    const target = localTarget(env.dataDir);
    const added = await webhookAdd(target, { publisher: '1', url: `${receiverUrl}/all`, topics: 'inappPurchaseSyncResult,inappEntitlementChanged' });
    secret = added.secret;
    const listed = await webhookList(target, { publisher: '1' });
    expect(listed.endpoints.find((endpoint) => endpoint.endpointId === added.endpointId)?.topics).toEqual([
      'inappPurchaseSyncResult',
      'inappEntitlementChanged',
    ]);
  });

  it('an endpoint on both topics receives the result and the PURCHASED entitlement change of a register, signed', async () => {
    const customerId = 102;
    const { synchronizationId } = await api.registerAndWait({ productId: 'premium_monthly' }, customerId);
    const deliveries = await deliveredFor(synchronizationId, '/hooks/all');
    const byTopic = new Map(deliveries.map((delivery) => [(JSON.parse(delivery.body) as ReceivedBody).topic, delivery]));
    expect([...byTopic.keys()].sort()).toEqual(['inappEntitlementChanged', 'inappPurchaseSyncResult']);
    expect(deliveries).toHaveLength(2);

    const entitlement = byTopic.get('inappEntitlementChanged');
    if (!entitlement) throw new Error('no inappEntitlementChanged webhook');
    const body = EntitlementChangedWebhookBody.parse(verify(entitlement, secret));
    expect(body).toMatchObject({ broadcasterId: 1, topic: 'inappEntitlementChanged', data: { cleengCustomerId: customerId, reason: 'PURCHASED', active: true, synchronizationId } });
    expect(Object.keys(body.data)).not.toContain('broadcasterId');
    // The webhook is the event the bus carried, minus broadcasterId.
    const events = api.entitlementEvents(customerId).filter((event) => event.detail.synchronizationId === synchronizationId);
    expect(events).toHaveLength(1);
    const { broadcasterId, ...data } = events[0]?.detail ?? {};
    expect(broadcasterId).toBe(1);
    expect(body.data).toEqual(data);

    const result = byTopic.get('inappPurchaseSyncResult');
    if (!result) throw new Error('no inappPurchaseSyncResult webhook');
    expect(SyncResultWebhookBody.parse(verify(result, secret)).data.synchronizationId).toBe(synchronizationId);
    expect(entitlement.id).not.toBe(result.id);

    // The endpoint on the default topic was sent the result only.
    const defaults = await deliveredFor(synchronizationId);
    expect(defaults.map((delivery) => (JSON.parse(delivery.body) as ReceivedBody).topic)).toEqual(['inappPurchaseSyncResult']);
  });
});
