import type { Publisher } from '../domain/publisher';
import type { Store } from '../../events/vocabulary';

/** Publisher configuration, customers and offer mappings. */
export interface PublisherRepository {
  getPublisher(publisherId: number): Promise<Publisher | undefined>;
  customerExists(publisherId: number, customerId: number): Promise<boolean>;
  /** The offer a store product grants for this publisher, if mapped. */
  getOfferId(publisherId: number, store: Store, productId: string): Promise<string | undefined>;
}

/** Writes used by seeding and the command line. */
export interface PublisherAdmin extends PublisherRepository {
  putPublisher(publisher: Publisher): Promise<void>;
  /** Creates the publisher only if absent; answers whether it was created. */
  createPublisherIfAbsent(publisher: Publisher): Promise<boolean>;
  putCustomer(publisherId: number, customerId: number): Promise<void>;
  putOffer(publisherId: number, store: Store, productId: string, offerId: string): Promise<void>;
  listPublisherIds(): Promise<number[]>;
}
