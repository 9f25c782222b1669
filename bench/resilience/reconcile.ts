/**
 * The reconciliation every resilience scenario ends with (issue 7): what the API accepted against
 * what was finalized, published and delivered. Pure: the scenarios collect the observations over
 * HTTP (status route, `/__local/events` or the bus's log file, a webhook receiver) and pass them in.
 */

/** One `202 Accepted` answer (a Correlation-Id replay answers the same id again: counted once). */
export interface AcceptedSynchronization {
  synchronizationId: string;
  /** What was synchronized (`apple:<transactionId>`, `google:<purchaseToken>`), for the per-key rule. */
  key: string;
  /** Results the scenario allows at finalize; empty = any result. */
  expectedResults: readonly string[];
}

/** The last answer of the status route for a synchronization (absent: never read). */
export interface ObservedStatus {
  httpStatus: number;
  status?: string;
  result?: string;
}

export interface PublishedEvent {
  synchronizationId: string;
  result?: string;
}

/** A POST the receiver answered 2xx. */
export interface ReceivedWebhook {
  webhookId: string;
  synchronizationId: string;
  body: string;
}

/** A second register of a synchronization's purchase after it finalized `SYNCHRONIZATION_FAILED`. */
export interface LockCheck {
  synchronizationId: string;
  /** HTTP status of the second register: 202 means the lock (or Google's token claim) was released. */
  httpStatus: number;
}

export interface ReconcileInput {
  accepted: readonly AcceptedSynchronization[];
  statuses: Readonly<Record<string, ObservedStatus | undefined>>;
  events: readonly PublishedEvent[];
  /** Deliveries a healthy receiver got; undefined when the scenario ends without one (not counted). */
  deliveries?: readonly ReceivedWebhook[];
  /**
   * Accepts per key that should not exist together (the duplicate storm: the 202s answered to
   * requests sent while the key's first synchronization held its lock), and how many are allowed.
   */
  concurrentAcceptsByKey?: Readonly<Record<string, readonly string[]>>;
  maxConcurrentAcceptsPerKey?: number;
  lockChecks?: readonly LockCheck[];
}

export type Finding =
  | { kind: 'lost'; synchronizationId: string; reason: 'vanished' | 'not-published' | 'not-delivered' }
  | { kind: 'duplicated'; synchronizationId?: string; key?: string; webhookId?: string; reason: 'events' | 'accepts-per-key' | 'webhook-ids' | 'webhook-payloads'; count: number }
  | { kind: 'stuck'; synchronizationId: string; reason: 'not-finalized' | 'lock-held'; detail: string }
  | { kind: 'unexpected-result'; synchronizationId: string; result: string; expected: readonly string[] };

export interface Reconciliation {
  accepted: number;
  finalized: number;
  published: number;
  /** Synchronizations with at least one delivery; null when the scenario has no healthy receiver. */
  delivered: number | null;
  lost: number;
  duplicated: number;
  stuck: number;
  unexpectedResults: number;
  /** Events or deliveries of synchronizations nobody was told were accepted (informational). */
  unaccountedEvents: number;
  /** Same webhook-id delivered more than once with the same payload: at-least-once, allowed (informational). */
  redeliveries: number;
  findings: Finding[];
}

const MAX_FINDINGS = 50;

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

/**
 * lost = accepted but gone from the status route, never published, or (with a healthy receiver)
 * never delivered; duplicated = more than one event per synchronization, more than the allowed
 * accepts per key, more than one webhook-id per synchronization, or one webhook-id with different
 * payloads; stuck = not finalized when read at the deadline, or a lock still held after
 * `SYNCHRONIZATION_FAILED`. A synchronization counts once per category.
 */
export function reconcile(input: ReconcileInput): Reconciliation {
  const findings: Finding[] = [];
  const acceptedById = new Map<string, AcceptedSynchronization>();
  for (const a of input.accepted) if (!acceptedById.has(a.synchronizationId)) acceptedById.set(a.synchronizationId, a);
  const eventsById = countBy(input.events, (e) => e.synchronizationId);
  const deliveriesById = input.deliveries ? countBy(input.deliveries, (d) => d.synchronizationId) : undefined;

  let finalized = 0;
  let published = 0;
  let delivered = 0;
  let lost = 0;
  let duplicated = 0;
  let stuck = 0;
  let unexpectedResults = 0;

  for (const [id, accepted] of acceptedById) {
    const status = input.statuses[id];
    const events = eventsById.get(id) ?? [];
    if (events.length > 0) published += 1;
    if (events.length > 1) {
      duplicated += 1;
      findings.push({ kind: 'duplicated', synchronizationId: id, reason: 'events', count: events.length });
    }
    const deliveries = deliveriesById?.get(id) ?? [];
    if (deliveries.length > 0) delivered += 1;
    const webhookIds = new Set(deliveries.map((d) => d.webhookId));
    if (webhookIds.size > 1) {
      duplicated += 1;
      findings.push({ kind: 'duplicated', synchronizationId: id, reason: 'webhook-ids', count: webhookIds.size });
    }

    if (status?.httpStatus === 404) {
      lost += 1;
      findings.push({ kind: 'lost', synchronizationId: id, reason: 'vanished' });
      continue;
    }
    if (status?.httpStatus !== 200 || status.status !== 'finalized') {
      stuck += 1;
      findings.push({
        kind: 'stuck',
        synchronizationId: id,
        reason: 'not-finalized',
        detail: status ? `HTTP ${status.httpStatus}, status ${status.status ?? '-'}` : 'never read',
      });
      continue;
    }
    finalized += 1;
    if (accepted.expectedResults.length > 0 && !accepted.expectedResults.includes(status.result ?? '')) {
      unexpectedResults += 1;
      findings.push({ kind: 'unexpected-result', synchronizationId: id, result: status.result ?? '-', expected: accepted.expectedResults });
    }
    if (events.length === 0) {
      lost += 1;
      findings.push({ kind: 'lost', synchronizationId: id, reason: 'not-published' });
    } else if (deliveriesById && deliveries.length === 0) {
      lost += 1;
      findings.push({ kind: 'lost', synchronizationId: id, reason: 'not-delivered' });
    }
  }

  const max = input.maxConcurrentAcceptsPerKey ?? 1;
  for (const [key, ids] of Object.entries(input.concurrentAcceptsByKey ?? {})) {
    const distinct = new Set(ids).size;
    if (distinct > max) {
      duplicated += distinct - max;
      findings.push({ kind: 'duplicated', key, reason: 'accepts-per-key', count: distinct });
    }
  }

  let redeliveries = 0;
  for (const [webhookId, list] of countBy(input.deliveries ?? [], (d) => d.webhookId)) {
    const bodies = new Set(list.map((d) => d.body));
    if (bodies.size > 1) {
      duplicated += 1;
      findings.push({ kind: 'duplicated', webhookId, reason: 'webhook-payloads', count: bodies.size });
    } else if (list.length > 1) {
      redeliveries += list.length - 1;
    }
  }

  for (const check of input.lockChecks ?? []) {
    if (check.httpStatus !== 202) {
      stuck += 1;
      findings.push({ kind: 'stuck', synchronizationId: check.synchronizationId, reason: 'lock-held', detail: `second register answered ${check.httpStatus}` });
    }
  }

  const unaccounted = new Set<string>();
  for (const e of input.events) if (!acceptedById.has(e.synchronizationId)) unaccounted.add(e.synchronizationId);
  for (const d of input.deliveries ?? []) if (!acceptedById.has(d.synchronizationId)) unaccounted.add(d.synchronizationId);

  return {
    accepted: acceptedById.size,
    finalized,
    published,
    delivered: deliveriesById ? delivered : null,
    lost,
    duplicated,
    stuck,
    unexpectedResults,
    unaccountedEvents: unaccounted.size,
    redeliveries,
    findings: findings.slice(0, MAX_FINDINGS),
  };
}
