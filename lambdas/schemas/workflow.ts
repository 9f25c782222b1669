import { z } from 'zod';
import { STORES, SYNC_KINDS } from '../domain/results';
import { positiveInt32, uuid } from './api';

/**
 * Inputs and outputs of the Task states of `statemachines/purchase-sync.asl.json`. Each Lambda
 * parses its input with these, so a drift between the ASL and the code fails loudly.
 */
export const SyncExecutionInput = z.object({
  synchronizationId: uuid(),
  publisherId: positiveInt32,
  store: z.enum(STORES),
  kind: z.enum(SYNC_KINDS),
  customerId: positiveInt32,
  transactionId: z.string().optional(),
  /** Carried through the retry loop; the first attempt is 1. */
  retry: z.object({ attempt: z.number().int().min(0) }),
});
export type SyncExecutionInput = z.infer<typeof SyncExecutionInput>;

const AppleFactsSchema = z.object({
  environment: z.enum(['Production', 'Sandbox']),
  transactionId: z.string(),
  originalTransactionId: z.string(),
  productId: z.string(),
  type: z.enum(['Auto-Renewable Subscription', 'Non-Consumable', 'Consumable', 'Non-Renewing Subscription']),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  subscriptionStatus: z.number().int().optional(),
});

export const VerificationOutput = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('verified'), facts: AppleFactsSchema }),
  z.object({ outcome: z.literal('not_found') }),
  z.object({ outcome: z.literal('invalid'), reason: z.string() }),
]);
export type VerificationOutput = z.infer<typeof VerificationOutput>;

export const VerifyTaskInput = z.object({
  synchronizationId: uuid(),
  publisherId: positiveInt32,
  transactionId: z.string(),
});

export const MarkRetryingInput = z.object({
  synchronizationId: uuid(),
  retry: z.object({ attempt: z.number().int().min(0) }),
});

export const MarkRetryingOutput = z.object({
  attempt: z.number().int().min(1),
  waitSeconds: z.number().int().min(1),
  exhausted: z.boolean(),
});
export type MarkRetryingOutput = z.infer<typeof MarkRetryingOutput>;

export const FinalizeTaskInput = z.union([
  z.object({ synchronizationId: uuid(), verification: VerificationOutput }),
  z.object({ synchronizationId: uuid(), failed: z.literal(true) }),
]);
export type FinalizeTaskInput = z.infer<typeof FinalizeTaskInput>;
