import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDocumentClient } from '../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local';
import { readEventLog } from '../../local/event-bus';
import { SYNC_RESULT_DETAIL_TYPE } from '../../lambdas/events/schemas';
import { PROJECT_ROOT, LOCAL_TABLE_NAME, type LocalJson } from '../../local/stack';
import { childPids, runPool } from '../local';
import {
  addWebhookEndpoint,
  createPurchases,
  postJson,
  publisherCredential,
  readStatus,
  register,
  sleep,
  until,
  waitFinalized,
  WebhookReceiver,
  type Purchase,
  type RegisterOutcome,
  type Store,
} from './harness';
import { reconcile, type PublishedEvent } from './reconcile';
import { check, cleanups, scenarioWorkflowType, tally, type Scenario } from './scenario';

const FIRST_CUSTOMER = 700_001;
const CUSTOMERS = 64;
const STORE_LATENCY_MS = 800;

interface Host {
  child: ChildProcess;
  url: string;
  output: string[];
}

/** `npm start` (local/main.ts) in its own process on port 0 and the given data dir; resolves when it prints `ready`. */
async function startHost(dataDir: string): Promise<Host> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, join(PROJECT_ROOT, 'local/main.ts'), '--port', '0', '--data-dir', dataDir, '--log-level', 'error', '--workflow-type', scenarioWorkflowType()],
    { stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
  );
  const output: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not get ready: ${output.slice(-5).join(' | ')}`)), 90_000);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        output.push(line);
        if (output.length > 200) output.shift();
        const ready = /^ready\s+(http:\/\/\S+)/.exec(line);
        if (ready?.[1]) {
          clearTimeout(timer);
          resolve(ready[1]);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code}: ${output.slice(-5).join(' | ')}`));
    });
  });
  return { child, url, output };
}

/** Every descendant pid (Linux /proc): DynamoDB Local's JVM under the host. */
function descendants(pid: number): number[] {
  return childPids(pid).flatMap((c) => [c, ...descendants(c)]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL of the host and of its DynamoDB Local (a machine that dies takes both). */
async function crash(host: Host): Promise<number[]> {
  const pid = host.child.pid ?? 0;
  const tree = descendants(pid);
  const exited = new Promise<void>((resolve) => (host.child.exitCode !== null ? resolve() : host.child.once('exit', () => resolve())));
  host.child.kill('SIGKILL');
  for (const p of tree) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await exited;
  await until(() => tree.every((p) => !alive(p)), Date.now() + 10_000);
  return tree;
}

/** SIGTERM (npm start stops DynamoDB Local itself), SIGKILL after 30 s. */
async function stopHost(host: Host): Promise<void> {
  if (host.child.exitCode !== null || host.child.signalCode !== null) return;
  const tree = descendants(host.child.pid ?? 0);
  const exited = new Promise<void>((resolve) => host.child.once('exit', () => resolve()));
  host.child.kill('SIGTERM');
  const timer = setTimeout(() => void crash(host), 30_000);
  await exited;
  clearTimeout(timer);
  await until(() => tree.every((p) => !alive(p)), Date.now() + 10_000);
}

/** The results the bus logged (events.jsonl spans both runs); a register's inappEntitlementChanged names its synchronization too, and is not a result. */
function readEvents(dataDir: string): PublishedEvent[] {
  return readEventLog(join(dataDir, 'events.jsonl'))
    .filter((event) => event['detail-type'] === SYNC_RESULT_DETAIL_TYPE)
    .map((event) => ({
      synchronizationId: String(event.detail?.synchronizationId),
      result: String(event.detail?.result),
    }));
}

/**
 * Process crash mid-flight: `npm start` on a data dir, N registers (Correlation-Id UUIDs) against a
 * slow store, SIGKILL of the process and its DynamoDB Local once a third are accepted, `npm start`
 * again on the same data dir (it restarts unfinished workflows itself). The client then re-sends
 * every register it got no answer for, with the same Correlation-Id (an idempotent replay). Every
 * accepted synchronization must finalize once, be published once (the bus's events.jsonl spans both
 * runs) and be delivered to the receiver.
 */
export const crashRestart: Scenario = async ({ quick, log }) => {
  const n = quick ? 30 : 150;
  const dataDir = mkdtempSync(join(tmpdir(), 'iap-sync-resilience-crash-'));
  const receiver = new WebhookReceiver();
  let host: Host | undefined;
  const cleanup = async () => {
    if (host) await stopHost(host);
    await receiver.close();
  };
  cleanups.add(cleanup);
  try {
    await receiver.start();
    host = await startHost(dataDir);
    const localJson = JSON.parse(readFileSync(join(dataDir, 'local.json'), 'utf8')) as LocalJson;
    const runtime = JSON.parse(readFileSync(join(dataDir, 'runtime.json'), 'utf8')) as { dynamodbEndpoint: string };
    const dynamo = new DynamoDBClient({ endpoint: runtime.dynamodbEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const db = createDocumentClient(dynamo);
    const publishers = new DynamoDbPublisherRepository(db, LOCAL_TABLE_NAME);
    await runPool(CUSTOMERS, 8, (i) => publishers.putCustomer(localJson.publisherId, FIRST_CUSTOMER + i));
    const { secret } = await addWebhookEndpoint(db, join(dataDir, 'secrets'), localJson.publisherId, receiver.url);
    receiver.setSecret(secret);
    dynamo.destroy();
    const publisher = publisherCredential(localJson.publisherId, localJson.publisherToken);
    const packageName = localJson.google.packageName;

    const stores: Store[] = Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 'google' : 'apple'));
    const purchases: Purchase[] = await createPurchases(host.url, stores);
    const correlationIds = purchases.map(() => randomUUID());
    for (const store of ['apple', 'google']) await postJson(`${host.url}/__simulator/faults`, { store, latencyMs: STORE_LATENCY_MS });
    const killAfterEvents = Math.max(2, Math.ceil(n / 10));
    log(`npm start at ${host.url}; ${n} registers (about 12/s) against a ${STORE_LATENCY_MS} ms store, SIGKILL once ${killAfterEvents} are published`);

    const first: (RegisterOutcome | { error: string })[] = new Array(n);
    const firstUrl = host.url;
    // Paced, so registers are still arriving while the first synchronizations finalize and publish.
    const registering = runPool(n, 2, async (i) => {
      const p = purchases[i];
      if (!p) return;
      await sleep(150);
      try {
        first[i] = await register(firstUrl, p, FIRST_CUSTOMER + (i % CUSTOMERS), publisher, { packageName, correlationId: correlationIds[i] });
      } catch (error) {
        first[i] = { error: (error as NodeJS.ErrnoException).code ?? String(error) };
      }
    });
    const acceptedSoFar = () => first.filter((o) => o && 'synchronizationId' in o && o.synchronizationId).length;
    await until(() => readEvents(dataDir).length >= killAfterEvents || acceptedSoFar() >= Math.ceil((2 * n) / 3), Date.now() + 120_000, 20);
    // What was running when the process died (read just before the kill).
    const before: Record<string, number> = {};
    const beforeById: Record<string, string> = {};
    const acceptedBefore = first.filter((o): o is RegisterOutcome => o !== undefined && 'synchronizationId' in o && o.synchronizationId !== undefined);
    await runPool(acceptedBefore.length, 8, async (i) => {
      const o = acceptedBefore[i];
      if (!o?.synchronizationId) return;
      const st = (await readStatus(firstUrl, o.purchase.store, o.synchronizationId, publisher)).status ?? '?';
      before[st] = (before[st] ?? 0) + 1;
      beforeById[o.synchronizationId] = st;
    });
    const eventsBeforeCrash = readEvents(dataDir).length;
    const killed = await crash(host);
    host = undefined;
    await registering;
    log(`SIGKILL (host + ${killed.length} descendant process(es)); statuses just before: ${JSON.stringify(before)}, events so far ${eventsBeforeCrash}`);

    host = await startHost(dataDir);
    const recoveryLines = host.output.filter((line) => line.startsWith('recovery'));
    const recoveryLine = recoveryLines.length > 0 ? recoveryLines.join(' | ') : 'recovery: no line printed';
    log(`restarted at ${host.url}: ${recoveryLine}`);
    const url = host.url;
    // The client retries every register it got no answer for (or a 5xx), with the same Correlation-Id.
    const retried: RegisterOutcome[] = [];
    const unanswered = first.map((o, i) => ({ o, i })).filter(({ o }) => o === undefined || 'error' in o || o.status >= 500);
    await runPool(unanswered.length, 6, async (k) => {
      const entry = unanswered[k];
      const p = entry ? purchases[entry.i] : undefined;
      if (!entry || !p) return;
      retried.push(await register(url, p, FIRST_CUSTOMER + (entry.i % CUSTOMERS), publisher, { packageName, correlationId: correlationIds[entry.i] }));
    });
    // Idempotent replays of registers that were answered before the crash: the same id again.
    const replays = acceptedBefore.slice(0, 10);
    const replayed = await Promise.all(
      replays.map((o) => register(url, o.purchase, FIRST_CUSTOMER + (purchases.indexOf(o.purchase) % CUSTOMERS), publisher, { packageName, correlationId: correlationIds[purchases.indexOf(o.purchase)] })),
    );
    const sameId = replayed.filter((r, i) => r.synchronizationId !== undefined && r.synchronizationId === replays[i]?.synchronizationId).length;

    const all = [...first.filter((o): o is RegisterOutcome => o !== undefined && 'status' in o), ...retried];
    const accepted = all.filter((o) => o.synchronizationId);
    const ids = [...new Map(accepted.map((o) => [o.synchronizationId ?? '', { id: o.synchronizationId ?? '', store: o.purchase.store }])).values()];
    const statuses = await waitFinalized(url, ids, publisher, Date.now() + (quick ? 60_000 : 120_000));
    await until(() => ids.every((x) => receiver.received.some((r) => r.synchronizationId === x.id)), Date.now() + 30_000, 250);
    await sleep(1000);
    const reconciliation = reconcile({
      accepted: accepted.map((o) => ({ synchronizationId: o.synchronizationId ?? '', key: o.purchase.key, expectedResults: ['PURCHASE_SYNCHRONIZED'] })),
      statuses,
      events: readEvents(dataDir),
      deliveries: receiver.received,
    });
    const notAccepted = purchases.length - new Set(accepted.map((o) => o.purchase.key)).size;
    return {
      title: `process crash (SIGKILL) mid-flight and restart on the same data dir: ${n} registers, store latency ${STORE_LATENCY_MS} ms`,
      requests: all.length + unanswered.length - retried.length + replayed.length + Object.values(before).reduce((a, b) => a + b, 0),
      accepted: reconciliation.accepted,
      reconciliation,
      checks: [
        check('synchronizations were in flight at the crash', (before.processing ?? 0) + (before.retrying ?? 0) > 0, JSON.stringify(before)),
        check('the restart restarted unfinished workflows', /\d+ restarted|restarted \d+/.test(recoveryLine), recoveryLine),
        check('every purchase ends up accepted (replays with the same Correlation-Id included)', notAccepted === 0, `${notAccepted} purchases never accepted; retried answers ${JSON.stringify(tally(retried.map((o) => `${o.status}${o.code ? ` ${o.code}` : ''}`)))}`),
        check('a Correlation-Id replay after the restart answers the same synchronizationId', sameId === replays.length, `${sameId}/${replays.length}`),
        check('every webhook signature verifies', receiver.attempts.every((a) => a.signatureValid), `${receiver.attempts.filter((a) => !a.signatureValid).length} invalid of ${receiver.attempts.length}`),
      ],
      details: {
        statusesJustBeforeCrash: before,
        eventsBeforeCrash,
        firstRunAnswers: tally(first.map((o) => (o === undefined ? 'not sent' : 'error' in o ? `error ${o.error}` : `${o.status}${o.code ? ` ${o.code}` : ''}`))),
        retriedAfterRestart: retried.length,
        recovery: recoveryLine,
        results: tally(Object.values(statuses).map((st) => st.result ?? st.status ?? String(st.httpStatus))),
        // Where each lost synchronization was when the process died, and how the client learnt its id.
        lostDiagnostics: reconciliation.findings
          .filter((f) => f.kind === 'lost')
          .map((f) => {
            const id = 'synchronizationId' in f ? f.synchronizationId : '';
            return {
              synchronizationId: id,
              statusJustBeforeCrash: beforeById[id] ?? 'not yet accepted',
              answeredBeforeCrash: acceptedBefore.some((o) => o.synchronizationId === id),
              acceptedByRetryAfterRestart: retried.some((o) => o.synchronizationId === id),
              store: accepted.find((o) => o.synchronizationId === id)?.purchase.store,
            };
          }),
      },
    };
  } finally {
    cleanups.delete(cleanup);
    await cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
};
