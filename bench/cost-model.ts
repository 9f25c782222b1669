import type { SynchronizationCounts } from './counts';
import type { RefreshFigures } from './refresh-figures';
import { round } from './stats';
import { memoryMbOf, RECONCILE_FUNCTION } from '../lib/catalog';
import { DEFAULT_RECONCILE_SETTINGS, REFRESH_STORE_CALLS } from '../lambdas/lifecycle/domain/reconcile-purchases';

/**
 * AWS list prices, US East (N. Virginia), first pricing tier, free tiers ignored.
 * As published on the AWS pricing pages in 2025 (DynamoDB on-demand after its 1 November 2024
 * reduction). The bench machine is offline, so they were NOT re-read on the day of a run:
 * re-check https://aws.amazon.com/{lambda,api-gateway,step-functions,dynamodb,eventbridge}/pricing/
 * before quoting a figure, and change PRICES_AS_OF with them.
 */
export const PRICES_AS_OF = '2025-06';
export const PRICES = {
  /** Lambda, Arm (Graviton2), duration, first 7.5 billion GB-s a month. */
  lambdaArmPerGbSecond: 0.0000133334,
  /** Lambda requests: $0.20 per million. */
  lambdaPerRequest: 0.2 / 1e6,
  /** API Gateway HTTP API: $1.00 per million requests (first 300 million; metered per 512 KB). */
  httpApiPerRequest: 1.0 / 1e6,
  /** Step Functions STANDARD: $0.025 per 1,000 state transitions (retries count as transitions). */
  sfnStandardPerTransition: 0.025 / 1000,
  /** Step Functions EXPRESS: $1.00 per million requests (executions started). */
  sfnExpressPerRequest: 1.0 / 1e6,
  /** Step Functions EXPRESS duration: $0.00001667 per GB-second (first 1,000 GB-hours), 100 ms rounding, 64 MB chunks. */
  sfnExpressPerGbSecond: 0.00001667,
  /** DynamoDB on-demand, Standard table class: $0.625 per million write request units. */
  dynamodbPerWriteRequestUnit: 0.625 / 1e6,
  /** DynamoDB on-demand, Standard table class: $0.125 per million read request units. */
  dynamodbPerReadRequestUnit: 0.125 / 1e6,
  /** EventBridge custom events: $1.00 per million (per 64 KB chunk; our events are ~1 KB). */
  eventBridgePerCustomEvent: 1.0 / 1e6,
} as const;

/**
 * Configuration the model assumes, each from the stack or stated: each function's memory from the
 * catalog (lib/catalog.ts memoryMbOf, what the stack deploys); EXPRESS memory billed at the 64 MB
 * minimum (a small definition, payloads of a few KB).
 */
export const ASSUMPTIONS = {
  apiLambdaMemoryMb: memoryMbOf('RegisterApplePurchase'),
  expressMemoryMb: 64,
  /** Status reads per synchronization: one poll, since the p99 to finalized is well under a typical first poll delay. */
  statusPollsPerSynchronization: 1,
} as const;

/** Durations measured by the bench that the model bills. */
export interface MeasuredDurations {
  /** Where they come from (which run). */
  source: string;
  registerMs: number;
  statusMs: number;
  /** Per workflow function id: median Task state time. */
  workflowFunctionMs: Record<string, number>;
  executionMs: number;
}

export interface CostLine {
  service: string;
  item: string;
  /** Quantity per synchronization, in the unit named by `unit`. */
  quantity: number;
  unit: string;
  unitPriceUsd: number;
  /** The list price as AWS states it. */
  priceLabel: string;
  usdPerMillion: number;
}

export interface CostModel {
  pricesAsOf: string;
  prices: typeof PRICES;
  assumptions: typeof ASSUMPTIONS;
  durations: MeasuredDurations;
  standard: { lines: CostLine[]; totalUsdPerMillion: number };
  express: { lines: CostLine[]; totalUsdPerMillion: number };
  excluded: string[];
}

function priceLabel(unit: string, unitPriceUsd: number): string {
  if (unit === 'GB-s') return `$${unitPriceUsd} per GB-s`;
  if (unit === 'transitions') return `$${round(unitPriceUsd * 1000, 4)} per 1,000`;
  return `$${round(unitPriceUsd * 1e6, 4)} per million`;
}

function line(service: string, item: string, quantity: number, unit: string, unitPriceUsd: number): CostLine {
  return {
    service,
    item,
    quantity: round(quantity, 6),
    unit,
    unitPriceUsd,
    priceLabel: priceLabel(unit, unitPriceUsd),
    usdPerMillion: round(quantity * unitPriceUsd * 1e6, 4),
  };
}

/**
 * A global secondary index is billed its own write units, which the request counter (it sees
 * requests, not what DynamoDB does with them) cannot count. The happy path writes the open index
 * twice: the accept's Put adds the entry, MarkPublished removes it; the finalize Put leaves it as it is
 * (same key values). A retry (MarkRetrying moves `openSince`) adds two more per retry.
 */
export const OPEN_INDEX_WRITES_PER_SYNCHRONIZATION = 2;

/** Lambda bills duration rounded up to the millisecond. */
const billedSeconds = (ms: number) => Math.ceil(ms) / 1000;

const totalUsd = (lines: CostLine[]) => round(lines.reduce((sum, l) => sum + l.usdPerMillion, 0), 2);

/** GB-seconds of the workflow functions: invocations × each function's memory × its billed median time. */
function workflowGbSeconds(invocations: Record<string, number>, medianMs: Record<string, number>): number {
  return Object.entries(invocations).reduce((sum, [id, n]) => sum + n * (memoryMbOf(id) / 1024) * billedSeconds(medianMs[id] ?? 0), 0);
}

/** `VerifyApplePurchase 1× 220 ms at 256 MB, …`: what a workflow duration line bills. */
function workflowItems(invocations: Record<string, number>, medianMs: Record<string, number>): string {
  return Object.entries(invocations)
    .map(([id, n]) => `${id} ${round(n, 2)}× ${medianMs[id] ?? 0} ms at ${memoryMbOf(id)} MB`)
    .join(', ');
}

/**
 * The workflow's own charge, per execution: STANDARD bills its state transitions; EXPRESS one
 * request and the execution's time, rounded up to 100 ms, at the 64 MB minimum.
 */
function workflowLines(transitions: number, executionMs: number, items: { transitions: string; request: string }): { standard: CostLine[]; express: CostLine[] } {
  const billed = (Math.max(1, Math.ceil(executionMs / 100)) * 100) / 1000;
  return {
    standard: [line('Step Functions', items.transitions, transitions, 'transitions', PRICES.sfnStandardPerTransition)],
    express: [
      line('Step Functions', items.request, 1, 'executions', PRICES.sfnExpressPerRequest),
      line(
        'Step Functions',
        `EXPRESS duration (${executionMs} ms → ${Math.round(billed * 1000)} ms billed × ${ASSUMPTIONS.expressMemoryMb} MB)`,
        billed * (ASSUMPTIONS.expressMemoryMb / 1024),
        'GB-s',
        PRICES.sfnExpressPerGbSecond,
      ),
    ],
  };
}

/**
 * US dollars per million synchronizations (happy path), itemised by service, for both workflow
 * types, from the counted requests, transitions and invocations and the measured durations.
 */
export function costModel(counts: SynchronizationCounts, durations: MeasuredDurations): CostModel {
  const polls = ASSUMPTIONS.statusPollsPerSynchronization;
  const apiGb = ASSUMPTIONS.apiLambdaMemoryMb / 1024;
  const workflowInvocations = Object.values(counts.lambdaInvocations).reduce((a, b) => a + b, 0);
  const apiGbSeconds = apiGb * (billedSeconds(durations.registerMs) + polls * billedSeconds(durations.statusMs));
  const { accept, workflow, statusRead } = counts.dynamodb;
  const readUnits = accept.readUnits + workflow.readUnits + polls * statusRead.readUnits;
  const writeUnits = accept.writeUnits + workflow.writeUnits + polls * statusRead.writeUnits;

  const common: CostLine[] = [
    line('API Gateway', `HTTP API requests (1 register + ${polls} status)`, 1 + polls, 'requests', PRICES.httpApiPerRequest),
    line('Lambda', `requests (API ${1 + polls}, workflow ${workflowInvocations})`, 1 + polls + workflowInvocations, 'requests', PRICES.lambdaPerRequest),
    line('Lambda', `duration API ${ASSUMPTIONS.apiLambdaMemoryMb} MB (register ${durations.registerMs} ms, status ${durations.statusMs} ms)`, apiGbSeconds, 'GB-s', PRICES.lambdaArmPerGbSecond),
    line(
      'Lambda',
      `duration workflow (${workflowItems(counts.lambdaInvocations, durations.workflowFunctionMs)})`,
      workflowGbSeconds(counts.lambdaInvocations, durations.workflowFunctionMs),
      'GB-s',
      PRICES.lambdaArmPerGbSecond,
    ),
    line('DynamoDB', `read request units (${polls} status read included)`, readUnits, 'RRU', PRICES.dynamodbPerReadRequestUnit),
    line('DynamoDB', 'write request units', writeUnits, 'WRU', PRICES.dynamodbPerWriteRequestUnit),
    line(
      'DynamoDB',
      `open-index writes (not seen by the request counter: entry put at accept, removed at MarkPublished; KEYS_ONLY, under 1 KB each)`,
      OPEN_INDEX_WRITES_PER_SYNCHRONIZATION,
      'WRU',
      PRICES.dynamodbPerWriteRequestUnit,
    ),
    line('EventBridge', 'custom events (PutEvents)', counts.eventBridgeEvents, 'events', PRICES.eventBridgePerCustomEvent),
  ];
  const steps = workflowLines(counts.transitions.total, durations.executionMs, { transitions: 'STANDARD state transitions', request: 'EXPRESS requests' });
  const standardLines = [...common, ...steps.standard];
  const expressLines = [...common, ...steps.express];
  return {
    pricesAsOf: PRICES_AS_OF,
    prices: PRICES,
    assumptions: ASSUMPTIONS,
    durations,
    standard: { lines: standardLines, totalUsdPerMillion: totalUsd(standardLines) },
    express: { lines: expressLines, totalUsdPerMillion: totalUsd(expressLines) },
    excluded: [
      'CloudWatch Logs ingestion and storage (Lambda logs; EXPRESS logs every transition at level ALL, STANDARD only errors)',
      'X-Ray traces (tracing is active on the functions and the state machine; billed per trace recorded, after sampling)',
      'EventBridge archive (30 days) and rule target delivery; Secrets Manager reads (cached per container); KMS; data transfer; DynamoDB storage and backups',
      'Fixed monthly costs, not per synchronization: the recovery sweeper (8,640 invocations a month on STANDARD, 43,200 on EXPRESS, a few index queries each: cents), the dashboard ($3) and alarms ($0.10 each)',
      'Store outages: on EXPRESS each parked retry is one more execution started by the sweeper ($1 per million plus its duration); on STANDARD each retry is 5 more transitions (MarkRetrying, RetryBudgetLeft, WaitBeforeRetry, VerifyStore, the verify state)',
      'Free tiers, Savings Plans and volume tiers',
      'Durations are local (this machine, in-process handlers), not Lambda arm64 at 256/512 MB, where CPU-bound work (JWS verification) runs on a fraction of a vCPU',
    ],
  };
}

/** Where each store's notifications arrive (one HTTP API route and one Lambda function each). */
export const NOTIFICATION_ROUTES = {
  apple: 'POST /storekit2/notifications/{publisherId}',
  google: 'POST /google-play/notifications/{publisherId}',
} as const;
export type NotificationStore = keyof typeof NOTIFICATION_ROUTES;

/**
 * What one store notification costs beyond the figures a run measures, each stated:
 * - the notification route is an HTTP API request and one Lambda invocation at the API functions'
 *   memory; its duration is measured (Apple: verification of the three JWS; Google: the Pub/Sub
 *   push's OIDC token against Google's cached keys);
 * - the accept is one TransactWriteItems of two items (the notification record, idempotent on
 *   Apple's notificationUUID or Pub/Sub's messageId, and the refresh synchronization): transactional,
 *   so 2 WRU each;
 * - the refresh's open-index entry is written twice (put at accept, removed at MarkPublished), as for a register;
 * - the finalize that changed the entitlement is one TransactWriteItems of three items (synchronization,
 *   purchase, entitlement), 2 WRU each; an unchanged one writes the synchronization only. A Google
 *   plan change (linkedPurchaseToken) also ends the old purchase and its entitlement in the same
 *   transaction: 4 WRU more, not counted (a small share of notifications);
 * - PutEvents only when something changed (one entry: the owner's inappEntitlementChanged); the
 *   measured PutEvents per refresh is the share of refreshes that changed something. MarkPublished
 *   (1 WRU) runs either way;
 * - the reads (publisher, purchase, entitlement, about 1 RRU each, 4 per refresh) are a stated estimate;
 * - store API calls are free of charge (Apple's App Store Server API; Google's Play Developer API,
 *   which counts them against per-minute quota buckets: https://developers.google.com/android-publisher/quotas);
 *   they are listed at $0 so the count per notification is visible;
 * - EXPRESS: one execution started per refresh, billed its measured median time rounded up to
 *   100 ms at the 64 MB minimum (ASSUMPTIONS.expressMemoryMb);
 * - a duplicate notification (Apple retries, a Pub/Sub redelivery, the reconciliation re-reading
 *   history) costs the request, the invocation and the failed conditional write only, and is not counted here.
 */
export const NOTIFICATION_ASSUMPTIONS = {
  notificationLambdaMemoryMb: ASSUMPTIONS.apiLambdaMemoryMb,
  acceptWriteUnits: 2 * 2,
  openIndexWriteUnits: OPEN_INDEX_WRITES_PER_SYNCHRONIZATION,
  finalizeChangedWriteUnits: 3 * 2,
  finalizeUnchangedWriteUnits: 2,
  markPublishedWriteUnits: 1,
  readUnitsPerRefresh: 4,
} as const;

/** Per-refresh figures a run measured from the executions the notifications started (bench/refresh-figures.ts). */
export interface NotificationCounts extends Pick<RefreshFigures, 'transitionsPerRefresh' | 'lambdaInvocationsPerRefresh' | 'lambdaMedianMs' | 'putEventsPerRefresh'> {
  source: string;
  store: NotificationStore;
  /** The notification route's median time (ms). */
  notificationMs: number;
  /** Median execution time of a refresh (ms), for EXPRESS duration. */
  executionMs: number;
  /**
   * Store API calls per refresh, by call (e.g. `subscriptionsv2.get`): measured, or split from the
   * measured total as the run states in `source`.
   */
  storeCallsPerRefresh: Record<string, number>;
}

export interface NotificationCostModel {
  pricesAsOf: string;
  counts: NotificationCounts;
  assumptions: typeof NOTIFICATION_ASSUMPTIONS;
  standard: { lines: CostLine[]; totalUsdPerMillion: number };
  express: { lines: CostLine[]; totalUsdPerMillion: number };
  excluded: string[];
}

const STORE_API: Record<NotificationStore, string> = {
  apple: 'App Store Server API (no charge)',
  google: 'Play Developer API (no charge; per-minute quota)',
};

/** US dollars per million store notifications that each start one refresh execution, on a STANDARD and on an EXPRESS workflow. */
export function notificationCostModel(counts: NotificationCounts): NotificationCostModel {
  const a = NOTIFICATION_ASSUMPTIONS;
  const invocations = Object.values(counts.lambdaInvocationsPerRefresh).reduce((x, y) => x + y, 0);
  const changed = Math.min(1, counts.putEventsPerRefresh);
  const writeUnits =
    a.acceptWriteUnits + a.openIndexWriteUnits + a.markPublishedWriteUnits + changed * a.finalizeChangedWriteUnits + (1 - changed) * a.finalizeUnchangedWriteUnits;
  const storeCalls = Object.values(counts.storeCallsPerRefresh).reduce((x, y) => x + y, 0);
  const common: CostLine[] = [
    line('API Gateway', `HTTP API request (${NOTIFICATION_ROUTES[counts.store]})`, 1, 'requests', PRICES.httpApiPerRequest),
    line('Lambda', `requests (notification 1, refresh workflow ${round(invocations, 2)})`, 1 + invocations, 'requests', PRICES.lambdaPerRequest),
    line('Lambda', `duration notification ${a.notificationLambdaMemoryMb} MB (${counts.notificationMs} ms)`, (a.notificationLambdaMemoryMb / 1024) * billedSeconds(counts.notificationMs), 'GB-s', PRICES.lambdaArmPerGbSecond),
    line(
      'Lambda',
      `duration refresh workflow (${workflowItems(counts.lambdaInvocationsPerRefresh, counts.lambdaMedianMs)})`,
      workflowGbSeconds(counts.lambdaInvocationsPerRefresh, counts.lambdaMedianMs),
      'GB-s',
      PRICES.lambdaArmPerGbSecond,
    ),
    line('DynamoDB', `write request units (notice + sync ${a.acceptWriteUnits}, open index ${a.openIndexWriteUnits}, MarkPublished ${a.markPublishedWriteUnits}, finalize ${a.finalizeChangedWriteUnits} when changed (${round(changed * 100, 1)} %), else ${a.finalizeUnchangedWriteUnits})`, writeUnits, 'WRU', PRICES.dynamodbPerWriteRequestUnit),
    line('DynamoDB', `read request units (estimate: ${a.readUnitsPerRefresh} per refresh)`, a.readUnitsPerRefresh, 'RRU', PRICES.dynamodbPerReadRequestUnit),
    line(
      STORE_API[counts.store],
      Object.entries(counts.storeCallsPerRefresh)
        .map(([call, n]) => `${call} ${round(n, 2)}`)
        .join(', ') || 'none',
      storeCalls,
      'calls',
      0,
    ),
    line('EventBridge', 'custom events (PutEvents only when something changed)', changed, 'events', PRICES.eventBridgePerCustomEvent),
  ];
  const workflow = workflowLines(counts.transitionsPerRefresh, counts.executionMs, {
    transitions: 'STANDARD state transitions of one refresh execution',
    request: 'EXPRESS request (one execution per refresh)',
  });
  const standard = [...common, ...workflow.standard];
  const express = [...common, ...workflow.express];
  return {
    pricesAsOf: PRICES_AS_OF,
    counts,
    assumptions: a,
    standard: { lines: standard, totalUsdPerMillion: totalUsd(standard) },
    express: { lines: express, totalUsdPerMillion: totalUsd(express) },
    excluded: [
      'CloudWatch Logs, X-Ray traces, the EventBridge archive, KMS, data transfer, storage (as for synchronizations)',
      ...(counts.store === 'google'
        ? [
            "Google Cloud Pub/Sub (the RTDN topic and its push subscription are in the publisher's Google Cloud project and billed there by throughput, about 1 KB a push)",
            'A plan change (linkedPurchaseToken) writes two more items in the finalize transaction: 4 WRU, $2.50 per million plan changes',
          ]
        : []),
      'A duplicate notification costs its request, invocation and failed conditional write only',
      'Durations are local (this machine, in-process handlers), not Lambda arm64 at 256/512 MB',
    ],
  };
}

/**
 * What one reconciled purchase costs beyond its refresh (the scheduled reconciliation re-reading a
 * purchase that is due: its period ended, or its store state needs a re-check), each stated:
 * - no HTTP request and no notification function: the reconcile function lists due purchases from
 *   the `reconcile-due` index (INCLUDE projection, about 150 bytes an entry, eventually consistent:
 *   0.5 RRU per started 4 KB page, so about 0.02 RRU per purchase) and hands each over to the same
 *   intake as a notification (a notice record and the refresh synchronization in one transaction);
 * - the reconcile function waits on its per-app rate limiter (REFRESH_STORE_CALLS store calls per
 *   purchase at the configured requests per second, 10 by default): Lambda bills that wait, at the
 *   reconcile function's memory;
 * - the postpone: one UpdateItem of the purchase record (under 1 KB, 1 WRU) that also moves its
 *   reconcile-index entry (1 index write);
 * - the refresh itself: the measured per-refresh figures of the store's notifications in the same run.
 */
export const RECONCILE_ASSUMPTIONS = {
  dueIndexReadUnitsPerPurchase: 0.02,
  storeCallsPerPurchase: REFRESH_STORE_CALLS.apple,
  requestsPerSecond: DEFAULT_RECONCILE_SETTINGS.appleRequestsPerSecond,
  purchasesPerRun: DEFAULT_RECONCILE_SETTINGS.dueLimit,
  postponeWriteUnits: 1,
  reconcileIndexWriteUnits: 1,
} as const;

/** US dollars per million purchases the scheduled reconciliation re-reads (each one refresh), from a notification model's per-refresh figures. */
export function reconciledPurchaseCostModel(notification: NotificationCostModel): NotificationCostModel {
  const r = RECONCILE_ASSUMPTIONS;
  const waitSeconds = r.storeCallsPerPurchase / r.requestsPerSecond;
  const keep = (l: CostLine) => l.service !== 'API Gateway' && !l.item.startsWith('duration notification') && !l.item.startsWith('requests (notification');
  const counts = notification.counts;
  const invocations = Object.values(counts.lambdaInvocationsPerRefresh).reduce((x, y) => x + y, 0);
  const extra: CostLine[] = [
    line('Lambda', `requests (refresh workflow ${round(invocations, 2)}; the reconcile run's own invocation is shared by up to ${r.purchasesPerRun} purchases)`, invocations, 'requests', PRICES.lambdaPerRequest),
    line(
      'Lambda',
      `duration reconcile ${memoryMbOf(RECONCILE_FUNCTION.id)} MB (rate limiter: ${r.storeCallsPerPurchase} store calls at ${r.requestsPerSecond}/s = ${waitSeconds * 1000} ms a purchase)`,
      (memoryMbOf(RECONCILE_FUNCTION.id) / 1024) * waitSeconds,
      'GB-s',
      PRICES.lambdaArmPerGbSecond,
    ),
    line('DynamoDB', `reconcile-due index read (estimate: ${r.dueIndexReadUnitsPerPurchase} RRU a purchase)`, r.dueIndexReadUnitsPerPurchase, 'RRU', PRICES.dynamodbPerReadRequestUnit),
    line('DynamoDB', `postpone: purchase UpdateItem ${r.postponeWriteUnits} WRU + reconcile index ${r.reconcileIndexWriteUnits}`, r.postponeWriteUnits + r.reconcileIndexWriteUnits, 'WRU', PRICES.dynamodbPerWriteRequestUnit),
  ];
  const standard = [...notification.standard.lines.filter(keep), ...extra];
  const express = [...notification.express.lines.filter(keep), ...extra];
  return {
    ...notification,
    standard: { lines: standard, totalUsdPerMillion: totalUsd(standard) },
    express: { lines: express, totalUsdPerMillion: totalUsd(express) },
    excluded: [
      ...notification.excluded.filter((e) => !e.startsWith('Google Cloud Pub/Sub') && !e.startsWith('A duplicate notification')),
      'Apple: the reconciliation also pages Get Notification History (one call per page of up to 20 notifications, free); Google: Voided Purchases pages (free). A notification found there costs as a notification, less its HTTP request',
      `The reconcile run's fixed part (one invocation an hour per stack, its publisher reads and cursor writes): under $0.01 a month`,
    ],
  };
}
