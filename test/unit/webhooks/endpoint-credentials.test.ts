import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UsageError } from '../../../cli/errors';
import type { StackTarget } from '../../../cli/target';
import { parseWebhookAdd, webhookAdd, webhookDeliveries, webhookList } from '../../../cli/commands/webhook';
import { DynamoDbWebhookEndpointRepository } from '../../../lambdas/webhooks/adapters/dynamodb-webhook-repository';
import { HttpWebhookSender, checkEndpointUrl } from '../../../lambdas/webhooks/adapters/http-webhook-sender';
import { hasUrlCredentials, maskUrlCredentials } from '../../../lambdas/webhooks/domain/endpoint-url';
import { SYNC_RESULT_DETAIL_TYPE } from '../../../lambdas/events/schemas';
import type { WebhookEndpoint } from '../../../lambdas/webhooks/ports';

/**
 * Webhook endpoint URLs with `user:password@` (security review, issue 15 §4): refused at
 * registration, locally and deployed; one stored before that rule is never sent to and never
 * printed with its credentials. No network and no database: DNS and DynamoDB are fakes.
 */

const PASSWORD = 's3cr3t-pa55';
const NOW = new Date('2026-11-23T10:00:00.000Z');

describe('credentials in a URL', () => {
  it.each<[string, string, boolean, string]>([
    ['user and password', `https://alice:${PASSWORD}@hooks.example.com/iap?x=1`, true, 'https://***@hooks.example.com/iap?x=1'],
    ['a user alone', 'https://alice@hooks.example.com/iap', true, 'https://***@hooks.example.com/iap'],
    ['a password alone', `https://:${PASSWORD}@hooks.example.com/iap`, true, 'https://***@hooks.example.com/iap'],
    ['an @ in the path', 'https://hooks.example.com/a@b', false, 'https://hooks.example.com/a@b'],
    ['an @ in the query', 'https://hooks.example.com/iap?to=a@b', false, 'https://hooks.example.com/iap?to=a@b'],
    ['none', 'http://127.0.0.1:8080/hooks', false, 'http://127.0.0.1:8080/hooks'],
    ['a stored value that does not parse', `https://alice:${PASSWORD}@bad host/iap`, true, 'https://***@bad host/iap'],
  ])('%s', (_name, url, has, shown) => {
    expect(hasUrlCredentials(url)).toBe(has);
    expect(maskUrlCredentials(url)).toBe(shown);
    expect(maskUrlCredentials(url)).not.toContain(PASSWORD);
  });
});

describe('registration refuses them', () => {
  it.each([
    ['locally', { allowPrivateNetworks: true, requireHttps: false }],
    ['deployed', { allowPrivateNetworks: false, requireHttps: true }],
  ])('checkEndpointUrl %s, before any DNS lookup', async (_where, options) => {
    const lookups: string[] = [];
    const resolve = async (host: string) => {
      lookups.push(host);
      return ['93.184.216.34'];
    };
    const check = await checkEndpointUrl(`https://alice:${PASSWORD}@hooks.example.com/iap`, { ...options, resolve });
    expect(check).toMatchObject({ ok: false, reason: 'credentials-in-url' });
    expect(lookups).toEqual([]);
  });

  it('the CLI says why, without echoing the password', () => {
    let refusal: unknown;
    try {
      parseWebhookAdd({ publisher: '1', url: `https://alice:${PASSWORD}@hooks.example.com/iap` });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(UsageError);
    const { message } = refusal as UsageError;
    expect(message).toMatch(/^--url: .*credentials.*stored and shown in clear.*signing secret/);
    expect(message).not.toContain(PASSWORD);
    expect(message).not.toContain('alice');
  });

  it.each(['local', 'deployed'] as const)('webhook add on a %s stack stores nothing', async (kind) => {
    const db = new FakeTable();
    await expect(webhookAdd(targetOf(db, kind), { publisher: '1', url: `https://alice:${PASSWORD}@hooks.example.com/iap` })).rejects.toThrow(
      UsageError,
    );
    expect(db.commands).toEqual([]);
  });

  it('the repository refuses to store one, whoever writes', async () => {
    const db = new FakeTable();
    const repository = new DynamoDbWebhookEndpointRepository(db.client, 'table');
    await expect(repository.put(endpoint(`https://alice:${PASSWORD}@hooks.example.com/iap`))).rejects.toThrow(/credentials/);
    expect(db.commands).toEqual([]);
  });
});

describe('an endpoint stored with credentials before the rule', () => {
  const stored = `https://alice:${PASSWORD}@hooks.example.com/iap`;

  it('is listed masked', async () => {
    const db = new FakeTable();
    db.endpoints = [endpoint(stored), endpoint('https://plain.example.com/iap', 'ep_plain')];
    const listed = await webhookList(targetOf(db), { publisher: '1' }, { now: () => NOW });
    expect(listed.endpoints.map((view) => view.url)).toEqual(['https://***@hooks.example.com/iap', 'https://plain.example.com/iap']);
    expect(JSON.stringify(listed)).not.toContain(PASSWORD);
  });

  it('is shown masked in delivery attempts logged before the log masked it', async () => {
    const db = new FakeTable();
    db.attempts = [
      {
        webhookId: 'msg_1',
        publisherId: 1,
        endpointId: 'ep_old',
        topic: SYNC_RESULT_DETAIL_TYPE,
        url: stored,
        attempt: 1,
        at: NOW.toISOString(),
        latencyMs: 5,
        status: 200,
        next: 'done',
      },
    ];
    const listed = await webhookDeliveries(targetOf(db), { publisher: '1' }, { now: () => NOW });
    expect(listed.deliveries.map((entry) => entry.url)).toEqual(['https://***@hooks.example.com/iap']);
  });

  it('is never sent by the HTTP sender (no DNS lookup, no connection)', async () => {
    const lookups: string[] = [];
    const sender = new HttpWebhookSender({
      allowPrivateNetworks: false,
      resolve: async (host) => {
        lookups.push(host);
        return ['127.0.0.1'];
      },
    });
    const result = await sender.send({ url: stored, body: '{}', headers: {} });
    expect(result.error).toBe('credentials-in-url');
    expect(result.status).toBeUndefined();
    expect(lookups).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Fakes

function endpoint(url: string, endpointId = 'ep_old'): WebhookEndpoint {
  return {
    publisherId: 1,
    endpointId,
    url,
    topics: [SYNC_RESULT_DETAIL_TYPE],
    enabled: true,
    secretRef: `file:${endpointId}`,
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
  };
}

/** Publisher 1 exists; endpoint queries answer `endpoints`, delivery-log queries `attempts` (once). */
class FakeTable {
  readonly commands: string[] = [];
  endpoints: WebhookEndpoint[] = [];
  attempts: Record<string, unknown>[] = [];
  readonly client = {
    send: async (command: unknown) => {
      this.commands.push((command as object).constructor.name);
      if (command instanceof GetCommand) return { Item: { publisher: { publisherId: 1, jwt: {} } } };
      if (command instanceof QueryCommand) {
        const prefix = command.input.ExpressionAttributeValues?.[':prefix'];
        if (prefix === 'WEBHOOK#') return { Items: this.endpoints };
        return { Items: this.attempts.splice(0) };
      }
      if (command instanceof PutCommand) return {};
      throw new Error(`unexpected ${(command as object).constructor.name}`);
    },
  } as unknown as DynamoDBDocumentClient;
}

function targetOf(db: FakeTable, kind: 'local' | 'deployed' = 'local'): StackTarget {
  return {
    kind,
    description: `${kind} test stack`,
    db: db.client,
    tableName: 'table',
    storeSecret: async (purpose) => `file:${purpose}`,
    close: () => undefined,
  };
}
