import { ConfigurationError } from '../../../lambdas/platform/errors';
import { AppleNotificationDecoder, NotificationRejectedError } from '../../../lambdas/stores/apple/notifications';
import type { ApplePki } from '../../../local/simulator/apple-pki';
import { APP_APPLE_ID, appleConfig, BUNDLE_ID, newPki, notificationPayload, signedOutsideTheChain, transactionPayload } from './apple-notification-fixtures';

/** Apple's SignedDataVerifier behind the decoder, over the simulator's chain. */

let pki: ApplePki;
let decoder: AppleNotificationDecoder;

beforeAll(async () => {
  pki = await newPki();
  decoder = new AppleNotificationDecoder({ rootCertificates: [pki.rootCertificateDer], onlineChecks: false });
});

async function rejection(promise: Promise<unknown>): Promise<NotificationRejectedError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(NotificationRejectedError);
  return error as NotificationRejectedError;
}

describe('AppleNotificationDecoder', () => {
  it('answers the notification and its verified transaction', async () => {
    const signedDate = Date.now() - 5_000;
    const transaction = pki.signJws(transactionPayload({ transactionId: '2000000000000009', originalTransactionId: '2000000000000001', productId: 'premium_yearly', environment: 'Production' }));
    const payload = notificationPayload(pki, {
      notificationType: 'SUBSCRIBED',
      subtype: 'RESUBSCRIBE',
      notificationUUID: '0d9f8e7c-6b5a-4493-8271-605f4e3d2c1b',
      signedDate,
      environment: 'Production',
      signedTransactionInfo: transaction,
    });
    const decoded = await decoder.decode(appleConfig({ environments: ['Sandbox', 'Production'] }), pki.signJws(payload));
    expect(decoded).toEqual({
      notificationUUID: '0d9f8e7c-6b5a-4493-8271-605f4e3d2c1b',
      notificationType: 'SUBSCRIBED',
      subtype: 'RESUBSCRIBE',
      environment: 'Production',
      bundleId: BUNDLE_ID,
      signedDate: new Date(signedDate).toISOString(),
      transactionId: '2000000000000009',
      originalTransactionId: '2000000000000001',
      productId: 'premium_yearly',
    });
  });

  it('answers a notification without a transaction with the notification fields only', async () => {
    const decoded = await decoder.decode(appleConfig(), pki.signJws(notificationPayload(pki, { notificationType: 'TEST', signedTransactionInfo: null })));
    expect(decoded).toEqual({
      notificationUUID: expect.any(String),
      notificationType: 'TEST',
      environment: 'Sandbox',
      bundleId: BUNDLE_ID,
      signedDate: expect.any(String),
    });
  });

  it('lists what each configured environment said when none accepts the notification', async () => {
    const error = await rejection(decoder.decode(appleConfig({ environments: ['Production', 'Sandbox'] }), pki.signJws(notificationPayload(pki, { bundleId: 'com.other.app' }))));
    expect(error.name).toBe('NotificationRejectedError');
    expect(error.reason).toBe('Production: INVALID_APP_IDENTIFIER; Sandbox: INVALID_APP_IDENTIFIER');
  });

  it('does not retry a bad signature with the next environment: it would fail the same way', async () => {
    const forged = signedOutsideTheChain(pki.signJws(notificationPayload(pki)));
    const error = await rejection(decoder.decode(appleConfig({ environments: ['Production', 'Sandbox'] }), forged));
    expect(error.reason).toBe('Production: VERIFICATION_FAILURE');
  });

  it('checks appAppleId for Production only, as Apple omits it in Sandbox', async () => {
    const sandbox = pki.signJws(notificationPayload(pki, { environment: 'Sandbox', appAppleId: 1 }));
    await expect(decoder.decode(appleConfig({ environments: ['Sandbox'] }), sandbox)).resolves.toMatchObject({ environment: 'Sandbox' });
    const production = pki.signJws(notificationPayload(pki, { environment: 'Production', appAppleId: APP_APPLE_ID + 1 }));
    expect((await rejection(decoder.decode(appleConfig({ environments: ['Production'] }), production))).reason).toBe('Production: INVALID_APP_IDENTIFIER');
  });

  it('refuses a notification without notificationUUID: there would be no idempotency key', async () => {
    const payload = notificationPayload(pki);
    delete payload.notificationUUID;
    expect((await rejection(decoder.decode(appleConfig(), pki.signJws(payload)))).reason).toBe('no notificationUUID');
  });

  it('refuses everything for an app without environments', async () => {
    const error = await rejection(decoder.decode(appleConfig({ environments: [] }), pki.signJws(notificationPayload(pki))));
    expect(error.reason).toBe('no App Store environment configured');
  });

  it('refuses to exist without trusted roots', () => {
    expect(() => new AppleNotificationDecoder({ rootCertificates: [], onlineChecks: false })).toThrow(ConfigurationError);
  });
});
