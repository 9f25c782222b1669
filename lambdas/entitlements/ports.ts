import type { Entitlement } from './domain/entitlement';

/**
 * Reads of one customer's entitlements. The repository returns what is stored; deciding access and
 * hiding items past their TTL is the use case's job, because both depend on the clock.
 */
export interface EntitlementRepository {
  /**
   * Every entitlement stored for the customer, ended ones and ones past their `ttl` included
   * (DynamoDB deletes expired items lazily, up to days later). Empty both for a customer without
   * entitlements and for an unknown customer: {@link customerExists} tells them apart.
   */
  listForCustomer(publisherId: number, customerId: number): Promise<Entitlement[]>;
  /** Whether the publisher has this customer. */
  customerExists(publisherId: number, customerId: number): Promise<boolean>;
}
