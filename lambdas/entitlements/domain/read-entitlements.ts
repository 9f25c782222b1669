import { mayActFor, type Caller } from '../../tenants';
import { ApiError } from '../../platform/errors';
import type { Clock } from '../../platform/clock';
import type { EntitlementRepository } from '../ports';
import type { EntitlementsResponse, EntitlementView } from '../schemas';
import { entitlementActive, type Entitlement } from './entitlement';

/** What {@link readEntitlements} needs. */
export interface ReadEntitlementsDeps {
  entitlements: EntitlementRepository;
  clock: Clock;
}

/** Who asks, and for which customer (of the caller's publisher). */
export interface ReadEntitlementsQuery {
  caller: Caller;
  customerId: number;
}

/**
 * `GET /customers/{cleengCustomerId}/entitlements`: the customer's entitlements with `active`
 * decided at `clock.now()`, active first, then the most recently updated first.
 *
 * - A customer JWT reads only its own customer: any other is `403 AUTH0003`, checked before any
 *   read so the answer says nothing about whether that customer exists.
 * - The customer is looked up in the caller's publisher only; an unknown one is `404 REQ0101`.
 * - Ended entitlements stay listed (inactive) until their `ttl`; those past it are left out,
 *   since DynamoDB deletes expired items only eventually.
 *
 * @throws ApiError AUTH0003 or REQ0101; the repository's DependencyUnavailableError passes through (503 S0002).
 */
export async function readEntitlements(deps: ReadEntitlementsDeps, query: ReadEntitlementsQuery): Promise<EntitlementsResponse> {
  const { caller, customerId } = query;
  if (!mayActFor(caller, customerId)) throw new ApiError('AUTH0003');
  const stored = await deps.entitlements.listForCustomer(caller.publisherId, customerId);
  // Entitlement items live in the customer's own partition, so any item (even one past its TTL)
  // proves the customer exists: the extra read is paid only by customers with nothing stored.
  if (stored.length === 0 && !(await deps.entitlements.customerExists(caller.publisherId, customerId))) {
    throw new ApiError('REQ0101');
  }
  const now = deps.clock.now();
  const rows = stored
    .filter((entitlement) => !pastTtl(entitlement, now))
    .map((entitlement) => ({ entitlement, view: toEntitlementView(entitlement, now) }))
    .sort(compareRows);
  return { cleengCustomerId: customerId, entitlements: rows.map((row) => row.view) };
}

/** The contract's view of one stored entitlement at `now`. */
export function toEntitlementView(entitlement: Entitlement, now: Date): EntitlementView {
  return {
    offerId: entitlement.offerId,
    active: entitlementActive(entitlement, now),
    store: entitlement.store,
    productId: entitlement.productId,
    transactionId: entitlement.transactionId,
    originalTransactionId: entitlement.originalTransactionId,
    purchaseToken: entitlement.purchaseToken,
    packageName: entitlement.packageName,
    expiresAt: entitlement.expiresAt,
    willRenew: entitlement.willRenew,
    state: entitlement.state,
    gracePeriodExpiresAt: entitlement.gracePeriodExpiresAt,
    environment: entitlement.environment,
    ownershipVersion: entitlement.ownershipVersion,
    updatedAt: entitlement.updatedAt,
  };
}

/**
 * DynamoDB's own rule: an item whose `ttl` (epoch seconds) is not after now has expired
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html).
 */
function pastTtl(entitlement: Entitlement, now: Date): boolean {
  return entitlement.ttl !== undefined && entitlement.ttl * 1000 <= now.getTime();
}

interface Row {
  entitlement: Entitlement;
  view: EntitlementView;
}

/** An unreadable updatedAt sorts last rather than failing the whole list. */
function updatedMillis(row: Row): number {
  const ms = Date.parse(row.view.updatedAt);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

/**
 * Active first, then newest update first (compared as instants, not strings); store and purchase
 * key last, so equal rows keep one order whatever order the table returned them in.
 */
function compareRows(a: Row, b: Row): number {
  if (a.view.active !== b.view.active) return a.view.active ? -1 : 1;
  const byUpdate = updatedMillis(b) - updatedMillis(a);
  if (byUpdate !== 0 && !Number.isNaN(byUpdate)) return byUpdate;
  const left = `${a.entitlement.store}#${a.entitlement.purchaseKey}`;
  const right = `${b.entitlement.store}#${b.entitlement.purchaseKey}`;
  // Code-unit order, not localeCompare: the same on every Lambda whatever its locale.
  return left < right ? -1 : left > right ? 1 : 0;
}
