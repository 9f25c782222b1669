import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import type { Synchronization } from '../../../lambdas/purchases/domain/synchronization';
import { LOCAL_TABLE_NAME } from '../../../local/stack';
import { FaultInjector } from '../../../local/simulator/faults';
import { createGoogleSimulator, type GoogleSimulator, type PushTokenOverrides } from '../../../local/simulator/google-simulator';
import { startTestStack } from '../../support/local-client';

/*
 * The Google Play simulator pushes its Real-time Developer Notifications, with OIDC tokens signed by
 * its own issuer, to the push route of the real local stack (DynamoDB Local, the workflow stand-in).
 * What is asserted: the route's answer and whether the intake recorded and started a refresh
 * synchronization; what the refresh then decides about entitlements is not this test's business.
 *
 * The stack keeps its data on disk (not in memory) for one reason: a second simulator over the same
 * data dir loads the same push signing key, so forged tokens differ from genuine ones only in the
 * claim a case changes.
 */

let env: Awaited<ReturnType<typeof startTestStack>>;
let forger: GoogleSimulator;
let syncs: DynamoDbSynchronizationRepository;

beforeAll(async () => {
  env = await startTestStack({ inMemory: false, fastWaitsMs: 1 });
  forger = await createGoogleSimulator({ dataDir: env.dataDir, inMemory: false }, new FaultInjector());
  syncs = new DynamoDbSynchronizationRepository(createDocumentClient(env.stack.dynamodb.client), LOCAL_TABLE_NAME);
}, 120_000);
afterAll(async () => env?.stop());

const json = { 'content-type': 'application/json' };
const pushUrl = (publisherId: number | string = 1) => `${env.stack.url}/google-play/notifications/${publisherId}`;

interface Listed {
  id: string;
  type: string;
  target: string | null;
  responseStatus: number | null;
  dropped: boolean;
}

async function googleNotifications(): Promise<Listed[]> {
  const listed = await env.client.request('GET', '/__simulator/notifications?store=google');
  expect(listed.status).toBe(200);
  return listed.body.notifications as Listed[];
}

async function createSubscription(): Promise<{ purchaseToken: string; messageId: string }> {
  const reply = await env.client.request('POST', '/__simulator/google/subscriptions', { headers: json, body: { productId: 'premium_monthly' } });
  expect(reply.status).toBe(201);
  const notification = reply.body.notification as { id: string };
  return { purchaseToken: String(reply.body.purchaseToken), messageId: notification.id };
}

/** The refresh synchronizations the intake started for a Pub/Sub message (one workflow execution each). */
async function refreshesOf(messageId: string): Promise<Synchronization[]> {
  const started = [...env.stack.stepFunctions.executions.values()].map((execution) => JSON.parse(execution.input) as { synchronizationId: string; publisherId: number; kind: string; store: string });
  const records = await Promise.all(started.filter((input) => input.kind === 'refresh' && input.store === 'google').map((input) => syncs.get(input)));
  return records.filter((sync): sync is Synchronization => sync?.notice?.id === messageId);
}

/** POSTs the exact body the simulator sent for `messageId`, with `authorization`. */
function repost(messageId: string, authorization: string | undefined, publisherId: number | string = 1) {
  const sent = env.stack.outbox.history('google').find((record) => record.id === messageId);
  if (!sent) throw new Error(`no push ${messageId}`);
  return env.client.request('POST', `/google-play/notifications/${publisherId}`, {
    headers: { ...json, ...(authorization !== undefined ? { authorization } : {}) },
    body: sent.body,
  });
}

const forged = async (overrides: PushTokenOverrides) => `Bearer ${await forger.signPushToken({ aud: pushUrl(), ...overrides })}`;

describe('Google Real-time Developer Notifications from the store simulator, on the local stack', () => {
  it('a new subscription\'s push is answered 200 and starts one refresh synchronization of its token', async () => {
    const { purchaseToken, messageId } = await createSubscription();
    expect((await googleNotifications()).filter((n) => n.id === messageId)).toEqual([
      { id: messageId, store: 'google', type: 'SUBSCRIPTION_PURCHASED', target: pushUrl(), responseStatus: 200, dropped: false },
    ]);
    const refreshes = await refreshesOf(messageId);
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]).toMatchObject({
      publisherId: 1,
      store: 'google',
      kind: 'refresh',
      purchaseToken,
      packageName: 'com.example.iapsync',
      notice: { id: messageId, type: 'SUBSCRIPTION_PURCHASED' },
    });
  });

  it('a redelivery of the same message is answered 200 and starts no second refresh', async () => {
    const { messageId } = await createSubscription();
    expect(await refreshesOf(messageId)).toHaveLength(1);
    const resent = await env.client.request('POST', `/__simulator/notifications/${messageId}/resend`, { headers: json });
    expect(resent.body).toEqual({ id: messageId, responseStatus: 200 });
    expect((await googleNotifications()).filter((n) => n.id === messageId).map((n) => n.responseStatus)).toEqual([200, 200]);
    expect(await refreshesOf(messageId)).toHaveLength(1);
  });

  it('Play Console\'s test notification is answered 200 and starts nothing', async () => {
    const reply = await env.client.request('POST', '/__simulator/google/test-notification', { headers: json, body: {} });
    expect(reply.status).toBe(200);
    const { id, responseStatus } = reply.body.notification as { id: string; responseStatus: number };
    expect(responseStatus).toBe(200);
    expect(await refreshesOf(id)).toEqual([]);
  });

  it.each<[string, () => PushTokenOverrides]>([
    ['another audience', () => ({ aud: pushUrl(2) })],
    ['the https URL while the local API speaks http', () => ({ aud: pushUrl().replace('http:', 'https:') })],
    ['another service account', () => ({ email: 'intruder@evil-project.iam.gserviceaccount.com' })],
    ['email_verified false', () => ({ email_verified: false })],
    ['another issuer', () => ({ iss: 'https://issuer.example.com' })],
    ['an expiry an hour ago', () => ({ exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 })],
  ])('a push whose token has %s is 401 AUTH0002 and starts nothing', async (_name, overrides) => {
    const { messageId } = await createSubscription();
    const before = (await refreshesOf(messageId)).length;
    const reply = await repost(messageId, await forged(overrides()));
    expect(reply.status).toBe(401);
    expect(reply.body).toMatchObject({ code: 'AUTH0002' });
    expect(await refreshesOf(messageId)).toHaveLength(before);
  });

  it('a push without a token is 401, and the forger\'s genuine token passes (so the forgeries fail for their claim alone)', async () => {
    const { messageId } = await createSubscription();
    expect((await repost(messageId, undefined)).body).toMatchObject({ code: 'AUTH0002' });
    const genuine = await repost(messageId, await forged({}));
    expect(genuine.status).toBe(200);
    expect(await refreshesOf(messageId)).toHaveLength(1);
  });

  it('a genuine push to a publisher the service does not know is 400 NOTIF0001', async () => {
    const { messageId } = await createSubscription();
    const reply = await repost(messageId, `Bearer ${await forger.signPushToken({ aud: pushUrl(99) })}`, 99);
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ code: 'NOTIF0001' });
  });
});
