/**
 * `iap-sync reconcile --publisher N [--since ISO] [--wait SECONDS]`: the scheduled reconciliation
 * (lambdas/lifecycle/domain/reconcile-purchases.ts) at once, for one publisher of the local stack,
 * then what it corrected. Runs in this process with the same adapters as the deployed function,
 * pointed at the local stack: its table (runtime.json), its secrets folder, its store simulators
 * (Apple's notification history, Google's Voided Purchases and OAuth token endpoint, at the API URL
 * of local.json) and its Step Functions stand-in (its own loopback listener, awsEndpointUrl in
 * runtime.json), so the refreshes it starts run in the `npm start` process like any other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { reconcilePurchases, DEFAULT_RECONCILE_SETTINGS, type ReconcileReport, type StartedRefresh } from '../../lambdas/lifecycle/domain/reconcile-purchases';
import { DynamoDbReconcileRepository } from '../../lambdas/lifecycle/adapters/dynamodb-reconcile-repository';
import type { NoticeIntake } from '../../lambdas/lifecycle/ports';
import { systemClock, type Clock } from '../../lambdas/platform/clock';
import { keys } from '../../lambdas/platform/dynamodb-table';
import type { Logger } from '../../lambdas/platform/logger';
import { ReferenceSecretStore } from '../../lambdas/platform/reference-secret-store';
import { SfnWorkflowStarter } from '../../lambdas/purchases/adapters/sfn-workflow-starter';
import { DynamoDbSynchronizationRepository } from '../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { DynamoDbPendingAcknowledgements } from '../../lambdas/purchases/adapters/dynamodb-pending-acknowledgements';
import type { AcknowledgementReport } from '../../lambdas/lifecycle/domain/acknowledge-pending';
import { acceptNotice } from '../../lambdas/purchases/domain/accept-notice';
import type { Synchronization } from '../../lambdas/purchases/domain/synchronization';
import { AppleNotificationHistoryClient } from '../../lambdas/stores/apple/notification-history';
import { AppleNotificationDecoder } from '../../lambdas/stores/apple/notifications';
import { GoogleAccessTokenProvider } from '../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../lambdas/stores/google/adapters/google-play-verifier';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local';
import { LOCAL_STATE_MACHINE_ARN } from '../../local/stack';
import { flag, idOption, optionalString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import { RUNTIME_JSON, type StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

/** How long the command waits, by default, for the refreshes it started to finalize. */
const DEFAULT_WAIT_SECONDS = 60;
const MAX_WAIT_SECONDS = 3600;
const POLL_MS = 250;
/** The store simulators' timeout is the deployed default too (APPLE_REQUEST_TIMEOUT_MS, GOOGLE_REQUEST_TIMEOUT_MS). */
const STORE_TIMEOUT_MS = 10_000;

export interface ReconcileInput {
  publisherId: number;
  since?: Date;
  /** Re-check every purchase of the reconcile index, not only the due ones. */
  all?: boolean;
  waitSeconds: number;
}

/** Purchases `--all` re-checks at most in one run (within the stores' rate limit of 10 calls/s: about 7 minutes). */
const ALL_DUE_LIMIT = 2000;

/** One refresh the run started and what became of it. */
export interface ReconcileRefresh {
  purchaseKey: string;
  /**
   * `history`: an Apple notification the service had not received; `voided`: a Google voided order
   * it had not been told of; `due`: a purchase past its expiry (plus grace).
   */
  source: StartedRefresh['source'];
  notificationId: string;
  synchronizationId?: string;
  status: Synchronization['status'] | 'unknown';
  /** What the finalize did: `changed` when the stored purchase was corrected. */
  refreshOutcome?: Synchronization['refreshOutcome'];
}

export interface ReconcileResult {
  publisherId: number;
  report: ReconcileReport;
  /** Refreshes that ended `changed`: the purchases whose stored state had drifted and was corrected. */
  corrected: { count: number; purchaseKeys: string[] };
  refreshes: ReconcileRefresh[];
  /** Refreshes not finalized within --wait (still running, or retrying a store outage). */
  notFinalized: number;
  /** The publisher's pending Google acknowledgements (the workflow could not get them through): what this run did. */
  acknowledgements?: AcknowledgementReport;
}

/** What tests replace: the clock and waits, and where warnings go (stderr by default, stdout is the JSON). */
export interface ReconcileIo {
  clock?: Clock;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

export function parseReconcile(args: Args): ReconcileInput {
  const publisherId = idOption(args, 'publisher');
  const sinceRaw = optionalString(args, 'since');
  let since: Date | undefined;
  if (sinceRaw !== undefined) {
    since = new Date(sinceRaw);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(sinceRaw) || Number.isNaN(since.getTime())) {
      throw new UsageError(`--since must be an ISO 8601 date-time (e.g. 2026-01-31T00:00:00Z), got ${JSON.stringify(sinceRaw)}`);
    }
    if (since.getTime() > Date.now()) throw new UsageError('--since must not be in the future');
  }
  const waitRaw = optionalString(args, 'wait');
  const waitSeconds = waitRaw === undefined ? DEFAULT_WAIT_SECONDS : /^\d{1,4}$/.test(waitRaw) ? Number(waitRaw) : NaN;
  if (!Number.isInteger(waitSeconds) || waitSeconds > MAX_WAIT_SECONDS) {
    throw new UsageError(`--wait must be a whole number of seconds from 0 to ${MAX_WAIT_SECONDS}, got ${JSON.stringify(waitRaw)}`);
  }
  const all = flag(args, 'all');
  return { publisherId, ...(since ? { since } : {}), ...(all ? { all } : {}), waitSeconds };
}

/** Warnings to stderr, one line each; info and debug (a line per notification) are not shown. */
const stderrLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message, fields) => process.stderr.write(`warning: ${message} ${JSON.stringify(fields ?? {}, errorFields)}\n`),
  error: (message, fields) => process.stderr.write(`error: ${message} ${JSON.stringify(fields ?? {}, errorFields)}\n`),
};

function errorFields(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

/**
 * The trusted Apple root of the local stack: its store simulator's, from runtime.json when the
 * stack writes it there, else from the simulator's PKI file (`npm start` without --in-memory).
 */
function localAppleRoots(dataDir: string): Buffer[] {
  const fromRuntime = readJson(join(dataDir, RUNTIME_JSON)) as { appleRootCertificates?: unknown } | undefined;
  if (typeof fromRuntime?.appleRootCertificates === 'string' && fromRuntime.appleRootCertificates !== '') {
    return fromRuntime.appleRootCertificates.split(',').map((item) => Buffer.from(item.trim(), 'base64'));
  }
  const pki = readJson(join(dataDir, 'simulator', 'apple-pki.json')) as { certificates?: { root?: unknown } } | undefined;
  if (typeof pki?.certificates?.root === 'string') return [Buffer.from(pki.certificates.root, 'base64')];
  throw new CommandError(`The store simulator's root certificate was not found in ${dataDir}: is the local stack running (without --in-memory)?`);
}

function readJson(path: string): unknown {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Runs the reconciliation for one publisher now (its Apple notification history and Google voided
 * purchases from the cursors, or from --since without moving them, and its due purchases), waits
 * up to --wait seconds for the refreshes it started to finalize, and reports which purchases were
 * corrected.
 */
export async function reconcile(target: StackTarget, args: Args, io: ReconcileIo = {}): Promise<ReconcileResult> {
  const input = parseReconcile(args);
  if (target.kind !== 'local' || target.secretsDir === undefined) {
    throw new CommandError('reconcile runs against the local stack; a deployed stack reconciles on its schedule (function ReconcilePurchases)');
  }
  const apiUrl = target.apiUrl;
  if (apiUrl === undefined) throw new CommandError(`The local stack's API URL is unknown (local.json missing in ${dirname(target.secretsDir)}): is it running?`);
  const awsEndpointUrl = target.awsEndpointUrl;
  if (awsEndpointUrl === undefined) {
    throw new CommandError(`The local stack's Step Functions endpoint is unknown (no awsEndpointUrl in ${join(dirname(target.secretsDir), RUNTIME_JSON)}): restart \`npm start\``);
  }
  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, input.publisherId);
  if (!publisher.apple && !publisher.google) {
    throw new CommandError(`Publisher ${input.publisherId} has no Apple configuration and no Google one (iap-sync apple configure, iap-sync google configure)`);
  }

  const clock = io.clock ?? systemClock;
  const sleep = io.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const logger = io.logger ?? stderrLogger;
  const syncs = new DynamoDbSynchronizationRepository(target.db, target.tableName, () => clock.now().getTime());
  const sfn = new SFNClient({ endpoint: awsEndpointUrl, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 2 });
  try {
    const workflow = new SfnWorkflowStarter(LOCAL_STATE_MACHINE_ARN, sfn);
    // The notification route's intake (createNoticeIntake), with the local stack's Step Functions.
    const intake: NoticeIntake = { accept: (notice) => acceptNotice({ syncs, workflow, clock, logger }, notice) };
    const simulator = `${apiUrl.replace(/\/+$/, '')}/__simulator`;
    const secrets = new ReferenceSecretStore({ localDir: target.secretsDir, cacheSeconds: 300 });
    const google = new GooglePlayStoreVerifier({
      secrets,
      tokens: new GoogleAccessTokenProvider({ tokenUrl: `${simulator}/google/oauth2/token`, timeoutMs: STORE_TIMEOUT_MS }),
      rootUrl: `${simulator}/google/`,
      timeoutMs: STORE_TIMEOUT_MS,
    });
    const { report, started, acknowledgements } = await reconcilePurchases(
      {
        publishers,
        history: new AppleNotificationHistoryClient({
          secrets,
          baseUrls: { Production: `${simulator}/apple/production`, Sandbox: `${simulator}/apple/sandbox` },
          timeoutMs: STORE_TIMEOUT_MS,
        }),
        decoder: new AppleNotificationDecoder({ rootCertificates: localAppleRoots(dirname(target.secretsDir)), onlineChecks: false }),
        google,
        acknowledgements: { pending: new DynamoDbPendingAcknowledgements(target.db, target.tableName), google },
        intake,
        reconcile: new DynamoDbReconcileRepository(target.db, target.tableName),
        clock,
        sleep,
        logger,
      },
      {
        ...DEFAULT_RECONCILE_SETTINGS,
        publisherId: input.publisherId,
        ...(input.since ? { since: input.since } : {}),
        ...(input.all ? { all: true, dueLimit: ALL_DUE_LIMIT } : {}),
      },
    );
    const refreshes = await followRefreshes(target, syncs, started, clock.now().getTime() + input.waitSeconds * 1000, clock, sleep);
    const purchaseKeys = [...new Set(refreshes.filter((r) => r.refreshOutcome === 'changed').map((r) => r.purchaseKey))];
    return {
      publisherId: input.publisherId,
      report,
      corrected: { count: purchaseKeys.length, purchaseKeys },
      refreshes,
      notFinalized: refreshes.filter((r) => r.status !== 'finalized').length,
      ...(acknowledgements ? { acknowledgements } : {}),
    };
  } finally {
    sfn.destroy();
  }
}

/** Polls each started refresh's synchronization (found through its notification record) until finalized or the deadline. */
async function followRefreshes(
  target: StackTarget,
  syncs: DynamoDbSynchronizationRepository,
  started: StartedRefresh[],
  deadlineMs: number,
  clock: Clock,
  sleep: (ms: number) => Promise<void>,
): Promise<ReconcileRefresh[]> {
  const refreshes: ReconcileRefresh[] = started.map((s) => ({ purchaseKey: s.purchaseKey, source: s.source, notificationId: s.notificationId, status: 'unknown' }));
  for (;;) {
    for (const [index, refresh] of refreshes.entries()) {
      if (refresh.status === 'finalized') continue;
      const startedRefresh = started[index];
      if (!startedRefresh) continue;
      refresh.synchronizationId ??= await synchronizationOf(target, startedRefresh);
      const sync = refresh.synchronizationId !== undefined ? await syncs.get({ publisherId: startedRefresh.publisherId, synchronizationId: refresh.synchronizationId }) : undefined;
      if (!sync) continue;
      refresh.status = sync.status;
      if (sync.refreshOutcome !== undefined) refresh.refreshOutcome = sync.refreshOutcome;
    }
    if (refreshes.every((r) => r.status === 'finalized') || clock.now().getTime() >= deadlineMs) return refreshes;
    await sleep(POLL_MS);
  }
}

/** The synchronization the intake recorded for a notice (the notification item names it). */
async function synchronizationOf(target: StackTarget, started: StartedRefresh): Promise<string | undefined> {
  const out = await target.db.send(
    new GetCommand({ TableName: target.tableName, Key: keys.notification(started.publisherId, started.store, started.notificationId), ConsistentRead: true }),
  );
  return typeof out.Item?.synchronizationId === 'string' ? out.Item.synchronizationId : undefined;
}
