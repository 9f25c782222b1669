import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createNoticeIntake, createRuntime } from '../../purchases';
import { receiveGoogleNotification, type PubSubMessage, type ReceiveGoogleNotificationDeps } from '../domain/receive-google-notification';
import { GooglePushBody, PublisherIdPathParam, type NotificationAcknowledged } from '../schemas';
import { apiError, apiErrors, json, readJsonBody, type ApiEvent, type ApiResult } from '../../platform/http';
import { instrument, lazyHandler } from '../../platform/handler';
import { JosePushTokenVerifier } from '../../stores/google/adapters/push-token-verifier';

/**
 * The largest push body this route reads: 64 KiB, as the Apple route. A Real-time Developer
 * Notification is well under 1 KiB even base64-encoded inside a push body; the limit only keeps the
 * route from parsing whatever an unauthenticated caller sends before its token is checked.
 */
export const MAX_PUSH_BODY_BYTES = 64 * 1024;

/** The handler needs exactly what the use case needs. */
export type ReceiveGoogleNotificationHandlerDeps = ReceiveGoogleNotificationDeps;

/**
 * The push body as JSON, with the message's fields read from either spelling. The Content-Type is
 * not required: Pub/Sub sends application/json, but the token, not the headers, decides.
 */
function parsePushBody(event: ApiEvent): PubSubMessage {
  const value = readJsonBody(event, MAX_PUSH_BODY_BYTES);
  const parsed = GooglePushBody.safeParse(value);
  if (!parsed.success) throw apiError('REQ0001', 'The body must be a Pub/Sub push: a message with a base64 data string and a messageId.');
  const { data, messageId, message_id: messageIdSnake, publishTime, publish_time: publishTimeSnake } = parsed.data.message;
  const time = publishTime ?? publishTimeSnake;
  // The schema's refinement guarantees one of the two spellings.
  return { data, messageId: messageId ?? messageIdSnake ?? '', ...(time !== undefined ? { publishTime: time } : {}) };
}

/** The token of `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 7235); undefined otherwise. */
function bearerTokenOf(event: ApiEvent): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(event.headers?.authorization ?? '');
  return match?.[1];
}

/**
 * The URL the push was sent to, which Pub/Sub makes the token's audience unless told otherwise.
 * API Gateway terminates TLS and says so in X-Forwarded-Proto (the local runtime sends `http`).
 */
function endpointUrlOf(event: ApiEvent): string {
  const forwarded = event.headers?.['x-forwarded-proto']?.split(',')[0]?.trim().toLowerCase();
  const protocol = forwarded === 'http' || forwarded === 'https' ? forwarded : 'https';
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  return `${protocol}://${event.requestContext.domainName}${event.rawPath}${query}`;
}

/**
 * `POST /google-play/notifications/{publisherId}`: Google Play Real-time Developer Notifications,
 * pushed by the publisher's authenticated Pub/Sub subscription. X-Publisher-Id is ignored (the path
 * names the publisher). Answers 200 `{}` for every authenticated notification of this publisher
 * (accepted, duplicate, test, ignored) so Pub/Sub stops redelivering; 401 AUTH0002 for a push whose
 * token is not this publisher's subscription's; 400 NOTIF0001 for a notification not of its apps;
 * 503 S0002 when a dependency is down, which Pub/Sub retries.
 */
export function makeReceiveGoogleNotificationHandler(deps: ReceiveGoogleNotificationHandlerDeps) {
  return middy<ApiEvent, ApiResult, Error, Context>()
    .use(apiErrors(deps.logger))
    .handler(async (event) => {
      const message = parsePushBody(event);
      const publisherId = PublisherIdPathParam.safeParse(event.pathParameters?.publisherId);
      await receiveGoogleNotification(deps, {
        publisherId: publisherId.success ? publisherId.data : undefined,
        bearerToken: bearerTokenOf(event),
        endpointUrl: endpointUrlOf(event),
        message,
        receivedAt: new Date(event.requestContext.timeEpoch || Date.now()).toISOString(),
      });
      const body: NotificationAcknowledged = {};
      return json(200, body);
    });
}

export const handler = lazyHandler(() => {
  const runtime = createRuntime('receive-google-notification');
  return instrument(
    runtime,
    makeReceiveGoogleNotificationHandler({
      publishers: runtime.publishers,
      tokens: new JosePushTokenVerifier({ jwksUrl: runtime.config.GOOGLE_PUSH_JWKS_URL }),
      intake: createNoticeIntake(runtime),
      logger: runtime.logger,
    }),
  );
});
