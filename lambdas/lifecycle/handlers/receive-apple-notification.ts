import { appleRootCertificates } from '../../platform/config';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createNoticeIntake, createRuntime } from '../../purchases';
import type { PublisherRepository } from '../../tenants';
import { receiveAppleNotification } from '../domain/receive-apple-notification';
import type { AppleNotificationVerifier, NoticeIntake } from '../ports';
import { AppleNotificationBody, PublisherIdPathParam, type NotificationAcknowledged } from '../schemas';
import { apiError, apiErrors, json, readJsonBody, type ApiEvent, type ApiResult } from '../../platform/http';
import { instrument, lazyHandler } from '../../platform/handler';
import type { Logger } from '../../platform/logger';
import { AppleNotificationDecoder } from '../../stores/apple/notifications';

/**
 * The largest body this route reads: 64 KiB, not the API's shared 16 KiB (MAX_BODY_BYTES). A V2
 * notification nests up to three JWS (payload, signedTransactionInfo, signedRenewalInfo), each with
 * its x5c chain of three certificates, and the inner two are base64url-encoded a second time inside
 * the outer payload. The local simulator's (small, EC-only) certificates already make ~12 KB; Apple's
 * real chain is about twice their size, which puts a subscription notification around 20 KB, above
 * 16 KiB. https://developer.apple.com/documentation/appstoreservernotifications/responsebodyv2
 */
export const MAX_NOTIFICATION_BODY_BYTES = 64 * 1024;

export interface ReceiveAppleNotificationHandlerDeps {
  publishers: PublisherRepository;
  decoder: AppleNotificationVerifier;
  intake: NoticeIntake;
  logger: Logger;
}

/**
 * The body as JSON. Unlike parseJsonBody, the Content-Type is not required: Apple's sender is not
 * ours to correct, and the signed payload, not the headers, decides what is accepted.
 */
function parseNotificationBody(event: ApiEvent): AppleNotificationBody {
  const value = readJsonBody(event, MAX_NOTIFICATION_BODY_BYTES);
  const parsed = AppleNotificationBody.safeParse(value);
  if (!parsed.success) throw apiError('REQ0001', 'The body must be a JSON object with a signedPayload string.');
  return parsed.data;
}

/**
 * `POST /storekit2/notifications/{publisherId}`: App Store Server Notifications V2. No credentials:
 * the signed payload is the proof, and X-Publisher-Id is ignored (the path names the publisher).
 * Answers 200 `{}` for every verified notification (accepted, duplicate, TEST, no transaction) so
 * Apple stops retrying; 400 NOTIF0001 for anything not verifiably this publisher's; 503 S0002 when a
 * dependency is down, which Apple retries.
 */
export function makeReceiveAppleNotificationHandler(deps: ReceiveAppleNotificationHandlerDeps) {
  return middy<ApiEvent, ApiResult, Error, Context>()
    .use(apiErrors(deps.logger))
    .handler(async (event) => {
      const { signedPayload } = parseNotificationBody(event);
      const publisherId = PublisherIdPathParam.safeParse(event.pathParameters?.publisherId);
      if (!publisherId.success) {
        deps.logger.warn('apple notification rejected', { reason: 'publisher id in the path is not a positive int32' });
        throw apiError('NOTIF0001');
      }
      await receiveAppleNotification(deps, { publisherId: publisherId.data, signedPayload });
      const body: NotificationAcknowledged = {};
      return json(200, body);
    });
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('receive-apple-notification');
  const { config } = runtime;
  return instrument(
    runtime,
    makeReceiveAppleNotificationHandler({
      publishers: runtime.publishers,
      decoder: new AppleNotificationDecoder({
        rootCertificates: appleRootCertificates(config),
        onlineChecks: config.APPLE_ONLINE_CHECKS === 'true',
      }),
      intake: createNoticeIntake(runtime),
      logger: runtime.logger,
    }),
  );
});
