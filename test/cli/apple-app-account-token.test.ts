import { GetCommand, PutCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { appleConfigure, parseAppleConfigure } from '../../cli/commands/apple';
import type { Args } from '../../cli/args';
import { UsageError } from '../../cli/errors';
import type { StackTarget } from '../../cli/target/stack-target';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import type { Publisher } from '../../lambdas/tenants/domain/publisher';

/** `apple configure --require-app-account-token NAMESPACE` / `--allow-any-app-account-token`. */

const NAMESPACE = '9F3C2D4E-1B2A-4C5D-8E6F-7A8B9C0D1E2F';
const base: Args = { publisher: '7', 'bundle-id': 'com.acme.app', 'issuer-id': '11111111-2222-4333-8444-555555555555', 'key-id': 'ABCDE12345', environments: 'Sandbox' };

describe('apple configure: the appAccountToken requirement', () => {
  it.each<[string, Args, string | null | undefined]>([
    ['a namespace UUID sets it (lower-cased)', { 'require-app-account-token': NAMESPACE }, NAMESPACE.toLowerCase()],
    ['--allow-any-app-account-token removes it', { 'allow-any-app-account-token': true }, null],
    ['neither keeps the current setting', {}, undefined],
  ])('%s', (_name, extra, expected) => {
    const parsed = parseAppleConfigure({ ...base, ...extra });
    expect(parsed.appAccountTokenNamespace).toBe(expected);
    expect('appAccountTokenNamespace' in parsed).toBe(expected !== undefined);
  });

  it.each<[string, Args, RegExp]>([
    ['a namespace that is not a UUID', { 'require-app-account-token': 'acme' }, /namespace UUID/],
    ['no value', { 'require-app-account-token': true }, /needs a value/],
    ['both options', { 'require-app-account-token': NAMESPACE, 'allow-any-app-account-token': true }, /exclude each other/],
  ])('refuses %s', (_name, extra, message) => {
    expect(() => parseAppleConfigure({ ...base, ...extra })).toThrow(UsageError);
    expect(() => parseAppleConfigure({ ...base, ...extra })).toThrow(message);
  });

  it('is kept when the publisher is reconfigured without either option, and removed only when asked', async () => {
    const { target, stored } = await memoryTarget();
    await appleConfigure(target, { ...base, 'require-app-account-token': NAMESPACE });
    expect((await stored())?.apple?.appAccountTokenNamespace).toBe(NAMESPACE.toLowerCase());
    await appleConfigure(target, { ...base, 'bundle-id': 'com.acme.app2' });
    expect((await stored())?.apple).toMatchObject({ bundleId: 'com.acme.app2', appAccountTokenNamespace: NAMESPACE.toLowerCase() });
    await appleConfigure(target, { ...base, 'allow-any-app-account-token': true });
    expect((await stored())?.apple?.appAccountTokenNamespace).toBeUndefined();
  });
});

/** A publisher 7 with an App Store Connect key, in a table kept in memory (the only commands used: Get, Put, TransactWrite). */
async function memoryTarget() {
  const items = new Map<string, Record<string, unknown>>();
  const keyOf = (key: Record<string, unknown>) => `${String(key.pk)}|${String(key.sk)}`;
  const db = {
    send: async (command: unknown) => {
      if (command instanceof GetCommand) return { Item: items.get(keyOf(command.input.Key ?? {})) };
      if (command instanceof PutCommand) {
        const item = command.input.Item ?? {};
        items.set(keyOf(item), item);
        return {};
      }
      // A publisher write is one transaction: its Put, and the directory's Update (not kept here).
      if (command instanceof TransactWriteCommand) {
        for (const entry of command.input.TransactItems ?? []) if (entry.Put?.Item) items.set(keyOf(entry.Put.Item), entry.Put.Item);
        return {};
      }
      throw new Error('memoryTarget: only Get, Put and TransactWrite');
    },
  } as unknown as DynamoDBDocumentClient;
  const target: StackTarget = {
    kind: 'deployed',
    description: 'memory',
    db,
    tableName: 'iap-sync',
    storeSecret: async (purpose) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:iap-sync/test/${purpose}`,
    close: () => undefined,
  };
  const publishers = new DynamoDbPublisherRepository(db, 'iap-sync');
  const publisher: Publisher = {
    publisherId: 7,
    name: 'Acme',
    tokenHash: '0'.repeat(64),
    jwt: {},
    storeKit: { activated: true, migrationInProgress: false },
    apple: { bundleId: 'com.acme.app', issuerId: 'i', keyId: 'k', privateKeyRef: 'arn:key', environments: ['Sandbox'] },
    ownershipPolicy: 'keep',
  };
  await publishers.putPublisher(publisher);
  return { target, stored: () => publishers.getPublisher(7) };
}
