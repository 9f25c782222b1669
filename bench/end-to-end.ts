import type { LocalExecution } from '../local/step-functions';
import { roundSummary } from './accept-path';
import { ProcessSampler, RssSampler, stateExitedAt, type BenchStack, type ProcessFigures } from './local';
import { median, round, summarize, type LatencySummary } from './stats';

/**
 * Where one synchronization's register → finalized time went, in consecutive parts that add up to
 * it (ms): the accept path until the stand-in started the execution, the stand-in's own step to the
 * first state, each Task state's time, and the stand-in's time between states (Choice states
 * included). The 202 round trip overlaps them (the execution starts before the 202 is sent).
 */
export interface SyncPhases {
  /** POST sent → ExecutionStarted: HTTP, authentication, DynamoDB reads, the accept transaction, StartExecution. */
  accept: number;
  /** ExecutionStarted → first state entered. */
  toFirstState: number;
  /** Task state name → entered-to-exited time (retries included), for the states before the finalize returned. */
  tasks: Record<string, number>;
  /** Exited → next entered, summed; Choice and Wait states count here. */
  betweenStates: number;
  /** The sum: POST sent → FinalizeSynchronization exited. */
  total: number;
  /** Not additive: the 202's client round trip. */
  registerRoundTrip: number;
}

/** Phase name → latency summary of that phase over the samples; `slowest` are the means over the samples at or above the total's p99. */
export interface PhaseBreakdown {
  samples: number;
  phases: Record<string, LatencySummary>;
  /** Mean of each phase over the slowest 1 % of synchronizations (total ≥ its p99): what the p99 is made of. */
  slowestOnePercentMeans: Record<string, number>;
}

/** The phases of one synchronization from its send time, 202 round trip and execution history; undefined if it never finalized. */
export function syncPhases(sentAt: number, registerRoundTrip: number, execution: LocalExecution): SyncPhases | undefined {
  // By position, not time: the states after the finalize can run within the same millisecond.
  const last = execution.history.findLastIndex((e) => e.type.endsWith('StateExited') && e.details?.name === 'FinalizeSynchronization');
  const finalizedAt = execution.history[last]?.timestamp;
  const started = execution.history.find((e) => e.type === 'ExecutionStarted')?.timestamp;
  if (finalizedAt === undefined || started === undefined) return undefined;
  const tasks: Record<string, number> = {};
  let firstEntered: number | undefined;
  let lastExited: number | undefined;
  let betweenStates = 0;
  const entered = new Map<string, number>();
  for (const event of execution.history.slice(0, last + 1)) {
    const name = String(event.details?.name ?? '');
    if (event.type.endsWith('StateEntered')) {
      firstEntered ??= event.timestamp;
      if (lastExited !== undefined) betweenStates += event.timestamp - lastExited;
      entered.set(name, event.timestamp);
    }
    if (event.type.endsWith('StateExited')) {
      lastExited = event.timestamp;
      if (event.type === 'TaskStateExited') tasks[name] = (tasks[name] ?? 0) + event.timestamp - (entered.get(name) ?? event.timestamp);
      else betweenStates += event.timestamp - (entered.get(name) ?? event.timestamp);
    }
  }
  return {
    accept: started - sentAt,
    toFirstState: (firstEntered ?? started) - started,
    tasks,
    betweenStates,
    total: finalizedAt - sentAt,
    registerRoundTrip,
  };
}

const TOTAL_PHASE = 'register → finalized';
const REGISTER_PHASE = '202 round trip (overlaps)';

/** Flat name → ms of the additive phases, in path order, plus the 202 round trip. */
function phaseEntries(p: SyncPhases): [string, number][] {
  return [
    ['accept (POST → execution started)', p.accept],
    ['stand-in: start → first state', p.toFirstState],
    ...Object.entries(p.tasks).map(([name, ms]): [string, number] => [`${name} (Task)`, ms]),
    ['stand-in: between states', p.betweenStates],
    [TOTAL_PHASE, p.total],
    [REGISTER_PHASE, p.registerRoundTrip],
  ];
}

/** The phase names of several breakdowns for one table: in path order, the total and the 202 last. */
export function phaseNames(...breakdowns: PhaseBreakdown[]): string[] {
  const names = new Set(breakdowns.flatMap((b) => Object.keys(b.phases)));
  names.delete(TOTAL_PHASE);
  names.delete(REGISTER_PHASE);
  return [...names, TOTAL_PHASE, REGISTER_PHASE];
}

/** Per-phase summaries of a run's synchronizations. */
export function summarizePhases(samples: readonly SyncPhases[]): PhaseBreakdown {
  const byPhase = new Map<string, number[]>();
  for (const sample of samples) {
    for (const [name, ms] of phaseEntries(sample)) {
      const list = byPhase.get(name) ?? [];
      list.push(ms);
      byPhase.set(name, list);
    }
  }
  const totalP99 = summarize(samples.map((s) => s.total)).p99;
  const slowest = samples.filter((s) => s.total >= totalP99);
  const slowestMeans = new Map<string, number>();
  for (const sample of slowest) for (const [name, ms] of phaseEntries(sample)) slowestMeans.set(name, (slowestMeans.get(name) ?? 0) + ms / slowest.length);
  return {
    samples: samples.length,
    phases: Object.fromEntries([...byPhase].map(([name, list]) => [name, roundSummary(summarize(list))])),
    slowestOnePercentMeans: Object.fromEntries([...slowestMeans].map(([name, ms]) => [name, round(ms, 1)])),
  };
}

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
  /** Where register → finalized went, phase by phase. */
  phases: PhaseBreakdown;
  /** CPU (this process, DynamoDB Local, the machine) and event loop over the timed samples. */
  process: ProcessFigures;
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
  /** Where register → finalized went under load, phase by phase (every measured synchronization). */
  phases: PhaseBreakdown;
  /** CPU (this process, DynamoDB Local, the machine) and event loop over the window. */
  process: ProcessFigures;
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
export async function measureLatency(
  bench: BenchStack,
  options: { samples: number; appleLatencyMs: number; warmup: number; /** Called right before the first sample (profilers). */ onTimingStart?: () => Promise<void> },
): Promise<LatencyRun> {
  const { client } = bench;
  const transactions = await client.createTransactions(options.warmup + options.samples);
  // Each new simulator transaction sends its notification, which starts a refresh execution: let
  // those end before timing, or the first samples share the CPU with them.
  await bench.stack.stepFunctions.drain();
  await setAppleLatency(bench, options.appleLatencyMs);
  await options.onTimingStart?.();
  const sampler = new ProcessSampler();
  try {
    const finalized: number[] = [];
    const published: number[] = [];
    const registerMs: number[] = [];
    const statusMs: number[] = [];
    const executionMs: number[] = [];
    const tasks: Record<string, number[]> = {};
    const phases: SyncPhases[] = [];
    let notFinalized = 0;
    for (let i = 0; i < options.warmup + options.samples; i++) {
      if (i === options.warmup) sampler.start();
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
      const parts = syncPhases(sentAt, reply.ms, execution);
      if (parts) phases.push(parts);
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
      phases: summarizePhases(phases),
      process: sampler.stop(),
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
export async function measureSustained(
  bench: BenchStack,
  options: { seconds: number; concurrency: number; poolSize: number; /** Called once the pool is made, right before the window (profilers). */ onTimingStart?: () => Promise<void> },
): Promise<SustainedRun & { poolExhausted: number }> {
  const { client, stack } = bench;
  const pool = await client.createTransactions(options.poolSize);
  await stack.stepFunctions.drain(); // the pool's notification refreshes (see measureLatency)
  await options.onTimingStart?.();
  let next = 0;
  let poolExhausted = 0;
  const latencies: number[] = [];
  const phases: SyncPhases[] = [];
  const nonAccepted: Record<string, number> = {};
  let started = 0;
  let finalizedInWindow = 0;
  const sampler = new RssSampler();
  sampler.start();
  const processSampler = new ProcessSampler();
  processSampler.start();
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
      const parts = syncPhases(sentAt, reply.ms, execution);
      if (parts) phases.push(parts);
      if (finalizedAt <= windowEnd) finalizedInWindow += 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  const processFigures = processSampler.stop();
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
    phases: summarizePhases(phases),
    process: processFigures,
    rss: { benchMaxMb: round(rss.benchMaxMb, 1), childProcessesMaxMb: rss.childProcessesMaxMb === undefined ? undefined : round(rss.childProcessesMaxMb, 1) },
    poolExhausted,
  };
}
