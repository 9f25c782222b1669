import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { DynamoDbPublisherRepository } from '../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { createDocumentClient } from '../lambdas/platform/dynamodb-client';
import { LOCAL_STATE_MACHINE_ARN, LOCAL_TABLE_NAME, startLocalStack, type LocalStack, type LocalStackOptions } from '../local/stack';
import type { LocalExecution } from '../local/step-functions';
import { executionName } from '../lambdas/purchases/domain/synchronization';
import { loadAverage, round } from './stats';

/**
 * Customers the bench registers for, round robin. Every accept path writes the customer item
 * (lastActivityIp), so with the demo's three customers 64 concurrent requests would mostly measure
 * DynamoDB transaction conflicts on three hot items; 256 keeps concurrent requests on distinct
 * customers, as distinct buyers are in production.
 */
export const BENCH_CUSTOMER_COUNT = 256;
const FIRST_BENCH_CUSTOMER = 900_001;
const IP_ADDRESS = '203.0.113.7';
/**
 * Live apps' purchases are Production ones. The verifier asks Apple's production environment first
 * (then sandbox, as Apple recommends), so a Sandbox transaction would add a 404 round trip to every
 * verification: 3 Apple calls instead of 2.
 */
export const TRANSACTION_ENVIRONMENT = 'Production';

export interface BenchStack {
  stack: LocalStack;
  client: BenchClient;
  stop(): Promise<void>;
}

/** Starts the local stack on port 0 in a throwaway data dir, in memory, handler logs off. */
export async function startBenchStack(options: Partial<LocalStackOptions> = {}): Promise<BenchStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'iap-sync-bench-'));
  const stack = await startLocalStack({ port: 0, dataDir, inMemory: true, logLevel: 'silent', ...options });
  try {
    const client = new BenchClient(stack);
    await client.seedCustomers();
    return {
      stack,
      client,
      stop: async () => {
        await stack.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** Runs `task(0..total-1)` with at most `concurrency` in flight (closed loop). */
export async function runPool(total: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const index = next;
      next += 1;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

export interface RegisterReply {
  status: number;
  synchronizationId?: string;
  /** Client-side round trip of the POST, ms. */
  ms: number;
}

/** The HTTP calls of the bench: global fetch (undici, keep-alive by default) against the local API. */
export class BenchClient {
  readonly customerIds: number[] = Array.from({ length: BENCH_CUSTOMER_COUNT }, (_, i) => FIRST_BENCH_CUSTOMER + i);
  private readonly headers: Record<string, string>;

  constructor(readonly stack: LocalStack) {
    this.headers = {
      'content-type': 'application/json',
      'x-publisher-id': String(stack.localJson.publisherId),
      'x-publisher-token': stack.localJson.publisherToken,
    };
  }

  /** The bench's customers, written once with the project's own repository (as `iap-sync customer add` does). */
  async seedCustomers(): Promise<void> {
    const publishers = new DynamoDbPublisherRepository(createDocumentClient(this.stack.dynamodb.client), LOCAL_TABLE_NAME);
    const publisherId = this.stack.localJson.publisherId;
    await runPool(this.customerIds.length, 8, (i) => publishers.putCustomer(publisherId, this.customerIds[i] ?? 0));
  }

  customerFor(index: number): number {
    return this.customerIds[index % this.customerIds.length] ?? FIRST_BENCH_CUSTOMER;
  }

  /** Signed StoreKit 2 transactions made by the App Store simulator, before any timing starts. */
  async createTransactions(count: number, concurrency = 8): Promise<string[]> {
    const ids: string[] = new Array<string>(count);
    await runPool(count, concurrency, async (i) => {
      const res = await fetch(`${this.stack.url}/__simulator/apple/transactions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ productId: 'premium_monthly', environment: TRANSACTION_ENVIRONMENT }),
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`simulator answered ${res.status}: ${text}`);
      ids[i] = String((JSON.parse(text) as { transactionId: unknown }).transactionId);
    });
    return ids;
  }

  /** `POST /storekit2/purchases` as the publisher's server (publisher token + ipAddress). */
  async register(transactionId: string, customerId: number): Promise<RegisterReply> {
    const started = performance.now();
    const res = await fetch(`${this.stack.url}/storekit2/purchases`, {
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify({ cleengCustomerId: customerId, transactionId, ipAddress: IP_ADDRESS }),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    if (res.status !== 202) return { status: res.status, ms };
    const synchronizationId = String((JSON.parse(text) as { synchronizationId: unknown }).synchronizationId);
    return { status: res.status, synchronizationId, ms };
  }

  /** `GET /storekit2/purchases/synchronizations/{id}`: the status an app would poll. */
  async status(synchronizationId: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
    const started = performance.now();
    const res = await fetch(`${this.stack.url}/storekit2/purchases/synchronizations/${synchronizationId}`, { headers: this.headers });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, ms: performance.now() - started };
  }

  /** The local Step Functions execution of a synchronization (the workflow starter names it after the id). */
  execution(synchronizationId: string): LocalExecution | undefined {
    const name = executionName({ publisherId: this.stack.localJson.publisherId, synchronizationId });
    return this.stack.stepFunctions.executions.get(`${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`);
  }

  /** Resolves with the execution once it has ended; StartExecution returned before the 202, so it exists. */
  async executionDone(synchronizationId: string): Promise<LocalExecution> {
    const execution = this.execution(synchronizationId);
    if (!execution) throw new Error(`no execution for synchronization ${synchronizationId}`);
    await execution.done;
    return execution;
  }
}

/** When (epoch ms, from the execution history) a state last exited; undefined if it never ran. */
export function stateExitedAt(execution: LocalExecution, stateName: string): number | undefined {
  const event = execution.history.findLast((e) => e.type.endsWith('StateExited') && e.details?.name === stateName);
  return event?.timestamp;
}

/** Resident memory, sampled while a phase runs. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private maxBench = 0;
  private maxChildren = 0;

  start(intervalMs = 250): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): { benchMaxMb: number; childProcessesMaxMb: number | undefined } {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return { benchMaxMb: this.maxBench / 2 ** 20, childProcessesMaxMb: this.maxChildren > 0 ? this.maxChildren / 2 ** 20 : undefined };
  }

  private sample(): void {
    this.maxBench = Math.max(this.maxBench, process.memoryUsage().rss);
    this.maxChildren = Math.max(this.maxChildren, descendantRssBytes(process.pid));
  }
}

/**
 * RSS of every descendant process (Linux /proc): here that is DynamoDB Local's JVM, which the
 * stack spawns. 0 where /proc is not available.
 */
export function descendantRssBytes(pid: number): number {
  let total = 0;
  for (const child of childPids(pid)) {
    try {
      const status = readFileSync(`/proc/${child}/status`, 'utf8');
      const match = /VmRSS:\s+(\d+) kB/.exec(status);
      total += match?.[1] ? Number(match[1]) * 1024 : 0;
    } catch {
      // The process ended between the listing and the read.
    }
    total += descendantRssBytes(child);
  }
  return total;
}

/** Direct children of a process (Linux /proc); none when it is gone or /proc cannot be read. */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
        .split(' ')
        .filter((s) => s.trim() !== '')
        .map(Number),
    );
  } catch {
    return [];
  }
}

/** Clock ticks (user + system) of a process, from /proc/<pid>/stat; 0 when unreadable. */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Busy and total ticks of the whole machine (all cores), from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  let fields: number[];
  try {
    fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  } catch {
    return { busy: 0, total: 0 };
  }
  const total = fields.reduce((sum, n) => sum + n, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** The histogram records the time between timer runs, interval included: an idle loop reads 5 ms. */
const DELAY_SAMPLING_MS = 5;
const lateness = (nanoseconds: number) => round(Math.max(0, nanoseconds / 1e6 - DELAY_SAMPLING_MS), 1);

/** Linux USER_HZ: /proc times are in 1/100 s on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/** CPU and event-loop figures of one measured phase (Linux /proc; the CPU figures are 0 elsewhere). */
export interface ProcessFigures {
  wallSeconds: number;
  /** CPU seconds (user + system) over the phase. */
  nodeCpuSeconds: number;
  javaCpuSeconds: number;
  /** % of one core. */
  nodeCpuPercent: number;
  javaCpuPercent: number;
  /** % of all cores busy, every process of the machine (ours and others'). */
  machineBusyPercent: number;
  /** What the machine's busy time was beyond ours, in % of one core. */
  othersCpuPercent: number;
  /** Share of the wall time the event loop was busy (performance.eventLoopUtilization). */
  eventLoopUtilization: number;
  /** How late the event loop ran a timer (beyond its 5 ms sampling interval): the wait of any callback. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  loadAverageAtEnd: number[];
}

/**
 * CPU of this process and of DynamoDB Local's JVM (its child), of the whole machine (others share
 * it), and how busy and late the event loop was, over one phase: start() … stop().
 */
export class ProcessSampler {
  private readonly delay = monitorEventLoopDelay({ resolution: DELAY_SAMPLING_MS });
  private cpu = process.cpuUsage();
  private java = 0;
  private machine = machineTicks();
  private elu = performance.eventLoopUtilization();
  private t0 = performance.now();

  /** DynamoDB Local: the `java` children (a profiler may start other helper processes). */
  private javaTicks(): number {
    return childPids(process.pid)
      .filter((pid) => commandName(pid) === 'java')
      .reduce((sum, pid) => sum + processTicks(pid), 0);
  }

  start(): void {
    this.delay.reset();
    this.delay.enable();
    this.cpu = process.cpuUsage();
    this.java = this.javaTicks();
    this.machine = machineTicks();
    this.elu = performance.eventLoopUtilization();
    this.t0 = performance.now();
  }

  stop(): ProcessFigures {
    const wallSeconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu);
    const javaSeconds = (this.javaTicks() - this.java) / TICKS_PER_SECOND;
    const machine = machineTicks();
    const machineBusySeconds = (machine.busy - this.machine.busy) / TICKS_PER_SECOND;
    const machineBusyShare = (machine.busy - this.machine.busy) / Math.max(1, machine.total - this.machine.total);
    const elu = performance.eventLoopUtilization(this.elu);
    this.delay.disable();
    const nodeSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      wallSeconds: round(wallSeconds, 1),
      nodeCpuSeconds: round(nodeSeconds, 2),
      javaCpuSeconds: round(javaSeconds, 2),
      nodeCpuPercent: round((100 * nodeSeconds) / wallSeconds, 0),
      javaCpuPercent: round((100 * javaSeconds) / wallSeconds, 0),
      machineBusyPercent: round(100 * machineBusyShare, 0),
      othersCpuPercent: round((100 * Math.max(0, machineBusySeconds - nodeSeconds - javaSeconds)) / wallSeconds, 0),
      eventLoopUtilization: round(elu.utilization, 2),
      eventLoopDelayMs: {
        p50: lateness(this.delay.percentile(50)),
        p99: lateness(this.delay.percentile(99)),
        max: lateness(this.delay.max),
      },
      loadAverageAtEnd: loadAverage(),
    };
  }
}
