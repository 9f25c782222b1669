import { EventBridgeEventPublisher } from '../../events/adapters/eventbridge-event-publisher';
import { createRuntime, DynamoDbPendingAcknowledgements, SfnWorkflowInspector, SfnWorkflowStarter } from '../../purchases';
import { DynamoDbRecoveryRecords } from '../adapters/dynamodb-recovery-records';
import { createDocumentClient } from '../../platform/dynamodb-client';
import { EXPRESS_ENDED_AFTER_SECONDS, recoverSynchronizations, type RecoverDeps, type RecoverOptions, type RecoverReport } from '../domain/recover-synchronizations';
import { systemClock } from '../../platform/clock';

import { required } from '../../platform/config';
import { noMetrics, type MetricsRecorder } from '../../platform/metrics';
import { instrument, lazyHandler } from '../../platform/handler';

/**
 * What the sweeper is invoked with: a scheduled EventBridge event (ignored), or, from the local
 * runtime at start-up, `{ acceptedBefore }` — everything accepted before the process started is orphaned.
 */
function acceptedBeforeOf(event: unknown): Date | undefined {
  const value = (event as { acceptedBefore?: unknown } | null)?.acceptedBefore;
  if (typeof value !== 'string') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Scheduled `RecoverSynchronizations`: one sweep of the open index (see recoverSynchronizations).
 * StuckSynchronizations is published on every sweep, zero included, so its alarm sees data, not
 * "missing", while all is well.
 */
export function makeRecoverHandler(deps: RecoverDeps & { metrics?: MetricsRecorder }, options: Omit<RecoverOptions, 'acceptedBefore'>) {
  const metrics = deps.metrics ?? noMetrics;
  return async (event: unknown): Promise<RecoverReport> => {
    const acceptedBefore = acceptedBeforeOf(event);
    const report = await recoverSynchronizations(deps, { ...options, ...(acceptedBefore ? { acceptedBefore } : {}) });
    metrics.add('stuck', undefined, report.stuck);
    if (report.restarted > 0) metrics.add('recovered', 'restarted', report.restarted);
    if (report.failed > 0) metrics.add('recovered', 'failed', report.failed);
    if (report.republished > 0) metrics.add('recovered', 'republished', report.republished);
    if (report.resumed > 0) metrics.add('recovered', 'resumed', report.resumed);
    const acted = report.stuck + report.republished + report.errors > 0;
    (acted ? deps.logger.warn : deps.logger.info)('recovery sweep', { ...report });
    return report;
  };
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('recover-synchronizations');
  const { config } = runtime;
  const stateMachineArn = required(config, 'STATE_MACHINE_ARN');
  const db = createDocumentClient();
  const tableName = required(config, 'TABLE_NAME');
  const recover = makeRecoverHandler(
    {
      ...runtime,
      clock: systemClock,
      workflow: new SfnWorkflowStarter(stateMachineArn),
      inspector: new SfnWorkflowInspector(stateMachineArn, config.WORKFLOW_TYPE),
      events: new EventBridgeEventPublisher(required(config, 'EVENT_BUS_NAME')),
      eventBusName: required(config, 'EVENT_BUS_NAME'),
      records: new DynamoDbRecoveryRecords(db, tableName),
      acknowledgements: new DynamoDbPendingAcknowledgements(db, tableName),
    },
    {
      graceSeconds: config.RECOVERY_GRACE_SECONDS,
      maxRestarts: config.RECOVERY_MAX_RESTARTS,
      unknownEndedAfterSeconds: EXPRESS_ENDED_AFTER_SECONDS,
      limit: config.RECOVERY_BATCH_LIMIT,
    },
  );
  return instrument(runtime, recover);
});
