import type { Publisher, PublisherRepository } from '../../tenants';
import { ApiError, StoreUnavailableError } from '../../platform/errors';
import { purchaseTokenHash, type Logger } from '../../platform/logger';
import { GOOGLE_VOIDED_NOTICE_TYPE } from '../../stores/google/notice-types';
import {
  decodeDeveloperNotification,
  PushTokenRejectedError,
  VOIDED_PRODUCT_TYPE_SUBSCRIPTION,
  type DecodedGoogleNotification,
  type VerifiedPushToken,
} from '../../stores/google/notifications';
import type { GooglePushTokenVerifier, NoticeIntake, PurchaseChangeNotice } from '../ports';

/** What receiving a Google Real-time Developer Notification needs. */
export interface ReceiveGoogleNotificationDeps {
  publishers: PublisherRepository;
  tokens: GooglePushTokenVerifier;
  intake: NoticeIntake;
  logger: Logger;
}

/** The Pub/Sub message of one push, its fields already read from either spelling. */
export interface PubSubMessage {
  /** base64 of the DeveloperNotification, not yet decoded. */
  data: string;
  messageId: string;
  /** RFC 3339, as Pub/Sub sent it (not checked). */
  publishTime?: string;
}

/** One POST of the publisher's push subscription. */
export interface GoogleNotificationRequest {
  /**
   * From the URL path; undefined when the path's id is not a positive int32 (refused like an
   * unknown publisher, once the token has been checked).
   */
  publisherId: number | undefined;
  /** The `Authorization: Bearer` token; undefined when the header is missing or not a Bearer one. */
  bearerToken: string | undefined;
  /** The URL this push was sent to: the token's audience when the publisher configured none (Pub/Sub's default). */
  endpointUrl: string;
  message: PubSubMessage;
  /** When the request arrived (ISO 8601): the notice's time when neither Google nor Pub/Sub dated it. */
  receivedAt: string;
}

/**
 * How an authenticated push was handled; every outcome is answered 200 so Pub/Sub stops redelivering.
 * - `accepted`: handed to the intake, which re-reads the purchase from Google.
 * - `duplicate`: the intake had recorded this messageId before (a redelivery).
 * - `test`: a `testNotification` (Play Console's "Send test notification"), only logged.
 * - `ignored`: about nothing this service keeps (a one-time product, a voided one-time purchase, a
 *   kind Google added), only logged.
 */
export type GoogleNotificationOutcome = 'accepted' | 'duplicate' | 'test' | 'ignored';

/**
 * Receives a Google Play Real-time Developer Notification, pushed by the publisher's Pub/Sub
 * subscription: checks the push's OIDC token, then that it is this publisher's push, then the
 * notification, and hands the purchase it names to the intake. No store call happens here.
 * https://developer.android.com/google/play/billing/getting-ready#configure-rtdn
 *
 * The token is checked before the publisher is looked up, so a caller without a Google-signed
 * token learns nothing about which publishers exist (every such push is 401).
 *
 * @throws ApiError AUTH0002 when the token is missing, not a genuine current Google ID token, its
 *   email is not verified, the publisher has no push settings, or the token's email or audience are
 *   not the publisher's.
 * @throws ApiError NOTIF0001 when the publisher is unknown or has no Google configuration, or the
 *   message is not a DeveloperNotification for one of its package names.
 * @throws ApiError S0002 when Google's keys could not be fetched (Pub/Sub retries).
 * @throws DependencyUnavailableError from the publisher repository or the intake (503, Pub/Sub retries).
 */
export async function receiveGoogleNotification(
  deps: ReceiveGoogleNotificationDeps,
  request: GoogleNotificationRequest,
): Promise<GoogleNotificationOutcome> {
  const { logger } = deps;
  const messageId = request.message.messageId;
  const sender = await verifiedSender(deps, request);

  const { publisherId } = request;
  if (publisherId === undefined) return reject(logger, { messageId }, 'publisher id in the path is not a positive int32');
  const publisher = await deps.publishers.getPublisher(publisherId);
  if (!publisher) return reject(logger, { publisherId, messageId }, 'unknown publisher');
  const google = publisher.google;
  if (!google) return reject(logger, { publisherId, messageId }, 'publisher has no Google configuration');
  authorize(logger, publisher, sender, request);

  const decoded = decodeDeveloperNotification(request.message.data);
  if (!decoded.ok) return reject(logger, { publisherId, messageId }, decoded.reason);
  const notification = decoded.notification;
  const fields = logFields(publisherId, messageId, notification);
  if (!google.profiles.some((profile) => profile.packageName === notification.packageName)) {
    return reject(logger, fields, 'package name not configured for this publisher');
  }

  const { event } = notification;
  let notice: PurchaseChangeNotice;
  switch (event.kind) {
    case 'test':
      logger.info('google test notification received', fields);
      return 'test';
    case 'one_time_product':
      // This service keeps subscriptions only (GPLAY0004 at register).
      logger.info('google one-time product notification ignored', fields);
      return 'ignored';
    case 'other':
      logger.info('google notification of an unknown kind ignored', fields);
      return 'ignored';
    case 'voided':
      if (event.productType !== VOIDED_PRODUCT_TYPE_SUBSCRIPTION) {
        logger.info('google voided purchase of a one-time product ignored', fields);
        return 'ignored';
      }
      // The orderId tells which payment was voided (a renewal's order is `<orderId>..N`).
      notice = noticeOf(request, publisherId, notification, event.purchaseToken, GOOGLE_VOIDED_NOTICE_TYPE, event.orderId);
      break;
    case 'subscription':
      notice = noticeOf(request, publisherId, notification, event.purchaseToken, event.notificationType);
      break;
  }
  const outcome = await deps.intake.accept(notice);
  logger.info(outcome === 'accepted' ? 'google notification accepted' : 'google notification already received', fields);
  return outcome;
}

/** The token's sender, refused unless it is a genuine Google ID token with a verified email. */
async function verifiedSender(deps: ReceiveGoogleNotificationDeps, request: GoogleNotificationRequest): Promise<VerifiedPushToken> {
  const context = { publisherId: request.publisherId, messageId: request.message.messageId };
  if (request.bearerToken === undefined) return refuse(deps.logger, context, 'no Bearer token in Authorization');
  let sender: VerifiedPushToken;
  try {
    sender = await deps.tokens.verify(request.bearerToken);
  } catch (error) {
    if (error instanceof PushTokenRejectedError) return refuse(deps.logger, context, error.reason);
    if (error instanceof StoreUnavailableError) {
      deps.logger.warn('google push token not verifiable now', { ...context, error });
      throw new ApiError('S0002');
    }
    throw error;
  }
  if (!sender.emailVerified) return refuse(deps.logger, context, 'email_verified is not true');
  return sender;
}

/**
 * The token must be the one the publisher's push subscription is set up with: its service account
 * (`email`) and its audience, the configured one or else the push endpoint's URL (Pub/Sub's default).
 * https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 */
function authorize(logger: Logger, publisher: Publisher, sender: VerifiedPushToken, request: GoogleNotificationRequest): void {
  const context = { publisherId: publisher.publisherId, messageId: request.message.messageId };
  const push = publisher.google?.push;
  if (!push) {
    logger.warn('google push refused: the publisher has no push service account configured; set it with `iap-sync google configure --push-service-account`', context);
    throw new ApiError('AUTH0002');
  }
  if (sender.email.toLowerCase() !== push.serviceAccountEmail.toLowerCase()) {
    refuse(logger, { ...context, email: sender.email }, 'email is not the configured push service account');
  }
  const audience = push.audience ?? request.endpointUrl;
  if (!sender.audiences.includes(audience)) {
    refuse(logger, { ...context, audiences: sender.audiences, expected: audience }, 'aud is not the expected audience');
  }
}

function noticeOf(
  request: GoogleNotificationRequest,
  publisherId: number,
  notification: DecodedGoogleNotification,
  purchaseToken: string,
  notificationType: string,
  subtype?: string,
): PurchaseChangeNotice {
  return {
    publisherId,
    store: 'google',
    notificationId: request.message.messageId,
    notificationType,
    ...(subtype !== undefined ? { subtype } : {}),
    purchaseKey: purchaseToken,
    packageName: notification.packageName,
    sentAt: notification.eventTime ?? isoOrUndefined(request.message.publishTime) ?? request.receivedAt,
  };
}

function isoOrUndefined(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

function refuse(logger: Logger, fields: Record<string, unknown>, reason: string): never {
  logger.warn('google push refused', { ...fields, reason });
  throw new ApiError('AUTH0002');
}

function reject(logger: Logger, fields: Record<string, unknown>, reason: string): never {
  logger.warn('google notification rejected', { ...fields, reason });
  throw new ApiError('NOTIF0001');
}

function logFields(publisherId: number, messageId: string, notification: DecodedGoogleNotification): Record<string, unknown> {
  const { event } = notification;
  return {
    publisherId,
    notificationId: messageId,
    packageName: notification.packageName,
    kind: event.kind,
    ...(event.kind === 'subscription' ? { notificationType: event.notificationType, subscriptionId: event.subscriptionId } : {}),
    ...(event.kind === 'voided' ? { orderId: event.orderId, productType: event.productType, refundType: event.refundType } : {}),
    ...(event.kind === 'one_time_product' ? { notificationType: event.notificationType } : {}),
    ...('purchaseToken' in event ? { purchaseTokenHash: purchaseTokenHash(event.purchaseToken) } : {}),
    sentAt: notification.eventTime,
  };
}
