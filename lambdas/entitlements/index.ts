export {
  appleSnapshot,
  changeReason,
  ENTITLEMENT_REASONS,
  googleSnapshot,
  HISTORY_RETENTION_DAYS,
  isActiveAt,
  isStale,
  LIFECYCLE_STATES,
  retainUntil,
} from './domain/lifecycle';
export type { EntitlementReason, Environment, LifecycleSnapshot, LifecycleState } from './domain/lifecycle';
export { entitlementActive } from './domain/entitlement';
export type { Entitlement, EntitlementState } from './domain/entitlement';
export { CleengCustomerIdParam, ENTITLEMENT_STATES, EntitlementView, EntitlementsResponse } from './schemas';
export type { EntitlementRepository } from './ports';
export { DynamoDbEntitlementRepository } from './adapters/dynamodb-entitlement-repository';
export { readEntitlements, toEntitlementView } from './domain/read-entitlements';
export type { ReadEntitlementsDeps, ReadEntitlementsQuery } from './domain/read-entitlements';
export type { GetEntitlementsDeps } from './handlers/get-entitlements';
