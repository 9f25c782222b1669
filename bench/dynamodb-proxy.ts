import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';

/** One DynamoDB request as it passed the proxy. */
export interface DynamoDbRequestRecord {
  /** Epoch ms when the request arrived at the proxy. */
  at: number;
  /** X-Amz-Target operation: GetItem, TransactWriteItems, ... */
  operation: string;
  status: number;
  /** Request units by AWS's on-demand rules (see {@link startDynamoDbCountingProxy}). */
  readUnits: number;
  writeUnits: number;
  /** An operation this proxy does not size (the project uses none today): its units are 0. */
  unsized: boolean;
  /** Each item the request wrote, with its size and the write units it was billed (GetItem: none). */
  items: DynamoDbItemWrite[];
}

/** One item of a write request: what kind of item (from its key), how big, and its write units. */
export interface DynamoDbItemWrite {
  /** Put, Update, Delete or ConditionCheck; `transact` when it was part of a TransactWriteItems. */
  kind: string;
  transact: boolean;
  /** The item's kind, from its partition key's prefix (`SYNC`, `LOCK`, `PURCHASE`, ...) and sort key prefix. */
  item: string;
  /** Bytes by DynamoDB's item-size rules: the larger of the item before and after the write. */
  bytes: number;
  writeUnits: number;
}

/** `SYNC`, `LOCK`, `PUBLISHER/CUSTOMER`, … : the key's fixed prefixes, without ids. */
export function itemKind(key: Record<string, unknown> | undefined): string {
  const part = (value: unknown) => {
    const s = typeof value === 'object' && value !== null && 'S' in value ? String((value as { S: unknown }).S) : '';
    return s.split('#')[0] ?? '';
  };
  const pk = part(key?.pk);
  const sk = part(key?.sk);
  return sk === '' || sk === pk ? pk : `${pk}/${sk}`;
}

export interface DynamoDbCountingProxy {
  /** Point AWS_ENDPOINT_URL_DYNAMODB here. */
  endpoint: string;
  readonly records: DynamoDbRequestRecord[];
  close(): Promise<void>;
}

type AttributeValue = Record<string, unknown>;
type Item = Record<string, AttributeValue>;

const KB = 1024;

/**
 * Size of an attribute value by DynamoDB's item-size rules
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
 * strings and binaries by their bytes, numbers about one byte per two significant digits plus one,
 * booleans and null one byte, lists and maps 3 bytes plus one per element plus their contents.
 */
export function attributeSize(value: AttributeValue): number {
  const [type, raw] = Object.entries(value)[0] ?? ['NULL', true];
  switch (type) {
    case 'S':
      return Buffer.byteLength(String(raw), 'utf8');
    case 'N':
      return Math.ceil(String(raw).replace(/^-|\.|e.*$/gi, '').replace(/^0+/, '').length / 2) + 1;
    case 'B':
      // Base64 on the wire; bytes when the item comes from an SDK client.
      return raw instanceof Uint8Array ? raw.length : Buffer.from(String(raw), 'base64').length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'SS':
      return (raw as string[]).reduce((total, s) => total + Buffer.byteLength(s, 'utf8'), 0);
    case 'NS':
      return (raw as string[]).reduce((total, n) => total + attributeSize({ N: n }), 0);
    case 'BS':
      return (raw as (string | Uint8Array)[]).reduce((total, b) => total + (b instanceof Uint8Array ? b.length : Buffer.from(b, 'base64').length), 0);
    case 'L':
      return 3 + (raw as AttributeValue[]).reduce((total, element) => total + 1 + attributeSize(element), 0);
    case 'M':
      return 3 + Object.entries(raw as Item).reduce((total, [name, element]) => total + 1 + Buffer.byteLength(name) + attributeSize(element), 0);
    default:
      return 0;
  }
}

export function itemSize(item: Item | undefined): number {
  if (!item) return 0;
  return Object.entries(item).reduce((total, [name, value]) => total + Buffer.byteLength(name, 'utf8') + attributeSize(value), 0);
}

/** The primary key (pk, sk) of an item. */
function keyOf(item: Item | undefined): Item | undefined {
  if (!item?.pk) return undefined;
  return { pk: item.pk, ...(item.sk ? { sk: item.sk } : {}) };
}

function valuesSize(values: unknown): number {
  return Object.values((values ?? {}) as Item).reduce((total, value) => total + attributeSize(value), 0);
}

const writeUnitsFor = (bytes: number) => Math.max(1, Math.ceil(bytes / KB));
const readUnitsFor = (bytes: number, consistent: boolean) => Math.max(1, Math.ceil(bytes / (4 * KB))) * (consistent ? 1 : 0.5);

/**
 * A node:http proxy in front of DynamoDB Local that records every request's X-Amz-Target operation
 * and its on-demand request units by AWS's published rules, computed from the items it sees:
 * GetItem 1 RRU (strongly consistent) or 0.5 RRU (eventually) per started 4 KB of the returned
 * item, a miss counting as one; PutItem 1 WRU per started KB of the larger of the stored item (read
 * by the proxy beforehand, consistent, not recorded) and the written one; UpdateItem and DeleteItem
 * sized from the stored item plus the update's values; TransactWriteItems 2 WRU per started KB of
 * each item (ConditionCheck included), sized the same way. Each written item is recorded with its
 * kind, size and units (the bench's per-item table). DynamoDB Local's own ReturnConsumedCapacity is not used: it reports 2 units for a
 * transaction of three small Puts, where DynamoDB bills 6.
 * Requests and responses pass through unchanged.
 */
export async function startDynamoDbCountingProxy(target: string): Promise<DynamoDbCountingProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const records: DynamoDbRequestRecord[] = [];

  const send = (path: string, headers: IncomingHttpHeaders, method: string, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const forward = request(
        { host: upstream.hostname, port: upstream.port, method, path, headers: { ...headers, host: upstream.host, 'content-length': String(body.length) }, agent },
        (res) => {
          const out: Buffer[] = [];
          res.on('data', (chunk: Buffer) => out.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(out) }));
          res.on('error', reject);
        },
      );
      forward.on('error', reject);
      forward.end(body);
    });

  /** Size of the stored item at `key`, read out of band (strongly consistent). */
  const storedSize = async (headers: IncomingHttpHeaders, tableName: unknown, key: unknown): Promise<number> => {
    const body = Buffer.from(JSON.stringify({ TableName: tableName, Key: key, ConsistentRead: true }));
    const reply = await send('/', { ...headers, 'x-amz-target': 'DynamoDB_20120810.GetItem' }, 'POST', body);
    return itemSize((JSON.parse(reply.body.toString('utf8')) as { Item?: Item }).Item);
  };

  /**
   * DynamoDB bills a write by the larger of the item before and after it: a Put that replaces a big
   * item with a small one still costs the big one.
   */
  const writeSize = async (headers: IncomingHttpHeaders, kind: string, op: Record<string, unknown>): Promise<number> => {
    const key = (op.Key ?? keyOf(op.Item as Item | undefined)) as Item | undefined;
    const before = key ? await storedSize(headers, op.TableName, key) : 0;
    if (kind === 'Put') return Math.max(before, itemSize(op.Item as Item));
    return kind === 'Update' ? before + valuesSize(op.ExpressionAttributeValues) : before;
  };

  const server: Server = createServer((req, res) => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
        const body = Buffer.concat(chunks);
        const input = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
        const forwardHeaders: IncomingHttpHeaders = { ...req.headers };
        let unsized = false;
        const items: DynamoDbItemWrite[] = [];
        const sizeItem = async (kind: string, op: Record<string, unknown>, transact: boolean) => {
          // Write sizes need the item as it is before the write.
          const bytes = await writeSize(forwardHeaders, kind, op);
          const item = itemKind((op.Key ?? keyOf(op.Item as Item | undefined)) as Record<string, unknown> | undefined);
          items.push({ kind, transact, item, bytes, writeUnits: (transact ? 2 : 1) * writeUnitsFor(bytes) });
        };
        const single: Record<string, string> = { PutItem: 'Put', UpdateItem: 'Update', DeleteItem: 'Delete' };
        const singleKind = single[operation];
        if (singleKind !== undefined) await sizeItem(singleKind, input, false);
        else if (operation === 'TransactWriteItems') {
          for (const entry of (input.TransactItems ?? []) as Record<string, Record<string, unknown>>[]) {
            const [kind, op] = Object.entries(entry)[0] ?? ['', {}];
            await sizeItem(kind, op, true);
          }
        } else if (operation !== 'GetItem') unsized = true;
        const writeUnits = items.reduce((sum, i) => sum + i.writeUnits, 0);

        const reply = await send(req.url ?? '/', forwardHeaders, req.method ?? 'POST', body);
        let readUnits = 0;
        if (operation === 'GetItem') {
          const item = (JSON.parse(reply.body.toString('utf8')) as { Item?: Item }).Item;
          readUnits = readUnitsFor(itemSize(item), input.ConsistentRead === true);
        }
        records.push({ at, operation, status: reply.status, readUnits, writeUnits, unsized, items });
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
      })().catch((error: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(error instanceof Error ? error.message : String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    records,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
    },
  };
}
