import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { describeIssue, readJsonBody, RequestBodyError, sendJson } from './http-json';
import type { NotificationOutbox } from './notifications';

/** The stores the simulator stands in for. */
export type SimulatedStore = 'apple' | 'google';

const SIMULATED_STORES: readonly SimulatedStore[] = ['apple', 'google'];

/** The failures worth rehearsing: throttling and the two 5xx the services' retry policies handle. */
export type FaultStatus = 429 | 500 | 503;

const FAULTS_PATH = '/__simulator/faults';

// Bounded so a typo cannot leave a store "down" for the rest of a session.
const MAX_FAULT_COUNT = 10_000;

const MAX_LATENCY_MS = 60_000;

const faultBodySchema = z.union([
  z.strictObject({
    store: z.enum(['apple', 'google']),
    status: z.union([z.literal(429), z.literal(500), z.literal(503)]),
    count: z.number().int().min(0).max(MAX_FAULT_COUNT),
  }),
  // An extension of the simulator's documented routes: a slow store (benchmarks, lock tests) until cleared.
  z.strictObject({
    store: z.enum(['apple', 'google']),
    latencyMs: z.number().int().min(0).max(MAX_LATENCY_MS),
  }),
  // Lost server notifications: the store "sends" them, the service never hears of them.
  z.strictObject({
    store: z.enum(['apple', 'google']),
    dropNotifications: z.number().int().min(0).max(MAX_FAULT_COUNT),
  }),
]);

/**
 * Queued failures per store, shared by the Apple and Google simulators: the next `count` store
 * API calls answer `status` instead of their real answer, then the store recovers.
 */
export class FaultInjector {
  private readonly pending = new Map<SimulatedStore, { status: FaultStatus; remaining: number }>();
  private readonly latency = new Map<SimulatedStore, number>();

  /** Every store API call of the store waits this long before answering; 0 removes the latency. */
  setLatency(store: SimulatedStore, latencyMs: number): void {
    if (latencyMs <= 0) this.latency.delete(store);
    else this.latency.set(store, latencyMs);
  }

  /** Waits the store's configured latency, if any. */
  async delay(store: SimulatedStore): Promise<void> {
    const ms = this.latency.get(store);
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** Replaces the store's queued fault; a count of 0 clears it. */
  set(store: SimulatedStore, status: FaultStatus, count: number): void {
    if (count <= 0) this.pending.delete(store);
    else this.pending.set(store, { status, remaining: count });
  }

  /** Clears the faults of every store. */
  clear(): void {
    this.pending.clear();
    this.latency.clear();
  }

  /** Consumes one queued fault of the store and returns its status, or `undefined` when none is queued. */
  take(store: SimulatedStore): FaultStatus | undefined {
    const fault = this.pending.get(store);
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.pending.delete(store);
    return fault.status;
  }
}

/**
 * Serves `POST /__simulator/faults` `{ store, status, count }`, `{ store, latencyMs }` or
 * `{ store, dropNotifications }` (the latter needs `outbox`) and `DELETE /__simulator/faults`
 * (clears them all).
 * Answers `false` for any other path so the caller can try its next route.
 */
export async function handleFaultRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  faults: FaultInjector,
  outbox?: NotificationOutbox,
): Promise<boolean> {
  if (url.pathname !== FAULTS_PATH) return false;
  if (req.method === 'DELETE') {
    faults.clear();
    for (const store of SIMULATED_STORES) outbox?.dropNext(store, 0);
    sendJson(res, 200, { cleared: true });
    return true;
  }
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'method not allowed' });
    return true;
  }
  try {
    const parsed = faultBodySchema.safeParse(await readJsonBody(req));
    if (!parsed.success) {
      sendJson(res, 400, { error: describeIssue(parsed.error) });
      return true;
    }
    const fault = parsed.data;
    if ('dropNotifications' in fault) {
      if (!outbox) {
        sendJson(res, 400, { error: 'dropNotifications: this simulator sends no notifications' });
        return true;
      }
      outbox.dropNext(fault.store, fault.dropNotifications);
    } else if ('latencyMs' in fault) faults.setLatency(fault.store, fault.latencyMs);
    else faults.set(fault.store, fault.status, fault.count);
    sendJson(res, 200, fault);
  } catch (error) {
    if (!(error instanceof RequestBodyError)) throw error;
    sendJson(res, error.status, { error: error.message });
  }
  return true;
}
