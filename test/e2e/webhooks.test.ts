import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { SyncResultWebhookBody } from '../../lambdas/events/schemas';
import { localTarget } from '../../cli/target';
import { webhookAdd, webhookDeliveries } from '../../cli/commands/webhook';
import { startTestStack, type LocalClient } from '../support/local-client';

interface Received {
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
      received.push({ id: String(req.headers['webhook-id']), body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
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

async function deliveredFor(synchronizationId: string): Promise<Received[]> {
  await api.settled();
  await env.stack.webhooks.drain();
  return received.filter((r) => (JSON.parse(r.body) as { data: { synchronizationId: string } }).data.synchronizationId === synchronizationId);
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
    const verified = new Webhook(secret).verify(delivery.body, {
      'webhook-id': String(delivery.headers['webhook-id']),
      'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
      'webhook-signature': String(delivery.headers['webhook-signature']),
    });
    const body = SyncResultWebhookBody.parse(verified);
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
