import type { Clock } from '../../platform/clock';
import { StoreRejectedError } from '../../platform/errors';
import { purchaseTokenHash, type Logger } from '../../platform/logger';
import type { GooglePlayVerifier, GoogleProfile } from '../../stores/google/ports';
import type { PendingAcknowledgement, PendingAcknowledgementRepository } from '../../purchases';
import type { PublisherRepository } from '../../tenants';

/** What the pending acknowledgements need (the reconciliation's dependencies provide them). */
export interface AcknowledgePendingDeps {
  pending: PendingAcknowledgementRepository;
  /** `purchases.subscriptions.acknowledge`; an acknowledgement Google already has counts as success. */
  google: Pick<GooglePlayVerifier, 'acknowledge'>;
  publishers: Pick<PublisherRepository, 'getPublisher'>;
  clock: Clock;
  logger: Logger;
}

export interface AcknowledgePendingOptions {
  /** Most attempts per run; the rest stays due for the next run. */
  limit: number;
  /** After a failed attempt, the next one is due this long later. */
  retrySeconds: number;
  /** Only this publisher's (the command line's reconcile). */
  publisherId?: number;
  /** Waits until the publisher's Google quota allows one more call (the reconciliation's rate limiter). */
  beforeCall?: (publisherId: number) => Promise<void>;
  /** Start no attempt after this (the Lambda's remaining time). */
  deadline?: Date;
}

/**
 * What one run did: `due` listed, `acknowledged` (Google confirmed, or already had it), `failed`
 * (tried again later), `givenUp` (Google's three days ended, or Google refused for good), `pending`
 * still waiting after the run (the alarm's metric), `errors` (the table failed; tried next run).
 */
export interface AcknowledgementReport {
  due: number;
  acknowledged: number;
  failed: number;
  givenUp: number;
  /** Null when they could not be counted (no metric is published then). */
  pending: number | null;
  errors: number;
}

export const DEFAULT_ACKNOWLEDGE_SETTINGS = {
  /** About a minute of Google calls at the reconciliation's 10 calls/s; a backlog drains over runs. */
  limit: 100,
  /** Hourly runs on AWS take every failed one again; `npm start`'s 5-minute runs every third. */
  retrySeconds: 900,
} as const;

/** The publisher's Google profile of the purchase's app: the one named, else the publisher's only one. */
async function profileOf(deps: AcknowledgePendingDeps, entry: PendingAcknowledgement): Promise<GoogleProfile | undefined> {
  const profiles = (await deps.publishers.getPublisher(entry.publisherId))?.google?.profiles ?? [];
  if (entry.packageName === undefined) return profiles.length === 1 ? profiles[0] : undefined;
  return profiles.find((profile) => profile.packageName === entry.packageName);
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Acknowledges, with Google, the purchases whose workflow could not (recorded by its AcknowledgeLater
 * state, or by the recovery sweeper for an execution lost after its finalize), until Google confirms
 * or the purchase's three days are over. Run by the scheduled reconciliation, which holds the Google
 * credentials and spaces its calls within the publisher's quota. Idempotent: Google answers an
 * acknowledgement it already has as success (GooglePlayStoreVerifier reads the purchase to tell), and
 * each outcome is written conditioned on the entry as listed, so two runs never both count it.
 *
 * Given up (logged as an error, counted AcknowledgementsGivenUp, which alarms): the three days are
 * over (Google refunds it, if it has not already), or Google refuses the acknowledgement for good
 * (a token it does not know, or a purchase it can no longer acknowledge: refunded, expired).
 * A refused service account (401/403) is not "for good": it is fixed by `google configure`, so it is
 * retried like an outage until the deadline.
 */
export async function acknowledgePending(deps: AcknowledgePendingDeps, options: AcknowledgePendingOptions): Promise<AcknowledgementReport> {
  const report: AcknowledgementReport = { due: 0, acknowledged: 0, failed: 0, givenUp: 0, pending: 0, errors: 0 };
  let due: PendingAcknowledgement[] = [];
  try {
    due = await deps.pending.listDue(deps.clock.now(), options.limit, options.publisherId);
  } catch (error) {
    report.errors += 1;
    deps.logger.warn('pending acknowledgements could not be listed; the next run tries again', { error });
  }
  for (const entry of due) {
    if (options.deadline !== undefined && deps.clock.now().getTime() >= options.deadline.getTime()) break;
    report.due += 1;
    const fields = { publisherId: entry.publisherId, synchronizationId: entry.synchronizationId, purchaseTokenHash: purchaseTokenHash(entry.purchaseToken), attempts: entry.attempts };
    try {
      const now = deps.clock.now();
      if (now.getTime() >= Date.parse(entry.acknowledgeBy)) {
        if (await deps.pending.settle(entry, { kind: 'given_up', reason: `Google's three days ended (${entry.acknowledgeBy}) unacknowledged` }, now)) {
          report.givenUp += 1;
          deps.logger.error('acknowledgement given up: Google refunds a purchase left unacknowledged for three days', { ...fields, acknowledgeBy: entry.acknowledgeBy, lastError: entry.lastError });
        }
        continue;
      }
      const profile = await profileOf(deps, entry);
      let failure: unknown;
      if (profile) {
        await options.beforeCall?.(entry.publisherId);
        try {
          await deps.google.acknowledge(profile, entry.purchaseToken, entry.productId);
        } catch (error) {
          failure = error;
        }
      } else {
        // The publisher's Google configuration changed; `google configure` may bring it back in time.
        failure = new Error(`no Google Play profile of publisher ${entry.publisherId} for ${entry.packageName ?? 'its only app'}`);
      }
      const settledAt = deps.clock.now();
      if (failure === undefined) {
        if (await deps.pending.settle(entry, { kind: 'acknowledged' }, settledAt)) {
          report.acknowledged += 1;
          deps.logger.info('pending acknowledgement confirmed by Google', fields);
        }
      } else if (failure instanceof StoreRejectedError) {
        if (await deps.pending.settle(entry, { kind: 'given_up', reason: describe(failure) }, settledAt)) {
          report.givenUp += 1;
          deps.logger.error('acknowledgement given up: Google refuses it', { ...fields, error: failure });
        }
      } else if (await deps.pending.settle(entry, { kind: 'retry', nextAt: new Date(settledAt.getTime() + options.retrySeconds * 1000), error: describe(failure) }, settledAt)) {
        report.failed += 1;
        deps.logger.warn('pending acknowledgement failed again; retried later', { ...fields, acknowledgeBy: entry.acknowledgeBy, error: failure });
      }
    } catch (error) {
      report.errors += 1;
      deps.logger.warn('pending acknowledgement could not be settled; the next run tries again', { ...fields, error });
    }
  }
  try {
    report.pending = await deps.pending.countPending(options.publisherId);
  } catch (error) {
    report.pending = null;
    report.errors += 1;
    deps.logger.warn('pending acknowledgements could not be counted', { error });
  }
  return report;
}
