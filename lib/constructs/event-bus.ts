import { Duration } from 'aws-cdk-lib';
import { type Archive, EventBus, type EventPattern } from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import { SYNC_RESULT_EVENT_PATTERN } from '../../lambdas/events/schemas';

/** Props of {@link SyncEventBus}. */
export interface SyncEventBusProps {
  /** Name of the bus, e.g. `iap-sync-dev`; downstream services put their rules on it by name. */
  eventBusName: string;
  /** How long published results stay replayable. @default 30 days */
  archiveRetention?: Duration;
}

/**
 * The bus iap-sync publishes its events to (`inappPurchaseSyncResult`, `inappEntitlementChanged`),
 * with an archive of the `inappPurchaseSyncResult` events so a downstream service that was broken
 * or late can replay them. Rules belong to the consumers (webhook delivery has its own, see
 * WebhookDelivery).
 */
export class SyncEventBus extends Construct {
  readonly bus: EventBus;
  readonly archive: Archive;

  constructor(scope: Construct, id: string, props: SyncEventBusProps) {
    super(scope, id);
    this.bus = new EventBus(this, 'Bus', { eventBusName: props.eventBusName });
    this.archive = this.bus.archive('SyncResultArchive', {
      description: 'Every inappPurchaseSyncResult event, for replay to downstream services',
      eventPattern: toCdkEventPattern(SYNC_RESULT_EVENT_PATTERN),
      retention: props.archiveRetention ?? Duration.days(30),
    });
  }
}

/**
 * EventBridge's JSON pattern (`detail-type`) in the CDK's camelCase shape (`detailType`), which the
 * CDK renders back to JSON. Generic so a key added to the shared pattern is not silently dropped;
 * the CDK test compares the rendered pattern with the shared one.
 */
export function toCdkEventPattern(pattern: Readonly<Record<string, readonly string[]>>): EventPattern {
  const cdkPattern: Record<string, string[]> = {};
  for (const [key, values] of Object.entries(pattern)) {
    cdkPattern[key.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase())] = [...values];
  }
  return cdkPattern;
}
