import { appleRootCertificates, required } from '../../platform/config';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { createNoticeIntake, createRuntime, DynamoDbPendingAcknowledgements } from '../../purchases';
import { systemClock } from '../../platform/clock';
import { createDocumentClient } from '../../platform/dynamodb-client';
import { instrument, lazyHandler } from '../../platform/handler';
import { METRIC } from '../../platform/metric-names';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { positiveInt32 } from '../../platform/schema-primitives';
import { AppleNotificationHistoryClient } from '../../stores/apple/notification-history';
import { AppleNotificationDecoder } from '../../stores/apple/notifications';
import { GoogleAccessTokenProvider } from '../../stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../stores/google/adapters/google-play-verifier';
import { DynamoDbReconcileRepository } from '../adapters/dynamodb-reconcile-repository';
import {
  DEFAULT_RECONCILE_SETTINGS,
  reconcilePurchases,
  type ReconcileDeps,
  type ReconcileReport,
  type ReconcileSettings,
} from '../domain/reconcile-purchases';
import type { AcknowledgementReport } from '../domain/acknowledge-pending';

/**
 * The reconciliation's settings from the environment (RECONCILE_*), each defaulting to
 * DEFAULT_RECONCILE_SETTINGS. Read here rather than in platform/config.ts: no other function uses them.
 */
const ReconcileEnv = z.object({
  /** Days a first catch-up (no cursor yet) looks back; Apple keeps 180, Google's voided purchases 30 (each clamped to its own). */
  RECONCILE_FIRST_LOOKBACK_DAYS: z.coerce.number().int().min(1).max(179).default(DEFAULT_RECONCILE_SETTINGS.firstLookbackSeconds / 86_400),
  RECONCILE_OVERLAP_SECONDS: z.coerce.number().int().min(0).max(86_400).default(DEFAULT_RECONCILE_SETTINGS.overlapSeconds),
  /** Apple allows 50 requests per second per app in production, less in sandbox. */
  RECONCILE_APPLE_REQUESTS_PER_SECOND: z.coerce.number().min(0.1).max(50).default(DEFAULT_RECONCILE_SETTINGS.appleRequestsPerSecond),
  /** Google's Play Developer API quota is the publisher's Cloud project's, shared with every other caller of it. */
  RECONCILE_GOOGLE_REQUESTS_PER_SECOND: z.coerce.number().min(0.1).max(50).default(DEFAULT_RECONCILE_SETTINGS.googleRequestsPerSecond),
  RECONCILE_HISTORY_MAX_PAGES: z.coerce.number().int().min(1).max(100_000).default(DEFAULT_RECONCILE_SETTINGS.maxHistoryPages),
  RECONCILE_DUE_LIMIT: z.coerce.number().int().min(0).max(100_000).default(DEFAULT_RECONCILE_SETTINGS.dueLimit),
  RECONCILE_RETRY_BASE_SECONDS: z.coerce.number().int().min(60).max(30 * 86_400).default(DEFAULT_RECONCILE_SETTINGS.retryBaseSeconds),
  RECONCILE_RETRY_MAX_SECONDS: z.coerce.number().int().min(60).max(180 * 86_400).default(DEFAULT_RECONCILE_SETTINGS.retryMaxSeconds),
  RECONCILE_ACKNOWLEDGE_LIMIT: z.coerce.number().int().min(0).max(10_000).default(DEFAULT_RECONCILE_SETTINGS.acknowledgeLimit),
  RECONCILE_ACKNOWLEDGE_RETRY_SECONDS: z.coerce.number().int().min(60).max(86_400).default(DEFAULT_RECONCILE_SETTINGS.acknowledgeRetrySeconds),
});

/** The settings of RECONCILE_* variables. @throws Error naming the invalid variables. */
export function reconcileSettings(env: NodeJS.ProcessEnv = process.env): ReconcileSettings {
  const parsed = ReconcileEnv.safeParse(env);
  if (!parsed.success) throw new Error(`Invalid configuration in environment: ${parsed.error.issues.map((issue) => issue.path.join('.')).join(', ')}`);
  const value = parsed.data;
  return {
    firstLookbackSeconds: value.RECONCILE_FIRST_LOOKBACK_DAYS * 86_400,
    overlapSeconds: value.RECONCILE_OVERLAP_SECONDS,
    appleRequestsPerSecond: value.RECONCILE_APPLE_REQUESTS_PER_SECOND,
    googleRequestsPerSecond: value.RECONCILE_GOOGLE_REQUESTS_PER_SECOND,
    maxHistoryPages: value.RECONCILE_HISTORY_MAX_PAGES,
    dueLimit: value.RECONCILE_DUE_LIMIT,
    retryBaseSeconds: value.RECONCILE_RETRY_BASE_SECONDS,
    retryMaxSeconds: Math.max(value.RECONCILE_RETRY_MAX_SECONDS, value.RECONCILE_RETRY_BASE_SECONDS),
    acknowledgeLimit: value.RECONCILE_ACKNOWLEDGE_LIMIT,
    acknowledgeRetrySeconds: value.RECONCILE_ACKNOWLEDGE_RETRY_SECONDS,
  };
}

/**
 * What the function is invoked with: the schedule's EventBridge event (none of these fields), or by
 * hand (`aws lambda invoke`, the local runtime) `{ publisherId?, since? }` for one publisher or an
 * explicit look-back.
 */
const ReconcileEvent = z.object({
  publisherId: positiveInt32.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
});

/** Stops starting work this long before the Lambda's timeout: a page in progress is finished, then the cursor saved. */
const DEADLINE_MARGIN_MS = 30_000;

/**
 * The reconciliation's metrics: `reconcileNotifications` by `outcome` (accepted | duplicate |
 * rejected | ignored: what the history catch-ups found, Google's voided orders included),
 * `reconcileRefreshes` (refreshes started), `reconcileDuePurchases` (due purchases handed over)
 * and `reconcileErrors` (every run, zero included, so an alarm sees data while all is well). A name platform/metric-names.ts does not
 * declare is skipped, so the function runs before and after the names are added there.
 */
function publishMetrics(metrics: MetricsRecorder, report: ReconcileReport, acknowledgements: AcknowledgementReport | undefined): void {
  const declared: Record<string, unknown> = METRIC;
  // A declared key is a MetricKey; the cast only widens `add` to take the names listed here.
  const add = metrics.add.bind(metrics) as (metric: string, dimensionValue: string | undefined, value?: number) => void;
  const publish = (metric: string, dimension: string | undefined, value: number, always = false) => {
    if (metric in declared && (always || value > 0)) add(metric, dimension, value);
  };
  publish('reconcileNotifications', 'accepted', report.accepted);
  publish('reconcileNotifications', 'duplicate', report.duplicates);
  publish('reconcileNotifications', 'rejected', report.rejected);
  publish('reconcileNotifications', 'ignored', report.ignored);
  publish('reconcileRefreshes', undefined, report.refreshesStarted);
  publish('reconcileDuePurchases', undefined, report.duePurchases);
  publish('reconcileErrors', undefined, report.errors, true);
  if (acknowledgements) {
    publish('acknowledgeFailures', undefined, acknowledgements.failed);
    publish('acknowledgementsGivenUp', undefined, acknowledgements.givenUp);
    // Every run, zero included: the alarm on acknowledgements pending for hours reads its minimum.
    if (acknowledgements.pending !== null) publish('acknowledgementsPending', undefined, acknowledgements.pending, true);
  }
}

/**
 * Scheduled `ReconcilePurchases`: one run of reconcilePurchases over every publisher with an Apple
 * or Google configuration (or the one the event names), bounded by the Lambda's remaining time.
 * The report is logged (warn when something was lost or failed) and answered, with what became of
 * the pending Google acknowledgements (`acknowledgements`).
 */
export function makeReconcileHandler(deps: ReconcileDeps & { metrics?: MetricsRecorder }, settings: ReconcileSettings) {
  const metrics = deps.metrics ?? noMetrics;
  return async (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<ReconcileReport & { acknowledgements?: AcknowledgementReport }> => {
    const parsed = ReconcileEvent.safeParse(event ?? {});
    // A scheduled event carries neither field; anything else malformed is refused rather than read as "everything".
    if (!parsed.success) throw new Error(`Invalid reconcile event: ${parsed.error.issues.map((issue) => issue.path.join('.')).join(', ')}`);
    const remaining = context?.getRemainingTimeInMillis();
    const deadline = remaining !== undefined ? new Date(deps.clock.now().getTime() + Math.max(0, remaining - DEADLINE_MARGIN_MS)) : undefined;
    const { report, acknowledgements } = await reconcilePurchases(deps, {
      ...settings,
      ...(parsed.data.publisherId !== undefined ? { publisherId: parsed.data.publisherId } : {}),
      ...(parsed.data.since !== undefined ? { since: new Date(parsed.data.since) } : {}),
      ...(deadline ? { deadline } : {}),
    });
    publishMetrics(metrics, report, acknowledgements);
    const acknowledgementTrouble = acknowledgements ? acknowledgements.failed + acknowledgements.givenUp + acknowledgements.errors : 0;
    const drifted = report.accepted + report.refreshesStarted + report.rejected + report.errors + acknowledgementTrouble > 0;
    const logged = { ...report, ...(acknowledgements ? { acknowledgements } : {}) };
    if (drifted) deps.logger.warn('reconciliation', logged);
    else deps.logger.info('reconciliation', logged);
    return logged;
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('reconcile-purchases');
  const { config } = runtime;
  const db = createDocumentClient();
  const tableName = required(config, 'TABLE_NAME');
  // As the workflow's (purchases/store-verifiers.ts), whose factory the purchases slice does not export.
  const google = new GooglePlayStoreVerifier({
    secrets: runtime.secrets,
    tokens: new GoogleAccessTokenProvider({
      ...(config.GOOGLE_OAUTH_TOKEN_URL ? { tokenUrl: config.GOOGLE_OAUTH_TOKEN_URL } : {}),
      timeoutMs: config.GOOGLE_REQUEST_TIMEOUT_MS,
    }),
    ...(config.GOOGLE_API_ROOT_URL ? { rootUrl: config.GOOGLE_API_ROOT_URL } : {}),
    timeoutMs: config.GOOGLE_REQUEST_TIMEOUT_MS,
  });
  const reconcile = makeReconcileHandler(
    {
      publishers: runtime.publishers,
      history: new AppleNotificationHistoryClient({
        secrets: runtime.secrets,
        baseUrls: { Production: config.APPLE_API_BASE_URL_PRODUCTION, Sandbox: config.APPLE_API_BASE_URL_SANDBOX },
        timeoutMs: config.APPLE_REQUEST_TIMEOUT_MS,
      }),
      decoder: new AppleNotificationDecoder({
        rootCertificates: appleRootCertificates(config),
        onlineChecks: config.APPLE_ONLINE_CHECKS === 'true',
      }),
      google,
      acknowledgements: { pending: new DynamoDbPendingAcknowledgements(db, tableName), google },
      intake: createNoticeIntake(runtime),
      reconcile: new DynamoDbReconcileRepository(db, tableName),
      clock: systemClock,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      logger: runtime.logger,
      metrics: runtime.metrics,
    },
    reconcileSettings(),
  );
  return instrument(runtime, reconcile);
});
