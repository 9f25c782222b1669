import * as z from 'zod';
import { subscriptionNotificationName } from './notice-types';

/*
 * Google Play Real-time Developer Notifications as they arrive in a Pub/Sub push: the
 * DeveloperNotification decoded from `message.data`, and what the push's OIDC token says about its
 * sender. https://developer.android.com/google/play/billing/rtdn-reference
 */

/**
 * What a Google-signed push OIDC token says about its sender, once its signature, issuer and
 * lifetime are verified; whether it is meant for this publisher is for the caller to decide.
 * https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 */
export interface VerifiedPushToken {
  /** The token's `aud`, as a list (a JWT may carry one audience or several). */
  audiences: string[];
  /** The push subscription's service account. */
  email: string;
  /** `email_verified` is the JSON `true`. */
  emailVerified: boolean;
}

/**
 * The push's bearer token is not a genuine Google ID token: malformed, bad signature, unknown key,
 * expired, another issuer, no `email`. `reason` is for the logs only; callers answer a fixed error.
 */
export class PushTokenRejectedError extends Error {
  override readonly name = 'PushTokenRejectedError';
  readonly retryable = false;
  constructor(readonly reason: string) {
    super(`Pub/Sub push token rejected: ${reason}`);
  }
}

/** A decimal count of milliseconds since the epoch; Google sends `eventTimeMillis` as a JSON string (an int64). */
const epochMillis = z.union([z.string().regex(/^\d{1,15}$/), z.number().int().nonnegative()]);

/*
 * The DeveloperNotification and its kinds. Not strict anywhere: Google adds fields (and kinds), and
 * an unknown field must not make us refuse a notification, which Pub/Sub would then redeliver for days.
 */

/** https://developer.android.com/google/play/billing/rtdn-reference#sub */
const SubscriptionNotification = z.object({
  notificationType: z.number().int(),
  purchaseToken: z.string().min(1),
  /** Deprecated by Google, and absent from newer notifications. */
  subscriptionId: z.string().optional(),
});

/** https://developer.android.com/google/play/billing/rtdn-reference#one-time */
const OneTimeProductNotification = z.object({
  notificationType: z.number().int(),
  purchaseToken: z.string().min(1),
  sku: z.string().optional(),
});

/** https://developer.android.com/google/play/billing/rtdn-reference#voided-purchase */
const VoidedPurchaseNotification = z.object({
  purchaseToken: z.string().min(1),
  orderId: z.string().min(1),
  /** 1 PRODUCT_TYPE_SUBSCRIPTION, 2 PRODUCT_TYPE_ONE_TIME; kept as a number so a new type is ignored, not refused. */
  productType: z.number().int(),
  /** 1 REFUND_TYPE_FULL_REFUND, 2 REFUND_TYPE_QUANTITY_BASED_PARTIAL_REFUND. */
  refundType: z.number().int().optional(),
});

/** https://developer.android.com/google/play/billing/rtdn-reference#encoding */
export const DeveloperNotification = z.object({
  version: z.string().optional(),
  packageName: z.string().min(1),
  eventTimeMillis: epochMillis.optional(),
  subscriptionNotification: SubscriptionNotification.optional(),
  oneTimeProductNotification: OneTimeProductNotification.optional(),
  voidedPurchaseNotification: VoidedPurchaseNotification.optional(),
  testNotification: z.object({}).optional(),
});
export type DeveloperNotification = z.infer<typeof DeveloperNotification>;

/** `voidedPurchaseNotification.productType` of a subscription. */
export const VOIDED_PRODUCT_TYPE_SUBSCRIPTION = 1;

/**
 * What one DeveloperNotification is about. A notification carries exactly one kind; `other` is one
 * with none this service knows (Google may add kinds), acknowledged and ignored.
 */
export type GoogleNotificationEvent =
  | {
      kind: 'subscription';
      /** The code's name (notice-types.ts), e.g. SUBSCRIPTION_RENEWED. */
      notificationType: string;
      purchaseToken: string;
      subscriptionId?: string;
    }
  | { kind: 'voided'; purchaseToken: string; orderId: string; productType: number; refundType?: number }
  | { kind: 'one_time_product'; notificationType: number; purchaseToken: string }
  | { kind: 'test' }
  | { kind: 'other' };

/** A decoded DeveloperNotification, as far as this service needs it. */
export interface DecodedGoogleNotification {
  packageName: string;
  /** `eventTimeMillis` as ISO 8601; absent when Google sent none or one out of range. */
  eventTime?: string;
  event: GoogleNotificationEvent;
}

/** Why `message.data` is not a DeveloperNotification; for the logs only. */
export type DecodeResult = { ok: true; notification: DecodedGoogleNotification } | { ok: false; reason: string };

/**
 * `message.data` of a push as its bytes. Pub/Sub sends standard base64 with padding; the protobuf
 * JSON mapping it follows also allows the URL-safe alphabet and no padding, so both are read. Anything
 * else (Buffer would silently skip stray characters) is undefined.
 */
export function base64Bytes(data: string): Buffer | undefined {
  const unpadded = data.replace(/={1,2}$/, '');
  if (!/^[A-Za-z0-9+/_-]*$/.test(unpadded) || unpadded.length % 4 === 1) return undefined;
  if (unpadded.length !== data.length && data.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Decodes a push's `message.data`: base64, then JSON, then a DeveloperNotification. */
export function decodeDeveloperNotification(data: string): DecodeResult {
  const bytes = base64Bytes(data);
  if (bytes === undefined) return { ok: false, reason: 'message.data is not base64' };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, reason: 'message.data is not JSON' };
  }
  const parsed = DeveloperNotification.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `not a DeveloperNotification (${issue ? `${issue.path.join('.') || 'data'}: ${issue.message}` : 'invalid'})` };
  }
  const notification = parsed.data;
  const eventTime = isoOf(notification.eventTimeMillis);
  return {
    ok: true,
    notification: { packageName: notification.packageName, ...(eventTime !== undefined ? { eventTime } : {}), event: eventOf(notification) },
  };
}

function isoOf(millis: string | number | undefined): string | undefined {
  if (millis === undefined) return undefined;
  const date = new Date(Number(millis));
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The kind of the notification; Google sends exactly one, so the first present wins. */
function eventOf(notification: DeveloperNotification): GoogleNotificationEvent {
  const { subscriptionNotification: sub, voidedPurchaseNotification: voided, oneTimeProductNotification: oneTime } = notification;
  if (sub) {
    return {
      kind: 'subscription',
      notificationType: subscriptionNotificationName(sub.notificationType),
      purchaseToken: sub.purchaseToken,
      ...(sub.subscriptionId !== undefined ? { subscriptionId: sub.subscriptionId } : {}),
    };
  }
  if (voided) {
    return {
      kind: 'voided',
      purchaseToken: voided.purchaseToken,
      orderId: voided.orderId,
      productType: voided.productType,
      ...(voided.refundType !== undefined ? { refundType: voided.refundType } : {}),
    };
  }
  if (oneTime) return { kind: 'one_time_product', notificationType: oneTime.notificationType, purchaseToken: oneTime.purchaseToken };
  if (notification.testNotification) return { kind: 'test' };
  return { kind: 'other' };
}
