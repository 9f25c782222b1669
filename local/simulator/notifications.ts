import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile, serveUnder, writeFileAtomically, type SimulatorAnswer } from './http-json';

/** The stores whose server notifications the simulator sends. */
export type NotificationStore = 'apple' | 'google';

/**
 * One send attempt of a notification. A resend adds another record with the same `id`, so a
 * notification's records are its attempts, oldest first.
 */
export interface NotificationRecord {
  id: string;
  store: NotificationStore;
  type: string;
  subtype?: string;
  /** Where the attempt went, or would have gone when dropped; null when no target was set. */
  target: string | null;
  /** The HTTP status answered; null when unsent, dropped, timed out or failed on the network. */
  responseStatus: number | null;
  dropped: boolean;
  /** When the attempt started (ISO 8601). */
  sentAt: string;
}

/** A notification a store simulator wants delivered. */
export interface OutgoingNotification {
  store: NotificationStore;
  id: string;
  type: string;
  subtype?: string;
  /** Exact body bytes; a resend sends the same bytes. */
  body: string;
  /** Headers for one send attempt (Google adds a fresh OIDC token per attempt). */
  headers?: () => Promise<Record<string, string>>;
}

/** Delivers store notifications to the service and keeps a log of every attempt. */
export interface NotificationOutbox {
  /** Where a store's notifications go now (set by the local stack at start-up; undefined = record only, not sent). */
  setTarget(store: NotificationStore, url: string | undefined): void;
  /**
   * Records it; unless a drop fault is armed for its store, POSTs it (content-type
   * application/json, 10 s timeout) to the store's target and records the HTTP status (null when
   * unsent/dropped/network error). Resolves after the attempt.
   */
  send(notification: OutgoingNotification): Promise<NotificationRecord>;
  /**
   * The next `count` send attempts of the store (sends and resends) are recorded as dropped and
   * not sent. Replaces what was armed before; 0 disarms.
   */
  dropNext(store: NotificationStore, count: number): void;
  /** Every attempt, oldest first. */
  list(store?: NotificationStore): NotificationRecord[];
  /** Everything ever recorded for a store with its body, including dropped ones (Apple's Get Notification History answers from this). */
  history(store: NotificationStore): Array<NotificationRecord & { body: string }>;
  /** Sends a recorded notification again, byte for byte; undefined when unknown. */
  resend(id: string): Promise<NotificationRecord | undefined>;
  /**
   * Handles GET /__simulator/notifications?store=apple|google -> 200 {"notifications":[...]}
   * (newest last) and POST /__simulator/notifications/{id}/resend -> 200 {id,responseStatus} or
   * 404. Answers false for paths outside /__simulator/notifications.
   */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
}

export interface NotificationOutboxOptions {
  /** Root of the local data; the log lives in `<dataDir>/simulator/notifications.json`. */
  dataDir: string;
  /** Keep the log in memory only. */
  inMemory: boolean;
  /** Stands in for the global fetch (tests). */
  fetchImpl?: typeof fetch;
  /** Where a notification that could not be sent is reported, one line each (default: stderr). */
  warn?: (line: string) => void;
}

const PREFIX = '/__simulator/notifications';
const RESEND_ROUTE = /^\/([^/]+)\/resend$/;
const SEND_TIMEOUT_MS = 10_000;
/**
 * How many send attempts the log keeps, oldest dropped first. An Apple notification is ~12 KB
 * (three nested JWS, each with its x5c chain) and the log file is rewritten after sends, so the
 * bound keeps that file around 25 MB at worst.
 */
export const NOTIFICATION_LOG_LIMIT = 2_000;

const storeSchema = z.enum(['apple', 'google']);
const recordSchema = z.object({
  id: z.string(),
  store: storeSchema,
  type: z.string(),
  subtype: z.string().optional(),
  target: z.string().nullable(),
  responseStatus: z.number().int().nullable(),
  dropped: z.boolean(),
  sentAt: z.string(),
});
const storedLogSchema = z.object({
  version: z.literal(1),
  records: z.array(recordSchema),
  /** Bodies by notification id, once each however often it was resent. */
  bodies: z.record(z.string(), z.string()),
});
type StoredLog = z.infer<typeof storedLogSchema>;

interface Sendable {
  store: NotificationStore;
  id: string;
  type: string;
  subtype?: string;
  body: string;
  headers?: () => Promise<Record<string, string>>;
}

/**
 * Creates the outbox the store simulators send their server notifications through. The log
 * survives restarts unless `inMemory`, so Apple's Get Notification History keeps answering.
 */
export async function createNotificationOutbox(options: NotificationOutboxOptions): Promise<NotificationOutbox> {
  const file = options.inMemory ? undefined : path.join(options.dataDir, 'simulator', 'notifications.json');
  const stored = file === undefined ? undefined : await readJsonFile(file, storedLogSchema);
  const warn = options.warn ?? ((line: string) => void process.stderr.write(`${line}\n`));
  return new Outbox(stored ?? { version: 1, records: [], bodies: {} }, file, options.fetchImpl ?? fetch, warn);
}

class Outbox implements NotificationOutbox {
  private readonly targets = new Map<NotificationStore, string>();
  private readonly drops = new Map<NotificationStore, number>();
  /** What a resend needs; header factories cannot be persisted, so they last until a restart. */
  private readonly headerFactories = new Map<string, () => Promise<Record<string, string>>>();
  private readonly persist: () => Promise<void>;

  constructor(
    private readonly log: StoredLog,
    file: string | undefined,
    private readonly fetchImpl: typeof fetch,
    private readonly warn: (line: string) => void,
  ) {
    // Records without a body (a hand-edited file) could never be resent or listed with a body.
    log.records = log.records.filter((record) => log.bodies[record.id] !== undefined);
    this.persist = file === undefined ? () => Promise.resolve() : coalescingWriter(file, () => JSON.stringify(this.log));
  }

  setTarget(store: NotificationStore, url: string | undefined): void {
    if (url === undefined) this.targets.delete(store);
    else this.targets.set(store, url);
  }

  send(notification: OutgoingNotification): Promise<NotificationRecord> {
    if (notification.headers) this.headerFactories.set(notification.id, notification.headers);
    else this.headerFactories.delete(notification.id);
    this.log.bodies[notification.id] = notification.body;
    return this.attempt(notification);
  }

  dropNext(store: NotificationStore, count: number): void {
    if (count <= 0) this.drops.delete(store);
    else this.drops.set(store, count);
  }

  list(store?: NotificationStore): NotificationRecord[] {
    return this.log.records.filter((record) => store === undefined || record.store === store).map((record) => ({ ...record }));
  }

  history(store: NotificationStore): Array<NotificationRecord & { body: string }> {
    return this.log.records
      .filter((record) => record.store === store)
      .map((record) => ({ ...record, body: this.log.bodies[record.id] ?? '' }));
  }

  async resend(id: string): Promise<NotificationRecord | undefined> {
    const body = this.log.bodies[id];
    const last = this.log.records.findLast((record) => record.id === id);
    if (body === undefined || !last) return undefined;
    const headers = this.headerFactories.get(id);
    return this.attempt({ store: last.store, id, type: last.type, subtype: last.subtype, body, ...(headers ? { headers } : {}) });
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    return serveUnder(PREFIX, 'notification outbox', req, res, url, (route) => this.serve(req, route, url));
  }

  private async serve(req: IncomingMessage, route: string, url: URL): Promise<SimulatorAnswer> {
    if (route === '' || route === '/') {
      if (req.method !== 'GET') return { status: 405, body: { error: 'method not allowed' } };
      const storeParameter = url.searchParams.get('store');
      const store = storeParameter === null ? undefined : storeSchema.safeParse(storeParameter);
      if (store && !store.success) return { status: 400, body: { error: 'store: must be apple or google' } };
      const notifications = this.list(store?.data).map(({ sentAt: _sentAt, ...listed }) => listed);
      return { status: 200, body: { notifications } };
    }
    const resend = RESEND_ROUTE.exec(route);
    if (!resend) return { status: 404, body: { error: 'no such simulator route' } };
    if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
    const id = safeDecode(resend[1] ?? '');
    const record = id === undefined ? undefined : await this.resend(id);
    if (!record) return { status: 404, body: { error: 'notification not found' } };
    return { status: 200, body: { id: record.id, responseStatus: record.responseStatus } };
  }

  /** One send attempt: recorded first (a listing during a slow POST shows it), completed after. */
  private async attempt(notification: Sendable): Promise<NotificationRecord> {
    const dropped = this.takeDrop(notification.store);
    const target = this.targets.get(notification.store);
    const record: NotificationRecord = {
      id: notification.id,
      store: notification.store,
      type: notification.type,
      ...(notification.subtype === undefined ? {} : { subtype: notification.subtype }),
      target: target ?? null,
      responseStatus: null,
      dropped,
      sentAt: new Date().toISOString(),
    };
    this.append(record);
    if (!dropped && target !== undefined) record.responseStatus = await this.post(target, notification);
    await this.persist();
    return { ...record };
  }

  private takeDrop(store: NotificationStore): boolean {
    const remaining = this.drops.get(store) ?? 0;
    if (remaining <= 0) return false;
    this.dropNext(store, remaining - 1);
    return true;
  }

  private append(record: NotificationRecord): void {
    this.log.records.push(record);
    if (this.log.records.length <= NOTIFICATION_LOG_LIMIT) return;
    const evicted = this.log.records.splice(0, this.log.records.length - NOTIFICATION_LOG_LIMIT);
    const kept = new Set(this.log.records.map((r) => r.id));
    for (const { id } of evicted) {
      if (kept.has(id)) continue;
      delete this.log.bodies[id];
      this.headerFactories.delete(id);
    }
  }

  /** The HTTP status, or null when there was none; a failed delivery is data here, not an error. */
  private async post(target: string, notification: Sendable): Promise<number | null> {
    try {
      const headers = { ...(await notification.headers?.()), 'content-type': 'application/json' };
      const response = await this.fetchImpl(target, {
        method: 'POST',
        headers,
        body: notification.body,
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      });
      // Read to the end so the connection can be reused; the content does not matter.
      await response.arrayBuffer();
      return response.status;
    } catch (error) {
      const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      this.warn(`${notification.store} notification ${notification.id} to ${target} not delivered: ${reason}`);
      return null;
    }
  }
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * Writes snapshots of the log one after another, and while one write runs, all the requests made
 * meanwhile share the single next write: under a burst of notifications the file is rewritten a
 * few times, not once per notification. Each caller resolves once a snapshot containing its
 * change is on disk.
 */
function coalescingWriter(file: string, snapshot: () => string): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;
  return () => {
    if (queued) return queued;
    const next = running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return writeFileAtomically(file, snapshot());
      });
    queued = next;
    running = next;
    return next;
  };
}
