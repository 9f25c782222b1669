import * as z from 'zod';
import { positiveInt32 } from '../platform/schema-primitives';

/**
 * The body Apple POSTs to the App Store Server Notifications V2 URL:
 * https://developer.apple.com/documentation/appstoreservernotifications/responsebodyv2
 * Not strict: Apple may add fields, and an unknown one must not make us refuse (and Apple retry) a
 * notification.
 */
export const AppleNotificationBody = z
  .object({
    /** A JWS signed by the App Store; its x5c chain and signature are the only proof of origin. */
    signedPayload: z.string().min(1),
  })
  .meta({ id: 'AppleNotificationBody' });
export type AppleNotificationBody = z.infer<typeof AppleNotificationBody>;

/** `{publisherId}` of the notification URL: a positive int32 in decimal, as X-Publisher-Id elsewhere. */
export const PublisherIdPathParam = z
  .string()
  .regex(/^[1-9]\d{0,9}$/)
  .transform(Number)
  .pipe(positiveInt32);

/** What a received notification is answered with: 200 and an empty object, whatever came of it. */
export const NotificationAcknowledged = z.strictObject({}).meta({ id: 'NotificationAcknowledged' });
export type NotificationAcknowledged = z.infer<typeof NotificationAcknowledged>;
