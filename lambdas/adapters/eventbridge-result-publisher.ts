import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { ResultPublisher } from '../domain/recover-synchronizations';
import { EVENT_SOURCE, SYNC_RESULT_DETAIL_TYPE, type SyncResultDetail } from '../schemas/events';
import { callAws } from '../shared/aws-errors';

/** The recovery sweeper's PutEvents: the same source, detail-type and bus as the workflow's PublishResult. */
export class EventBridgeResultPublisher implements ResultPublisher {
  constructor(
    private readonly eventBusName: string,
    private readonly client: EventBridgeClient = new EventBridgeClient({}),
  ) {}

  async publish(detail: SyncResultDetail): Promise<void> {
    const out = await callAws('publish result event', () =>
      this.client.send(
        new PutEventsCommand({
          Entries: [{ Source: EVENT_SOURCE, DetailType: SYNC_RESULT_DETAIL_TYPE, EventBusName: this.eventBusName, Detail: JSON.stringify(detail) }],
        }),
      ),
    );
    if ((out.FailedEntryCount ?? 0) > 0) {
      throw new Error(`EventBridge refused the event: ${out.Entries?.[0]?.ErrorCode ?? 'unknown'} ${out.Entries?.[0]?.ErrorMessage ?? ''}`);
    }
  }
}
