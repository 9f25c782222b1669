import { startBenchStack, type BenchStack } from '../local';
import type { LocalStackOptions } from '../../local/stack';
import type { Reconciliation } from './reconcile';
import { addWebhookEndpoint, dataDirOf, sleep, tableClient, WebhookReceiver, type Credential, publisherCredential } from './harness';
import { join } from 'node:path';
import type { EventEnvelope } from '../../local/event-bus';
import { SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/events/schemas';

export interface ScenarioOptions {
  quick: boolean;
  log: (line: string) => void;
}

export type WorkflowType = 'STANDARD' | 'EXPRESS';

/** The workflow type the scenarios run (`--workflow-type`, passed to each child as RESILIENCE_WORKFLOW_TYPE); EXPRESS by default, as deployed. */
export function scenarioWorkflowType(env: NodeJS.ProcessEnv = process.env): WorkflowType {
  const value = env.RESILIENCE_WORKFLOW_TYPE ?? 'EXPRESS';
  if (value !== 'STANDARD' && value !== 'EXPRESS') throw new Error(`RESILIENCE_WORKFLOW_TYPE must be STANDARD or EXPRESS, got ${value}`);
  return value;
}

/**
 * The local stack options of the workflow type: EXPRESS parks a synchronization at each store retry
 * and the recovery sweeper starts the next attempt, so its sweeps come every 250 ms here (deployed:
 * every minute) to keep the scenarios' short retry waits short.
 */
export function workflowTypeOptions(workflowType: WorkflowType = scenarioWorkflowType()): Partial<LocalStackOptions> {
  return workflowType === 'EXPRESS' ? { workflowType, recovery: { intervalMs: 250 } } : { workflowType };
}

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

/** What one scenario reports; the entry point prints and saves these. */
export interface ScenarioResult {
  name: string;
  title: string;
  /** HTTP requests made to the API (simulator and control routes not counted). */
  requests: number;
  /** Distinct synchronizationIds answered 202. */
  accepted: number;
  reconciliation: Reconciliation | null;
  checks: Check[];
  details: Record<string, unknown>;
  durationSeconds: number;
  /** Set when the scenario could not run to its end (the runner's own failure, not a product finding). */
  error?: string;
}

export type Scenario = (options: ScenarioOptions) => Promise<Omit<ScenarioResult, 'durationSeconds' | 'name'>>;

export function verdictOf(result: ScenarioResult): 'PASS' | 'FAIL' {
  if (result.error) return 'FAIL';
  const r = result.reconciliation;
  if (r && (r.lost > 0 || r.duplicated > 0 || r.stuck > 0 || r.unexpectedResults > 0)) return 'FAIL';
  return result.checks.every((c) => c.pass) ? 'PASS' : 'FAIL';
}

export function check(name: string, pass: boolean, detail: string): Check {
  return { name, pass, detail };
}

/** A bench stack (in memory, port 0, 256 customers) with a healthy webhook receiver for the demo publisher. */
export interface ScenarioStack {
  bench: BenchStack;
  receiver: WebhookReceiver;
  publisher: Credential;
  packageName: string;
  stop(): Promise<void>;
}

/** Stops of what the running scenario started, for the child's SIGTERM handler (the runner's timeout). */
export const cleanups = new Set<() => Promise<void>>();

export async function startScenarioStack(options: Partial<LocalStackOptions> = {}): Promise<ScenarioStack> {
  const bench = await startBenchStack({ ...workflowTypeOptions(), ...options });
  const receiver = new WebhookReceiver();
  try {
    const url = await receiver.start();
    const { secret } = await addWebhookEndpoint(tableClient(bench.stack), join(dataDirOf(bench.stack), 'secrets'), bench.stack.localJson.publisherId, url);
    receiver.setSecret(secret);
  } catch (error) {
    await bench.stop();
    throw error;
  }
  const stop = async () => {
    cleanups.delete(stop);
    await bench.stop();
    await receiver.close();
  };
  cleanups.add(stop);
  return {
    bench,
    receiver,
    publisher: publisherCredential(bench.stack.localJson.publisherId, bench.stack.localJson.publisherToken),
    packageName: bench.stack.localJson.google.packageName,
    stop,
  };
}

/** Bounded wait for a drain: a hung workflow must be reported as stuck, not hang the runner. */
export async function drainWithin(drain: () => Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([drain().then(() => true), timeout]);
  if (timer) clearTimeout(timer);
  return done;
}

/** Lets the workflows end and the webhook queue empty, then answers the bus's events. */
export async function settle(stack: ScenarioStack, ms = 30_000): Promise<{ events: EventEnvelope[]; workflowsDrained: boolean; webhooksDrained: boolean }> {
  const workflowsDrained = await drainWithin(() => stack.bench.stack.stepFunctions.drain(), ms);
  // Targets run on setImmediate after PutEvents answers: give them a tick before draining the queue.
  await sleep(50);
  const webhooksDrained = await drainWithin(() => stack.bench.stack.webhooks.drain(), ms);
  return { events: [...stack.bench.stack.bus.events], workflowsDrained, webhooksDrained };
}

export function eventsAsPublished(events: EventEnvelope[]) {
  // Only the results: an inappEntitlementChanged caused by a register names its synchronization too.
  return events
    .filter((e) => e['detail-type'] === SYNC_RESULT_DETAIL_TYPE)
    .map((e) => ({ synchronizationId: String(e.detail.synchronizationId), result: String(e.detail.result) }));
}

/** Counts of values, for the JSON report (`{ "202": 200, "409 SK2C0101": 1800 }`). */
export function tally(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}
