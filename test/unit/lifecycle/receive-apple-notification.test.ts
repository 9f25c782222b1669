import { DependencyUnavailableError, StoreUnavailableError } from '../../../lambdas/platform/errors';
import { makeReceiveAppleNotificationHandler, MAX_NOTIFICATION_BODY_BYTES } from '../../../lambdas/lifecycle/handlers/receive-apple-notification';
import type { AppleNotificationVerifier } from '../../../lambdas/lifecycle/ports';
import { AppleNotificationDecoder, type DecodedAppleNotification } from '../../../lambdas/stores/apple/notifications';
import type { ApplePki } from '../../../local/simulator/apple-pki';
import { apiEvent, testContext } from '../../support/api-events';
import {
  answer,
  appleConfig,
  FakePublishers,
  newPki,
  notificationBody,
  notificationPayload,
  publisher,
  RecordingIntake,
  RecordingLogger,
  signedOutsideTheChain,
  tamperedPayload,
  transactionPayload,
  type Answer,
} from './apple-notification-fixtures';

/*
 * The handler with Apple's real SignedDataVerifier over payloads signed by the simulator's chain;
 * only the publisher table and the intake are fakes.
 */

const SANDBOX_ONLY = 7;
const WITHOUT_APPLE = 8;
const BOTH_ENVIRONMENTS = 9;
const PRODUCTION_ONLY = 10;
const PRODUCTION_WITHOUT_APP_ID = 11;

let pki: ApplePki;
/** Another chain with its own root, which the service does not trust. */
let untrusted: ApplePki;

beforeAll(async () => {
  [pki, untrusted] = await Promise.all([newPki(), newPki()]);
});

function setup(options: { decoder?: AppleNotificationVerifier } = {}) {
  const publishers = new FakePublishers([
    publisher(SANDBOX_ONLY, appleConfig({ environments: ['Sandbox'] })),
    publisher(WITHOUT_APPLE, undefined),
    publisher(BOTH_ENVIRONMENTS, appleConfig({ environments: ['Production', 'Sandbox'] })),
    publisher(PRODUCTION_ONLY, appleConfig({ environments: ['Production'] })),
    publisher(PRODUCTION_WITHOUT_APP_ID, appleConfig({ environments: ['Production'], appAppleId: undefined })),
  ]);
  const intake = new RecordingIntake();
  const logger = new RecordingLogger();
  const decoder = options.decoder ?? new AppleNotificationDecoder({ rootCertificates: [pki.rootCertificateDer], onlineChecks: false });
  const handler = makeReceiveAppleNotificationHandler({ publishers, decoder, intake, logger });
  const post = async (body: string | undefined, publisherId = String(SANDBOX_ONLY), headers: Record<string, string> = { 'content-type': 'application/json' }, base64 = false): Promise<Answer> => {
    const event = apiEvent({
      path: `/storekit2/notifications/${publisherId}`,
      routeKey: 'POST /storekit2/notifications/{publisherId}',
      pathParameters: { publisherId },
      headers,
      ...(body !== undefined ? { body: base64 ? Buffer.from(body).toString('base64') : body } : {}),
    });
    return answer(await handler({ ...event, isBase64Encoded: base64 }, testContext));
  };
  return { post, publishers, intake, logger };
}

/** A genuine notification body for the Sandbox-only publisher unless the claims say otherwise. */
function genuine(claims: Parameters<typeof notificationPayload>[1] = {}): string {
  return notificationBody(pki.signJws(notificationPayload(pki, claims)));
}

describe('POST /storekit2/notifications/{publisherId} (Apple)', () => {
  it('hands a verified notification to the intake and answers 200 {}', async () => {
    const { post, intake } = setup();
    // Within the chain's validity: without online checks, Apple's verifier checks the certificates at signedDate.
    const signedDate = Date.now() - 60_000;
    const transaction = pki.signJws(transactionPayload({ transactionId: '2000000000000042', originalTransactionId: '2000000000000001', signedDate }));
    const res = await post(genuine({ notificationType: 'DID_RENEW', subtype: 'BILLING_RECOVERY', notificationUUID: 'c0ffee00-1111-4222-8333-444455556666', signedDate, signedTransactionInfo: transaction }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(res.headers['x-request-id']).toBe(testContext.awsRequestId);
    expect(intake.notices).toEqual([
      {
        publisherId: SANDBOX_ONLY,
        store: 'apple',
        notificationId: 'c0ffee00-1111-4222-8333-444455556666',
        notificationType: 'DID_RENEW',
        subtype: 'BILLING_RECOVERY',
        purchaseKey: '2000000000000001',
        transactionId: '2000000000000042',
        sentAt: new Date(signedDate).toISOString(),
      },
    ]);
  });

  it('answers a resent notification 200 too, after the intake found it a duplicate', async () => {
    const { post, intake, logger } = setup();
    const body = genuine();
    expect((await post(body)).status).toBe(200);
    const again = await post(body);
    expect(again).toMatchObject({ status: 200, body: {} });
    expect(intake.outcomes).toEqual(['accepted', 'duplicate']);
    expect(logger.entries.map((e) => e.message)).toEqual(['apple notification accepted', 'apple notification already received']);
  });

  it('omits subtype when Apple sends none, and keys a purchase without originalTransactionId by its transactionId', async () => {
    const { post, intake } = setup();
    const transaction = pki.signJws(transactionPayload({ transactionId: '2000000000000077', originalTransactionId: undefined }));
    expect((await post(genuine({ notificationType: 'ONE_TIME_CHARGE', signedTransactionInfo: transaction }))).status).toBe(200);
    expect(intake.notices[0]).toMatchObject({ notificationType: 'ONE_TIME_CHARGE', purchaseKey: '2000000000000077', transactionId: '2000000000000077' });
    expect(intake.notices[0]).not.toHaveProperty('subtype');
  });

  it.each([
    ['a Production notification', BOTH_ENVIRONMENTS, 'Production'],
    ['a Sandbox notification (after the Production verifier refused it)', BOTH_ENVIRONMENTS, 'Sandbox'],
    ['a Production notification', PRODUCTION_ONLY, 'Production'],
  ] as const)('accepts %s for publisher %i', async (_name, publisherId, environment) => {
    const { post, intake } = setup();
    const res = await post(genuine({ environment }), String(publisherId));
    expect(res.status).toBe(200);
    expect(intake.notices).toHaveLength(1);
    expect(intake.notices[0]?.publisherId).toBe(publisherId);
  });

  it('takes the publisher from the path and ignores X-Publisher-Id', async () => {
    const { post, intake, publishers } = setup();
    const res = await post(genuine(), String(SANDBOX_ONLY), { 'content-type': 'application/json', 'x-publisher-id': String(WITHOUT_APPLE) });
    expect(res.status).toBe(200);
    expect(publishers.lookups).toEqual([SANDBOX_ONLY]);
    expect(intake.notices[0]?.publisherId).toBe(SANDBOX_ONLY);
  });

  it('reads a body above the shared 16 KiB limit, with fields Apple may add, without a Content-Type, base64-encoded', async () => {
    const { post, intake } = setup();
    const signedPayload = pki.signJws(notificationPayload(pki));
    const body = JSON.stringify({ signedPayload, addedByApple: 'x'.repeat(20 * 1024) });
    expect(Buffer.byteLength(body)).toBeGreaterThan(16 * 1024);
    expect((await post(body, String(SANDBOX_ONLY), {}, true)).status).toBe(200);
    expect(intake.notices).toHaveLength(1);
  });

  it('answers 200 to a TEST notification and only logs it', async () => {
    const { post, intake, logger } = setup();
    const res = await post(genuine({ notificationType: 'TEST', signedTransactionInfo: null, notificationUUID: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee' }));
    expect(res).toMatchObject({ status: 200, body: {} });
    expect(intake.notices).toEqual([]);
    expect(logger.entries).toEqual([
      expect.objectContaining({ level: 'info', message: 'apple test notification received', fields: expect.objectContaining({ publisherId: SANDBOX_ONLY, notificationId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', environment: 'Sandbox' }) }),
    ]);
  });

  it.each([
    ['data without signedTransactionInfo', { notificationType: 'CONSUMPTION_REQUEST', signedTransactionInfo: null }],
    ['a summary instead of data', { notificationType: 'RENEWAL_EXTENSION', subtype: 'SUMMARY', summary: true }],
  ])('answers 200 to a notification with %s and only logs it', async (_name, claims) => {
    const { post, intake, logger } = setup();
    expect((await post(genuine(claims))).status).toBe(200);
    expect(intake.notices).toEqual([]);
    expect(logger.entries.map((e) => e.message)).toEqual(['apple notification without a transaction ignored']);
  });

  interface BadCase {
    name: string;
    input: () => { body: string; publisherId?: string };
    status: number;
    code: string;
    /** What the rejection log says, when the decoder or the use case decided. */
    reason?: string;
  }
  const bad: BadCase[] = [
    { name: 'a body that is not JSON', input: () => ({ body: '{"signedPayload":' }), status: 400, code: 'REQ0001' },
    { name: 'a JSON array', input: () => ({ body: '[]' }), status: 400, code: 'REQ0001' },
    { name: 'no signedPayload', input: () => ({ body: '{}' }), status: 400, code: 'REQ0001' },
    { name: 'a signedPayload that is not a string', input: () => ({ body: '{"signedPayload":42}' }), status: 400, code: 'REQ0001' },
    { name: 'an empty signedPayload', input: () => ({ body: '{"signedPayload":""}' }), status: 400, code: 'REQ0001' },
    { name: 'an empty body', input: () => ({ body: '' }), status: 400, code: 'REQ0001' },
    { name: 'a body above 64 KiB', input: () => ({ body: JSON.stringify({ signedPayload: 'x'.repeat(MAX_NOTIFICATION_BODY_BYTES) }) }), status: 413, code: 'REQ0006' },
    { name: 'a signedPayload that is not a JWS', input: () => ({ body: notificationBody('not-a-jws') }), status: 400, code: 'NOTIF0001', reason: 'Sandbox: VERIFICATION_FAILURE' },
    { name: 'an unknown publisher', input: () => ({ body: genuine(), publisherId: '99' }), status: 400, code: 'NOTIF0001', reason: 'unknown publisher' },
    { name: 'a publisher id that is not a number', input: () => ({ body: genuine(), publisherId: 'abc' }), status: 400, code: 'NOTIF0001', reason: 'publisher id in the path is not a positive int32' },
    { name: 'publisher id 0', input: () => ({ body: genuine(), publisherId: '0' }), status: 400, code: 'NOTIF0001', reason: 'publisher id in the path is not a positive int32' },
    { name: 'a publisher id above int32', input: () => ({ body: genuine(), publisherId: '2147483648' }), status: 400, code: 'NOTIF0001', reason: 'publisher id in the path is not a positive int32' },
    { name: 'a publisher without Apple configuration', input: () => ({ body: genuine(), publisherId: String(WITHOUT_APPLE) }), status: 400, code: 'NOTIF0001', reason: 'publisher has no Apple configuration' },
    { name: 'another bundle id', input: () => ({ body: genuine({ bundleId: 'com.other.app' }) }), status: 400, code: 'NOTIF0001', reason: 'Sandbox: INVALID_APP_IDENTIFIER' },
    { name: 'another appAppleId in Production', input: () => ({ body: genuine({ environment: 'Production', appAppleId: 42 }), publisherId: String(PRODUCTION_ONLY) }), status: 400, code: 'NOTIF0001', reason: 'Production: INVALID_APP_IDENTIFIER' },
    { name: 'Production, not configured (Sandbox only)', input: () => ({ body: genuine({ environment: 'Production' }) }), status: 400, code: 'NOTIF0001', reason: 'Sandbox: INVALID_ENVIRONMENT' },
    { name: 'Sandbox, not configured (Production only)', input: () => ({ body: genuine({ environment: 'Sandbox' }), publisherId: String(PRODUCTION_ONLY) }), status: 400, code: 'NOTIF0001', reason: 'Production: INVALID_ENVIRONMENT' },
    { name: 'Production for a publisher without appAppleId', input: () => ({ body: genuine({ environment: 'Production' }), publisherId: String(PRODUCTION_WITHOUT_APP_ID) }), status: 400, code: 'NOTIF0001', reason: 'Production: appAppleId is not configured' },
    { name: 'a forged signature (key outside the chain)', input: () => ({ body: notificationBody(signedOutsideTheChain(pki.signJws(notificationPayload(pki)))) }), status: 400, code: 'NOTIF0001', reason: 'Sandbox: VERIFICATION_FAILURE' },
    { name: 'a payload changed after signing', input: () => ({ body: notificationBody(tamperedPayload(pki.signJws(notificationPayload(pki)), (p) => (p.notificationType = 'REFUND'))) }), status: 400, code: 'NOTIF0001', reason: 'Sandbox: VERIFICATION_FAILURE' },
    { name: 'a chain to an untrusted root', input: () => ({ body: notificationBody(untrusted.signJws(notificationPayload(untrusted))) }), status: 400, code: 'NOTIF0001', reason: 'Sandbox: VERIFICATION_FAILURE' },
    { name: 'a genuine notification carrying a transaction of another app', input: () => ({ body: genuine({ signedTransactionInfo: pki.signJws(transactionPayload({ bundleId: 'com.other.app' })) }) }), status: 400, code: 'NOTIF0001', reason: 'signedTransactionInfo: INVALID_APP_IDENTIFIER' },
    { name: 'a genuine notification carrying a transaction of another environment', input: () => ({ body: genuine({ signedTransactionInfo: pki.signJws(transactionPayload({ environment: 'Production' })) }) }), status: 400, code: 'NOTIF0001', reason: 'signedTransactionInfo: INVALID_ENVIRONMENT' },
    { name: 'a genuine notification carrying a transaction from an untrusted chain', input: () => ({ body: genuine({ signedTransactionInfo: untrusted.signJws(transactionPayload()) }) }), status: 400, code: 'NOTIF0001', reason: 'signedTransactionInfo: VERIFICATION_FAILURE' },
  ];

  it.each(bad)('$name → $status $code, nothing handed on', async ({ input, status, code, reason }) => {
    const { post, intake, logger } = setup();
    const { body, publisherId } = input();
    const res = await post(body, publisherId);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ code, message: expect.any(String) });
    expect(intake.notices).toEqual([]);
    if (reason !== undefined) {
      expect(logger.entries).toContainEqual(expect.objectContaining({ level: 'warn', message: 'apple notification rejected', fields: expect.objectContaining({ reason }) }));
    }
  });

  it('accepts the payload the forged cases start from, so they fail for their forgery alone', async () => {
    const { post, intake } = setup();
    expect((await post(notificationBody(pki.signJws(notificationPayload(pki))))).status).toBe(200);
    expect(intake.notices).toHaveLength(1);
  });

  it('never writes the signed payload to the logs', async () => {
    const { post, logger } = setup();
    const signedPayload = pki.signJws(notificationPayload(pki));
    await post(notificationBody(signedPayload));
    await post(notificationBody(signedOutsideTheChain(signedPayload)));
    expect(JSON.stringify(logger.entries)).not.toContain(signedPayload.split('.')[1]);
  });

  it('answers 503 S0002 when the intake cannot record the notice, so Apple retries', async () => {
    const { post, intake } = setup();
    intake.failure = new DependencyUnavailableError('table unavailable');
    const res = await post(genuine());
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ code: 'S0002', message: expect.any(String) });
  });

  it('answers 503 S0002 when the publisher cannot be read', async () => {
    const { post, intake, publishers } = setup();
    publishers.failure = new DependencyUnavailableError('table unavailable');
    expect((await post(genuine())).body.code).toBe('S0002');
    expect(intake.notices).toEqual([]);
  });

  it('answers 503 S0002 when Apple\'s certificate status cannot be checked', async () => {
    class UnavailableDecoder implements AppleNotificationVerifier {
      async decode(): Promise<DecodedAppleNotification> {
        throw new StoreUnavailableError('OCSP responder unreachable');
      }
    }
    const { post, intake } = setup({ decoder: new UnavailableDecoder() });
    const res = await post(genuine());
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('S0002');
    expect(intake.notices).toEqual([]);
  });

  it('answers 500 S0001 to an unexpected intake failure (Apple retries that too)', async () => {
    const { post, intake } = setup();
    intake.failure = new Error('bug');
    expect(await post(genuine())).toMatchObject({ status: 500, body: { code: 'S0001' } });
  });
});
