import * as z from 'zod';
import { STORES, SYNC_KINDS } from '../events/vocabulary';
import { LIFECYCLE_STATES } from '../entitlements';
import { positiveInt32, uuid } from '../platform/schema-primitives';

/**
 * Inputs and outputs of the Task states of `statemachines/purchase-sync.asl.json`. Each Lambda
 * parses its input with these, so a drift between the ASL and the code fails loudly.
 */
export const SyncExecutionInput = z.object({
  synchronizationId: uuid(),
  publisherId: positiveInt32,
  store: z.enum(STORES),
  kind: z.enum([...SYNC_KINDS, 'refresh']),
  /** 0 for a refresh (a store notification has no customer; the purchase's owner decides). */
  customerId: z.number().int().min(0),
  transactionId: z.string().optional(),
  /** Carried through the retry loop; the first attempt is 1. */
  retry: z.object({ attempt: z.number().int().min(0) }),
});
export type SyncExecutionInput = z.infer<typeof SyncExecutionInput>;

const PurchaseFactsSchema = z.object({
  store: z.enum(STORES),
  purchaseKey: z.string().min(1),
  productId: z.string(),
  state: z.enum(['active', 'expired', 'revoked']),
  expiresAt: z.string().nullable(),
  environment: z.enum(['Production', 'Sandbox']).optional(),
  lastTransactionId: z.string().optional(),
  needsAcknowledgement: z.boolean().optional(),
  packageName: z.string().optional(),
  linkedPurchaseToken: z.string().optional(),
  appAccountToken: z.string().optional(),
  lifecycle: z
    .object({
      state: z.enum(LIFECYCLE_STATES),
      productId: z.string(),
      expiresAt: z.string().nullable(),
      gracePeriodExpiresAt: z.string().nullable(),
      willRenew: z.boolean(),
      environment: z.enum(['Production', 'Sandbox']).optional(),
      transactionId: z.string().optional(),
      observedAt: z.string(),
      revocation: z.enum(['refund', 'revoke']).optional(),
    })
    .optional(),
});

/** The store's verdict (lambdas/purchases/domain/ownership.ts StoreVerdict), as VerifyApplePurchase and VerifyGooglePurchase answer it. */
export const VerdictOutput = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('verified'), facts: PurchaseFactsSchema }),
  z.object({ outcome: z.literal('not_found'), result: z.enum(['TRANSACTION_ID_NOT_FOUND', 'PURCHASE_TOKEN_NOT_FOUND']) }),
  z.object({ outcome: z.literal('invalid') }),
  z.object({ outcome: z.literal('from_record') }),
]);
export type VerdictOutput = z.infer<typeof VerdictOutput>;

/** The verify functions read what they need (transaction id, purchase token) from the record itself. */
export const VerifyTaskInput = z.object({ synchronizationId: uuid(), publisherId: positiveInt32 });

export const MarkRetryingInput = z.object({
  synchronizationId: uuid(),
  publisherId: positiveInt32,
  /** The StoreRetries metric's dimension, from the execution input (no read of the record). */
  store: z.enum(STORES),
  retry: z.object({ attempt: z.number().int().min(0) }),
});

export const MarkRetryingOutput = z.object({
  attempt: z.number().int().min(1),
  waitSeconds: z.number().int().min(1),
  exhausted: z.boolean(),
  /** EXPRESS: end the execution (state Parked); the recovery sweeper starts the next attempt when due. */
  park: z.literal(true).optional(),
});
export type MarkRetryingOutput = z.infer<typeof MarkRetryingOutput>;

export const FinalizeTaskInput = z.union([
  z.object({ synchronizationId: uuid(), publisherId: positiveInt32, verification: VerdictOutput }),
  z.object({ synchronizationId: uuid(), publisherId: positiveInt32, failed: z.literal(true) }),
]);
export type FinalizeTaskInput = z.infer<typeof FinalizeTaskInput>;

/** AcknowledgePurchase (Google): which synchronization's purchase to acknowledge, after its entitlement is saved. */
export const AcknowledgeTaskInput = z.object({ synchronizationId: uuid(), publisherId: positiveInt32 });
