import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbPublisherRepository } from '../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { createDocumentClient } from '../lambdas/platform/dynamodb-client';
import { appleLocks, requestHash } from '../lambdas/purchases/domain/accept-purchase';
import type { Synchronization } from '../lambdas/purchases/domain/synchronization';
import { LOCK_LEASE_SECONDS } from '../lib/catalog';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/dynamodb-local';
import { LOCAL_TABLE_NAME } from '../local/stack';
import { RssSampler, runPool, type BenchStack } from './local';
import { round, summarize, type LatencySummary } from './stats';

/** One concurrency level of one side (API or baseline). */
export interface LevelResult {
  concurrency: number;
  requests: number;
  /** 202s for the API; completed request triples for the baseline. */
  ok: number;
  /** Non-202 answers (API) or failed triples (baseline), by status or error name. */
  failures: Record<string, number>;
  durationMs: number;
  /** ok / wall time of the level. */
  perSecond: number;
  latencyMs: LatencySummary;
}

export interface AcceptLevel {
  concurrency: number;
  api: LevelResult;
  baseline: LevelResult;
  /** api.perSecond / baseline.perSecond. */
  ratio: number;
  /** After the level: time until every workflow it started had ended, and how many finalized. */
  workflowDrainMs: number;
  workflowsFinalized: number;
}

export interface AcceptPathReport {
  levels: AcceptLevel[];
  rss: { benchMaxMb: number; childProcessesMaxMb: number | undefined };
  notes: string[];
}

export interface AcceptPathOptions {
  levels: { concurrency: number; requests: number }[];
  warmup: number;
}

const IP_ADDRESS = '203.0.113.7';

/**
 * The baseline: exactly the DynamoDB requests the accept path makes, issued with the project's
 * own adapters on a client of the bench, against the same DynamoDB Local: the publisher GetItem
 * (authentication), the transaction-link GetItem (`findOriginalTransactionId`) and the one
 * TransactWriteItems of `accept` (sync Put, customer Update, transaction-lock Put). No HTTP, auth
 * hashing, validation or StartExecution.
 */
class DirectStorage {
  private readonly client: DynamoDBClient;
  private readonly publishers: DynamoDbPublisherRepository;
  private readonly syncs: DynamoDbSynchronizationRepository;
  private next = 0;

  constructor(
    endpoint: string,
    private readonly publisherId: number,
  ) {
    // Built like a handler's client (defaults: keep-alive, 50 sockets), only the endpoint is explicit.
    this.client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const db = createDocumentClient(this.client);
    this.publishers = new DynamoDbPublisherRepository(db, LOCAL_TABLE_NAME);
    this.syncs = new DynamoDbSynchronizationRepository(db, LOCAL_TABLE_NAME);
  }

  async acceptOnce(customerId: number): Promise<void> {
    // A 16-digit id like the simulator's, in a range it never hands out.
    const transactionId = String(3_000_000_000_000_000 + this.next);
    this.next += 1;
    const publisher = await this.publishers.getPublisher(this.publisherId);
    if (!publisher) throw new Error('publisher missing');
    const original = await this.syncs.findOriginalTransactionId(this.publisherId, transactionId);
    const now = new Date();
    const sync: Synchronization = {
      synchronizationId: randomUUID(),
      publisherId: this.publisherId,
      store: 'apple',
      kind: 'register',
      customerId,
      transactionId,
      status: 'processing',
      requestHash: requestHash({ route: 'apple-register', publisherId: this.publisherId, cleengCustomerId: customerId, transactionId, ipAddress: IP_ADDRESS }),
      lockKeys: [appleLocks.transaction(transactionId), ...(original !== undefined ? [appleLocks.subscription(original)] : [])],
      client: {},
      ipAddress: IP_ADDRESS,
      attempts: 0,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    const outcome = await this.syncs.accept({ sync, leaseExpiresAt: now.getTime() + LOCK_LEASE_SECONDS * 1000 });
    if (outcome.outcome !== 'accepted') throw new Error(`accept: ${outcome.outcome}`);
  }

  destroy(): void {
    this.client.destroy();
  }
}

async function measureLevel(concurrency: number, requests: number, one: (index: number) => Promise<string>): Promise<LevelResult> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let ok = 0;
  const started = performance.now();
  await runPool(requests, concurrency, async (index) => {
    const t0 = performance.now();
    let outcome: string;
    try {
      outcome = await one(index);
    } catch (error) {
      outcome = error instanceof Error ? error.name : 'Error';
    }
    latencies.push(performance.now() - t0);
    if (outcome === 'ok') ok += 1;
    else failures[outcome] = (failures[outcome] ?? 0) + 1;
  });
  const durationMs = performance.now() - started;
  return { concurrency, requests, ok, failures, durationMs: round(durationMs, 1), perSecond: round(ok / (durationMs / 1000), 1), latencyMs: roundSummary(summarize(latencies)) };
}

export function roundSummary(summary: LatencySummary): LatencySummary {
  return {
    count: summary.count,
    p50: round(summary.p50, 1),
    p95: round(summary.p95, 1),
    p99: round(summary.p99, 1),
    mean: round(summary.mean, 1),
    max: round(summary.max, 1),
  };
}

/**
 * Accept path of `POST /storekit2/purchases` at each concurrency level, beside the direct-storage
 * baseline at the same level. Transactions are made by the simulator before any timing. The
 * workflows the level starts are held until it ends (StartExecution is still called and recorded),
 * then released and drained before the next level, and their finalizations are counted.
 */
export async function measureAcceptPath(bench: BenchStack, options: AcceptPathOptions): Promise<AcceptPathReport> {
  const { client, stack } = bench;
  const total = options.levels.reduce((sum, level) => sum + level.requests, 0);
  const transactions = await client.createTransactions(options.warmup + total);
  const direct = new DirectStorage(stack.dynamodb.endpoint, stack.localJson.publisherId);
  const sampler = new RssSampler();
  try {
    // Warm-up of both sides (JIT, lazy handler construction, secret reads, sockets), not reported.
    for (let i = 0; i < options.warmup; i++) {
      await client.register(transactions[i] ?? '', client.customerFor(i));
      await direct.acceptOnce(client.customerFor(i));
    }
    await stack.stepFunctions.drain();

    sampler.start();
    const levels: AcceptLevel[] = [];
    let offset = options.warmup;
    for (const { concurrency, requests } of options.levels) {
      const baseline = await measureLevel(concurrency, requests, async (i) => {
        await direct.acceptOnce(client.customerFor(i));
        return 'ok';
      });
      const first = offset;
      const accepted: string[] = [];
      // On AWS the workflows run on their own Lambdas: held here, they do not share the API's cores.
      stack.stepFunctions.hold();
      const api = await measureLevel(concurrency, requests, async (i) => {
        const reply = await client.register(transactions[first + i] ?? '', client.customerFor(i));
        if (reply.synchronizationId !== undefined) accepted.push(reply.synchronizationId);
        return reply.status === 202 ? 'ok' : `HTTP ${reply.status}`;
      });
      offset += requests;
      stack.stepFunctions.release();
      const drainStarted = performance.now();
      await stack.stepFunctions.drain();
      const workflowDrainMs = performance.now() - drainStarted;
      const workflowsFinalized = accepted.filter((id) => client.execution(id)?.history.some((e) => e.type === 'TaskStateExited' && e.details?.name === 'FinalizeSynchronization')).length;
      levels.push({
        concurrency,
        api,
        baseline,
        ratio: round(api.perSecond / baseline.perSecond, 3),
        workflowDrainMs: round(workflowDrainMs, 0),
        workflowsFinalized,
      });
    }
    const rss = sampler.stop();
    return {
      levels,
      rss: { benchMaxMb: round(rss.benchMaxMb, 1), childProcessesMaxMb: rss.childProcessesMaxMb === undefined ? undefined : round(rss.childProcessesMaxMb, 1) },
      notes: [
        `Distinct simulator transactions, made before timing; publisher token + ipAddress; customers round robin over ${client.customerIds.length}.`,
        'API: global fetch (keep-alive) → local HTTP API → RegisterApplePurchase handler in-process → DynamoDB Local + StartExecution.',
        'Baseline: the same 3 DynamoDB requests (publisher GetItem, transaction-link GetItem, TransactWriteItems) with the project adapters, same DynamoDB Local, same concurrency.',
        'The workflows of a level are held while it runs and released after (then drained and counted): on AWS they run on their own Lambdas, not beside the API. Before this hold, the in-process workflows took most of the 2 cores and the ratio at 16 was 0.21.',
        'Locally every concurrent invocation of a function shares one SDK client (50 sockets); on Lambda each concurrent invocation has its own container. At 64 the SDK may warn that requests queue for sockets.',
      ],
    };
  } finally {
    sampler.stop();
    direct.destroy();
  }
}
