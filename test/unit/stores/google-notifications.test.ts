import { GOOGLE_SUBSCRIPTION_NOTIFICATION_NAMES } from '../../../lambdas/stores/google/notice-types';
import { base64Bytes, decodeDeveloperNotification } from '../../../lambdas/stores/google/notifications';
import { base64Json, developerNotification, EVENT_TIME_MILLIS, PACKAGE_NAME, subscriptionNotification } from '../lifecycle/google-notification-fixtures';

/*
 * The DeveloperNotification inside a push's `message.data`:
 * https://developer.android.com/google/play/billing/rtdn-reference
 */

const EVENT_TIME = new Date(Number(EVENT_TIME_MILLIS)).toISOString();

function decoded(value: unknown) {
  const result = decodeDeveloperNotification(base64Json(value));
  if (!result.ok) throw new Error(`expected a notification, got: ${result.reason}`);
  return result.notification;
}

describe('decodeDeveloperNotification', () => {
  it.each(Object.entries(GOOGLE_SUBSCRIPTION_NOTIFICATION_NAMES))('names subscription notification %s %s', (code, name) => {
    expect(decoded(developerNotification(subscriptionNotification(Number(code), 'tok-9')))).toEqual({
      packageName: PACKAGE_NAME,
      eventTime: EVENT_TIME,
      event: { kind: 'subscription', notificationType: name, purchaseToken: 'tok-9', subscriptionId: 'premium_monthly' },
    });
  });

  it('keeps the number of a subscription code Google added later', () => {
    expect(decoded(developerNotification(subscriptionNotification(99))).event).toMatchObject({ notificationType: 'SUBSCRIPTION_NOTIFICATION_99' });
  });

  it('reads a subscription notification without the deprecated subscriptionId', () => {
    const event = decoded(developerNotification({ subscriptionNotification: { version: '1.0', notificationType: 2, purchaseToken: 't' } })).event;
    expect(event).toEqual({ kind: 'subscription', notificationType: 'SUBSCRIPTION_RENEWED', purchaseToken: 't' });
  });

  it.each([
    ['a subscription', 1, { kind: 'voided', purchaseToken: 'v-tok', orderId: 'GPA.3333-4444-5555-66666', productType: 1, refundType: 1 }],
    ['a one-time product', 2, { kind: 'voided', purchaseToken: 'v-tok', orderId: 'GPA.3333-4444-5555-66666', productType: 2, refundType: 1 }],
  ])('reads a voided purchase of %s', (_name, productType, event) => {
    const notification = developerNotification({ voidedPurchaseNotification: { purchaseToken: 'v-tok', orderId: 'GPA.3333-4444-5555-66666', productType, refundType: 1 } });
    expect(decoded(notification).event).toEqual(event);
  });

  it('reads one-time product, test and unknown kinds', () => {
    expect(decoded(developerNotification({ oneTimeProductNotification: { version: '1.0', notificationType: 1, purchaseToken: 'o', sku: 'coins' } })).event).toEqual({
      kind: 'one_time_product',
      notificationType: 1,
      purchaseToken: 'o',
    });
    expect(decoded(developerNotification({ testNotification: { version: '1.0' } })).event).toEqual({ kind: 'test' });
    expect(decoded(developerNotification({ someFutureNotification: { version: '1.0' } })).event).toEqual({ kind: 'other' });
  });

  it('reads eventTimeMillis given as a number, and leaves eventTime out without one', () => {
    expect(decoded(developerNotification({ testNotification: {} }, { eventTimeMillis: Number(EVENT_TIME_MILLIS) })).eventTime).toBe(EVENT_TIME);
    expect(decoded(developerNotification({ testNotification: {} }, { eventTimeMillis: undefined }))).not.toHaveProperty('eventTime');
  });

  it('reads URL-safe and unpadded base64 too, as the protobuf JSON mapping allows', () => {
    const standard = base64Json(developerNotification(subscriptionNotification(4, '???>>>')));
    const urlSafe = standard.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    expect(urlSafe).not.toBe(standard);
    const result = decodeDeveloperNotification(urlSafe);
    expect(result).toMatchObject({ ok: true, notification: { event: { purchaseToken: '???>>>' } } });
  });

  it.each([
    ['not base64 (a stray character)', 'eyJ2ZXJzaW9uIjoiMS4wIn0*', 'message.data is not base64'],
    ['not base64 (a lone trailing character)', 'eyJ2Z', 'message.data is not base64'],
    ['not base64 (padding after a full group)', 'eyJ2=', 'message.data is not base64'],
    ['not JSON', Buffer.from('not json').toString('base64'), 'message.data is not JSON'],
    ['a JSON array', base64Json([]), 'not a DeveloperNotification (data: Invalid input: expected object, received array)'],
    ['no packageName', base64Json({ version: '1.0', testNotification: {} }), 'not a DeveloperNotification (packageName: Invalid input: expected string, received undefined)'],
    ['a subscription notification without purchaseToken', base64Json(developerNotification({ subscriptionNotification: { notificationType: 4 } })), 'not a DeveloperNotification (subscriptionNotification.purchaseToken: Invalid input: expected string, received undefined)'],
    ['a notificationType that is not a number', base64Json(developerNotification({ subscriptionNotification: { notificationType: '4', purchaseToken: 't' } })), 'not a DeveloperNotification (subscriptionNotification.notificationType: Invalid input: expected number, received string)'],
    ['a voided purchase without orderId', base64Json(developerNotification({ voidedPurchaseNotification: { purchaseToken: 't', productType: 1 } })), 'not a DeveloperNotification (voidedPurchaseNotification.orderId: Invalid input: expected string, received undefined)'],
    ['an eventTimeMillis that is not a time', base64Json(developerNotification({ testNotification: {} }, { eventTimeMillis: 'yesterday' })), 'not a DeveloperNotification (eventTimeMillis: Invalid string: must match pattern /^\\d{1,15}$/)'],
  ])('refuses data that is %s', (_name, data, reason) => {
    expect(decodeDeveloperNotification(data)).toEqual({ ok: false, reason });
  });
});

describe('base64Bytes', () => {
  it.each([
    ['', ''],
    ['YQ==', 'a'],
    ['YQ', 'a'],
    ['YWI=', 'ab'],
    ['YWJj', 'abc'],
    ['-_8', Buffer.from([0xfb, 0xff]).toString('latin1')],
  ])('reads %j', (data, text) => {
    expect(base64Bytes(data)?.toString('latin1')).toBe(text);
  });

  it.each(['Y', 'YQ=', 'YQ===', 'Y Q==', 'YQ==\n', 'YQ==YQ=='])('refuses %j', (data) => {
    expect(base64Bytes(data)).toBeUndefined();
  });
});
