import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { androidpublisher_v3 } from '@googleapis/androidpublisher';
import { errors as joseErrors, exportJWK, type JWK, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import type { FaultInjector, FaultStatus } from './faults';
import {
  describeIssue,
  MAX_JSON_BODY_BYTES,
  readBody,
  readJsonBody,
  readJsonFile,
  readOptionalFile,
  RequestBodyError,
  serialStateWriter,
  serveUnder,
  writeFileAtomically,
} from './http-json';
import type { NotificationOutbox, NotificationRecord } from './notifications';

/** How the Google Play simulator is set up. */
export interface GoogleSimulatorOptions {
  /** Root of the local data; the simulator writes under `simulator/` and `secrets/`. */
  dataDir: string;
  /** Keep subscriptions, the service account and the push signing key in memory only. */
  inMemory: boolean;
  /** Clock for purchase, expiry and notification event times (assertions, access and push tokens use the wall clock, which signs them). */
  now?: () => Date;
  /** Default `com.example.iapsync`. */
  defaultPackageName?: string;
  /**
   * Where Real-time Developer Notifications go, as Pub/Sub pushes; without it the control routes
   * change state and send nothing.
   */
  outbox?: NotificationOutbox;
  /**
   * The `aud` of the push OIDC tokens. Pub/Sub defaults it to the push endpoint URL, and so does
   * the simulator: the outbox's google target at each attempt.
   * https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
   */
  pushAudience?: string;
  /** The push subscription's service account (`email` claim); default `pubsub-push@iap-sync-local.iam.gserviceaccount.com`. */
  pushServiceAccountEmail?: string;
}

/** The claims of a push OIDC token, as Google signs them for authenticated push subscriptions. */
export interface PushTokenClaims {
  iss: string;
  aud: string;
  /** The push service account's unique id, as `sub`. */
  azp: string;
  sub: string;
  email: string;
  email_verified: boolean;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
}

/** Replacements for a push token's claims (tests forging bad tokens); `null` leaves the claim out. */
export type PushTokenOverrides = { [K in keyof PushTokenClaims]?: PushTokenClaims[K] | null };

/** The Google Play Developer API stand-in, its OAuth token endpoint, its Pub/Sub push sender and its control routes. */
export interface GoogleSimulator {
  /** Handles requests whose path starts with /__simulator/google; answers false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** The service account key file the service must use (also written to `<dataDir>/secrets/google-service-account.json` unless in memory). */
  serviceAccountJson: string;
  /** GOOGLE_OAUTH_TOKEN_URL for a server at `baseUrl` (e.g. `http://127.0.0.1:3000`). */
  tokenUrl(baseUrl: string): string;
  /** GOOGLE_API_ROOT_URL for a server at `baseUrl`. */
  apiRootUrl(baseUrl: string): string;
  packageName: string;
  /** The `iss` of push OIDC tokens: `https://accounts.google.com`, as Google's. */
  oidcIssuer: string;
  /** The JWKS that verifies push OIDC tokens, for a server at `baseUrl` (Google's is https://www.googleapis.com/oauth2/v3/certs). */
  jwksUrl(baseUrl: string): string;
  /** The `email` claim of push OIDC tokens. */
  pushServiceAccountEmail: string;
  /**
   * A push OIDC token signed with the simulator's key, with the claims a push would carry
   * (`aud`: `pushAudience`, else the outbox's latest google target) replaced by `overrides`.
   * Throws when no audience is known and none is given.
   */
  signPushToken(overrides?: PushTokenOverrides): Promise<string>;
}

/** File name of the service account under `<dataDir>/secrets` (its secret reference is `file:` + this). */
export const GOOGLE_SERVICE_ACCOUNT_FILE = 'google-service-account.json';

/** `iss` of Google-signed ID tokens. https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions */
export const GOOGLE_OIDC_ISSUER = 'https://accounts.google.com';
export const DEFAULT_PUSH_SERVICE_ACCOUNT_EMAIL = 'pubsub-push@iap-sync-local.iam.gserviceaccount.com';
/** The Pub/Sub subscription named in every push body. */
export const GOOGLE_PUSH_SUBSCRIPTION = 'projects/iap-sync-local/subscriptions/play-rtdn';

/**
 * `subscriptionNotification.notificationType` values.
 * https://developer.android.com/google/play/billing/rtdn-reference#sub
 */
export const SUBSCRIPTION_NOTIFICATION_TYPES = {
  SUBSCRIPTION_RECOVERED: 1,
  SUBSCRIPTION_RENEWED: 2,
  SUBSCRIPTION_CANCELED: 3,
  SUBSCRIPTION_PURCHASED: 4,
  SUBSCRIPTION_ON_HOLD: 5,
  SUBSCRIPTION_IN_GRACE_PERIOD: 6,
  SUBSCRIPTION_RESTARTED: 7,
  SUBSCRIPTION_PRICE_CHANGE_CONFIRMED: 8,
  SUBSCRIPTION_DEFERRED: 9,
  SUBSCRIPTION_PAUSED: 10,
  SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED: 11,
  SUBSCRIPTION_REVOKED: 12,
  SUBSCRIPTION_EXPIRED: 13,
} as const;
export type SubscriptionNotificationType = keyof typeof SUBSCRIPTION_NOTIFICATION_TYPES;
/** The outbox `type` of the notification `POST /__simulator/google/test-notification` sends. */
export const TEST_NOTIFICATION_TYPE = 'TEST_NOTIFICATION';

/**
 * A Real-time Developer Notification, the JSON inside a push's `message.data`.
 * https://developer.android.com/google/play/billing/rtdn-reference#encoding
 */
export interface DeveloperNotification {
  version: '1.0';
  packageName: string;
  /** Milliseconds since the epoch, as a decimal string. */
  eventTimeMillis: string;
  subscriptionNotification?: { version: '1.0'; notificationType: number; purchaseToken: string; subscriptionId: string };
  testNotification?: { version: '1.0' };
}

/**
 * The body Pub/Sub POSTs to a push endpoint; both spellings of the id and time, as Pub/Sub sends them.
 * https://cloud.google.com/pubsub/docs/push#receive_push
 */
export interface PubSubPushBody {
  message: { data: string; messageId: string; message_id: string; publishTime: string; publish_time: string; attributes: Record<string, string> };
  subscription: string;
}

const PREFIX = '/__simulator/google';
const TOKEN_PATH = '/oauth2/token';
const JWKS_PATH = '/oauth2/v3/certs';
const TEST_NOTIFICATION_PATH = '/test-notification';
// Paths as the @googleapis/androidpublisher client builds them (segments percent-encoded).
const GET_ROUTE = /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/subscriptionsv2\/tokens\/([^/]+)$/;
const ACKNOWLEDGE_ROUTE = /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/subscriptions\/([^/]+)\/tokens\/([^/]+):acknowledge$/;
const VOIDED_ROUTE = /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/voidedpurchases$/;
const CONTROL_ACTIONS = ['renew', 'expire', 'revoke', 'grace', 'hold', 'recover', 'pause', 'cancel', 'replace'] as const;
type ControlAction = (typeof CONTROL_ACTIONS)[number];
const CONTROL_ROUTE = new RegExp(`^/subscriptions(?:/([^/]+)/(${CONTROL_ACTIONS.join('|')}))?$`);

/**
 * Whether a path is the Play Developer API or OAuth stand-in (what Google's clients call, the token
 * endpoint with a form body), as opposed to the simulator's control routes: the local stack holds
 * only the control routes to JSON bodies.
 */
export function isGoogleStoreApiPath(pathname: string): boolean {
  if (!pathname.startsWith(`${PREFIX}/`)) return false;
  const route = pathname.slice(PREFIX.length);
  return route === TOKEN_PATH || route === JWKS_PATH || GET_ROUTE.test(route) || ACKNOWLEDGE_ROUTE.test(route) || VOIDED_ROUTE.test(route);
}

const ANDROID_PUBLISHER_SCOPE = 'https://www.googleapis.com/auth/androidpublisher';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCESS_TOKEN_SECONDS = 3600;
// Google refuses assertions longer than an hour; a little slack for the signer's clock.
const MAX_ASSERTION_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 60;
// Google's push ID tokens last an hour.
const PUSH_TOKEN_SECONDS = 3600;
const DAY_SECONDS = 24 * 3600;
const DEFAULT_EXPIRES_IN_SECONDS = 30 * DAY_SECONDS;
const MAX_EXPIRES_IN_SECONDS = 10 * 365 * DAY_SECONDS;
// Play Console's default grace period for monthly plans; Play allows up to 30 days.
// https://developer.android.com/google/play/billing/lifecycle/subscriptions#grace-period
const DEFAULT_GRACE_PERIOD_SECONDS = 7 * DAY_SECONDS;
const MAX_GRACE_PERIOD_SECONDS = 30 * DAY_SECONDS;
// A paused subscription resumes by itself after the pause the user chose (one week to three months).
// https://developer.android.com/google/play/billing/lifecycle/subscriptions#pause
const PAUSE_SECONDS = 30 * DAY_SECONDS;
// The Voided Purchases API looks back 30 days at most and pages by 1000.
// https://developers.google.com/android-publisher/voided-purchases
const VOIDED_WINDOW_MS = 30 * DAY_SECONDS * 1000;
const MAX_VOIDED_RESULTS = 1000;
const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/** Google's JSON error body: https://cloud.google.com/apis/design/errors#http_mapping */
function googleError(code: number, message: string, status: string, reason?: string): object {
  const error: Record<string, unknown> = { code, message, status };
  if (reason !== undefined) error.errors = [{ message, domain: 'androidpublisher', reason }];
  return { error };
}

const NOT_FOUND = googleError(404, 'The purchase token was not found.', 'NOT_FOUND');
// What Google answers to acknowledging a purchase twice (or one it cannot acknowledge).
const INVALID_PURCHASE_STATE = googleError(400, 'The purchase is not in a valid state to perform the desired operation.', 'INVALID_ARGUMENT', 'invalidPurchaseState');
const INVALID_VALUE = googleError(400, 'Invalid Value', 'INVALID_ARGUMENT', 'invalid');
const UNAUTHENTICATED = googleError(
  401,
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  'UNAUTHENTICATED',
);
const FAULT_BODIES: Record<FaultStatus, object> = {
  429: googleError(429, 'Resource has been exhausted (e.g. check quota).', 'RESOURCE_EXHAUSTED'),
  500: googleError(500, 'Internal error encountered.', 'INTERNAL'),
  503: googleError(503, 'The service is currently unavailable.', 'UNAVAILABLE'),
};

const serviceAccountSchema = z.object({
  type: z.literal('service_account'),
  project_id: z.string(),
  private_key_id: z.string(),
  private_key: z.string(),
  client_email: z.string(),
  client_id: z.string(),
  auth_uri: z.string(),
  token_uri: z.string(),
  auth_provider_x509_cert_url: z.string(),
  client_x509_cert_url: z.string(),
  universe_domain: z.string(),
});
type ServiceAccount = z.infer<typeof serviceAccountSchema>;
/** The key the simulator signs push OIDC tokens with, and the push service account's unique id (`sub`, `azp`). */
const pushSignerSchema = z.object({ kid: z.string(), privateKey: z.string(), uniqueId: z.string() });
type PushSigner = z.infer<typeof pushSignerSchema>;
// `pushSigner` came later: files without it still load, and get one at the next start.
const storedAccountSchema = z.object({ version: z.literal(1), serviceAccount: serviceAccountSchema, pushSigner: pushSignerSchema.optional() });

const subscriptionSchema = z.object({
  purchaseToken: z.string(),
  packageName: z.string(),
  productId: z.string(),
  /** The order of the purchase; renewals are `<orderId>..0`, `..1`… as on Google. */
  orderId: z.string(),
  startTime: z.number(),
  /** End of the paid (or grace) period; in the past while on hold or paused. */
  expiryTime: z.number(),
  acknowledged: z.boolean(),
  testPurchase: z.boolean(),
  /** Set by /expire (and for the old token by /replace): the period is over. */
  expiredAt: z.number().optional(),
  /** Set by /revoke: refunded and revoked, access ends at once. */
  revokedAt: z.number().optional(),
  // The fields below came with the lifecycle routes; state files without them still load.
  /** Set by /cancel: the user turned auto-renewal off; access lasts until expiryTime. */
  canceledAt: z.number().optional(),
  /** A renewal payment problem or pause in progress; absent while the subscription is in good standing. */
  phase: z.enum(['grace', 'hold', 'paused']).optional(),
  /** In grace: the expiry the failed renewal was due at (renewals count from it). */
  graceFrom: z.number().optional(),
  /** Paused: when the pause ends by itself. */
  autoResumeAt: z.number().optional(),
  /** Successful renewal orders so far. */
  renewals: z.number().int().min(0).optional(),
  /** The subscription this one replaced (upgrade, downgrade or re-signup). */
  linkedPurchaseToken: z.string().optional(),
  /** The subscription that replaced this one. */
  replacedBy: z.string().optional(),
});
type SimulatedSubscription = z.infer<typeof subscriptionSchema>;
const voidedPurchaseSchema = z.object({
  packageName: z.string(),
  purchaseToken: z.string(),
  orderId: z.string(),
  purchaseTimeMillis: z.number(),
  voidedTimeMillis: z.number(),
  voidedSource: z.number().int(),
  voidedReason: z.number().int(),
});
type VoidedPurchase = z.infer<typeof voidedPurchaseSchema>;
const storedSubscriptionsSchema = z.object({
  version: z.literal(1),
  subscriptions: z.array(subscriptionSchema),
  voidedPurchases: z.array(voidedPurchaseSchema).optional(),
});
type StoredSubscriptions = { version: 1; subscriptions: SimulatedSubscription[]; voidedPurchases: VoidedPurchase[] };

// The contract's rule for packageName (api-contract.md §3); product ids as Play Console allows them, leniently.
const packageNameSchema = z.string().max(255).regex(/^[a-zA-Z]\w*(\.[a-zA-Z]\w*)+$/, 'must be an Android application id');
const productIdSchema = z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a Play product id');
const createBodySchema = z.strictObject({
  productId: productIdSchema,
  packageName: packageNameSchema.optional(),
  expiresInSeconds: z.number().int().min(-MAX_EXPIRES_IN_SECONDS).max(MAX_EXPIRES_IN_SECONDS).optional(),
  // An extension of the simulator's documented routes: every simulated purchase is a license-test purchase unless told otherwise.
  testPurchase: z.boolean().optional(),
});
const emptyBodySchema = z.strictObject({});
const periodBodySchema = z.strictObject({ expiresInSeconds: z.number().int().min(1).max(MAX_EXPIRES_IN_SECONDS).optional() });
const graceBodySchema = z.strictObject({ gracePeriodSeconds: z.number().int().min(1).max(MAX_GRACE_PERIOD_SECONDS).optional() });
// VoidedPurchase.voidedSource (0 user, 1 developer, 2 Google) and voidedReason (0 other … 8 unacknowledged purchase).
// https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.voidedpurchases#VoidedPurchase
const revokeBodySchema = z.strictObject({
  voidedSource: z.number().int().min(0).max(2).optional(),
  voidedReason: z.number().int().min(0).max(8).optional(),
});
const replaceBodySchema = z.strictObject({ productId: productIdSchema });
const testNotificationBodySchema = z.strictObject({ packageName: packageNameSchema.optional() });
const voidedPageTokenSchema = z.object({ p: z.string(), o: z.number().int().min(0), s: z.number(), e: z.number(), t: z.union([z.literal(0), z.literal(1)]) });

/** An HTTP answer; no body means an empty one. */
type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

type SubscriptionState = 'ACTIVE' | 'CANCELED' | 'IN_GRACE_PERIOD' | 'ON_HOLD' | 'PAUSED' | 'EXPIRED';

interface Context {
  account: ServiceAccount;
  publicKey: KeyObject;
  store: SubscriptionStore;
  faults: FaultInjector;
  /** Issued access tokens and when they expire (wall-clock ms); in memory, like a session. */
  accessTokens: Map<string, number>;
  now: () => number;
  packageName: string;
  push: PushSender;
}

/**
 * Creates the Google side of the store simulator: `purchases.subscriptionsv2.get`,
 * `purchases.subscriptions.acknowledge` and `purchases.voidedpurchases.list` behind an OAuth 2.0
 * token endpoint that checks service account assertions like Google's; control routes that move
 * subscriptions through their lifecycle, each sending its Real-time Developer Notification as an
 * authenticated Pub/Sub push through `options.outbox`. State survives restarts unless `inMemory`.
 */
export async function createGoogleSimulator(options: GoogleSimulatorOptions, faults: FaultInjector): Promise<GoogleSimulator> {
  const clock = options.now ?? (() => new Date());
  const { serviceAccount: account, pushSigner } = await loadOrCreateKeys(options);
  const push = await PushSender.create(pushSigner, options);
  const context: Context = {
    account,
    publicKey: createPublicKey(createPrivateKey(account.private_key)),
    store: await SubscriptionStore.open(options),
    faults,
    accessTokens: new Map(),
    now: () => clock().getTime(),
    packageName: options.defaultPackageName ?? 'com.example.iapsync',
    push,
  };
  const under = (baseUrl: string, route: string): string => `${baseUrl.replace(/\/+$/, '')}${PREFIX}${route}`;
  return {
    handle: (req, res, url) => handle(context, req, res, url),
    serviceAccountJson: JSON.stringify(account, null, 2),
    tokenUrl: (baseUrl) => under(baseUrl, TOKEN_PATH),
    apiRootUrl: (baseUrl) => under(baseUrl, '/'),
    packageName: context.packageName,
    oidcIssuer: GOOGLE_OIDC_ISSUER,
    jwksUrl: (baseUrl) => under(baseUrl, JWKS_PATH),
    pushServiceAccountEmail: push.email,
    signPushToken: (overrides) => push.signToken(push.audience(undefined), overrides),
  };
}

function handle(context: Context, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  return serveUnder(PREFIX, 'google simulator', req, res, url, (route) => serve(context, req, route, url));
}

async function serve(context: Context, req: IncomingMessage, route: string, url: URL): Promise<Answer> {
  if (route === TOKEN_PATH) {
    if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
    return issueAccessToken(context, req);
  }
  if (route === JWKS_PATH) {
    if (req.method !== 'GET') return { status: 405, body: { error: 'method not allowed' } };
    // Google's JWKS is cacheable for hours; verifiers (jose's createRemoteJWKSet) refetch on an unknown kid.
    return { status: 200, body: context.push.jwks, headers: { 'cache-control': 'public, max-age=3600' } };
  }
  const get = GET_ROUTE.exec(route);
  const acknowledge = get ? null : ACKNOWLEDGE_ROUTE.exec(route);
  const voided = get || acknowledge ? null : VOIDED_ROUTE.exec(route);
  if (get || acknowledge || voided) {
    if (req.method !== (acknowledge ? 'POST' : 'GET')) return { status: 405, body: googleError(405, 'Method not allowed.', 'UNIMPLEMENTED') };
    // Drain the body before answering (acknowledge carries `{}`); its content does not matter here.
    if (acknowledge) await readJsonBody(req);
    // Faults first (Google is "down"), then the bearer token, then the data.
    await context.faults.delay('google');
    const fault = context.faults.take('google');
    if (fault !== undefined) return { status: fault, body: FAULT_BODIES[fault] };
    if (!hasValidAccessToken(context, req.headers.authorization)) {
      return { status: 401, body: UNAUTHENTICATED, headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' } };
    }
    const parts = decodeSegments((get ?? acknowledge ?? voided ?? []).slice(1));
    if (!parts) return { status: 400, body: INVALID_VALUE };
    if (get) return getSubscription(context, parts[0] ?? '', parts[1] ?? '');
    if (voided) return listVoidedPurchases(context, parts[0] ?? '', url.searchParams);
    return acknowledgeSubscription(context, parts[0] ?? '', parts[1] ?? '', parts[2] ?? '');
  }
  if (route === TEST_NOTIFICATION_PATH) {
    if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
    return sendTestNotification(context, (await readJsonBody(req)) ?? {});
  }
  const control = CONTROL_ROUTE.exec(route);
  if (!control) return { status: 404, body: { error: 'no such simulator route' } };
  if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
  const body: unknown = (await readJsonBody(req)) ?? {};
  const [, encodedToken, action] = control;
  if (encodedToken === undefined) return createSubscription(context, body);
  const token = decodeSegments([encodedToken])?.[0];
  const subscription = token === undefined ? undefined : context.store.find(token);
  if (!subscription) return { status: 404, body: { error: 'subscription not found' } };
  if (!isControlAction(action)) return { status: 404, body: { error: 'no such simulator route' } };
  return changeSubscription(context, subscription, action, body);
}

function isControlAction(action: string | undefined): action is ControlAction {
  return CONTROL_ACTIONS.some((known) => known === action);
}

/**
 * The OAuth 2.0 token endpoint for service accounts (JWT bearer grant, RFC 7523) with Google's
 * checks: RS256 signed by the service account key, `iss` its client_email, `aud` this endpoint,
 * an androidpublisher `scope`, not expired and at most an hour long.
 * https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
 */
async function issueAccessToken(context: Context, req: IncomingMessage): Promise<Answer> {
  const raw = await readBody(req, MAX_JSON_BODY_BYTES);
  if (raw === undefined) throw new RequestBodyError(`body larger than ${MAX_JSON_BODY_BYTES} bytes`, 413);
  const form = new URLSearchParams(raw.toString('utf8'));
  if (form.get('grant_type') !== JWT_BEARER_GRANT) {
    return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type.' } };
  }
  const assertion = form.get('assertion');
  if (!assertion) return { status: 400, body: { error: 'invalid_request', error_description: 'Missing required parameter: assertion' } };
  const refusal = await checkAssertion(context, assertion);
  if (refusal !== undefined) return { status: 400, body: { error: 'invalid_grant', error_description: refusal } };
  const accessToken = `ya29.${randomBytes(48).toString('base64url')}`;
  const nowMs = Date.now();
  for (const [token, expiresAt] of context.accessTokens) if (expiresAt <= nowMs) context.accessTokens.delete(token);
  context.accessTokens.set(accessToken, nowMs + ACCESS_TOKEN_SECONDS * 1000);
  return { status: 200, body: { access_token: accessToken, expires_in: ACCESS_TOKEN_SECONDS, token_type: 'Bearer' } };
}
/** Why the assertion is refused, or undefined when Google would accept it. */
async function checkAssertion(context: Context, assertion: string): Promise<string | undefined> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(assertion, context.publicKey, {
      algorithms: ['RS256'],
      issuer: context.account.client_email,
      requiredClaims: ['iat', 'exp', 'aud'],
      clockTolerance: CLOCK_SKEW_SECONDS,
    }));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) return 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.';
    return 'Invalid JWT Signature.';
  }
  const { aud, scope, iat, exp } = payload;
  // The assertion names the URL it was posted to; hosts differ (127.0.0.1, localhost), the path may not.
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.some((value) => typeof value === 'string' && pathOf(value) === `${PREFIX}${TOKEN_PATH}`)) {
    return 'Invalid JWT: Failed audience check.';
  }
  if (typeof scope !== 'string' || !scope.split(' ').includes(ANDROID_PUBLISHER_SCOPE)) return 'Invalid OAuth scope or ID token audience provided.';
  if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > MAX_ASSERTION_SECONDS || iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) {
    return 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.';
  }
  return undefined;
}

function hasValidAccessToken(context: Context, authorization: string | undefined): boolean {
  const match = /^Bearer (\S+)$/.exec(authorization ?? '');
  const expiresAt = match?.[1] === undefined ? undefined : context.accessTokens.get(match[1]);
  return expiresAt !== undefined && expiresAt > Date.now();
}

/** `purchases.subscriptionsv2.get`. Google never shows another app's purchase: a foreign package is "not found". */
function getSubscription(context: Context, packageName: string, token: string): Answer {
  const subscription = context.store.find(token);
  if (!subscription || subscription.packageName !== packageName) return { status: 404, body: NOT_FOUND };
  return { status: 200, body: subscriptionPurchase(context, subscription) };
}

/** `purchases.subscriptions.acknowledge`: once only, as on Google. */
async function acknowledgeSubscription(context: Context, packageName: string, subscriptionId: string, token: string): Promise<Answer> {
  const subscription = context.store.find(token);
  if (!subscription || subscription.packageName !== packageName) return { status: 404, body: NOT_FOUND };
  if (subscription.productId !== subscriptionId) return { status: 400, body: INVALID_VALUE };
  if (subscription.acknowledged) return { status: 400, body: INVALID_PURCHASE_STATE };
  subscription.acknowledged = true;
  await context.store.save();
  return { status: 204 };
}

/**
 * The subscription's state now. The simulator never renews or resumes by itself: past its expiry
 * a subscription in good standing (or in grace) is EXPIRED; on hold and paused last until a
 * control route moves them on. Revoked and replaced read as EXPIRED, as on Google.
 * https://developer.android.com/google/play/billing/lifecycle/subscriptions
 */
function stateOf(s: SimulatedSubscription, now: number): SubscriptionState {
  if (s.expiredAt !== undefined || s.revokedAt !== undefined) return 'EXPIRED';
  if (s.phase === 'hold') return 'ON_HOLD';
  if (s.phase === 'paused') return 'PAUSED';
  if (s.expiryTime <= now) return 'EXPIRED';
  if (s.phase === 'grace') return 'IN_GRACE_PERIOD';
  if (s.canceledAt !== undefined) return 'CANCELED';
  return 'ACTIVE';
}

/** When access ended or ends: an explicit end (expire, revoke, replace) cuts the period short. */
function accessEndsAt(s: SimulatedSubscription): number {
  return Math.min(s.expiryTime, s.expiredAt ?? Infinity, s.revokedAt ?? Infinity);
}

/** Renewal orders are the first order's id with `..0`, `..1`… https://developer.android.com/google/play/billing/subscriptions#renewals */
function latestOrderId(s: SimulatedSubscription): string {
  const renewals = s.renewals ?? 0;
  return renewals === 0 ? s.orderId : `${s.orderId}..${renewals - 1}`;
}

/**
 * Why a canceled or expired subscription stopped renewing, as Google reports it.
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#CanceledStateContext
 */
function canceledStateContext(s: SimulatedSubscription): androidpublisher_v3.Schema$CanceledStateContext {
  if (s.revokedAt !== undefined) return { developerInitiatedCancellation: {} };
  if (s.replacedBy !== undefined) return { replacementCancellation: {} };
  const cancelTime = s.canceledAt ?? s.expiredAt;
  if (cancelTime !== undefined) return { userInitiatedCancellation: { cancelTime: new Date(cancelTime).toISOString() } };
  // Lapsed without a cancellation: the renewal payment never came through.
  return { systemInitiatedCancellation: {} };
}

/**
 * A SubscriptionPurchaseV2 as Google answers it, with the field names of the client's
 * Schema$SubscriptionPurchaseV2 (which has no top-level `latestOrderId` any more: the latest order
 * is `lineItems[].latestSuccessfulOrderId`).
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2
 */
function subscriptionPurchase(context: Context, s: SimulatedSubscription): androidpublisher_v3.Schema$SubscriptionPurchaseV2 {
  const state = stateOf(s, context.now());
  const ended = state === 'CANCELED' || state === 'EXPIRED';
  return {
    kind: 'androidpublisher#subscriptionPurchaseV2',
    regionCode: 'US',
    startTime: new Date(s.startTime).toISOString(),
    subscriptionState: `SUBSCRIPTION_STATE_${state}`,
    ...(s.linkedPurchaseToken !== undefined ? { linkedPurchaseToken: s.linkedPurchaseToken } : {}),
    acknowledgementState: s.acknowledged ? 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED' : 'ACKNOWLEDGEMENT_STATE_PENDING',
    ...(ended ? { canceledStateContext: canceledStateContext(s) } : {}),
    ...(state === 'PAUSED' && s.autoResumeAt !== undefined ? { pausedStateContext: { autoResumeTime: new Date(s.autoResumeAt).toISOString() } } : {}),
    ...(s.testPurchase ? { testPurchase: {} } : {}),
    lineItems: [
      {
        productId: s.productId,
        expiryTime: new Date(accessEndsAt(s)).toISOString(),
        // On hold, in grace and paused, Google keeps trying (or will resume): auto-renewal stays on.
        autoRenewingPlan: { autoRenewEnabled: !ended },
        latestSuccessfulOrderId: latestOrderId(s),
      },
    ],
  };
}

/** The states each control route moves a subscription out of; anything else is a 409, as the step cannot happen on Google. */
const ALLOWED_FROM: Record<ControlAction, readonly SubscriptionState[]> = {
  renew: ['ACTIVE', 'IN_GRACE_PERIOD', 'ON_HOLD', 'PAUSED'],
  expire: ['ACTIVE', 'CANCELED', 'IN_GRACE_PERIOD', 'ON_HOLD', 'PAUSED'],
  // A refund can come after the end too; only a second revoke is refused (below).
  revoke: ['ACTIVE', 'CANCELED', 'IN_GRACE_PERIOD', 'ON_HOLD', 'PAUSED', 'EXPIRED'],
  // Grace and hold follow a failed renewal, which only an auto-renewing subscription has.
  grace: ['ACTIVE'],
  hold: ['ACTIVE', 'IN_GRACE_PERIOD'],
  recover: ['ON_HOLD', 'IN_GRACE_PERIOD'],
  pause: ['ACTIVE'],
  cancel: ['ACTIVE', 'IN_GRACE_PERIOD', 'ON_HOLD', 'PAUSED'],
  // linkedPurchaseToken links upgrades, downgrades and re-signups of subscriptions that have not lapsed.
  replace: ['ACTIVE', 'CANCELED', 'IN_GRACE_PERIOD'],
};

/** The RTDN each control route sends. https://developer.android.com/google/play/billing/rtdn-reference#sub */
const NOTIFICATION_OF: Record<ControlAction, SubscriptionNotificationType> = {
  renew: 'SUBSCRIPTION_RENEWED',
  expire: 'SUBSCRIPTION_EXPIRED',
  revoke: 'SUBSCRIPTION_REVOKED',
  grace: 'SUBSCRIPTION_IN_GRACE_PERIOD',
  hold: 'SUBSCRIPTION_ON_HOLD',
  recover: 'SUBSCRIPTION_RECOVERED',
  pause: 'SUBSCRIPTION_PAUSED',
  cancel: 'SUBSCRIPTION_CANCELED',
  // The new token's purchase; Google sends nothing for the replaced one.
  replace: 'SUBSCRIPTION_PURCHASED',
};

/** A control route on one subscription: checks the body and the state, changes it, saves, then sends the RTDN. */
async function changeSubscription(context: Context, s: SimulatedSubscription, action: ControlAction, body: unknown): Promise<Answer> {
  const input = parseControlBody(action, body);
  if (!input.ok) return badRequest(input.error);
  const now = context.now();
  const state = stateOf(s, now);
  if (!ALLOWED_FROM[action].includes(state) || (action === 'revoke' && s.revokedAt !== undefined)) {
    return { status: 409, body: { error: `cannot ${action} a subscription in SUBSCRIPTION_STATE_${s.revokedAt !== undefined ? 'EXPIRED (revoked)' : state}` } };
  }
  // A second ago, so "now" is already past it whatever the clock's resolution.
  const at = now - 1000;
  // Renewals and recoveries start the next period where the failed one was due, or now if later.
  const periodEnd = (seconds: number | undefined): number =>
    Math.max(now, s.phase === 'grace' ? (s.graceFrom ?? s.expiryTime) : s.expiryTime) + (seconds ?? DEFAULT_EXPIRES_IN_SECONDS) * 1000;
  let subject = s;
  switch (action) {
    case 'renew':
    case 'recover':
      s.expiryTime = periodEnd(input.expiresInSeconds);
      s.renewals = (s.renewals ?? 0) + 1;
      clearPhase(s);
      break;
    case 'expire':
      s.expiredAt = at;
      clearPhase(s);
      break;
    case 'revoke':
      s.revokedAt = at;
      clearPhase(s);
      context.store.addVoided({
        packageName: s.packageName,
        purchaseToken: s.purchaseToken,
        orderId: latestOrderId(s),
        purchaseTimeMillis: s.startTime,
        voidedTimeMillis: at,
        // Revoked through the Play Developer API: the developer voided it, reason "other" unless told.
        voidedSource: input.voidedSource ?? 1,
        voidedReason: input.voidedReason ?? 0,
      });
      break;
    case 'grace':
      // During a grace period Google extends the expiry to the end of the grace period.
      // https://developer.android.com/google/play/billing/lifecycle/subscriptions#grace-period
      s.graceFrom = s.expiryTime;
      s.expiryTime += (input.gracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS) * 1000;
      s.phase = 'grace';
      break;
    case 'hold':
      // On hold the user has no access: the expiry is in the past. https://developer.android.com/google/play/billing/lifecycle/subscriptions#account-hold
      clearPhase(s);
      s.expiryTime = Math.min(s.expiryTime, at);
      s.phase = 'hold';
      break;
    case 'pause':
      // The pause takes effect when the period ends, so access has ended here. https://developer.android.com/google/play/billing/lifecycle/subscriptions#pause
      s.expiryTime = Math.min(s.expiryTime, at);
      s.phase = 'paused';
      s.autoResumeAt = now + PAUSE_SECONDS * 1000;
      break;
    case 'cancel':
      // Canceled keeps access until the end of the period (in grace: of the grace period); on hold or paused it has none left.
      s.canceledAt = now;
      clearPhase(s);
      break;
    case 'replace': {
      // Required by replaceBodySchema; checked again for the compiler.
      if (input.productId === undefined) return badRequest('productId: required');
      subject = newSubscription(context, { productId: input.productId, packageName: s.packageName, testPurchase: s.testPurchase, linkedPurchaseToken: s.purchaseToken });
      s.expiredAt = at;
      s.replacedBy = subject.purchaseToken;
      clearPhase(s);
      await context.store.add(subject);
      break;
    }
  }
  await context.store.save();
  const notification = await notifySubscription(context, subject, NOTIFICATION_OF[action]);
  if (action === 'replace') return { status: 201, body: { purchaseToken: subject.purchaseToken, ...notification } };
  return { status: 200, body: { ...controlView(context, s), ...notification } };
}

type ControlInput =
  | { ok: false; error: string }
  | { ok: true; expiresInSeconds?: number; gracePeriodSeconds?: number; voidedSource?: number; voidedReason?: number; productId?: string };

function parseControlBody(action: ControlAction, body: unknown): ControlInput {
  const parsed =
    action === 'renew' || action === 'recover'
      ? periodBodySchema.safeParse(body)
      : action === 'grace'
        ? graceBodySchema.safeParse(body)
        : action === 'revoke'
          ? revokeBodySchema.safeParse(body)
          : action === 'replace'
            ? replaceBodySchema.safeParse(body)
            : emptyBodySchema.safeParse(body);
  return parsed.success ? { ok: true, ...parsed.data } : { ok: false, error: describeIssue(parsed.error) };
}

function clearPhase(s: SimulatedSubscription): void {
  delete s.phase;
  delete s.graceFrom;
  delete s.autoResumeAt;
}

/** What the control routes answer about a subscription (the parts a developer checks first). */
function controlView(context: Context, s: SimulatedSubscription): { purchaseToken: string; subscriptionState: string; expiryTime: string } {
  return {
    purchaseToken: s.purchaseToken,
    subscriptionState: `SUBSCRIPTION_STATE_${stateOf(s, context.now())}`,
    expiryTime: new Date(accessEndsAt(s)).toISOString(),
  };
}

async function createSubscription(context: Context, body: unknown): Promise<Answer> {
  const parsed = createBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  const input = parsed.data;
  const subscription = newSubscription(context, {
    productId: input.productId,
    packageName: input.packageName ?? context.packageName,
    testPurchase: input.testPurchase ?? true,
    expiresInSeconds: input.expiresInSeconds,
  });
  await context.store.add(subscription);
  const notification = await notifySubscription(context, subscription, 'SUBSCRIPTION_PURCHASED');
  return { status: 201, body: { purchaseToken: subscription.purchaseToken, ...notification } };
}

function newSubscription(
  context: Context,
  input: { productId: string; packageName: string; testPurchase: boolean; expiresInSeconds?: number; linkedPurchaseToken?: string },
): SimulatedSubscription {
  const now = context.now();
  return {
    purchaseToken: newPurchaseToken(),
    packageName: input.packageName,
    productId: input.productId,
    orderId: newOrderId(),
    startTime: now,
    expiryTime: now + (input.expiresInSeconds ?? DEFAULT_EXPIRES_IN_SECONDS) * 1000,
    acknowledged: false,
    testPurchase: input.testPurchase,
    ...(input.linkedPurchaseToken !== undefined ? { linkedPurchaseToken: input.linkedPurchaseToken } : {}),
  };
}

/** Sends the subscription's RTDN; the answer's `notification` (the outbox record) or nothing without an outbox. */
async function notifySubscription(
  context: Context,
  s: SimulatedSubscription,
  type: SubscriptionNotificationType,
): Promise<{ notification?: NotificationRecord }> {
  const record = await context.push.send(type, {
    version: '1.0',
    packageName: s.packageName,
    eventTimeMillis: String(context.now()),
    subscriptionNotification: {
      version: '1.0',
      notificationType: SUBSCRIPTION_NOTIFICATION_TYPES[type],
      purchaseToken: s.purchaseToken,
      subscriptionId: s.productId,
    },
  });
  return record ? { notification: record } : {};
}

/**
 * `POST /__simulator/google/test-notification`: what Play Console's "Send test notification" sends.
 * https://developer.android.com/google/play/billing/rtdn-reference#test
 */
async function sendTestNotification(context: Context, body: unknown): Promise<Answer> {
  const parsed = testNotificationBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  if (!context.push.enabled) return { status: 409, body: { error: 'this simulator has no notification outbox' } };
  const record = await context.push.send(TEST_NOTIFICATION_TYPE, {
    version: '1.0',
    packageName: parsed.data.packageName ?? context.packageName,
    eventTimeMillis: String(context.now()),
    testNotification: { version: '1.0' },
  });
  return { status: 200, body: { notification: record } };
}

/**
 * `purchases.voidedpurchases.list`: the voided purchases of `packageName` recorded between
 * startTime and endTime (defaults: the last 30 days, the furthest back Google looks), oldest
 * first, `maxResults` (at most 1000) a page, further pages by `token`. Only `type=1` includes
 * subscriptions, and the simulator only has subscriptions: the default type 0 lists nothing.
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.voidedpurchases/list
 */
function listVoidedPurchases(context: Context, packageName: string, query: URLSearchParams): Answer {
  const now = context.now();
  const maxResults = integerParam(query.get('maxResults'), MAX_VOIDED_RESULTS);
  if (maxResults === undefined || maxResults < 1 || maxResults > MAX_VOIDED_RESULTS) return invalidArgument('maxResults must be between 1 and 1000.');
  let page: z.infer<typeof voidedPageTokenSchema>;
  const token = query.get('token');
  if (token !== null) {
    // With a token, startTime, endTime and type are those of the first page, as on Google.
    const decoded = decodePageToken(token);
    if (!decoded || decoded.p !== packageName) return invalidArgument('Invalid pagination token.');
    page = decoded;
  } else {
    const startTime = integerParam(query.get('startTime'), now - VOIDED_WINDOW_MS);
    const endTime = integerParam(query.get('endTime'), now);
    const type = integerParam(query.get('type'), 0);
    if (startTime === undefined || endTime === undefined) return invalidArgument('startTime and endTime must be milliseconds since the epoch.');
    // A minute of slack for the caller's clock, which computed its window a moment ago.
    if (startTime < now - VOIDED_WINDOW_MS - CLOCK_SKEW_SECONDS * 1000) return invalidArgument('startTime cannot be older than 30 days.');
    if (endTime > now + CLOCK_SKEW_SECONDS * 1000) return invalidArgument('endTime cannot be in the future.');
    if (startTime > endTime) return invalidArgument('startTime must not be after endTime.');
    if (type !== 0 && type !== 1) return invalidArgument('type must be 0 or 1.');
    page = { p: packageName, o: 0, s: startTime, e: endTime, t: type };
  }
  const matching =
    page.t === 1
      ? context.store.voided().filter((v) => v.packageName === packageName && v.voidedTimeMillis >= page.s && v.voidedTimeMillis <= page.e)
      : [];
  const items = matching.slice(page.o, page.o + maxResults);
  const next = page.o + maxResults < matching.length ? encodePageToken({ ...page, o: page.o + maxResults }) : undefined;
  const body: androidpublisher_v3.Schema$VoidedPurchasesListResponse = {
    pageInfo: { totalResults: matching.length, resultPerPage: maxResults, startIndex: page.o },
    ...(next !== undefined ? { tokenPagination: { nextPageToken: next } } : {}),
    // Google's JSON leaves out empty lists.
    ...(items.length > 0 ? { voidedPurchases: items.map(voidedPurchaseView) } : {}),
  };
  return { status: 200, body };
}

function voidedPurchaseView(v: VoidedPurchase): androidpublisher_v3.Schema$VoidedPurchase {
  return {
    kind: 'androidpublisher#voidedPurchase',
    purchaseToken: v.purchaseToken,
    orderId: v.orderId,
    purchaseTimeMillis: String(v.purchaseTimeMillis),
    voidedTimeMillis: String(v.voidedTimeMillis),
    voidedSource: v.voidedSource,
    voidedReason: v.voidedReason,
  };
}

function invalidArgument(message: string): Answer {
  return { status: 400, body: googleError(400, message, 'INVALID_ARGUMENT', 'invalid') };
}

/** A non-negative integer query parameter, `fallback` when absent, undefined when malformed. */
function integerParam(value: string | null, fallback: number): number | undefined {
  if (value === null) return fallback;
  return /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

function encodePageToken(page: z.infer<typeof voidedPageTokenSchema>): string {
  return Buffer.from(JSON.stringify(page)).toString('base64url');
}

function decodePageToken(token: string): z.infer<typeof voidedPageTokenSchema> | undefined {
  try {
    const parsed = voidedPageTokenSchema.safeParse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Shaped like Google's: 24 lowercase letters, a dot, then a long base64url run starting `AO-J1O`. */
function newPurchaseToken(): string {
  const letters = Array.from({ length: 24 }, () => String.fromCharCode(97 + randomInt(26))).join('');
  return `${letters}.AO-J1O${randomBytes(96).toString('base64url')}`;
}

/** Google Play order ids look like GPA.1234-5678-9012-34567. */
function newOrderId(): string {
  const digits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('');
  return `GPA.${digits(4)}-${digits(4)}-${digits(4)}-${digits(5)}`;
}

/** A Google-style numeric id (service account client ids and unique ids are 21 digits). */
function numericId(length: number): string {
  return Array.from({ length }, (_, i) => (i === 0 ? 1 + randomInt(9) : randomInt(10))).join('');
}

function decodeSegments(segments: Array<string | undefined>): string[] | undefined {
  try {
    return segments.map((segment) => decodeURIComponent(segment ?? ''));
  } catch {
    return undefined;
  }
}

function pathOf(value: string): string | undefined {
  try {
    return new URL(value).pathname;
  } catch {
    return undefined;
  }
}

function badRequest(error: string): Answer {
  return { status: 400, body: { error } };
}

/**
 * The simulator's service account and push signing key: generated once (RSA 2048, like keys Google
 * Cloud creates), kept in `<dataDir>/simulator/google-service-account.json`; the service account is
 * copied to the secrets folder the service reads. `token_uri` stays Google's: the local runtime
 * points the service elsewhere.
 */
async function loadOrCreateKeys(options: GoogleSimulatorOptions): Promise<{ serviceAccount: ServiceAccount; pushSigner: PushSigner }> {
  if (options.inMemory) return { serviceAccount: generateServiceAccount(), pushSigner: generatePushSigner() };
  const accountPath = path.join(options.dataDir, 'simulator', 'google-service-account.json');
  const stored = await readJsonFile(accountPath, storedAccountSchema);
  const serviceAccount = stored?.serviceAccount ?? generateServiceAccount();
  let pushSigner = stored?.pushSigner;
  if (!stored || !pushSigner) {
    // A file from before push notifications keeps its service account and gains a signing key.
    pushSigner = generatePushSigner();
    await writeFileAtomically(accountPath, JSON.stringify({ version: 1, serviceAccount, pushSigner }, null, 2));
  }
  const secretPath = path.join(options.dataDir, 'secrets', GOOGLE_SERVICE_ACCOUNT_FILE);
  const secretJson = JSON.stringify(serviceAccount, null, 2);
  // The simulator owns this file: a stale copy would only earn confusing 400 invalid_grant answers.
  if ((await readOptionalFile(secretPath)) !== secretJson) await writeFileAtomically(secretPath, secretJson);
  return { serviceAccount, pushSigner };
}

function generateServiceAccount(): ServiceAccount {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const projectId = 'iap-sync-simulator';
  const clientEmail = 'iap-sync-local@simulator.iam.gserviceaccount.com';
  return {
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    client_id: numericId(21),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
}

/** Google's ID-token signing keys are RSA 2048 with 40-hex-digit key ids. */
function generatePushSigner(): PushSigner {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: randomBytes(20).toString('hex'), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), uniqueId: numericId(21) };
}

/**
 * Sends RTDNs as an authenticated Pub/Sub push subscription does: the DeveloperNotification
 * base64-encoded in a push body, with a fresh Google-signed OIDC token on every attempt.
 * https://cloud.google.com/pubsub/docs/push and https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 */
class PushSender {
  private lastMessageId = 0n;

  private constructor(
    private readonly signingKey: KeyObject,
    private readonly signer: PushSigner,
    readonly email: string,
    readonly jwks: { keys: JWK[] },
    private readonly outbox: NotificationOutbox | undefined,
    private readonly fixedAudience: string | undefined,
  ) {}

  static async create(signer: PushSigner, options: GoogleSimulatorOptions): Promise<PushSender> {
    const signingKey = createPrivateKey(signer.privateKey);
    const jwk: JWK = { ...(await exportJWK(createPublicKey(signingKey))), alg: 'RS256', use: 'sig', kid: signer.kid };
    return new PushSender(
      signingKey,
      signer,
      options.pushServiceAccountEmail ?? DEFAULT_PUSH_SERVICE_ACCOUNT_EMAIL,
      { keys: [jwk] },
      options.outbox,
      options.pushAudience,
    );
  }

  get enabled(): boolean {
    return this.outbox !== undefined;
  }

  /**
   * `pushAudience`, else the push endpoint, as Pub/Sub defaults it: the target the outbox recorded
   * for this attempt (it records an attempt before POSTing it), or for the latest google attempt.
   */
  audience(messageId: string | undefined): string | undefined {
    if (this.fixedAudience !== undefined) return this.fixedAudience;
    const records = this.outbox?.list('google') ?? [];
    const record = messageId === undefined ? records.at(-1) : records.findLast((r) => r.id === messageId);
    return record?.target ?? undefined;
  }

  /** An ID token as Google signs them for push, wall-clock dated: the receiver checks it against its own clock. */
  async signToken(audience: string | undefined, overrides: PushTokenOverrides = {}): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: GOOGLE_OIDC_ISSUER,
      ...(audience !== undefined ? { aud: audience } : {}),
      azp: this.signer.uniqueId,
      sub: this.signer.uniqueId,
      email: this.email,
      email_verified: true,
      iat,
      exp: iat + PUSH_TOKEN_SECONDS,
    };
    for (const [name, value] of Object.entries(overrides)) {
      if (value === null) delete claims[name];
      else if (value !== undefined) claims[name] = value;
    }
    if (!('aud' in claims) && overrides.aud !== null) {
      throw new Error('no push audience: pass aud, set pushAudience, or send a notification to a target first');
    }
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: this.signer.kid, typ: 'JWT' }).sign(this.signingKey);
  }

  /** Publishes one DeveloperNotification; the outbox record, or undefined without an outbox. */
  async send(type: string, notification: DeveloperNotification): Promise<NotificationRecord | undefined> {
    if (!this.outbox) return undefined;
    const id = this.nextMessageId();
    // publishTime is Pub/Sub's, on the wall clock; eventTimeMillis is Play's, on the simulator's clock.
    const publishTime = new Date().toISOString();
    const body: PubSubPushBody = {
      message: {
        data: Buffer.from(JSON.stringify(notification)).toString('base64'),
        messageId: id,
        message_id: id,
        publishTime,
        publish_time: publishTime,
        attributes: {},
      },
      subscription: GOOGLE_PUSH_SUBSCRIPTION,
    };
    return this.outbox.send({
      store: 'google',
      id,
      type,
      body: JSON.stringify(body),
      headers: async () => ({ authorization: `Bearer ${await this.signToken(this.audience(id))}` }),
    });
  }

  /** Pub/Sub message ids are decimal strings; these grow with time, so they stay unique across restarts. */
  private nextMessageId(): string {
    const fromClock = BigInt(Date.now()) * 1000n;
    this.lastMessageId = fromClock > this.lastMessageId ? fromClock : this.lastMessageId + 1n;
    return this.lastMessageId.toString();
  }
}

/** Subscriptions and voided purchases in memory, mirrored to `<dataDir>/simulator/google-subscriptions.json` after each change. */
class SubscriptionStore {
  private readonly byToken = new Map<string, SimulatedSubscription>();
  private readonly writeState: (state: unknown) => Promise<void>;

  private constructor(
    private readonly state: StoredSubscriptions,
    file: string | undefined,
  ) {
    this.writeState = serialStateWriter(file);
    for (const subscription of state.subscriptions) this.byToken.set(subscription.purchaseToken, subscription);
  }

  static async open(options: GoogleSimulatorOptions): Promise<SubscriptionStore> {
    if (options.inMemory) return new SubscriptionStore({ version: 1, subscriptions: [], voidedPurchases: [] }, undefined);
    const file = path.join(options.dataDir, 'simulator', 'google-subscriptions.json');
    const stored = await readJsonFile(file, storedSubscriptionsSchema);
    // State files from before the Voided Purchases API have no voidedPurchases.
    return new SubscriptionStore({ version: 1, subscriptions: stored?.subscriptions ?? [], voidedPurchases: stored?.voidedPurchases ?? [] }, file);
  }

  find(purchaseToken: string): SimulatedSubscription | undefined {
    return this.byToken.get(purchaseToken);
  }

  async add(subscription: SimulatedSubscription): Promise<void> {
    this.state.subscriptions.push(subscription);
    this.byToken.set(subscription.purchaseToken, subscription);
    await this.save();
  }

  /** Records a voided purchase; saved with the next save(). */
  addVoided(voided: VoidedPurchase): void {
    this.state.voidedPurchases.push(voided);
  }

  /** Voided purchases, oldest first. */
  voided(): VoidedPurchase[] {
    return [...this.state.voidedPurchases].sort((a, b) => a.voidedTimeMillis - b.voidedTimeMillis);
  }

  /** Writes the whole state (chained: an older snapshot never lands after a newer one). */
  async save(): Promise<void> {
    await this.writeState(this.state);
  }
}
