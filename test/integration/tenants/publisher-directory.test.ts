import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parsePublisherSet, publisherList, publisherSet } from '../../../cli/commands/publisher';
import { UsageError, CommandError } from '../../../cli/errors';
import type { StackTarget } from '../../../cli/target';
import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { keys } from '../../../lambdas/platform/dynamodb-table';
import { DynamoDbPublisherRepository, type Publisher } from '../../../lambdas/tenants';
import { ensureTable, LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';

/** Publishers are listed from a directory item that every publisher write keeps, not by a Scan. */

let dynamodb: DynamoDbLocal;
let tableCount = 0;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: 'publisher-directory-0' });
}, 90_000);
afterAll(async () => dynamodb?.stop());

/** A fresh table per test, and a document client that counts the Scans it sends. */
async function freshTable() {
  tableCount += 1;
  const tableName = `publisher-directory-${tableCount}`;
  await ensureTable(dynamodb.client, tableName);
  const db = createDocumentClient(new DynamoDBClient({ endpoint: dynamodb.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
  const scans: unknown[] = [];
  const counting = {
    send: (command: unknown) => {
      if (command instanceof ScanCommand) scans.push(command);
      return db.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { tableName, db, scans, publishers: new DynamoDbPublisherRepository(counting, tableName) };
}

const publisher = (publisherId: number, storeKit: Publisher['storeKit'] = { activated: true, migrationInProgress: false }): Publisher => ({
  publisherId,
  name: `Publisher ${publisherId}`,
  tokenHash: '0'.repeat(64),
  jwt: {},
  storeKit,
  ownershipPolicy: 'keep',
});

/** A publisher as versions before the directory wrote it: the profile item alone. */
async function writtenBeforeTheDirectory(db: DynamoDBDocumentClient, tableName: string, publisherId: number) {
  await db.send(new PutCommand({ TableName: tableName, Item: { ...keys.publisher(publisherId), type: 'publisher', publisher: publisher(publisherId) } }));
}

describe('the publisher directory', () => {
  it('lists the publishers that were created or written, in order, without a Scan once complete', async () => {
    const { publishers, scans } = await freshTable();
    expect(await publishers.listPublisherIds()).toEqual([]); // an empty table: completes the directory
    expect(await publishers.createPublisherIfAbsent(publisher(12))).toBe(true);
    expect(await publishers.createPublisherIfAbsent(publisher(12))).toBe(false);
    await publishers.putPublisher(publisher(3));
    await publishers.putPublisher({ ...publisher(3), name: 'renamed' });
    scans.length = 0;
    expect(await publishers.listPublisherIds()).toEqual([3, 12]);
    expect(await publishers.listPublisherIds()).toEqual([3, 12]);
    expect(scans).toEqual([]);
  });

  it('publishers stored before the directory: the first listing scans once and completes it; later ones never scan', async () => {
    const { publishers, scans, db, tableName } = await freshTable();
    await writtenBeforeTheDirectory(db, tableName, 5);
    await writtenBeforeTheDirectory(db, tableName, 1);
    // Created after the upgrade, before anything listed: the directory exists but is not complete.
    await publishers.createPublisherIfAbsent(publisher(9));

    expect(await publishers.listPublisherIds()).toEqual([1, 5, 9]);
    expect(scans).toHaveLength(1);
    const directory = await db.send(new GetCommand({ TableName: tableName, Key: keys.publisherDirectory() }));
    expect(directory.Item).toMatchObject({ complete: true, publisherIds: new Set([1, 5, 9]) });

    await publishers.createPublisherIfAbsent(publisher(2));
    expect(await publishers.listPublisherIds()).toEqual([1, 2, 5, 9]);
    expect(scans).toHaveLength(1);
  });

  it('the directory item is not taken for a publisher', async () => {
    const { publishers } = await freshTable();
    await publishers.putPublisher(publisher(4));
    expect(await publishers.listPublisherIds()).toEqual([4]);
    expect(await publishers.listPublisherIds()).toEqual([4]);
  });
});

describe('iap-sync publisher set --storekit-migration on|off', () => {
  async function target(): Promise<{ target: StackTarget; publishers: DynamoDbPublisherRepository }> {
    const { tableName, db, publishers } = await freshTable();
    const stack: StackTarget = {
      kind: 'local',
      description: 'test table',
      db,
      tableName,
      storeSecret: () => Promise.reject(new Error('not used')),
      close: () => undefined,
    };
    return { target: stack, publishers };
  }

  it('switches the StoreKit migration on and off, keeping the rest of the publisher', async () => {
    const { target: stack, publishers } = await target();
    await publishers.putPublisher({ ...publisher(7), name: 'Acme' });

    await expect(publisherSet(stack, { publisher: '7', 'storekit-migration': 'on' })).resolves.toEqual({
      publisherId: 7,
      storeKit: { activated: true, migrationInProgress: true },
    });
    expect(await publishers.getPublisher(7)).toMatchObject({ name: 'Acme', storeKit: { activated: true, migrationInProgress: true } });

    await publisherSet(stack, { publisher: '7', 'storekit-migration': 'off' });
    expect((await publishers.getPublisher(7))?.storeKit).toEqual({ activated: true, migrationInProgress: false });
    expect(await publisherList(stack)).toEqual({ publisherIds: [7] });
  });

  it('refuses an unknown publisher', async () => {
    const { target: stack } = await target();
    await expect(publisherSet(stack, { publisher: '404', 'storekit-migration': 'on' })).rejects.toThrow(CommandError);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['no setting', { publisher: '7' }, /--storekit-migration on\|off/],
    ['a value other than on or off', { publisher: '7', 'storekit-migration': 'yes' }, /must be one of on, off/],
    ['no publisher', { 'storekit-migration': 'on' }, /--publisher is required/],
  ])('refuses %s before touching the stack', (_name, args, message) => {
    expect(() => parsePublisherSet(args)).toThrow(UsageError);
    expect(() => parsePublisherSet(args)).toThrow(message);
  });
});
