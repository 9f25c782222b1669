import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { reconcile } from '../../cli/commands/reconcile';
import { localTarget, type StackTarget } from '../../cli/target';
import { EntitlementChangedDetail } from '../../lambdas/events/schemas';
import { createLogger } from '../../lambdas/platform/logger';
import { GoogleAccessTokenProvider } from '../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../lambdas/stores/google/adapters/google-play-verifier';
import { startTestStack, type LocalClient } from '../support/local-client';

// Contract §9–§11 for Google Play on the local stack: after the register, only the Play simulator's
// own Real-time Developer Notifications (Pub/Sub pushes with OIDC tokens) and the reconciliation
// move the entitlement. No API call is made between the steps unless the step is a transfer.
let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
let target: StackTarget;
const PACKAGE = 'com.example.iapsync';
const json = { 'content-type': 'application/json' };

beforeAll(async () => {
  // Not in memory: `iap-sync reconcile` reads the stack's data directory, as with `npm start`.
  env = await startTestStack({ inMemory: false, fastWaitsMs: 1 });
  api = env.client;
  target = localTarget(env.dataDir);
});
afterAll(async () => {
  target?.close();
  await env?.stop();
});

interface EntitlementView {
  purchaseToken: string | null;
  packageName: string | null;
  offerId: string | null;
  productId: string;
  active: boolean;
  state: string;
  expiresAt: string | null;
  willRenew: boolean;
}

async function entitlementOf(customerId: number, purchaseToken: string): Promise<EntitlementView | undefined> {
  const reply = await api.request('GET', `/customers/${customerId}/entitlements`, { headers: api.customerHeaders(customerId) });
  expect(reply.status).toBe(200);
  return (reply.body.entitlements as EntitlementView[]).find((item) => item.purchaseToken === purchaseToken);
}

function changesOf(customerId: number, purchaseToken: string) {
  return api
    .entitlementEvents(customerId)
    .map((event) => EntitlementChangedDetail.parse(event.detail))
    .filter((detail) => detail.purchaseToken === purchaseToken);
}

async function simulator(path: string, body: Record<string, unknown> = {}) {
  const reply = await api.request('POST', `/__simulator/google/subscriptions${path}`, { headers: json, body });
  expect([200, 201]).toContain(reply.status);
  await api.settled();
  return reply.body;
}

async function finalized(path: string, body: Record<string, unknown>) {
  const accepted = await api.request('POST', path, { headers: api.publisherHeaders(), body });
  expect(accepted.status).toBe(202);
  const id = String(accepted.body.synchronizationId);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await api.request('GET', `/google-play/purchases/synchronizations/${id}`, { headers: api.publisherHeaders() });
    if (reply.body.status === 'finalized') {
      await api.settled();
      return reply.body;
    }
    if (Date.now() > deadline) throw new Error(`not finalized: ${reply.text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const purchase = (customerId: number, purchaseToken: string) => ({
  cleengCustomerId: customerId,
  purchaseToken,
  packageName: PACKAGE,
  productType: 'subscription',
  ipAddress: '203.0.113.7',
});

async function registered(customerId: number, create: Record<string, unknown> = { productId: 'premium_monthly' }) {
  const { purchaseToken } = (await simulator('', create)) as { purchaseToken: string };
  const result = await finalized('/google-play/purchases', purchase(customerId, purchaseToken));
  expect(result).toMatchObject({ result: 'PURCHASE_SYNCHRONIZED', accessGranted: true });
  return purchaseToken;
}

/** Google's own view of the subscription, through the same client the service uses. */
async function googleSays(purchaseToken: string) {
  const verifier = new GooglePlayStoreVerifier({
    secrets: { get: async () => readFileSync(join(env.dataDir, 'secrets', 'google-service-account.json'), 'utf8') },
    tokens: new GoogleAccessTokenProvider({ tokenUrl: `${env.stack.url}/__simulator/google/oauth2/token` }),
    rootUrl: `${env.stack.url}/__simulator/google/`,
  });
  return verifier.verify({ packageName: PACKAGE, serviceAccountRef: 'x' }, purchaseToken);
}

async function dropNextGoogleNotification() {
  const reply = await api.request('POST', '/__simulator/faults', { headers: json, body: { store: 'google', dropNotifications: 1 } });
  expect(reply.status).toBeLessThan(300);
}

describe('Google Play entitlements follow Google after the register', () => {
  it('renew moves the expiry (RENEWED); the same push redelivered changes nothing', async () => {
    const token = await registered(101);
    const before = await entitlementOf(101, token);
    expect(before).toMatchObject({ active: true, state: 'active', packageName: PACKAGE, willRenew: true });
    await simulator(`/${token}/renew`);
    const after = await entitlementOf(101, token);
    expect(Date.parse(String(after?.expiresAt))).toBeGreaterThan(Date.parse(String(before?.expiresAt)));
    expect(changesOf(101, token).map((c) => c.reason)).toEqual(['PURCHASED', 'RENEWED']);

    const listed = await api.request('GET', '/__simulator/notifications?store=google');
    const renewal = (listed.body.notifications as Array<{ id: string; type: string; responseStatus: number | null }>).filter((n) => n.type === 'SUBSCRIPTION_RENEWED').at(-1);
    expect(renewal?.responseStatus).toBe(200);
    const resent = await api.request('POST', `/__simulator/notifications/${renewal?.id}/resend`, { headers: json });
    expect(resent.body).toMatchObject({ responseStatus: 200 });
    await api.settled();
    expect(changesOf(101, token)).toHaveLength(2);
    expect(await entitlementOf(101, token)).toEqual(after);
  });

  it.each([
    ['revoke', [['revoke', 'REVOKED', false, 'revoked']]],
    ['expire', [['expire', 'EXPIRED', false, 'expired']]],
    ['grace, hold, recover', [['grace', 'GRACE_PERIOD', true, 'grace_period'], ['hold', 'ON_HOLD', false, 'on_hold'], ['recover', 'RECOVERED', true, 'active']]],
    ['pause', [['pause', 'PAUSED', false, 'paused']]],
    ['cancel (access until expiry, no renewal)', [['cancel', 'RENEWAL_STATUS_CHANGED', true, 'active']]],
  ] as const)('%s', async (_name, steps) => {
    const token = await registered(102);
    for (const [route, reason, active, state] of steps) {
      await simulator(`/${token}/${route}`);
      expect(await entitlementOf(102, token)).toMatchObject({ active, state });
      expect(changesOf(102, token).at(-1)).toMatchObject({ reason, active, state });
    }
    expect(changesOf(102, token)).toHaveLength(steps.length + 1);
    if (steps[0][0] === 'cancel') expect(await entitlementOf(102, token)).toMatchObject({ willRenew: false });
  });

  it('a revoked token registered for the first time finalizes PURCHASE_REVOKED', async () => {
    const { purchaseToken } = (await simulator('', { productId: 'premium_monthly' })) as { purchaseToken: string };
    await simulator(`/${purchaseToken}/revoke`);
    // The notification about a purchase nobody registered kept nothing and granted nothing.
    expect(await entitlementOf(103, purchaseToken)).toBeUndefined();
    expect(await finalized('/google-play/purchases', purchase(103, purchaseToken))).toMatchObject({ result: 'PURCHASE_REVOKED', accessGranted: false });
  });

  it('a plan change (replace) ends the old entitlement and starts the new one for the same customer, PRODUCT_CHANGED', async () => {
    const token = await registered(101);
    const { purchaseToken: next } = (await simulator(`/${token}/replace`, { productId: 'premium_yearly' })) as { purchaseToken: string };
    expect(await entitlementOf(101, token)).toMatchObject({ active: false, state: 'expired' });
    expect(await entitlementOf(101, next)).toMatchObject({ active: true, state: 'active', offerId: 'S100000002_US', productId: 'premium_yearly' });
    expect(changesOf(101, token).map((c) => c.reason)).toEqual(['PURCHASED', 'PRODUCT_CHANGED']);
    expect(changesOf(101, next).map((c) => [c.reason, c.active])).toEqual([['PRODUCT_CHANGED', true]]);
    // The new purchase was acknowledged by the refresh (Google refunds what is not, after three days).
    expect(await googleSays(next)).toMatchObject({ outcome: 'verified', facts: { acknowledged: true, linkedPurchaseToken: token } });
  });

  it('a transfer after the first period, whose renewal notification was lost, reads Google and transfers', async () => {
    const token = await registered(101, { productId: 'premium_monthly', expiresInSeconds: 2 });
    await dropNextGoogleNotification();
    await simulator(`/${token}/renew`, { expiresInSeconds: 3600 });
    // The record still says the first period; let it pass.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const result = await finalized('/google-play/purchases/transfers', purchase(102, token));
    expect(result).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true });
    expect(await entitlementOf(102, token)).toMatchObject({ active: true, state: 'active' });
    expect(await entitlementOf(101, token)).toMatchObject({ active: false, state: 'transferred' });
  });

  it('pushes without a valid OIDC token are 401 AUTH0002 and change nothing', async () => {
    const data = Buffer.from(JSON.stringify({ version: '1.0', packageName: PACKAGE, eventTimeMillis: String(Date.now()), testNotification: { version: '1.0' } })).toString('base64');
    const push = { message: { data, messageId: `forged-${Date.now()}`, publishTime: new Date().toISOString() }, subscription: 'projects/p/subscriptions/s' };
    const google = env.stack.googlePush;
    const tokens = [
      undefined,
      await google.signPushToken({ aud: 'https://elsewhere.example.com/push' }),
      await google.signPushToken({ email: 'someone@example.iam.gserviceaccount.com' }),
      await google.signPushToken({ email_verified: false }),
      `${await google.signPushToken()}x`,
    ];
    for (const token of tokens) {
      const reply = await api.request('POST', '/google-play/notifications/1', {
        headers: { ...json, ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
        body: push,
      });
      expect({ token: token?.slice(-8), status: reply.status, code: reply.body.code }).toEqual({ token: token?.slice(-8), status: 401, code: 'AUTH0002' });
    }
  });

  it('`iap-sync reconcile` corrects drift after dropped notifications, the revocation found only in the Voided Purchases list', async () => {
    const token = await registered(103);
    await dropNextGoogleNotification();
    await simulator(`/${token}/revoke`);
    expect(await entitlementOf(103, token)).toMatchObject({ active: true });

    const result = await reconcile(target, { publisher: '1' }, { logger: createLogger('google-reconcile-test', 'silent') });
    await api.settled();
    expect(result.corrected.purchaseKeys).toContain(token);
    expect(await entitlementOf(103, token)).toMatchObject({ active: false, state: 'revoked' });
    expect(changesOf(103, token).map((c) => c.reason)).toEqual(['PURCHASED', 'REVOKED']);

    // Nothing left to correct the second time.
    const again = await reconcile(target, { publisher: '1' }, { logger: createLogger('google-reconcile-test', 'silent') });
    expect(again.corrected.purchaseKeys).not.toContain(token);
  });
});
