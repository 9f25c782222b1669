import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTVerifyGetKey, type KeyLike } from 'jose';
import type { GoogleConfig, Publisher } from '../../../lambdas/tenants';
import { publisher } from './apple-notification-fixtures';

/*
 * Shared by the Google notification tests: a Google-like ID-token signer (an RSA key of our own and
 * its key set), push token claims as Google signs them for an authenticated Pub/Sub push
 * subscription, DeveloperNotifications and Pub/Sub push bodies.
 * https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 * https://developer.android.com/google/play/billing/rtdn-reference
 */

export const PACKAGE_NAME = 'com.example.iapsync';
export const PUSH_SERVICE_ACCOUNT = 'play-rtdn-push@acme-project.iam.gserviceaccount.com';
export const SUBSCRIPTION = 'projects/acme-project/subscriptions/play-rtdn';

/** An RS256 key with its `kid`, as Google publishes them, and the tokens it signs. */
export interface PushSigner {
  kid: string;
  privateKey: KeyLike;
  jwk: JWK;
  /** jose's key resolver over this key alone (the verifier's `keys` option). */
  keys: JWTVerifyGetKey;
  /** A push token: `pushClaims(aud)` with `overrides` (null removes a claim). */
  sign(aud: string | string[], overrides?: Record<string, unknown>): Promise<string>;
}

export async function newPushSigner(): Promise<PushSigner> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = randomBytes(20).toString('hex');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    privateKey,
    jwk,
    keys: createLocalJWKSet({ keys: [jwk] }),
    sign: (aud, overrides = {}) => signToken(privateKey, kid, { ...pushClaims(aud), ...overrides }),
  };
}

/** Signs `claims` (null values left out) with the key; `alg`/`kid` replace the header's. */
export function signToken(key: KeyLike | Uint8Array, kid: string, claims: Record<string, unknown>, header: { alg?: string } = {}): Promise<string> {
  const payload = Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== null));
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT', ...header }).sign(key);
}

/** The claims of a push OIDC token, issued now for an hour. */
export function pushClaims(aud: string | string[], nowSeconds = Math.floor(Date.now() / 1000)): Record<string, unknown> {
  return {
    iss: 'https://accounts.google.com',
    aud,
    azp: '112233445566778899001',
    sub: '112233445566778899001',
    email: PUSH_SERVICE_ACCOUNT,
    email_verified: true,
    iat: nowSeconds,
    exp: nowSeconds + 3600,
  };
}

export function googleConfig(overrides: Partial<GoogleConfig> = {}): GoogleConfig {
  return {
    profiles: [{ packageName: PACKAGE_NAME, serviceAccountRef: 'file:google-service-account.json' }],
    push: { serviceAccountEmail: PUSH_SERVICE_ACCOUNT },
    ...overrides,
  };
}

/** A publisher with this Google configuration (none when undefined) and no Apple one. */
export function googlePublisher(publisherId: number, google: GoogleConfig | undefined): Publisher {
  return { ...publisher(publisherId, undefined), ...(google ? { google } : {}) };
}

/** 2026-12-07T10:00:00.000Z, as Google writes eventTimeMillis (a decimal string). */
export const EVENT_TIME_MILLIS = '1796637600000';

/** A DeveloperNotification; `kind` is merged in as is (e.g. `{ subscriptionNotification: {...} }`). */
export function developerNotification(kind: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { version: '1.0', packageName: PACKAGE_NAME, eventTimeMillis: EVENT_TIME_MILLIS, ...kind, ...overrides };
}

export function subscriptionNotification(notificationType: number, purchaseToken = 'token-1.AO-J1Ox'): Record<string, unknown> {
  return { subscriptionNotification: { version: '1.0', notificationType, purchaseToken, subscriptionId: 'premium_monthly' } };
}

export function base64Json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64');
}

/** The body Pub/Sub POSTs, with both spellings of the id and time as Pub/Sub sends them. */
export function pushBody(data: string, messageId = '1234567890123456', publishTime = '2026-12-07T10:00:01.000Z'): string {
  return JSON.stringify({
    message: { data, messageId, message_id: messageId, publishTime, publish_time: publishTime, attributes: {} },
    subscription: SUBSCRIPTION,
  });
}
