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

/**
 * The body Google Cloud Pub/Sub POSTs to a push endpoint, here for the Real-time Developer
 * Notifications topic: https://cloud.google.com/pubsub/docs/push#receive_push
 * Pub/Sub sends each message field in both spellings (`messageId` and `message_id`); either is read.
 * Loose, for the same reason as Apple's body (and documented so: Pub/Sub adds fields such as
 * `deliveryAttempt`).
 */
export const GooglePushBody = z
  .looseObject({
    message: z
      .looseObject({
        /** The DeveloperNotification, JSON encoded in base64; decoded and checked after the token. */
        data: z.string().min(1),
        /** Pub/Sub's id of the message, the same on every redelivery: the idempotency key. */
        messageId: z.string().min(1).max(256).optional(),
        message_id: z.string().min(1).max(256).optional(),
        /** When Pub/Sub received the message (RFC 3339). */
        publishTime: z.string().optional(),
        publish_time: z.string().optional(),
        attributes: z.record(z.string(), z.string()).optional(),
      })
      .refine((message) => (message.messageId ?? message.message_id) !== undefined, { message: 'messageId is required' }),
    /** The push subscription, `projects/{project}/subscriptions/{name}`. */
    subscription: z.string().optional(),
  })
  .meta({ id: 'GooglePushBody' });
export type GooglePushBody = z.infer<typeof GooglePushBody>;

/** `{publisherId}` of the notification URL: a positive int32 in decimal, as X-Publisher-Id elsewhere. */
export const PublisherIdPathParam = z
  .string()
  .regex(/^[1-9]\d{0,9}$/)
  .transform(Number)
  .pipe(positiveInt32);

/** What a received notification is answered with: 200 and an empty object, whatever came of it. */
export const NotificationAcknowledged = z.strictObject({}).meta({ id: 'NotificationAcknowledged' });
export type NotificationAcknowledged = z.infer<typeof NotificationAcknowledged>;
