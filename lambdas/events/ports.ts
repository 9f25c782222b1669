import type { EventDetailType } from './schemas';

/**
 * Sends one event of the registry to the bus, with the fixed source. The workflow's PublishResult
 * state sends the same entry through the Step Functions integration; everything else goes through
 * this port.
 */
export interface EventPublisher {
  publish(detailType: EventDetailType, detail: object): Promise<void>;
}
