import type { LocalExecution } from '../local/step-functions';
import { roundSummary } from './accept-path';
import { RssSampler, stateExitedAt, type BenchStack } from './local';
import { median, round, summarize, type LatencySummary } from './stats';

/** Register → finalized, one synchronization at a time, with one simulator setting. */
export interface LatencyRun {
  appleLatencyMs: number;
  samples: number;
  /** From sending the POST to the moment FinalizeSynchronization returned (its write is what the status route reads). */
  registerToFinalizedMs: LatencySummary;
  /** From sending the POST to the moment PublishResult returned (the event is on the bus). */
  registerToPublishedMs: LatencySummary;
  /** Medians of the parts, for the cost model: the API calls' round trips and each Task state's time. */
  medians: {
    registerRoundTripMs: number;
    statusRoundTripMs: number;
    executionMs: number;
    taskMs: Record<string, number>;
  };
  /** Samples whose status route did not answer finalized right after the execution (should be 0). */
  notFinalized: number;
}

export interface SustainedRun {
  seconds: number;
  concurrency: number;
  started: number;
  /** Synchronizations whose finalize returned inside the window. */
  finalizedInWindow: number;
  finalizedPerSecond: number;
  registerToFinalizedMs: LatencySummary;
  nonAccepted: Record<string, number>;
  rss: { benchMaxMb: number; childProcessesMaxMb: number | undefined };
}

/** Time each Task state took (entered → exited), from the execution history; ms. */
function taskDurations(execution: LocalExecution): Record<string, number> {
  const out: Record<string, number> = {};
  const entered = new Map<string, number>();
  for (const event of execution.history) {
    const name = String(event.details?.name ?? '');
    if (event.type === 'TaskStateEntered') entered.set(name, event.timestamp);
    if (event.type === 'TaskStateExited') out[name] = (out[name] ?? 0) + event.timestamp - (entered.get(name) ?? event.timestamp);
  }
  return out;
}

async function setAppleLatency(bench: BenchStack, latencyMs: number): Promise<void> {
  const res = await fetch(`${bench.stack.url}/__simulator/faults`, {
    method: latencyMs > 0 ? 'POST' : 'DELETE',
    headers: { 'content-type': 'application/json' },
    ...(latencyMs > 0 ? { body: JSON.stringify({ store: 'apple', latencyMs }) } : {}),
  });
  await res.text();
  if (res.status !== 200) throw new Error(`faults route answered ${res.status}`);
}

/**
 * Register → finalized latency, sequentially (the latency of one synchronization on an idle
 * stack). Completion is read from the execution history (the time FinalizeSynchronization
 * returned), not by polling, so the figure has no polling granularity; a status read afterwards
 * checks the route does answer `finalized`.
 */
export async function measureLatency(bench: BenchStack, options: { samples: number; appleLatencyMs: number; warmup: number }): Promise<LatencyRun> {
  const { client } = bench;
  const transactions = await client.createTransactions(options.warmup + options.samples);
  await setAppleLatency(bench, options.appleLatencyMs);
  try {
    const finalized: number[] = [];
    const published: number[] = [];
    const registerMs: number[] = [];
    const statusMs: number[] = [];
    const executionMs: number[] = [];
    const tasks: Record<string, number[]> = {};
    let notFinalized = 0;
    for (let i = 0; i < options.warmup + options.samples; i++) {
      const sentAt = Date.now();
      const reply = await client.register(transactions[i] ?? '', client.customerFor(i));
      if (reply.synchronizationId === undefined) throw new Error(`register answered ${reply.status}`);
      const execution = await client.executionDone(reply.synchronizationId);
      const status = await client.status(reply.synchronizationId);
      if (i < options.warmup) continue;
      const finalizedAt = stateExitedAt(execution, 'FinalizeSynchronization');
      const publishedAt = stateExitedAt(execution, 'PublishResult');
      if (finalizedAt === undefined || publishedAt === undefined || status.body.status !== 'finalized') {
        notFinalized += 1;
        continue;
      }
      finalized.push(finalizedAt - sentAt);
      published.push(publishedAt - sentAt);
      registerMs.push(reply.ms);
      statusMs.push(status.ms);
      executionMs.push((execution.stopDate ?? execution.startDate) - execution.startDate);
      for (const [name, ms] of Object.entries(taskDurations(execution))) (tasks[name] ??= []).push(ms);
    }
    return {
      appleLatencyMs: options.appleLatencyMs,
      samples: options.samples,
      registerToFinalizedMs: roundSummary(summarize(finalized)),
      registerToPublishedMs: roundSummary(summarize(published)),
      medians: {
        registerRoundTripMs: round(median(registerMs), 1),
        statusRoundTripMs: round(median(statusMs), 1),
        executionMs: round(median(executionMs), 1),
        taskMs: Object.fromEntries(Object.entries(tasks).map(([name, list]) => [name, round(median(list), 1)])),
      },
      notFinalized,
    };
  } finally {
    await setAppleLatency(bench, 0);
  }
}

/**
 * Sustained throughput: `concurrency` clients, each registering a fresh transaction and waiting
 * for its finalize before the next, for `seconds`; counts the synchronizations whose finalize
 * returned inside the window. Transactions are made before the window; if the pool runs out the
 * clients make more inside it (reported).
 */
export async function measureSustained(bench: BenchStack, options: { seconds: number; concurrency: number; poolSize: number }): Promise<SustainedRun & { poolExhausted: number }> {
  const { client, stack } = bench;
  const pool = await client.createTransactions(options.poolSize);
  let next = 0;
  let poolExhausted = 0;
  const latencies: number[] = [];
  const nonAccepted: Record<string, number> = {};
  let started = 0;
  let finalizedInWindow = 0;
  const sampler = new RssSampler();
  sampler.start();
  const windowStart = Date.now();
  const windowEnd = windowStart + options.seconds * 1000;
  const worker = async (w: number) => {
    while (Date.now() < windowEnd) {
      let transactionId = pool[next];
      next += 1;
      if (transactionId === undefined) {
        poolExhausted += 1;
        transactionId = (await client.createTransactions(1, 1))[0] ?? '';
      }
      const sentAt = Date.now();
      started += 1;
      const reply = await client.register(transactionId, client.customerFor(next + w));
      if (reply.synchronizationId === undefined) {
        nonAccepted[`HTTP ${reply.status}`] = (nonAccepted[`HTTP ${reply.status}`] ?? 0) + 1;
        continue;
      }
      const execution = await client.executionDone(reply.synchronizationId);
      const finalizedAt = stateExitedAt(execution, 'FinalizeSynchronization');
      if (finalizedAt === undefined) continue;
      latencies.push(finalizedAt - sentAt);
      if (finalizedAt <= windowEnd) finalizedInWindow += 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  await stack.stepFunctions.drain();
  const rss = sampler.stop();
  return {
    seconds: options.seconds,
    concurrency: options.concurrency,
    started,
    finalizedInWindow,
    finalizedPerSecond: round(finalizedInWindow / options.seconds, 1),
    registerToFinalizedMs: roundSummary(summarize(latencies)),
    nonAccepted,
    rss: { benchMaxMb: round(rss.benchMaxMb, 1), childProcessesMaxMb: rss.childProcessesMaxMb === undefined ? undefined : round(rss.childProcessesMaxMb, 1) },
    poolExhausted,
  };
}
