import type { PublisherRepository } from '../../tenants';
import { ApiError, StoreUnavailableError } from '../../platform/errors';
import type { Logger } from '../../platform/logger';
import { NotificationRejectedError, type DecodedAppleNotification } from '../../stores/apple/notifications';
import type { AppleNotificationVerifier, NoticeIntake, PurchaseChangeNotice } from '../ports';

/** What receiving an Apple notification needs. */
export interface ReceiveAppleNotificationDeps {
  publishers: PublisherRepository;
  decoder: AppleNotificationVerifier;
  intake: NoticeIntake;
  logger: Logger;
}

/** One POST to the publisher's notification URL. */
export interface AppleNotificationRequest {
  /** From the URL path; the notification itself does not name the publisher. */
  publisherId: number;
  /** The body's JWS, not yet verified. */
  signedPayload: string;
}

/**
 * How a verified notification was handled; every outcome is answered 200 so Apple stops retrying.
 * - `accepted`: handed to the intake, which re-reads the purchase.
 * - `duplicate`: the intake had recorded this notificationUUID before (an Apple retry or resend).
 * - `test`: a TEST notification (Request a Test Notification), only logged.
 * - `no_purchase`: genuine, but names no transaction (e.g. a `summary` notification), only logged.
 */
export type AppleNotificationOutcome = 'accepted' | 'duplicate' | 'test' | 'no_purchase';

/** https://developer.apple.com/documentation/appstoreservernotifications/notificationtype#TEST */
const TEST_NOTIFICATION = 'TEST';

/**
 * Receives an App Store Server Notification V2 for a publisher: verifies it against the
 * publisher's Apple configuration and hands the purchase it names to the intake. No store call
 * happens here: Apple wants a quick 200 and resends what it does not get one for
 * (https://developer.apple.com/documentation/appstoreservernotifications/responding-to-app-store-server-notifications).
 *
 * @throws ApiError NOTIF0001 when the publisher is unknown, has no Apple configuration, or the
 *   notification is not a genuine one for its app and environments (one answer for all, so the
 *   endpoint does not tell which publisher ids exist).
 * @throws ApiError S0002 when Apple's certificate status could not be checked (Apple retries).
 * @throws DependencyUnavailableError from the publisher repository or the intake (503, Apple retries).
 */
export async function receiveAppleNotification(
  deps: ReceiveAppleNotificationDeps,
  request: AppleNotificationRequest,
): Promise<AppleNotificationOutcome> {
  const { publisherId } = request;
  const publisher = await deps.publishers.getPublisher(publisherId);
  if (!publisher) return reject(deps.logger, publisherId, 'unknown publisher');
  if (!publisher.apple) return reject(deps.logger, publisherId, 'publisher has no Apple configuration');

  let decoded: DecodedAppleNotification;
  try {
    decoded = await deps.decoder.decode(publisher.apple, request.signedPayload);
  } catch (error) {
    if (error instanceof NotificationRejectedError) return reject(deps.logger, publisherId, error.reason);
    if (error instanceof StoreUnavailableError) {
      deps.logger.warn('apple notification not verifiable now', { publisherId, error });
      throw new ApiError('S0002');
    }
    throw error;
  }

  const fields = logFields(publisherId, decoded);
  if (decoded.notificationType === TEST_NOTIFICATION) {
    deps.logger.info('apple test notification received', fields);
    return 'test';
  }
  // Apple always sends originalTransactionId with a transaction; the fallback keeps a purchase that
  // is its own original (the first purchase) addressable if it ever does not.
  const purchaseKey = decoded.originalTransactionId ?? decoded.transactionId;
  if (purchaseKey === undefined) {
    deps.logger.info('apple notification without a transaction ignored', fields);
    return 'no_purchase';
  }
  const notice: PurchaseChangeNotice = {
    publisherId,
    store: 'apple',
    notificationId: decoded.notificationUUID,
    notificationType: decoded.notificationType,
    ...(decoded.subtype !== undefined ? { subtype: decoded.subtype } : {}),
    purchaseKey,
    ...(decoded.transactionId !== undefined ? { transactionId: decoded.transactionId } : {}),
    sentAt: decoded.signedDate,
  };
  const outcome = await deps.intake.accept(notice);
  deps.logger.info(outcome === 'accepted' ? 'apple notification accepted' : 'apple notification already received', fields);
  return outcome;
}

function reject(logger: Logger, publisherId: number, reason: string): never {
  logger.warn('apple notification rejected', { publisherId, reason });
  throw new ApiError('NOTIF0001');
}

function logFields(publisherId: number, decoded: DecodedAppleNotification): Record<string, unknown> {
  return {
    publisherId,
    notificationId: decoded.notificationUUID,
    notificationType: decoded.notificationType,
    subtype: decoded.subtype,
    environment: decoded.environment,
    transactionId: decoded.transactionId,
    originalTransactionId: decoded.originalTransactionId,
    productId: decoded.productId,
    sentAt: decoded.signedDate,
  };
}
