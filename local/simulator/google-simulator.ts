import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { androidpublisher_v3 } from '@googleapis/androidpublisher';
import { errors as joseErrors, jwtVerify } from 'jose';
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

/** How the Google Play simulator is set up. */
export interface GoogleSimulatorOptions {
  /** Root of the local data; the simulator writes under `simulator/` and `secrets/`. */
  dataDir: string;
  /** Keep subscriptions and the service account in memory only. */
  inMemory: boolean;
  /** Clock for purchase and expiry times (assertions and access tokens are checked against the wall clock, which signs them). */
  now?: () => Date;
  /** Default `com.example.iapsync`. */
  defaultPackageName?: string;
}

/** The Google Play Developer API stand-in, its OAuth token endpoint and its control routes. */
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
}

/** File name of the service account under `<dataDir>/secrets` (its secret reference is `file:` + this). */
export const GOOGLE_SERVICE_ACCOUNT_FILE = 'google-service-account.json';

const PREFIX = '/__simulator/google';
const TOKEN_PATH = '/oauth2/token';
// Paths as the @googleapis/androidpublisher client builds them (segments percent-encoded).
const GET_ROUTE = /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/subscriptionsv2\/tokens\/([^/]+)$/;
const ACKNOWLEDGE_ROUTE = /^\/androidpublisher\/v3\/applications\/([^/]+)\/purchases\/subscriptions\/([^/]+)\/tokens\/([^/]+):acknowledge$/;
const CONTROL_ROUTE = /^\/subscriptions(?:\/([^/]+)\/(revoke|expire))?$/;

const ANDROID_PUBLISHER_SCOPE = 'https://www.googleapis.com/auth/androidpublisher';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCESS_TOKEN_SECONDS = 3600;
// Google refuses assertions longer than an hour; a little slack for the signer's clock.
const MAX_ASSERTION_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 60;
const DEFAULT_EXPIRES_IN_SECONDS = 30 * 24 * 3600;
const MAX_EXPIRES_IN_SECONDS = 10 * 365 * 24 * 3600;
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
const storedAccountSchema = z.object({ version: z.literal(1), serviceAccount: serviceAccountSchema });

const subscriptionSchema = z.object({
  purchaseToken: z.string(),
  packageName: z.string(),
  productId: z.string(),
  orderId: z.string(),
  startTime: z.number(),
  expiryTime: z.number(),
  acknowledged: z.boolean(),
  testPurchase: z.boolean(),
  /** Set by /expire: the user canceled and the period is over. */
  expiredAt: z.number().optional(),
  /** Set by /revoke: refunded and revoked, access ends at once. */
  revokedAt: z.number().optional(),
});
type SimulatedSubscription = z.infer<typeof subscriptionSchema>;
const storedSubscriptionsSchema = z.object({ version: z.literal(1), subscriptions: z.array(subscriptionSchema) });

// The contract's rule for packageName (api-contract.md §3); product ids as Play Console allows them, leniently.
const packageNameSchema = z.string().max(255).regex(/^[a-zA-Z]\w*(\.[a-zA-Z]\w*)+$/, 'must be an Android application id');
const createBodySchema = z.strictObject({
  productId: z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a Play product id'),
  packageName: packageNameSchema.optional(),
  expiresInSeconds: z.number().int().min(-MAX_EXPIRES_IN_SECONDS).max(MAX_EXPIRES_IN_SECONDS).optional(),
  // An extension of shared/local-runtime.md: every simulated purchase is a license-test purchase unless told otherwise.
  testPurchase: z.boolean().optional(),
});
const emptyBodySchema = z.strictObject({});

/** An HTTP answer; no body means an empty one. */
type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

interface Context {
  account: ServiceAccount;
  publicKey: KeyObject;
  store: SubscriptionStore;
  faults: FaultInjector;
  /** Issued access tokens and when they expire (wall-clock ms); in memory, like a session. */
  accessTokens: Map<string, number>;
  now: () => number;
  packageName: string;
}

/**
 * Creates the Google side of the store simulator: `purchases.subscriptionsv2.get` and
 * `purchases.subscriptions.acknowledge` behind an OAuth 2.0 token endpoint that checks service
 * account assertions like Google's, plus control routes that create, revoke and expire
 * subscriptions. State survives restarts unless `inMemory`.
 */
export async function createGoogleSimulator(options: GoogleSimulatorOptions, faults: FaultInjector): Promise<GoogleSimulator> {
  const clock = options.now ?? (() => new Date());
  const account = await loadOrCreateServiceAccount(options);
  const context: Context = {
    account,
    publicKey: createPublicKey(createPrivateKey(account.private_key)),
    store: await SubscriptionStore.open(options),
    faults,
    accessTokens: new Map(),
    now: () => clock().getTime(),
    packageName: options.defaultPackageName ?? 'com.example.iapsync',
  };
  return {
    handle: (req, res, url) => handle(context, req, res, url),
    serviceAccountJson: JSON.stringify(account, null, 2),
    tokenUrl: (baseUrl) => `${baseUrl.replace(/\/+$/, '')}${PREFIX}${TOKEN_PATH}`,
    apiRootUrl: (baseUrl) => `${baseUrl.replace(/\/+$/, '')}${PREFIX}/`,
    packageName: context.packageName,
  };
}

function handle(context: Context, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  return serveUnder(PREFIX, 'google simulator', req, res, url, (route) => serve(context, req, route));
}

async function serve(context: Context, req: IncomingMessage, route: string): Promise<Answer> {
  if (route === TOKEN_PATH) {
    if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
    return issueAccessToken(context, req);
  }
  const get = GET_ROUTE.exec(route);
  const acknowledge = get ? null : ACKNOWLEDGE_ROUTE.exec(route);
  if (get || acknowledge) {
    if (req.method !== (get ? 'GET' : 'POST')) return { status: 405, body: googleError(405, 'Method not allowed.', 'UNIMPLEMENTED') };
    // Drain the body before answering (acknowledge carries `{}`); its content does not matter here.
    if (acknowledge) await readJsonBody(req);
    // Faults first (Google is "down"), then the bearer token, then the data.
    await context.faults.delay('google');
    const fault = context.faults.take('google');
    if (fault !== undefined) return { status: fault, body: FAULT_BODIES[fault] };
    if (!hasValidAccessToken(context, req.headers.authorization)) {
      return { status: 401, body: UNAUTHENTICATED, headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' } };
    }
    const parts = decodeSegments((get ?? acknowledge ?? []).slice(1));
    if (!parts) return { status: 400, body: INVALID_VALUE };
    if (get) return getSubscription(context, parts[0] ?? '', parts[1] ?? '');
    return acknowledgeSubscription(context, parts[0] ?? '', parts[1] ?? '', parts[2] ?? '');
  }
  const control = CONTROL_ROUTE.exec(route);
  if (!control) return { status: 404, body: { error: 'no such simulator route' } };
  if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
  const body: unknown = (await readJsonBody(req)) ?? {};
  const [, encodedToken, action] = control;
  if (encodedToken === undefined) return createSubscription(context, body);
  const parsed = emptyBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  const token = decodeSegments([encodedToken])?.[0];
  const subscription = token === undefined ? undefined : context.store.find(token);
  if (!subscription) return { status: 404, body: { error: 'subscription not found' } };
  // A second ago, so "now" is already past it whatever the clock's resolution.
  const at = context.now() - 1000;
  if (action === 'revoke') subscription.revokedAt ??= at;
  else subscription.expiredAt ??= at;
  await context.store.save();
  const view = subscriptionPurchase(context, subscription);
  return { status: 200, body: { purchaseToken: subscription.purchaseToken, subscriptionState: view.subscriptionState, expiryTime: view.lineItems?.[0]?.expiryTime } };
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
 * A SubscriptionPurchaseV2 as Google answers it, with the field names of the client's
 * Schema$SubscriptionPurchaseV2. The simulator never renews: past its expiry a subscription is
 * EXPIRED. Revoked reads as EXPIRED too, as on Google, whose states have no "revoked".
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2
 */
function subscriptionPurchase(context: Context, s: SimulatedSubscription): androidpublisher_v3.Schema$SubscriptionPurchaseV2 {
  const now = context.now();
  const endedAt = Math.min(s.expiryTime, s.expiredAt ?? Infinity, s.revokedAt ?? Infinity);
  const expired = endedAt <= now;
  const canceled = s.expiredAt !== undefined || s.revokedAt !== undefined;
  const canceledStateContext =
    s.revokedAt !== undefined
      ? { developerInitiatedCancellation: {} }
      : s.expiredAt !== undefined
        ? { userInitiatedCancellation: { cancelTime: new Date(s.expiredAt).toISOString() } }
        : undefined;
  return {
    kind: 'androidpublisher#subscriptionPurchaseV2',
    regionCode: 'US',
    startTime: new Date(s.startTime).toISOString(),
    subscriptionState: expired ? 'SUBSCRIPTION_STATE_EXPIRED' : canceled ? 'SUBSCRIPTION_STATE_CANCELED' : 'SUBSCRIPTION_STATE_ACTIVE',
    acknowledgementState: s.acknowledged ? 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED' : 'ACKNOWLEDGEMENT_STATE_PENDING',
    ...(canceledStateContext ? { canceledStateContext } : {}),
    ...(s.testPurchase ? { testPurchase: {} } : {}),
    lineItems: [
      {
        productId: s.productId,
        expiryTime: new Date(endedAt).toISOString(),
        autoRenewingPlan: { autoRenewEnabled: !canceled && !expired },
        latestSuccessfulOrderId: s.orderId,
      },
    ],
  };
}

async function createSubscription(context: Context, body: unknown): Promise<Answer> {
  const parsed = createBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  const input = parsed.data;
  const now = context.now();
  const subscription: SimulatedSubscription = {
    purchaseToken: newPurchaseToken(),
    packageName: input.packageName ?? context.packageName,
    productId: input.productId,
    orderId: newOrderId(),
    startTime: now,
    expiryTime: now + (input.expiresInSeconds ?? DEFAULT_EXPIRES_IN_SECONDS) * 1000,
    acknowledged: false,
    testPurchase: input.testPurchase ?? true,
  };
  await context.store.add(subscription);
  return { status: 201, body: { purchaseToken: subscription.purchaseToken } };
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
 * The simulator's service account: generated once (RSA 2048, like a key Google Cloud creates),
 * kept in `<dataDir>/simulator/google-service-account.json` and copied to the secrets folder the
 * service reads. `token_uri` stays Google's: the local runtime points the service elsewhere.
 */
async function loadOrCreateServiceAccount(options: GoogleSimulatorOptions): Promise<ServiceAccount> {
  if (options.inMemory) return generateServiceAccount();
  const accountPath = path.join(options.dataDir, 'simulator', 'google-service-account.json');
  let stored = await readJsonFile(accountPath, storedAccountSchema);
  if (!stored) {
    stored = { version: 1, serviceAccount: generateServiceAccount() };
    await writeFileAtomically(accountPath, JSON.stringify(stored, null, 2));
  }
  const secretPath = path.join(options.dataDir, 'secrets', GOOGLE_SERVICE_ACCOUNT_FILE);
  const secretJson = JSON.stringify(stored.serviceAccount, null, 2);
  // The simulator owns this file: a stale copy would only earn confusing 400 invalid_grant answers.
  if ((await readOptionalFile(secretPath)) !== secretJson) await writeFileAtomically(secretPath, secretJson);
  return stored.serviceAccount;
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
    client_id: Array.from({ length: 21 }, (_, i) => (i === 0 ? 1 + randomInt(9) : randomInt(10))).join(''),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
}

/** Subscriptions in memory, mirrored to `<dataDir>/simulator/google-subscriptions.json` after each change. */
class SubscriptionStore {
  private readonly byToken = new Map<string, SimulatedSubscription>();
  private readonly writeState: (state: unknown) => Promise<void>;

  private constructor(
    private readonly state: z.infer<typeof storedSubscriptionsSchema>,
    file: string | undefined,
  ) {
    this.writeState = serialStateWriter(file);
    for (const subscription of state.subscriptions) this.byToken.set(subscription.purchaseToken, subscription);
  }

  static async open(options: GoogleSimulatorOptions): Promise<SubscriptionStore> {
    const fresh = { version: 1 as const, subscriptions: [] };
    if (options.inMemory) return new SubscriptionStore(fresh, undefined);
    const file = path.join(options.dataDir, 'simulator', 'google-subscriptions.json');
    return new SubscriptionStore((await readJsonFile(file, storedSubscriptionsSchema)) ?? fresh, file);
  }

  find(purchaseToken: string): SimulatedSubscription | undefined {
    return this.byToken.get(purchaseToken);
  }

  async add(subscription: SimulatedSubscription): Promise<void> {
    this.state.subscriptions.push(subscription);
    this.byToken.set(subscription.purchaseToken, subscription);
    await this.save();
  }

  /** Writes the whole state (chained: an older snapshot never lands after a newer one). */
  async save(): Promise<void> {
    await this.writeState(this.state);
  }

}
