import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { CommandError, UsageError } from '../../cli/errors';
import { publisherCreate } from '../../cli/commands/publisher';
import { deployedTarget, localTarget, type DeployedIo, type StackTarget } from '../../cli/target';
import {
  webhookAdd,
  webhookDeliveries,
  webhookDisable,
  webhookEnable,
  webhookList,
  webhookReplay,
  webhookRotateSecret,
} from '../../cli/commands/webhook';
import { DynamoDbDeliveryLog, webhookKeys } from '../../lambdas/webhooks/adapters/dynamodb-webhook-repository';
import type { DeliveryAttemptRecord } from '../../lambdas/webhooks/ports';
import { ENTITLEMENT_CHANGED_DETAIL_TYPE, SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/events/schemas';
import { runCli } from '../../cli/main';
import { createLogger } from '../../lambdas/platform/logger';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { createLocalWebhookDelivery, handleLocalWebhookRoutes, type LocalWebhookDelivery } from '../../local/webhook-queue';

const PUBLISHER = '11';
const NOW = new Date('2026-11-23T10:00:00.000Z');
const FIXTURE_BODY = readFileSync(path.join(__dirname, '../contract/fixtures/inapp-purchase-sync-result.webhook.json'), 'utf8');

let dynamodb: DynamoDbLocal;
let dataDir: string;
let target: StackTarget;
/** The part of `npm start` that replays run in: the delivery machinery behind its control route. */
let delivery: LocalWebhookDelivery;
let control: Server;
let receiver: Server;
let receiverUrl: string;
const received: { headers: IncomingHttpHeaders; body: string }[] = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

async function rawEndpointItem(endpointId: string, publisherId = Number(PUBLISHER)): Promise<Record<string, unknown> | undefined> {
  const out = await target.db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: webhookKeys.endpoint(publisherId, endpointId) }));
  return out.Item;
}

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: LOCAL_TABLE_NAME });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'iap-sync-webhook-cli-'));
  writeFileSync(path.join(dataDir, 'runtime.json'), JSON.stringify({ dynamodbEndpoint: dynamodb.endpoint, tableName: LOCAL_TABLE_NAME }));
  // local.json is written once the control server listens, so the target knows its URL.
  const bootstrap = localTarget(dataDir);
  delivery = createLocalWebhookDelivery({
    db: bootstrap.db,
    tableName: LOCAL_TABLE_NAME,
    secretsDir: path.join(dataDir, 'secrets'),
    scale: 0.00005,
    logger: createLogger('test', 'silent'),
  });
  bootstrap.close();
  control = createServer((req, res) => {
    handleLocalWebhookRoutes(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'), delivery).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  const apiUrl = await listen(control);
  receiverUrl = await listen(receiver);
  writeFileSync(path.join(dataDir, 'local.json'), JSON.stringify({ apiUrl, publisherId: 1 }));
  target = localTarget(dataDir);
  await publisherCreate(target, { id: PUBLISHER, name: 'Webhook Publisher' });
}, 90_000);

afterAll(async () => {
  await delivery?.stop();
  for (const server of [control, receiver]) {
    if (!server?.listening) continue;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  target?.close();
  await dynamodb?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('webhook add (local stack)', () => {
  it('prints the secret once and stores only a reference to it', async () => {
    const added = await webhookAdd(target, { publisher: PUBLISHER, url: `${receiverUrl}/hooks` }, { now: () => NOW });

    expect(added).toMatchObject({ publisherId: 11, url: `${receiverUrl}/hooks`, topics: [SYNC_RESULT_DETAIL_TYPE] });
    expect(added.endpointId).toMatch(/^ep_[A-Za-z0-9_-]{16}$/);
    expect(added.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const item = await rawEndpointItem(added.endpointId);
    const secretRef = `file:webhook-secret-11-${added.endpointId}-${NOW.getTime().toString(36)}`;
    expect(item).toMatchObject({ secretRef, enabled: true, url: `${receiverUrl}/hooks`, createdAt: NOW.toISOString() });
    expect(JSON.stringify(item)).not.toContain(added.secret.slice('whsec_'.length));
    const file = path.join(dataDir, 'secrets', secretRef.slice('file:'.length));
    expect(readFileSync(file, 'utf8')).toBe(added.secret);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // Never shown again: not by list, which does not show where it is kept either.
    const listed = JSON.stringify(await webhookList(target, { publisher: PUBLISHER }));
    expect(listed).toContain(added.endpointId);
    expect(listed).not.toContain(added.secret.slice('whsec_'.length));
    expect(listed).not.toContain('file:');
  });

  it('gives every endpoint its own secret', async () => {
    const first = await webhookAdd(target, { publisher: PUBLISHER, url: `${receiverUrl}/a` });
    const second = await webhookAdd(target, { publisher: PUBLISHER, url: `${receiverUrl}/b` });
    expect(first.secret).not.toBe(second.secret);
    expect(first.endpointId).not.toBe(second.endpointId);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['a bad publisher id', { publisher: 'abc', url: 'http://127.0.0.1/x' }, /--publisher must be an integer/],
    ['no URL', { publisher: PUBLISHER }, /--url is required/],
    ['an unknown topic', { publisher: PUBLISHER, url: 'http://127.0.0.1/x', topics: 'somethingElse' }, /--topics must list inappPurchaseSyncResult/],
    [
      'an unknown topic next to known ones',
      { publisher: PUBLISHER, url: 'http://127.0.0.1/x', topics: 'inappPurchaseSyncResult,inappEntitlementChange' },
      /--topics must list inappPurchaseSyncResult, inappEntitlementChanged, got "inappEntitlementChange"/,
    ],
    ['an empty topic', { publisher: PUBLISHER, url: 'http://127.0.0.1/x', topics: 'inappEntitlementChanged,' }, /--topics must list .*, got ""/],
    ['a topic in the wrong case', { publisher: PUBLISHER, url: 'http://127.0.0.1/x', topics: 'InappEntitlementChanged' }, /--topics must list/],
    ['a URL that is not http(s)', { publisher: PUBLISHER, url: 'ftp://127.0.0.1/x' }, /absolute http\(s\) URL/],
  ])('refuses %s', async (_case, args, message) => {
    await expect(webhookAdd(target, args)).rejects.toBeInstanceOf(UsageError);
    await expect(webhookAdd(target, args)).rejects.toThrow(message);
  });

  it('refuses an unknown publisher', async () => {
    await expect(webhookAdd(target, { publisher: '404', url: `${receiverUrl}/x` })).rejects.toThrow(/Publisher 404 not found/);
  });

  it('subscribes to the topics --topics lists (duplicates dropped), stores them, and list shows them', async () => {
    const both = await webhookAdd(target, {
      publisher: PUBLISHER,
      url: `${receiverUrl}/both`,
      topics: ' inappPurchaseSyncResult, inappEntitlementChanged,inappPurchaseSyncResult',
    });
    const entitlementsOnly = await webhookAdd(target, { publisher: PUBLISHER, url: `${receiverUrl}/entitlements`, topics: 'inappEntitlementChanged' });

    expect(both.topics).toEqual([SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE]);
    expect(entitlementsOnly.topics).toEqual([ENTITLEMENT_CHANGED_DETAIL_TYPE]);
    expect(await rawEndpointItem(both.endpointId)).toMatchObject({ topics: [SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE] });
    const listed = new Map((await webhookList(target, { publisher: PUBLISHER })).endpoints.map((endpoint) => [endpoint.endpointId, endpoint.topics]));
    expect(listed.get(both.endpointId)).toEqual([SYNC_RESULT_DETAIL_TYPE, ENTITLEMENT_CHANGED_DETAIL_TYPE]);
    expect(listed.get(entitlementsOnly.endpointId)).toEqual([ENTITLEMENT_CHANGED_DETAIL_TYPE]);
  });

  it('an unknown topic on the command line is a usage error (exit 2) before any stack is contacted', async () => {
    const stderr: string[] = [];
    let contacted = false;
    const code = await runCli(
      ['webhook', 'add', '--publisher', PUBLISHER, '--url', `${receiverUrl}/x`, '--topics', 'inappPurchaseSyncResult,nope'],
      { stdout: () => undefined, stderr: (text) => stderr.push(text) },
      () => {
        contacted = true;
        // A target of its own: runCli closes the one it is given.
        return Promise.resolve(localTarget(dataDir));
      },
    );
    expect(code).toBe(2);
    expect(contacted).toBe(false);
    expect(stderr.join('')).toMatch(/--topics must list inappPurchaseSyncResult, inappEntitlementChanged, got "nope"/);
  });
});

describe('webhook add (deployed stack: AWS calls and DNS faked, data in DynamoDB Local)', () => {
  const secretsWritten: { name: string; value: string }[] = [];
  const messagesSent: { queueUrl: string; body: string }[] = [];
  const io: DeployedIo = {
    describeStackOutputs: async () => ({
      TableName: LOCAL_TABLE_NAME,
      ApiUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/',
      EventBusName: 'iap-sync-prod',
      StateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:sync',
      WebhookQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/deliveries',
    }),
    sendMessage: async (queueUrl, body) => void messagesSent.push({ queueUrl, body }),
    putSecret: async (name, value) => {
      secretsWritten.push({ name, value });
      return `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
    },
    get db() {
      return target.db;
    },
    close: () => undefined,
  };
  const dns: Record<string, string[]> = {
    'hooks.example.com': ['93.184.216.34'],
    'internal.example.com': ['10.1.2.3'],
    'metadata.example.com': ['169.254.169.254'],
  };
  const resolve = async (host: string) => dns[host] ?? [];

  beforeEach(() => {
    secretsWritten.length = 0;
  });

  it.each<[string, string, RegExp]>([
    ['a private address', 'https://10.0.0.5/hook', /10\.0\.0\.5 \(private\)/],
    ['loopback', 'https://127.0.0.1:8443/hook', /127\.0\.0\.1 \(loopback\)/],
    ['a name resolving to a private address', 'https://internal.example.com/hook', /10\.1\.2\.3 \(private\)/],
    ['a name resolving to the metadata service', 'https://metadata.example.com/hook', /169\.254\.169\.254/],
    ['localhost', 'https://localhost/hook', /loopback/],
  ])('refuses %s, and stores no secret', async (_case, url, message) => {
    const deployed = await deployedTarget('iap-sync-prod', 'eu-west-1', io);
    const attempt = webhookAdd(deployed, { publisher: PUBLISHER, url }, { resolve });
    await expect(attempt).rejects.toBeInstanceOf(CommandError);
    await expect(webhookAdd(deployed, { publisher: PUBLISHER, url }, { resolve })).rejects.toThrow(message);
    expect(secretsWritten).toEqual([]);
  });

  it('refuses plain http', async () => {
    const deployed = await deployedTarget('iap-sync-prod', 'eu-west-1', io);
    await expect(webhookAdd(deployed, { publisher: PUBLISHER, url: 'http://hooks.example.com/x' }, { resolve })).rejects.toThrow(
      /must use https/,
    );
    expect(secretsWritten).toEqual([]);
  });

  it('accepts a public https endpoint and keeps its secret in Secrets Manager, referenced by ARN', async () => {
    const deployed = await deployedTarget('iap-sync-prod', 'eu-west-1', io);
    const added = await webhookAdd(deployed, { publisher: PUBLISHER, url: 'https://hooks.example.com/iap' }, { resolve, now: () => NOW });
    const name = `iap-sync/iap-sync-prod/webhook-secret-11-${added.endpointId}-${NOW.getTime().toString(36)}`;
    expect(secretsWritten).toEqual([{ name, value: added.secret }]);
    expect(await rawEndpointItem(added.endpointId)).toMatchObject({
      url: 'https://hooks.example.com/iap',
      secretRef: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`,
    });
  });

  it('replay on a deployed stack queues a replay message for the delivery Lambda', async () => {
    const deployed = await deployedTarget('iap-sync-prod', 'eu-west-1', io);
    expect(await webhookReplay(deployed, 'msg_abc', {})).toEqual({ queued: { kind: 'replay', webhookId: 'msg_abc' } });
    expect(messagesSent.at(-1)).toEqual({
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/deliveries',
      body: JSON.stringify({ kind: 'replay', webhookId: 'msg_abc' }),
    });
  });
});

describe('webhook list, disable, enable, rotate-secret', () => {
  const publisherId = '12';
  let endpointId: string;
  let firstSecret: string;

  beforeAll(async () => {
    await publisherCreate(target, { id: publisherId, name: 'Rotating Publisher' });
    const added = await webhookAdd(target, { publisher: publisherId, url: `${receiverUrl}/rotating` }, { now: () => NOW });
    endpointId = added.endpointId;
    firstSecret = added.secret;
  });

  it('lists the endpoints of the publisher only', async () => {
    const listed = await webhookList(target, { publisher: publisherId }, { now: () => NOW });
    expect(listed).toEqual({
      publisherId: 12,
      endpoints: [
        {
          endpointId,
          url: `${receiverUrl}/rotating`,
          topics: [SYNC_RESULT_DETAIL_TYPE],
          enabled: true,
          activeSecrets: 1,
          createdAt: NOW.toISOString(),
          updatedAt: NOW.toISOString(),
        },
      ],
    });
  });

  it('disables and enables an endpoint', async () => {
    const later = new Date(NOW.getTime() + 60_000);
    const disabled = await webhookDisable(target, { publisher: publisherId, endpoint: endpointId }, { now: () => later });
    expect(disabled).toMatchObject({ endpointId, enabled: false, disabledReason: 'manual', disabledAt: later.toISOString() });
    expect((await webhookList(target, { publisher: publisherId })).endpoints[0]).toMatchObject({ enabled: false, disabledReason: 'manual' });

    const enabled = await webhookEnable(target, { publisher: publisherId, endpoint: endpointId });
    expect(enabled.enabled).toBe(true);
    expect(enabled).not.toHaveProperty('disabledReason');
  });

  it('refuses an unknown endpoint and a malformed one', async () => {
    await expect(webhookDisable(target, { publisher: publisherId, endpoint: 'ep_unknown' })).rejects.toThrow(/ep_unknown of publisher 12 not found/);
    await expect(webhookDisable(target, { publisher: publisherId, endpoint: 'nope' })).rejects.toBeInstanceOf(UsageError);
  });

  it('rotates the secret: prints the new one once, keeps the old one active for 24 h', async () => {
    const rotatedAt = new Date(NOW.getTime() + 3600_000);
    const rotated = await webhookRotateSecret(target, { publisher: publisherId, endpoint: endpointId }, { now: () => rotatedAt });
    const until = new Date(rotatedAt.getTime() + 24 * 3600_000).toISOString();

    expect(rotated).toMatchObject({ publisherId: 12, endpointId, previousSecretActiveUntil: until });
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(firstSecret);
    const item = await rawEndpointItem(endpointId, 12);
    expect(item).toMatchObject({
      secretRef: `file:webhook-secret-12-${endpointId}-${rotatedAt.getTime().toString(36)}`,
      previousSecretRef: `file:webhook-secret-12-${endpointId}-${NOW.getTime().toString(36)}`,
      previousSecretActiveUntil: until,
    });
    expect(JSON.stringify(item)).not.toContain(rotated.secret.slice('whsec_'.length));

    const during = await webhookList(target, { publisher: publisherId }, { now: () => rotatedAt });
    expect(during.endpoints[0]).toMatchObject({ activeSecrets: 2, previousSecretActiveUntil: until });
    const after = await webhookList(target, { publisher: publisherId }, { now: () => new Date(Date.parse(until) + 1) });
    expect(after.endpoints[0]?.activeSecrets).toBe(1);
  });
});

describe('webhook deliveries and replay', () => {
  const publisherId = 13;
  let endpointId: string;
  let secret: string;
  const webhookId = 'msg_cliReplayTest000000001';

  function attempt(n: number, at: string, status: number): DeliveryAttemptRecord {
    return {
      webhookId,
      publisherId,
      endpointId,
      topic: SYNC_RESULT_DETAIL_TYPE,
      url: `${receiverUrl}/replayed`,
      attempt: n,
      at,
      status,
      latencyMs: 20 + n,
      next: status === 200 ? 'done' : 'retry',
      body: FIXTURE_BODY.trim(),
    };
  }

  beforeAll(async () => {
    await publisherCreate(target, { id: String(publisherId), name: 'Logged Publisher' });
    const added = await webhookAdd(target, { publisher: String(publisherId), url: `${receiverUrl}/replayed` });
    endpointId = added.endpointId;
    secret = added.secret;
    const log = new DynamoDbDeliveryLog(target.db, LOCAL_TABLE_NAME);
    const base = Date.now() - 3 * 3600_000;
    await log.append(attempt(1, new Date(base).toISOString(), 500));
    await log.append(attempt(2, new Date(base + 5000).toISOString(), 503));
    await log.append(attempt(3, new Date(base + 305_000).toISOString(), 200));
  });

  it('lists attempts newest first, without bodies, limited', async () => {
    const { deliveries } = await webhookDeliveries(target, { publisher: String(publisherId), limit: '2' });
    expect(deliveries.map((entry) => [entry.webhookId, entry.attempt, entry.status, entry.next])).toEqual([
      [webhookId, 3, 200, 'done'],
      [webhookId, 2, 503, 'retry'],
    ]);
    expect(deliveries[0]).not.toHaveProperty('body');
    expect(deliveries[0]).toMatchObject({ endpointId, url: `${receiverUrl}/replayed`, latencyMs: 23 });
  });

  it('lists only attempts since a time', async () => {
    const since = new Date(Date.now() - 3 * 3600_000 + 1000).toISOString();
    const { deliveries } = await webhookDeliveries(target, { publisher: String(publisherId), since });
    expect(deliveries.map((entry) => entry.attempt)).toEqual([3, 2]);
    expect((await webhookDeliveries(target, { publisher: String(publisherId), since: new Date().toISOString() })).deliveries).toEqual([]);
  });

  it.each([
    [{ since: 'yesterday' }, /--since must be an ISO time/],
    [{ since: '2026-11-23T10:00:00' }, /--since must be an ISO time with a zone/],
    [{ limit: '0' }, /--limit must be an integer from 1 to 1000/],
    [{ limit: '5000' }, /--limit must be an integer from 1 to 1000/],
  ])('refuses %j', async (extra, message) => {
    await expect(webhookDeliveries(target, { publisher: String(publisherId), ...extra })).rejects.toThrow(message);
  });

  it('replays a delivery from the log through the local stack: same webhook id, fresh valid signature', async () => {
    const before = received.length;
    const result = await webhookReplay(target, webhookId, {});
    if (!('replayed' in result)) throw new Error('expected a local replay');
    const { replayed } = result;
    await delivery.drain();

    expect(replayed).toEqual([
      { webhookId, source: 'log', report: { webhookId, endpointId, attempt: 1, outcome: 'done', status: 200 } },
    ]);
    const request = received.slice(before);
    expect(request).toHaveLength(1);
    expect(request[0]?.headers['webhook-id']).toBe(webhookId);
    expect(request[0]?.body).toBe(FIXTURE_BODY.trim());
    const headers = Object.fromEntries(Object.entries(request[0]?.headers ?? {}).map(([k, v]) => [k, String(v)]));
    expect(() => new Webhook(secret).verify(request[0]?.body ?? '', headers)).not.toThrow();
  });

  it('replays everything since a time', async () => {
    const before = received.length;
    const since = new Date(Date.now() - 4 * 3600_000).toISOString();
    const result = await webhookReplay(target, undefined, { publisher: String(publisherId), since });
    if (!('replayed' in result)) throw new Error('expected a local replay');
    const { replayed } = result;
    expect(replayed.map((entry) => [entry.webhookId, entry.report.outcome])).toEqual([[webhookId, 'done']]);
    expect(received.length - before).toBe(1);
  });

  it('says when the webhook id is unknown', async () => {
    const attemptReplay = webhookReplay(target, 'msg_doesNotExist', {});
    await expect(attemptReplay).rejects.toBeInstanceOf(CommandError);
    await expect(webhookReplay(target, 'msg_doesNotExist', {})).rejects.toThrow(/neither in the dead-letter queue nor in the delivery log/);
  });

  it.each<[string | undefined, Record<string, string>, RegExp]>([
    [undefined, {}, /needs a webhook id, or --publisher N --since ISO/],
    ['msg_x', { publisher: '13', since: '2026-11-23T10:00:00Z' }, /not both/],
    ['not-an-id', {}, /needs a webhook id \(msg_…\)/],
    [undefined, { publisher: '13' }, /--since is required/],
  ])('refuses replay %s %j', async (id, args, message) => {
    await expect(webhookReplay(target, id, args)).rejects.toThrow(message);
  });
});
