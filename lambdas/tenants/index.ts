export { DynamoDbPublisherRepository } from './adapters/dynamodb-publisher-repository';
export { JoseCustomerTokenVerifier } from './adapters/jose-customer-token-verifier';
export { authenticate, credentialsOf, mayActFor } from './domain/authenticate';
export type { Caller } from './domain/authenticate';
export type { GoogleConfig, GooglePushSettings, OwnershipPolicy, Publisher } from './domain/publisher';
export type { CustomerTokenVerifier } from './ports/credential-verifier';
export type { PublisherRepository } from './ports/publisher-repository';
