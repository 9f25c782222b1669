import * as z from 'zod';
import { STORES } from '../events/vocabulary';
import { positiveInt32 } from '../platform/schema-primitives';
import type { EntitlementState } from './domain/entitlement';
import { LIFECYCLE_STATES } from './domain/lifecycle';

/** Every value of {@link EntitlementState}: the lifecycle states, and `transferred` once ownership moved on. */
export const ENTITLEMENT_STATES = [...LIFECYCLE_STATES, 'transferred'] as const satisfies readonly EntitlementState[];

/**
 * The `{cleengCustomerId}` path parameter: decimal digits without a sign or leading zero, as an
 * int32 above 0 (anything else is `400 REQ0003`). The digits are checked before the conversion so
 * that `1e3`, ` 7` or `0x10`, which `Number` would accept, are refused.
 */
export const CleengCustomerIdParam = z
  .string()
  .regex(/^[1-9]\d{0,9}$/, 'a positive int32 in decimal digits')
  .transform(Number)
  .pipe(positiveInt32);

/** An ISO 8601 instant as the table stores it. */
const instant = () => z.iso.datetime({ offset: true });

/** One entitlement of `GET /customers/{cleengCustomerId}/entitlements`. */
export const EntitlementView = z
  .object({
    offerId: z.string().nullable().describe('null when the product is not mapped to an offer; such an entitlement is never active'),
    active: z.boolean().describe('whether it gives access now, decided when read (expiry and grace end included)'),
    store: z.enum(STORES),
    productId: z.string(),
    transactionId: z.string().nullable().describe('Apple: the latest transaction of the subscription'),
    originalTransactionId: z.string().nullable().describe('Apple only'),
    purchaseToken: z.string().nullable().describe('Google only'),
    packageName: z.string().nullable().describe('Google only'),
    expiresAt: instant().nullable().describe('null: never expires'),
    willRenew: z.boolean(),
    state: z.enum(ENTITLEMENT_STATES),
    gracePeriodExpiresAt: instant().nullable().describe('set only in grace_period'),
    environment: z.enum(['Production', 'Sandbox']).nullable(),
    ownershipVersion: z.number().int().min(0),
    updatedAt: instant(),
  })
  .meta({ id: 'Entitlement' });
export type EntitlementView = z.infer<typeof EntitlementView>;

/** `200` of `GET /customers/{cleengCustomerId}/entitlements`: active first, then the most recently updated. */
export const EntitlementsResponse = z
  .object({
    cleengCustomerId: positiveInt32,
    entitlements: z.array(EntitlementView).describe('active first, then by updatedAt, newest first; ended ones stay listed for 90 days'),
  })
  .meta({ id: 'Entitlements' });
export type EntitlementsResponse = z.infer<typeof EntitlementsResponse>;
