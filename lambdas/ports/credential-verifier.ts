import type { Publisher } from '../domain/publisher';

/** Claims of a verified customer JWT (contract §5). */
export interface CustomerClaims {
  customerId: number;
  publisherId: number;
}

/** Verifies a customer JWT with the publisher's configured key. Answers undefined when it does not verify. */
export interface CustomerTokenVerifier {
  verify(publisher: Publisher, token: string): Promise<CustomerClaims | undefined>;
}
