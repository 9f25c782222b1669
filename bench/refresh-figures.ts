import type { LocalExecution } from '../local/step-functions';
import { notificationCostModel, type NotificationCostModel, type NotificationStore } from './cost-model';
import { taskTargets } from './counts';
import { median, round } from './stats';

/**
 * What the refresh executions started by store notifications cost per refresh, read from their
 * histories the way bench/counts.ts reads a register's: transitions (`StateEntered` and `Retried`,
 * both billed on STANDARD), Lambda invocations and median Task times per workflow function,
 * `events:putEvents` entries (only a refresh that changed something publishes), execution time.
 */
export interface RefreshFigures {
  executions: number;
  transitionsPerRefresh: number;
  /** Lambda invocations per refresh, by workflow function id. */
  lambdaInvocationsPerRefresh: Record<string, number>;
  /** Median Task time per invocation, by workflow function id (ms). */
  lambdaMedianMs: Record<string, number>;
  /** PutEvents task entries per refresh (0..1: the share that changed something). */
  putEventsPerRefresh: number;
  /** Median start-to-stop time of an execution (EXPRESS bills duration). */
  executionMedianMs: number;
}

export function refreshFigures(executions: readonly LocalExecution[]): RefreshFigures {
  const targets = taskTargets();
  const invocations: Record<string, number> = {};
  const durations: Record<string, number[]> = {};
  const executionMs: number[] = [];
  let transitions = 0;
  let putEvents = 0;
  for (const execution of executions) {
    if (execution.stopDate !== undefined) executionMs.push(execution.stopDate - execution.startDate);
    const entered = new Map<string, number>();
    for (const event of execution.history) {
      if (event.type.endsWith('StateEntered') || event.type.endsWith('Retried')) transitions += 1;
      const name = String(event.details?.name ?? '');
      const target = targets.get(name);
      if (!target) continue;
      if (event.type === 'TaskStateEntered' || event.type.endsWith('Retried')) {
        if (target.kind === 'lambda') invocations[target.name] = (invocations[target.name] ?? 0) + 1;
        else if (target.name.startsWith('events:putEvents')) putEvents += 1;
        entered.set(name, event.timestamp);
      }
      if (event.type === 'TaskStateExited' && target.kind === 'lambda') {
        const start = entered.get(name);
        if (start !== undefined) (durations[target.name] ??= []).push(event.timestamp - start);
      }
    }
  }
  const n = Math.max(1, executions.length);
  return {
    executions: executions.length,
    transitionsPerRefresh: transitions / n,
    lambdaInvocationsPerRefresh: Object.fromEntries(Object.entries(invocations).map(([k, v]) => [k, v / n])),
    lambdaMedianMs: Object.fromEntries(Object.entries(durations).map(([k, v]) => [k, Math.round(median(v))])),
    putEventsPerRefresh: putEvents / n,
    executionMedianMs: executionMs.length > 0 ? Math.round(median(executionMs)) : 0,
  };
}

/** What a workflow execution synchronizes: its input's `store` and `kind` (`register`, `transfer`, `refresh`). */
export function executionInput(execution: LocalExecution): { store?: string; kind?: string } {
  try {
    const input = JSON.parse(execution.input) as { store?: unknown; kind?: unknown };
    return { ...(typeof input.store === 'string' ? { store: input.store } : {}), ...(typeof input.kind === 'string' ? { kind: input.kind } : {}) };
  } catch {
    return {};
  }
}

/**
 * Store calls per refresh by call. Apple: the verifier's two App Store Server API calls, as counted.
 * Google: one subscriptionsv2.get each, acknowledge as often as AcknowledgePurchase ran; the rest of
 * the counted calls are Voided Purchases reads (a read that no longer entitles is looked up there).
 */
export function storeCallsPerRefresh(store: 'apple' | 'google', calls: number, refreshes: number, invocations: Record<string, number>): Record<string, number> {
  const perRefresh = calls / Math.max(1, refreshes);
  if (store === 'apple') return { 'App Store Server API calls': round(perRefresh, 3) };
  const acknowledge = invocations.AcknowledgePurchase ?? 0;
  return { 'subscriptionsv2.get': 1, 'voidedpurchases.list': round(Math.max(0, perRefresh - 1 - acknowledge), 3), 'subscriptions.acknowledge': round(acknowledge, 3) };
}

/**
 * What a million notifications cost whose refreshes were `executions`: their per-refresh figures,
 * the route's median time, and the store calls the refreshes made (`storeCalls` in all).
 */
export function refreshCost(store: NotificationStore, executions: readonly LocalExecution[], storeCalls: number, notificationMs: number, source: string): NotificationCostModel {
  const figures = refreshFigures(executions);
  return notificationCostModel({
    source: `${source}: ${figures.executions} ${store} refresh executions`,
    store,
    transitionsPerRefresh: figures.transitionsPerRefresh,
    lambdaInvocationsPerRefresh: figures.lambdaInvocationsPerRefresh,
    lambdaMedianMs: figures.lambdaMedianMs,
    putEventsPerRefresh: figures.putEventsPerRefresh,
    notificationMs: Math.round(notificationMs),
    executionMs: figures.executionMedianMs,
    storeCallsPerRefresh: storeCallsPerRefresh(store, storeCalls, figures.executions, figures.lambdaInvocationsPerRefresh),
  });
}
