import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { EventPublisher } from '../ports';
import { EVENT_SOURCE, type EventDetailType } from '../schemas';
import { callAws } from '../../platform/aws-errors';
import { awsClientConfig } from '../../platform/aws-client-config';

/** PutEvents with the registry's source, on the stack's bus: the same entry the workflow's PublishResult state sends. */
export class EventBridgeEventPublisher implements EventPublisher {
  constructor(
    private readonly eventBusName: string,
    private readonly client: EventBridgeClient = new EventBridgeClient(awsClientConfig()),
  ) {}

  async publish(detailType: EventDetailType, detail: object): Promise<void> {
    const out = await callAws(`publish ${detailType} event`, () =>
      this.client.send(
        new PutEventsCommand({
          Entries: [{ Source: EVENT_SOURCE, DetailType: detailType, EventBusName: this.eventBusName, Detail: JSON.stringify(detail) }],
        }),
      ),
    );
    if ((out.FailedEntryCount ?? 0) > 0) {
      throw new Error(`EventBridge refused the event: ${out.Entries?.[0]?.ErrorCode ?? 'unknown'} ${out.Entries?.[0]?.ErrorMessage ?? ''}`);
    }
  }
}
