/**
 * The Google half of the lifecycle scenario: what the bench believes of each subscription (only to
 * pick transitions Google could make next, and to remember revocations, which Google does not
 * show), the Play simulator's control routes, and Google's truth as the service reads it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../lambdas/platform/dynamodb-table';
import { GoogleAccessTokenProvider } from '../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../lambdas/stores/google/adapters/google-play-verifier';
import type { NotificationRecord } from '../../local/simulator/notifications';
import { GOOGLE_SERVICE_ACCOUNT_FILE } from '../../local/simulator/google-simulator';
import { LOCAL_TABLE_NAME } from '../../local/stack';
import { runPool } from '../local';
import { createPurchase, dataDirOf, postJson, register, tableClient, waitFinalized, type Purchase, type RegisterOutcome } from './harness';
import { customerOf, type ExpectedEntitlement, type Expectation, type PickedAction } from './lifecycle-driver';
import type { ObservedStatus } from './reconcile';
import type { ScenarioStack } from './scenario';

/** `subscriptionState` without its `SUBSCRIPTION_STATE_` prefix, as the simulator's control routes answer it. */
export type GoogleState = 'ACTIVE' | 'CANCELED' | 'IN_GRACE_PERIOD' | 'ON_HOLD' | 'PAUSED' | 'EXPIRED';
/** The Play simulator's control routes, and `resubscribe`: a new purchase after the end, which the app registers. */
export type GoogleAction = 'renew' | 'expire' | 'revoke' | 'grace' | 'hold' | 'recover' | 'pause' | 'cancel' | 'replace' | 'resubscribe';

/** One purchase token the scenario made, and what Google's answer does not say about it. */
export interface GoogleToken {
  token: string;
  customerId: number;
  /** Revoked through the simulator: Google reads it EXPIRED, the Voided Purchases list knows. */
  revoked: boolean;
  /** The pushes about this token, oldest first (a plan change's push counts for the old token too). */
  pushIds: string[];
  /** The token this one replaced (a plan change's linkedPurchaseToken); absent for registered tokens. */
  linkedFrom?: string;
}

/** A subscription as a customer sees it: a plan change (replace) moves it to a new token. */
export interface GoogleSubscription {
  customerId: number;
  current: GoogleToken;
  productId: string;
  state: GoogleState;
}

export interface GoogleModel {
  subscriptions: GoogleSubscription[];
  /** Every token, registered or made by a plan change. */
  tokens: Map<string, GoogleToken>;
  /** The registers of resubscriptions, with their last status read. */
  registers: { outcome: RegisterOutcome; status: ObservedStatus }[];
  /** The token each push names (a plan change's push names the new token). */
  pushNames: Map<string, string>;
}

/** The two mapped products a plan change alternates between (the demo publisher's offers). */
const PLANS = ['premium_monthly', 'premium_yearly'] as const;

/**
 * The transitions Google could make from a state, as the Play simulator allows them (its
 * ALLOWED_FROM), renewals twice as likely. After the end: a late refund (only the Voided Purchases
 * list tells it from the lapse) or a new purchase, which keeps the pool from ending all revoked.
 */
export function validGoogleActions(state: GoogleState, revoked: boolean): GoogleAction[] {
  switch (state) {
    case 'ACTIVE':
      return ['renew', 'renew', 'grace', 'hold', 'pause', 'cancel', 'expire', 'revoke', 'replace'];
    case 'CANCELED':
      return ['expire', 'revoke', 'replace'];
    case 'IN_GRACE_PERIOD':
      return ['renew', 'recover', 'hold', 'cancel', 'expire', 'revoke', 'replace'];
    case 'ON_HOLD':
      return ['renew', 'recover', 'cancel', 'expire', 'revoke'];
    case 'PAUSED':
      return ['renew', 'cancel', 'expire', 'revoke'];
    case 'EXPIRED':
      return revoked ? ['resubscribe'] : ['resubscribe', 'revoke'];
  }
}

const GOOGLE_STATES: readonly GoogleState[] = ['ACTIVE', 'CANCELED', 'IN_GRACE_PERIOD', 'ON_HOLD', 'PAUSED', 'EXPIRED'];

function stateOf(subscriptionState: unknown): GoogleState | undefined {
  const name = String(subscriptionState).replace(/^SUBSCRIPTION_STATE_/, '');
  return GOOGLE_STATES.find((state) => state === name);
}

/** The registered purchases, all active, each for `customerOf(i)`. */
export function googleModel(purchases: readonly Purchase[]): GoogleModel {
  const tokens = new Map<string, GoogleToken>();
  const subscriptions = purchases.map((p, i): GoogleSubscription => {
    const current: GoogleToken = { token: p.id, customerId: customerOf(i), revoked: false, pushIds: [] };
    tokens.set(p.id, current);
    return { customerId: current.customerId, current, productId: 'premium_monthly', state: 'ACTIVE' };
  });
  return { subscriptions, tokens, registers: [], pushNames: new Map() };
}

/**
 * A new purchase for the subscription's customer, registered as the app would register it, and
 * finalized before the next action (a lifecycle event comes days after a purchase, not moments).
 * Answers 201 when it is, else the register's status (or 0 when it did not finalize in 30 s).
 */
async function resubscribe(s: ScenarioStack, model: GoogleModel, sub: GoogleSubscription): Promise<number> {
  const url = s.bench.stack.url;
  const purchase = await createPurchase(url, 'google', PLANS[0]);
  const outcome = await register(url, purchase, sub.customerId, s.publisher, { packageName: s.packageName });
  if (outcome.synchronizationId === undefined) return outcome.status;
  const status = (await waitFinalized(url, [{ id: outcome.synchronizationId, store: 'google' }], s.publisher, Date.now() + 30_000))[outcome.synchronizationId] ?? { httpStatus: 0 };
  model.registers.push({ outcome, status });
  const next: GoogleToken = { token: purchase.id, customerId: sub.customerId, revoked: false, pushIds: [] };
  model.tokens.set(next.token, next);
  Object.assign(sub, { current: next, productId: PLANS[0], state: 'ACTIVE' });
  return status.status === 'finalized' ? 201 : 0;
}

/** Drives one action through the Play simulator's control routes; answers the HTTP status. */
async function act(s: ScenarioStack, model: GoogleModel, sub: GoogleSubscription, action: GoogleAction): Promise<number> {
  if (action === 'resubscribe') return resubscribe(s, model, sub);
  const url = s.bench.stack.url;
  const otherPlan = sub.productId === PLANS[0] ? PLANS[1] : PLANS[0];
  const reply = await postJson(`${url}/__simulator/google/subscriptions/${encodeURIComponent(sub.current.token)}/${action}`, action === 'replace' ? { productId: otherPlan } : {});
  const answer = (reply.json ?? {}) as { purchaseToken?: string; subscriptionState?: string; notification?: { id?: string } };
  const pushId = answer.notification?.id;
  if (pushId !== undefined) sub.current.pushIds.push(pushId);
  if (pushId !== undefined) model.pushNames.set(pushId, answer.purchaseToken ?? sub.current.token);
  if (action === 'replace' && reply.status === 201 && answer.purchaseToken !== undefined) {
    const next: GoogleToken = { token: answer.purchaseToken, customerId: sub.customerId, revoked: false, pushIds: pushId !== undefined ? [pushId] : [], linkedFrom: sub.current.token };
    model.tokens.set(next.token, next);
    sub.current = next;
    sub.productId = otherPlan;
    sub.state = 'ACTIVE';
  } else if (reply.status === 200) {
    sub.state = stateOf(answer.subscriptionState) ?? sub.state;
    if (action === 'revoke') sub.current.revoked = true;
  }
  return reply.status;
}

/** A random subscription and a transition Google could make from its state (seeded). */
export function pickGoogleAction(s: ScenarioStack, model: GoogleModel): (rand: () => number) => PickedAction | undefined {
  return (rand) => {
    const sub = model.subscriptions[Math.floor(rand() * model.subscriptions.length)];
    if (!sub) return undefined;
    const choices = validGoogleActions(sub.state, sub.current.revoked);
    const action = choices[Math.floor(rand() * choices.length)] ?? 'renew';
    return { action, subject: sub.current.token.slice(0, 24), run: () => act(s, model, sub, action) };
  };
}

/**
 * The entitlement Google's answer implies: `subscriptionsv2.get`'s state and expiry, plus what the
 * bench knows of revocations (Google reads a revoked subscription as EXPIRED).
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionState
 */
export function expectedFromGoogle(facts: { subscriptionState: string; expiresAt: string | null }, revoked: boolean, now: number): ExpectedEntitlement {
  const { expiresAt } = facts;
  if (revoked) return { active: false, state: 'revoked', expiresAt };
  const current = expiresAt !== null && Date.parse(expiresAt) > now;
  switch (stateOf(facts.subscriptionState)) {
    case 'ACTIVE':
    case 'CANCELED':
      // Canceled keeps access until the end of the paid period; it only stops renewing.
      return { active: current, state: current ? 'active' : 'expired', expiresAt };
    case 'IN_GRACE_PERIOD':
      // In grace Google extends expiryTime to the grace period's end.
      return { active: current, state: 'grace_period', expiresAt };
    case 'ON_HOLD':
      return { active: false, state: 'on_hold', expiresAt };
    case 'PAUSED':
      return { active: false, state: 'paused', expiresAt };
    default:
      return { active: false, state: 'expired', expiresAt };
  }
}

/**
 * Google's truth, read as the service reads it: `purchases.subscriptionsv2.get` through the
 * service's own client (GooglePlayStoreVerifier with its OAuth token provider) against the Play
 * simulator, as test/e2e/google-play.test.ts asks it.
 */
export function googleTruthReader(s: ScenarioStack): (token: GoogleToken) => Promise<ExpectedEntitlement> {
  const { stack } = s.bench;
  const serviceAccount = readFileSync(join(dataDirOf(stack), 'secrets', GOOGLE_SERVICE_ACCOUNT_FILE), 'utf8');
  const verifier = new GooglePlayStoreVerifier({
    secrets: { get: () => Promise.resolve(serviceAccount) },
    tokens: new GoogleAccessTokenProvider({ tokenUrl: `${stack.url}/__simulator/google/oauth2/token` }),
    rootUrl: `${stack.url}/__simulator/google/`,
  });
  const profile = { packageName: s.packageName, serviceAccountRef: `file:${GOOGLE_SERVICE_ACCOUNT_FILE}` };
  return async (token) => {
    const answer = await verifier.verify(profile, token.token);
    if (answer.outcome !== 'verified') throw new Error(`Google does not know ${token.token.slice(0, 24)}…: ${answer.outcome}`);
    return expectedFromGoogle(answer.facts, token.revoked, Date.now());
  };
}

/** Every token (plan changes' new ones included), compared on its purchaseToken: state and access. */
export function googleExpectations(model: GoogleModel, truthOf: (token: GoogleToken) => Promise<ExpectedEntitlement>): Expectation[] {
  return [...model.tokens.values()].map((token) => ({ key: token.token, customerId: token.customerId, truth: () => truthOf(token) }));
}

/**
 * The tokens the service can know, replaying the delivered pushes in the order they arrived:
 * registered tokens from the start; a plan change's new token once a push naming it arrives while
 * the token it replaced is known (the refresh reads linkedPurchaseToken and moves the owner). A plan
 * change whose push was lost, or arrived before its predecessor was known, stays unknown, and so does
 * every later plan change of the same subscription.
 */
export function knownTokens(model: Pick<GoogleModel, 'tokens' | 'pushNames'>, records: readonly NotificationRecord[]): Set<string> {
  const known = new Set([...model.tokens.values()].filter((t) => t.linkedFrom === undefined).map((t) => t.token));
  for (const record of records) {
    if (record.responseStatus !== 200) continue;
    const token = model.tokens.get(model.pushNames.get(record.id) ?? '');
    if (token?.linkedFrom !== undefined && known.has(token.linkedFrom)) known.add(token.token);
  }
  return known;
}

/**
 * Why Google purchases still differ after the reconciliation. Google keeps no history of its
 * notifications: a push lost for good is caught up by the Voided Purchases list (revocations), by
 * any later push about the same purchase (the refresh reads Google's whole current answer), or by
 * the re-check of purchases in the reconcile-due index at their period's end plus an hour. So:
 * - `awaitingRecheck`: not revoked, its latest push never reached the route, and its purchase is in
 *   the reconcile-due index: the run minutes after the drop cannot reach that re-check;
 * - `unknown`: a plan change's new token the service cannot know ({@link knownTokens}); the app's
 *   own register of the new purchase would bring it in;
 * - `unexplained`: everything else, which one reconciliation should have corrected.
 */
export interface GoogleDriftCauses {
  awaitingRecheck: string[];
  unknown: string[];
  unexplained: string[];
}

export async function explainGoogleDrift(s: ScenarioStack, model: GoogleModel, off: readonly string[], records: readonly NotificationRecord[]): Promise<GoogleDriftCauses> {
  const delivered = new Set(records.filter((r) => r.responseStatus === 200).map((r) => r.id));
  const db = tableClient(s.bench.stack);
  const publisherId = s.bench.stack.localJson.publisherId;
  const causes: GoogleDriftCauses = { awaitingRecheck: [], unknown: [], unexplained: [] };
  const known = knownTokens(model, records);
  await runPool(off.length, 8, async (i) => {
    const token = model.tokens.get(off[i] ?? '');
    if (!token) return;
    const label = `${token.token.slice(0, 24)}… (customer ${token.customerId})`;
    const last = token.pushIds.at(-1);
    const lastLost = last !== undefined && !delivered.has(last);
    const item = (await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.purchase(publisherId, 'google', token.token) }))).Item;
    if (!token.revoked && lastLost && typeof item?.reconcileAt === 'string') causes.awaitingRecheck.push(`${label}: re-checked at ${item.reconcileAt}`);
    else if (item === undefined && !known.has(token.token)) causes.unknown.push(label);
    else {
      // What the table holds, so a finding says where the service went wrong.
      const entitlement = (await db.send(new GetCommand({ TableName: LOCAL_TABLE_NAME, Key: keys.entitlement(publisherId, token.customerId, 'google', token.token) }))).Item;
      const purchase = item?.purchase as { ownerCustomerId?: number; state?: string; replacedBy?: string } | undefined;
      causes.unexplained.push(
        `${label}${token.revoked ? ', revoked' : ''}: last push ${last === undefined ? 'none' : lastLost ? 'lost' : 'delivered'}; purchase ${purchase ? `owner ${String(purchase.ownerCustomerId)} ${String(purchase.state)}${purchase.replacedBy ? ' replaced' : ''}` : 'absent'}, entitlement item ${entitlement ? String(entitlement.state ?? 'present') : 'absent'}, reconcileAt ${String(item?.reconcileAt ?? '-')}`,
      );
    }
  });
  return causes;
}
