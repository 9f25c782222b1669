/**
 * The Apple half of the lifecycle scenario: what the bench believes of each subscription (only to
 * pick transitions Apple could make next), the App Store simulator's control routes, and Apple's
 * truth as the service reads it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Environment, SignedDataVerifier } from '@apple/app-store-server-library';
import { AppStoreClient } from '../../lambdas/stores/apple/adapters/app-store-client';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { APPLE_KEY_FILE } from '../../local/seed';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { dataDirOf, postJson, tableClient, type Purchase } from './harness';
import { customerOf, type ExpectedEntitlement, type Expectation, type PickedAction } from './lifecycle-driver';
import type { ScenarioStack } from './scenario';

/** What the bench believes of a subscription, only to pick transitions Apple could make next. */
export type ModelState = 'active' | 'grace' | 'retry' | 'expired' | 'refunded' | 'revoked';
export interface AppleSubscription {
  index: number;
  originalTransactionId: string;
  latestTransactionId: string;
  customerId: number;
  state: ModelState;
  autoRenew: boolean;
}

export type LifecycleAction =
  | 'renew'
  | 'grace'
  | 'billing-retry'
  | 'auto-renew-off'
  | 'auto-renew-on'
  | 'expire'
  | 'refund'
  | 'refund-reversed'
  | 'revoke'
  | 'resubscribe';

/** The transitions Apple could make from a state (renewals and failed renewals only with auto-renew on). */
export function validActions(state: ModelState, autoRenew: boolean): LifecycleAction[] {
  switch (state) {
    case 'active':
      return autoRenew ? ['renew', 'renew', 'grace', 'billing-retry', 'auto-renew-off', 'expire', 'refund', 'revoke'] : ['auto-renew-on', 'expire', 'refund', 'revoke'];
    case 'grace':
      return ['renew', 'billing-retry', 'expire'];
    case 'retry':
      return ['renew', 'expire'];
    case 'expired':
      return ['resubscribe'];
    case 'refunded':
      return ['refund-reversed', 'refund-reversed', 'resubscribe'];
    case 'revoked':
      return ['resubscribe'];
  }
}

/** Drives one action through the simulator's control routes; answers the HTTP status. */
async function act(url: string, sub: AppleSubscription, action: LifecycleAction): Promise<number> {
  const base = `${url}/__simulator/apple/transactions`;
  const on = (route: string, body: unknown = {}) => postJson(`${base}/${sub.latestTransactionId}/${route}`, body);
  let reply;
  switch (action) {
    case 'renew':
      reply = await on('renew');
      if (reply.status === 201) {
        sub.latestTransactionId = String((reply.json as { transactionId: string }).transactionId);
        sub.state = 'active';
      }
      return reply.status;
    case 'resubscribe':
      reply = await postJson(base, { productId: 'premium_monthly', environment: 'Production', originalTransactionId: sub.originalTransactionId });
      if (reply.status === 201) {
        sub.latestTransactionId = String((reply.json as { transactionId: string }).transactionId);
        sub.state = 'active';
        sub.autoRenew = true;
      }
      return reply.status;
    case 'grace':
      reply = await on('grace');
      if (reply.status === 200) sub.state = 'grace';
      return reply.status;
    case 'billing-retry':
      reply = await on('billing-retry');
      if (reply.status === 200) sub.state = 'retry';
      return reply.status;
    case 'auto-renew-off':
    case 'auto-renew-on':
      reply = await on('auto-renew', { enabled: action === 'auto-renew-on' });
      if (reply.status === 200) sub.autoRenew = action === 'auto-renew-on';
      return reply.status;
    case 'expire':
      reply = await on('expire');
      if (reply.status === 200) {
        // A voluntary expiry turns auto-renew off; the end of a billing retry keeps it.
        if (sub.state === 'active') sub.autoRenew = false;
        sub.state = 'expired';
      }
      return reply.status;
    case 'refund':
    case 'revoke':
      reply = await on(action);
      if (reply.status === 200) sub.state = action === 'refund' ? 'refunded' : 'revoked';
      return reply.status;
    case 'refund-reversed':
      reply = await on('refund-reversed');
      if (reply.status === 200) sub.state = 'active';
      return reply.status;
  }
}

const STATUS_STATES: Record<number, string> = { 1: 'active', 2: 'expired', 3: 'billing_retry', 4: 'grace_period', 5: 'revoked' };

/** The entitlement Apple's current answer implies (contract §9, §10). */
export function expectedFromApple(
  status: number,
  transaction: { expiresDate?: number; revocationDate?: number },
  renewal: { gracePeriodExpiresDate?: number } | undefined,
  now: number,
): ExpectedEntitlement {
  const state = transaction.revocationDate !== undefined ? 'revoked' : (STATUS_STATES[status] ?? 'expired');
  const expires = transaction.expiresDate;
  const expiresAt = expires === undefined ? null : new Date(expires).toISOString();
  const graceEnd = renewal?.gracePeriodExpiresDate ?? expires;
  const active = (state === 'active' && expires !== undefined && expires > now) || (state === 'grace_period' && graceEnd !== undefined && graceEnd > now);
  return { active, state, expiresAt };
}

/**
 * Apple's truth, read as the service reads it: Get All Subscription Statuses through Apple's own
 * client (AppStoreClient, the service's subclass pointing at the simulator) and the signed data
 * verified with Apple's SignedDataVerifier against the simulator's root.
 */
export async function appleTruthReader(s: ScenarioStack): Promise<(originalTransactionId: string) => Promise<ExpectedEntitlement>> {
  const stack = s.bench.stack;
  const publisher = await new DynamoDbPublisherRepository(tableClient(stack), LOCAL_TABLE_NAME).getPublisher(stack.localJson.publisherId);
  const apple = publisher?.apple;
  if (!apple) throw new Error('demo publisher has no Apple configuration');
  const dataDir = dataDirOf(stack);
  const key = readFileSync(join(dataDir, 'secrets', APPLE_KEY_FILE), 'utf8');
  const runtime = JSON.parse(readFileSync(join(dataDir, 'runtime.json'), 'utf8')) as { appleRootCertificates: string };
  const roots = runtime.appleRootCertificates.split(',').map((r) => Buffer.from(r.trim(), 'base64'));
  const client = new AppStoreClient(key, apple.keyId, apple.issuerId, apple.bundleId, Environment.PRODUCTION, `${stack.url}/__simulator/apple/production`, 10_000);
  const verifier = new SignedDataVerifier(roots, false, Environment.PRODUCTION, apple.bundleId, apple.appAppleId);
  return async (originalTransactionId: string): Promise<ExpectedEntitlement> => {
    const answer = await client.getAllSubscriptionStatuses(originalTransactionId);
    const last = answer.data?.[0]?.lastTransactions?.[0];
    if (!last?.signedTransactionInfo || last.status === undefined) throw new Error(`no status for ${originalTransactionId}`);
    const transaction = await verifier.verifyAndDecodeTransaction(last.signedTransactionInfo);
    const renewal = last.signedRenewalInfo ? await verifier.verifyAndDecodeRenewalInfo(last.signedRenewalInfo) : undefined;
    return expectedFromApple(Number(last.status), transaction, renewal, Date.now());
  };
}

/** The registered purchases as the model starts them: active, auto-renewing, for `customerOf(i)`. */
export function appleSubscriptions(purchases: readonly Purchase[]): AppleSubscription[] {
  return purchases.map((p, i) => ({ index: i, originalTransactionId: p.id, latestTransactionId: p.id, customerId: customerOf(i), state: 'active', autoRenew: true }));
}

/** A random subscription and a transition Apple could make from its state (the seed's choices, in this order). */
export function pickAppleAction(url: string, subs: readonly AppleSubscription[]): (rand: () => number) => PickedAction | undefined {
  return (rand) => {
    const sub = subs[Math.floor(rand() * subs.length)];
    if (!sub) return undefined;
    const choices = validActions(sub.state, sub.autoRenew);
    const action = choices[Math.floor(rand() * choices.length)] ?? 'renew';
    return { action, subject: sub.originalTransactionId, run: () => act(url, sub, action) };
  };
}

/** Every subscription, compared on its originalTransactionId with Get All Subscription Statuses. */
export function appleExpectations(subs: readonly AppleSubscription[], truthOf: (originalTransactionId: string) => Promise<ExpectedEntitlement>): Expectation[] {
  return subs.map((sub) => ({ key: sub.originalTransactionId, customerId: sub.customerId, truth: () => truthOf(sub.originalTransactionId) }));
}
