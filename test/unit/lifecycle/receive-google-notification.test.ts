import { generateKeyPair } from 'jose';
import { DependencyUnavailableError, StoreUnavailableError } from '../../../lambdas/platform/errors';
import { makeReceiveGoogleNotificationHandler, MAX_PUSH_BODY_BYTES } from '../../../lambdas/lifecycle/handlers/receive-google-notification';
import type { GooglePushTokenVerifier } from '../../../lambdas/lifecycle/ports';
import { JosePushTokenVerifier } from '../../../lambdas/stores/google/adapters/push-token-verifier';
import { GOOGLE_VOIDED_NOTICE_TYPE } from '../../../lambdas/stores/google/notice-types';
import type { VerifiedPushToken } from '../../../lambdas/stores/google/notifications';
import { apiEvent, testContext } from '../../support/api-events';
import { FakeNoticeIntake, FakePublisherRepository, RecordingLogger } from '../../support/fakes';
import { answer, type Answer } from './apple-notification-fixtures';
import {
  base64Json,
  developerNotification,
  EVENT_TIME_MILLIS,
  googleConfig,
  googlePublisher,
  newPushSigner,
  PACKAGE_NAME,
  PUSH_SERVICE_ACCOUNT,
  pushBody,
  signToken,
  subscriptionNotification,
  type PushSigner,
} from './google-notification-fixtures';

/*
 * The handler with the real jose verifier over tokens signed by a key of our own (its key set
 * stands in for Google's); only the publisher table and the intake are fakes.
 */

const WITH_PUSH = 7;
const WITH_AUDIENCE = 8;
const WITHOUT_PUSH = 9;
const WITHOUT_GOOGLE = 10;
const UNKNOWN = 99;
const DOMAIN = 'iap.example.com';
const CUSTOM_AUDIENCE = 'https://push.example.com/rtdn';
const EVENT_TIME = new Date(Number(EVENT_TIME_MILLIS)).toISOString();
const ROUTE_KEY = 'POST /google-play/notifications/{publisherId}';

/** The URL Pub/Sub pushes to for a publisher, and so the default audience of its tokens. */
const endpoint = (publisherId: number | string, protocol = 'https') => `${protocol}://${DOMAIN}/google-play/notifications/${publisherId}`;

let signer: PushSigner;
beforeAll(async () => {
  signer = await newPushSigner();
});

interface Post {
  body: string;
  publisherId?: number | string;
  /** Replaces the Authorization header; undefined sends none. Default: a genuine token for the endpoint. */
  authorization?: string | undefined;
  headers?: Record<string, string>;
  base64?: boolean;
  /** The raw query string of the push endpoint, without `?`. */
  query?: string;
}

function setup(options: { tokens?: GooglePushTokenVerifier } = {}) {
  const publishers = new FakePublisherRepository([
    googlePublisher(WITH_PUSH, googleConfig()),
    googlePublisher(WITH_AUDIENCE, googleConfig({ push: { serviceAccountEmail: PUSH_SERVICE_ACCOUNT, audience: CUSTOM_AUDIENCE } })),
    googlePublisher(WITHOUT_PUSH, googleConfig({ push: undefined })),
    googlePublisher(WITHOUT_GOOGLE, undefined),
  ]);
  const intake = new FakeNoticeIntake();
  const logger = new RecordingLogger();
  const tokens = options.tokens ?? new JosePushTokenVerifier({ jwksUrl: 'https://unused.invalid/certs', keys: signer.keys });
  const handler = makeReceiveGoogleNotificationHandler({ publishers, tokens, intake, logger });
  const post = async (request: Post): Promise<Answer> => {
    const publisherId = String(request.publisherId ?? WITH_PUSH);
    const authorization = 'authorization' in request ? request.authorization : `Bearer ${await signer.sign(endpoint(publisherId))}`;
    const event = apiEvent({
      path: `/google-play/notifications/${publisherId}`,
      routeKey: ROUTE_KEY,
      pathParameters: { publisherId },
      headers: {
        'content-type': 'application/json',
        'x-forwarded-proto': 'https',
        ...(authorization !== undefined ? { authorization } : {}),
        ...request.headers,
      },
      body: request.base64 ? Buffer.from(request.body).toString('base64') : request.body,
    });
    const withDomain = {
      ...event,
      rawQueryString: request.query ?? '',
      requestContext: { ...event.requestContext, domainName: DOMAIN },
      isBase64Encoded: request.base64 ?? false,
    };
    return answer(await handler(withDomain, testContext));
  };
  return { post, publishers, intake, logger };
}

/** A push of a SUBSCRIPTION_RENEWED notification (code 2) for the default package. */
const renewal = (messageId = '1234567890123456') => pushBody(base64Json(developerNotification(subscriptionNotification(2, 'renewed-token'))), messageId);
const bearer = async (overrides: Record<string, unknown> = {}, aud: string | string[] = endpoint(WITH_PUSH)) => `Bearer ${await signer.sign(aud, overrides)}`;

describe('POST /google-play/notifications/{publisherId} (Google)', () => {
  it('hands a subscription notification to the intake and answers 200 {}', async () => {
    const { post, intake } = setup();
    const res = await post({ body: renewal('4455667788') });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(res.headers['x-request-id']).toBe(testContext.awsRequestId);
    expect(intake.notices).toEqual([
      {
        publisherId: WITH_PUSH,
        store: 'google',
        notificationId: '4455667788',
        notificationType: 'SUBSCRIPTION_RENEWED',
        purchaseKey: 'renewed-token',
        packageName: PACKAGE_NAME,
        sentAt: EVENT_TIME,
      },
    ]);
  });

  it('hands a voided subscription on as VOIDED_PURCHASE with the order id as subtype', async () => {
    const { post, intake } = setup();
    const voided = developerNotification({ voidedPurchaseNotification: { purchaseToken: 'voided-token', orderId: 'GPA.1234-5678-9012-34567..1', productType: 1, refundType: 1 } });
    expect((await post({ body: pushBody(base64Json(voided), '777') })).status).toBe(200);
    expect(intake.notices).toEqual([
      {
        publisherId: WITH_PUSH,
        store: 'google',
        notificationId: '777',
        notificationType: GOOGLE_VOIDED_NOTICE_TYPE,
        subtype: 'GPA.1234-5678-9012-34567..1',
        purchaseKey: 'voided-token',
        packageName: PACKAGE_NAME,
        sentAt: EVENT_TIME,
      },
    ]);
  });

  it('answers a redelivered message 200 too, after the intake found it a duplicate', async () => {
    const { post, intake, logger } = setup();
    expect((await post({ body: renewal('42') })).status).toBe(200);
    expect(await post({ body: renewal('42') })).toMatchObject({ status: 200, body: {} });
    expect(intake.outcomes).toEqual(['accepted', 'duplicate']);
    expect(logger.entries.map((e) => e.message)).toEqual(['google notification accepted', 'google notification already received']);
  });

  it.each([
    ['a test notification', { testNotification: { version: '1.0' } }, 'google test notification received'],
    ['a one-time product notification', { oneTimeProductNotification: { version: '1.0', notificationType: 1, purchaseToken: 'o', sku: 'coins' } }, 'google one-time product notification ignored'],
    ['a voided one-time purchase', { voidedPurchaseNotification: { purchaseToken: 'o', orderId: 'GPA.1', productType: 2, refundType: 1 } }, 'google voided purchase of a one-time product ignored'],
    ['a kind Google added later', { futureNotification: { version: '1.0' } }, 'google notification of an unknown kind ignored'],
  ])('answers 200 to %s and only logs it', async (_name, kind, message) => {
    const { post, intake, logger } = setup();
    const res = await post({ body: pushBody(base64Json(developerNotification(kind)), '31337') });
    expect(res).toMatchObject({ status: 200, body: {} });
    expect(intake.notices).toEqual([]);
    expect(logger.entries).toEqual([
      expect.objectContaining({ level: 'info', message, fields: expect.objectContaining({ publisherId: WITH_PUSH, notificationId: '31337', packageName: PACKAGE_NAME }) }),
    ]);
  });

  it('reads message_id and publish_time, and dates the notice by publishTime when Google sent no eventTimeMillis', async () => {
    const { post, intake } = setup();
    const data = base64Json(developerNotification(subscriptionNotification(4), { eventTimeMillis: undefined }));
    const body = JSON.stringify({ message: { data, message_id: '555', publish_time: '2026-12-07T10:00:05.123Z' }, subscription: 'projects/p/subscriptions/s' });
    expect((await post({ body })).status).toBe(200);
    expect(intake.notices[0]).toMatchObject({ notificationId: '555', notificationType: 'SUBSCRIPTION_PURCHASED', sentAt: '2026-12-07T10:00:05.123Z' });
  });

  it('dates the notice by its arrival when neither Google nor Pub/Sub dated it', async () => {
    const { post, intake } = setup();
    const data = base64Json(developerNotification(subscriptionNotification(4), { eventTimeMillis: undefined }));
    const before = Date.now();
    expect((await post({ body: JSON.stringify({ message: { data, messageId: '556', publishTime: 'not a time' } }) })).status).toBe(200);
    expect(Date.parse(intake.notices[0]?.sentAt ?? '')).toBeGreaterThanOrEqual(before);
  });

  it('takes the publisher from the path and ignores X-Publisher-Id', async () => {
    const { post, intake, publishers } = setup();
    const res = await post({ body: renewal(), headers: { 'x-publisher-id': String(WITHOUT_GOOGLE) } });
    expect(res.status).toBe(200);
    expect(publishers.lookups).toEqual([WITH_PUSH]);
    expect(intake.notices[0]?.publisherId).toBe(WITH_PUSH);
  });

  it('reads a base64-encoded body without Content-Type, with fields Pub/Sub may add', async () => {
    const { post, intake } = setup();
    const body = JSON.stringify({ ...JSON.parse(renewal()), deliveryAttempt: 3, extra: 'x'.repeat(20 * 1024) });
    expect((await post({ body, base64: true, headers: { 'content-type': '' } })).status).toBe(200);
    expect(intake.notices).toHaveLength(1);
  });

  it.each([
    ['the service account in other letter case', { email: PUSH_SERVICE_ACCOUNT.toUpperCase() }, endpoint(WITH_PUSH)],
    ['several audiences, the endpoint among them', {}, ['https://elsewhere.example.com', endpoint(WITH_PUSH)]],
    ['a "bearer" scheme in lower case', {}, endpoint(WITH_PUSH)],
  ])('accepts a token with %s', async (name, overrides, aud) => {
    const { post, intake } = setup();
    const token = await signer.sign(aud, overrides);
    const scheme = name.includes('lower case') ? 'bearer' : 'Bearer';
    expect((await post({ body: renewal(), authorization: `${scheme} ${token}` })).status).toBe(200);
    expect(intake.notices).toHaveLength(1);
  });

  it('expects the configured audience instead of the endpoint URL when the publisher set one', async () => {
    const { post, intake } = setup();
    expect((await post({ body: renewal('1'), publisherId: WITH_AUDIENCE, authorization: await bearer({}, CUSTOM_AUDIENCE) })).status).toBe(200);
    const refused = await post({ body: renewal('2'), publisherId: WITH_AUDIENCE, authorization: await bearer({}, endpoint(WITH_AUDIENCE)) });
    expect(refused).toMatchObject({ status: 401, body: { code: 'AUTH0002' } });
    expect(intake.notices.map((n) => n.notificationId)).toEqual(['1']);
  });

  it('builds the endpoint URL from X-Forwarded-Proto (https unless it says http) and the query string', async () => {
    const { post } = setup();
    const http = await bearer({}, endpoint(WITH_PUSH, 'http'));
    expect((await post({ body: renewal('1'), authorization: http, headers: { 'x-forwarded-proto': 'http' } })).status).toBe(200);
    expect((await post({ body: renewal('2'), authorization: http })).status).toBe(401);
    expect((await post({ body: renewal('3'), authorization: await bearer(), headers: { 'x-forwarded-proto': 'gopher' } })).status).toBe(200);
    const withQuery = await bearer({}, `${endpoint(WITH_PUSH)}?source=pubsub`);
    expect((await post({ body: renewal('4'), authorization: withQuery, query: 'source=pubsub' })).status).toBe(200);
    expect((await post({ body: renewal('5'), authorization: withQuery })).status).toBe(401);
  });

  interface BadCase {
    name: string;
    input: () => Promise<Post>;
    status: number;
    code: string;
    /** What the refusal log says, when the use case decided. */
    reason?: string;
  }
  const unauthenticated: BadCase[] = [
    { name: 'no Authorization header', input: async () => ({ body: renewal(), authorization: undefined }), status: 401, code: 'AUTH0002', reason: 'no Bearer token in Authorization' },
    { name: 'a Basic Authorization header', input: async () => ({ body: renewal(), authorization: 'Basic dXNlcjpwYXNz' }), status: 401, code: 'AUTH0002', reason: 'no Bearer token in Authorization' },
    { name: 'a Bearer value that is not a JWT', input: async () => ({ body: renewal(), authorization: 'Bearer not-a-jwt' }), status: 401, code: 'AUTH0002' },
    {
      name: 'a token signed by another key',
      input: async () => {
        const { privateKey } = await generateKeyPair('RS256');
        const claims = JSON.parse(Buffer.from((await signer.sign(endpoint(WITH_PUSH))).split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
        return { body: renewal(), authorization: `Bearer ${await signToken(privateKey, signer.kid, claims)}` };
      },
      status: 401,
      code: 'AUTH0002',
    },
    { name: 'an expired token', input: async () => ({ body: renewal(), authorization: await bearer({ exp: Math.floor(Date.now() / 1000) - 600 }) }), status: 401, code: 'AUTH0002' },
    { name: 'another issuer', input: async () => ({ body: renewal(), authorization: await bearer({ iss: 'https://accounts.example.com' }) }), status: 401, code: 'AUTH0002' },
    { name: 'email_verified false', input: async () => ({ body: renewal(), authorization: await bearer({ email_verified: false }) }), status: 401, code: 'AUTH0002', reason: 'email_verified is not true' },
    { name: 'another service account', input: async () => ({ body: renewal(), authorization: await bearer({ email: 'someone@evil-project.iam.gserviceaccount.com' }) }), status: 401, code: 'AUTH0002', reason: 'email is not the configured push service account' },
    { name: 'another audience', input: async () => ({ body: renewal(), authorization: await bearer({}, 'https://iap.example.com/google-play/notifications/8') }), status: 401, code: 'AUTH0002', reason: 'aud is not the expected audience' },
    { name: 'no audience', input: async () => ({ body: renewal(), authorization: await bearer({ aud: null }) }), status: 401, code: 'AUTH0002', reason: 'aud is not the expected audience' },
  ];
  const unverifiable: BadCase[] = [
    { name: 'an unknown publisher', input: async () => ({ body: renewal(), publisherId: UNKNOWN }), status: 400, code: 'NOTIF0001', reason: 'unknown publisher' },
    { name: 'a publisher id that is not a number', input: async () => ({ body: renewal(), publisherId: 'abc' }), status: 400, code: 'NOTIF0001', reason: 'publisher id in the path is not a positive int32' },
    { name: 'publisher id 0', input: async () => ({ body: renewal(), publisherId: '0' }), status: 400, code: 'NOTIF0001', reason: 'publisher id in the path is not a positive int32' },
    { name: 'a publisher without Google configuration', input: async () => ({ body: renewal(), publisherId: WITHOUT_GOOGLE }), status: 400, code: 'NOTIF0001', reason: 'publisher has no Google configuration' },
    { name: 'data that is not base64', input: async () => ({ body: pushBody('%%% not base64 %%%') }), status: 400, code: 'NOTIF0001', reason: 'message.data is not base64' },
    { name: 'data that is not JSON', input: async () => ({ body: pushBody(Buffer.from('<xml/>').toString('base64')) }), status: 400, code: 'NOTIF0001', reason: 'message.data is not JSON' },
    { name: 'data that is not a DeveloperNotification', input: async () => ({ body: pushBody(base64Json({ hello: 'world' })) }), status: 400, code: 'NOTIF0001' },
    { name: 'a package name the publisher has not configured', input: async () => ({ body: pushBody(base64Json(developerNotification(subscriptionNotification(2), { packageName: 'com.other.app' }))) }), status: 400, code: 'NOTIF0001', reason: 'package name not configured for this publisher' },
  ];
  const malformed: BadCase[] = [
    { name: 'a body that is not JSON', input: async () => ({ body: '{"message":' }), status: 400, code: 'REQ0001' },
    { name: 'an empty body', input: async () => ({ body: '' }), status: 400, code: 'REQ0001' },
    { name: 'a JSON array', input: async () => ({ body: '[]' }), status: 400, code: 'REQ0001' },
    { name: 'no message', input: async () => ({ body: '{"subscription":"s"}' }), status: 400, code: 'REQ0001' },
    { name: 'a message without data', input: async () => ({ body: '{"message":{"messageId":"1"}}' }), status: 400, code: 'REQ0001' },
    { name: 'data that is not a string', input: async () => ({ body: '{"message":{"data":42,"messageId":"1"}}' }), status: 400, code: 'REQ0001' },
    { name: 'empty data', input: async () => ({ body: '{"message":{"data":"","messageId":"1"}}' }), status: 400, code: 'REQ0001' },
    { name: 'a message without messageId', input: async () => ({ body: '{"message":{"data":"e30="}}' }), status: 400, code: 'REQ0001' },
    { name: 'a messageId that is not a string', input: async () => ({ body: '{"message":{"data":"e30=","messageId":7}}' }), status: 400, code: 'REQ0001' },
    { name: 'a body above 64 KiB', input: async () => ({ body: pushBody('x'.repeat(MAX_PUSH_BODY_BYTES)) }), status: 413, code: 'REQ0006' },
  ];

  it.each([...unauthenticated, ...unverifiable, ...malformed])('$name → $status $code, nothing handed on', async ({ input, status, code, reason }) => {
    const { post, intake, logger } = setup();
    const res = await post(await input());
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ code, message: expect.any(String) });
    expect(intake.notices).toEqual([]);
    if (reason !== undefined) {
      const message = code === 'AUTH0002' ? 'google push refused' : 'google notification rejected';
      expect(logger.entries).toContainEqual(expect.objectContaining({ level: 'warn', message, fields: expect.objectContaining({ reason }) }));
    }
  });

  it('accepts the push the refused cases start from, so they fail for their defect alone', async () => {
    const { post, intake } = setup();
    expect((await post({ body: renewal(), authorization: await bearer() })).status).toBe(200);
    expect(intake.notices).toHaveLength(1);
  });

  it('refuses a publisher without push settings with 401, and logs what to configure', async () => {
    const { post, intake, logger } = setup();
    const res = await post({ body: renewal(), publisherId: WITHOUT_PUSH });
    expect(res).toMatchObject({ status: 401, body: { code: 'AUTH0002' } });
    expect(intake.notices).toEqual([]);
    expect(logger.entries).toEqual([
      expect.objectContaining({ level: 'warn', message: expect.stringContaining('--push-service-account'), fields: { publisherId: WITHOUT_PUSH, messageId: '1234567890123456' } }),
    ]);
  });

  it.each([
    ['an unknown publisher', UNKNOWN],
    ['a publisher without Google configuration', WITHOUT_GOOGLE],
    ['a publisher id that is not a number', 'abc'],
  ])('checks the token first: without one, %s is 401 like any other, and no publisher is looked up', async (_name, publisherId) => {
    const { post, publishers } = setup();
    const res = await post({ body: renewal(), publisherId, authorization: undefined });
    expect(res).toMatchObject({ status: 401, body: { code: 'AUTH0002' } });
    expect(publishers.lookups).toEqual([]);
  });

  it('checks the body before the token: a malformed body is 400 REQ0001 without any token', async () => {
    const { post } = setup();
    expect(await post({ body: '{}', authorization: undefined })).toMatchObject({ status: 400, body: { code: 'REQ0001' } });
  });

  it('checks the token and the publisher before the data: bad data with a bad token is 401', async () => {
    const { post } = setup();
    expect(await post({ body: pushBody('%%%'), authorization: await bearer({ email_verified: false }) })).toMatchObject({ status: 401 });
  });

  it('never writes the token or the data to the logs', async () => {
    const { post, logger } = setup();
    const token = await signer.sign(endpoint(WITH_PUSH));
    const body = renewal();
    await post({ body, authorization: `Bearer ${token}` });
    await post({ body, authorization: `Bearer ${await signer.sign(endpoint(WITH_PUSH), { email: 'x@y.z' })}` });
    const logged = JSON.stringify(logger.entries);
    expect(logged).not.toContain(token.split('.')[1]);
    expect(logged).not.toContain((JSON.parse(body) as { message: { data: string } }).message.data);
    expect(logged).not.toContain('renewed-token');
  });

  it('answers 503 S0002 when Google\'s keys cannot be fetched, so Pub/Sub retries', async () => {
    class UnavailableKeys implements GooglePushTokenVerifier {
      async verify(): Promise<VerifiedPushToken> {
        throw new StoreUnavailableError('JWKS timeout');
      }
    }
    const { post, intake, publishers } = setup({ tokens: new UnavailableKeys() });
    expect(await post({ body: renewal() })).toMatchObject({ status: 503, body: { code: 'S0002' } });
    expect(intake.notices).toEqual([]);
    expect(publishers.lookups).toEqual([]);
  });

  it('answers 503 S0002 when the intake cannot record the notice', async () => {
    const { post, intake } = setup();
    intake.failure = new DependencyUnavailableError('table unavailable');
    expect(await post({ body: renewal() })).toMatchObject({ status: 503, body: { code: 'S0002' } });
  });

  it('answers 503 S0002 when the publisher cannot be read', async () => {
    const { post, publishers, intake } = setup();
    publishers.failure = new DependencyUnavailableError('table unavailable');
    expect(await post({ body: renewal() })).toMatchObject({ status: 503, body: { code: 'S0002' } });
    expect(intake.notices).toEqual([]);
  });

  it('answers 500 S0001 to an unexpected failure (Pub/Sub retries that too)', async () => {
    const { post, intake } = setup();
    intake.failure = new Error('bug');
    expect(await post({ body: renewal() })).toMatchObject({ status: 500, body: { code: 'S0001' } });
  });
});
