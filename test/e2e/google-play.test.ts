import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GoogleAccessTokenProvider } from '../../lambdas/stores/google/adapters/google-access-token-provider';
import { GooglePlayStoreVerifier } from '../../lambdas/stores/google/adapters/google-play-verifier';
import { SyncResultDetail } from '../../lambdas/events/schemas';
import { startTestStack, type LocalClient, type Reply } from '../support/local-client';

let env: Awaited<ReturnType<typeof startTestStack>>;
let api: LocalClient;
const IP = '203.0.113.7';
const PACKAGE = 'com.example.iapsync';

beforeAll(async () => {
  env = await startTestStack({ retry: { maxAttempts: 3, baseSeconds: 1, maxWaitSeconds: 1 }, fastWaitsMs: 150 });
  api = env.client;
});
afterAll(async () => env?.stop());

const json = { 'content-type': 'application/json' };

async function createSubscription(body: Record<string, unknown> = { productId: 'premium_monthly' }): Promise<string> {
  const reply = await api.request('POST', '/__simulator/google/subscriptions', { headers: json, body });
  if (reply.status !== 201) throw new Error(`simulator answered ${reply.status}: ${reply.text}`);
  return String(reply.body.purchaseToken);
}

const body = (purchaseToken: string, extra: Record<string, unknown> = {}) => ({
  cleengCustomerId: 101,
  purchaseToken,
  packageName: PACKAGE,
  productType: 'subscription',
  ipAddress: IP,
  ...extra,
});

const post = (path: string, requestBody: unknown, headers = api.publisherHeaders()) => api.request('POST', path, { headers, body: requestBody });

async function waitGoogle(id: string) {
  const deadline = Date.now() + 30_000;
  const seen: string[] = [];
  for (;;) {
    const reply = await api.request('GET', `/google-play/purchases/synchronizations/${id}`, { headers: api.publisherHeaders() });
    const status = String(reply.body.status);
    if (seen.at(-1) !== status) seen.push(status);
    if (status === 'finalized') {
      await api.settled();
      return { final: reply.body, seen, event: api.eventsFor(id)[0]?.detail };
    }
    if (reply.status !== 200 || Date.now() > deadline) throw new Error(`not finalized: ${reply.status} ${reply.text}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function registerAndWait(purchaseToken: string, extra: Record<string, unknown> = {}) {
  const accepted = await post('/google-play/purchases', body(purchaseToken, extra));
  if (accepted.status !== 202) throw new Error(`register answered ${accepted.status}: ${accepted.text}`);
  return { id: String(accepted.body.synchronizationId), ...(await waitGoogle(String(accepted.body.synchronizationId))) };
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

function expectCode(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, code: reply.body.code }).toEqual({ status, code });
}

describe('Google Play, end to end on the local stack', () => {
  it('registers a subscription: finalized, entitled, one contract event, and Google acknowledged it after the entitlement was saved', async () => {
    const token = await createSubscription();
    expect(await googleSays(token)).toMatchObject({ outcome: 'verified', facts: { acknowledged: false } });
    const { final, event } = await registerAndWait(token, { productId: 'premium_monthly' });
    expect(final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED', accessGranted: true, offerId: 'S100000001_US' });
    expect(SyncResultDetail.parse(event)).toMatchObject({
      store: 'google',
      kind: 'register',
      purchaseToken: token,
      packageName: PACKAGE,
      transactionId: null,
      originalTransactionId: null,
      productId: 'premium_monthly',
      ownershipVersion: 1,
    });
    expect(await googleSays(token)).toMatchObject({ outcome: 'verified', facts: { acknowledged: true } });
  });

  it('transfers it to 102 (TRANSFERRED, previous owner in the event), then again (UNCHANGED)', async () => {
    const token = await createSubscription();
    await registerAndWait(token);
    const moved = await post('/google-play/purchases/transfers', body(token, { cleengCustomerId: 102 }));
    expect(moved.status).toBe(202);
    const first = await waitGoogle(String(moved.body.synchronizationId));
    expect(first.final).toMatchObject({ result: 'PURCHASE_OWNERSHIP_TRANSFERRED', accessGranted: true, offerId: 'S100000001_US' });
    expect(first.event).toMatchObject({ kind: 'transfer', previousCustomerId: 101, cleengCustomerId: 102, ownershipVersion: 2 });
    const again = await post('/google-play/purchases/transfers', body(token, { cleengCustomerId: 102 }));
    expect((await waitGoogle(String(again.body.synchronizationId))).final.result).toBe('PURCHASE_OWNERSHIP_UNCHANGED');
  });

  it('a second register of a token answers 409 GPLAY0300 with the first synchronizationId', async () => {
    const token = await createSubscription();
    const { id } = await registerAndWait(token);
    const again = await post('/google-play/purchases', body(token, { cleengCustomerId: 102 }));
    expectCode(again, 409, 'GPLAY0300');
    expect(again.body.synchronizationId).toBe(id);
  });

  it('under 50 concurrent identical registers exactly one gets 202 and the rest 409 GPLAY0300 carrying its id', async () => {
    const token = await createSubscription();
    const replies = await Promise.all(Array.from({ length: 50 }, () => post('/google-play/purchases', body(token))));
    const accepted = replies.filter((r) => r.status === 202);
    expect(accepted).toHaveLength(1);
    const id = accepted[0]?.body.synchronizationId;
    for (const reply of replies.filter((r) => r.status !== 202)) {
      expect(reply.status).toBe(409);
      expect(reply.body).toMatchObject({ code: 'GPLAY0300', synchronizationId: id });
    }
    await waitGoogle(String(id));
  });

  it.each([
    ['an expired subscription', 'RECEIVED_EXPIRED_PURCHASE', async () => createSubscription({ productId: 'premium_monthly', expiresInSeconds: -60 }), {}],
    ['an unknown token', 'PURCHASE_TOKEN_NOT_FOUND', async () => `unknown.${randomUUID()}`, {}],
    ['a productId that does not match', 'VERIFICATION_FAILED', async () => createSubscription(), { productId: 'premium_yearly' }],
    ['a product without offer', 'OFFER_NOT_MAPPED', async () => createSubscription({ productId: 'not_mapped_sub' }), {}],
  ])('finalizes %s as %s', async (_name, result, make, extra) => {
    const { final } = await registerAndWait(await make(), extra);
    expect(final).toMatchObject({ result, accessGranted: false });
  });

  it.each([
    ['a never synchronized token', 'PURCHASE_NOT_FOUND', async () => createSubscription()],
    [
      'an expired purchase',
      'PURCHASE_NOT_ACTIVE',
      async () => {
        const token = await createSubscription({ productId: 'premium_monthly', expiresInSeconds: 2 });
        await registerAndWait(token);
        await new Promise((r) => setTimeout(r, 2100));
        return token;
      },
    ],
  ])('a transfer of %s finalizes %s (no call to Google)', async (_name, result, make) => {
    const token = await make();
    const reply = await post('/google-play/purchases/transfers', body(token, { cleengCustomerId: 102 }));
    expect((await waitGoogle(String(reply.body.synchronizationId))).final.result).toBe(result);
  });

  it.each([
    ['productType other than subscription', { productType: 'inapp' }, 400, 'GPLAY0004'],
    ['an unknown package name', { packageName: 'com.example.other' }, 422, 'GPLAY0200'],
    ['an unknown customer', { cleengCustomerId: 999 }, 422, 'GPLAY0100'],
    ['a token with a space', { purchaseToken: 'a b' }, 400, 'REQ0001'],
  ])('refuses %s with %s', async (_name, extra, status, code) => {
    expectCode(await post('/google-play/purchases', body('tok.en', extra)), status, code);
  });

  it('a Google synchronization is not visible on the Apple status route', async () => {
    const token = await createSubscription();
    const { id } = await registerAndWait(token);
    expectCode(await api.status(id), 404, 'REQ0100');
  });

  describe('when Google is down or refuses us', () => {
    afterEach(async () => {
      await api.request('DELETE', '/__simulator/faults');
      await api.settled();
    });

    it('shows `retrying`, then finalizes once Google answers', async () => {
      const token = await createSubscription();
      await api.request('POST', '/__simulator/faults', { headers: json, body: { store: 'google', status: 503, count: 2 } });
      const { final, seen } = await registerAndWait(token);
      // The first poll may already find it retrying: the workflow can be quicker than the client.
      expect(seen.filter((status) => status !== 'processing')).toEqual(['retrying', 'finalized']);
      expect(final.result).toBe('PURCHASE_SYNCHRONIZED');
    });

    it('a register after SYNCHRONIZATION_FAILED is accepted again (the claim is released)', async () => {
      const token = await createSubscription();
      await api.request('POST', '/__simulator/faults', { headers: json, body: { store: 'google', status: 500, count: 1000 } });
      const { final } = await registerAndWait(token);
      expect(final.result).toBe('SYNCHRONIZATION_FAILED');
      await api.request('DELETE', '/__simulator/faults');
      expect((await registerAndWait(token)).final.result).toBe('PURCHASE_SYNCHRONIZED');
    });
  });
});
