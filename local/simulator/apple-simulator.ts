import {
  AutoRenewStatus,
  ExpirationIntent,
  NotificationTypeV2,
  RevocationReason,
  RevocationType,
  SendAttemptResult,
  Status,
  Subtype,
  type Data,
  type JWSRenewalInfoDecodedPayload,
  type NotificationHistoryResponse,
  type NotificationHistoryResponseItem,
  type ResponseBodyV2DecodedPayload,
} from '@apple/app-store-server-library';
import { randomInt, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { z } from 'zod';
import { loadOrCreateApplePki, type AppleApiKey, type ApplePki } from './apple-pki';
import type { FaultInjector, FaultStatus } from './faults';
import { describeIssue, readJsonBody, readJsonFile, RequestBodyError, serialStateWriter, serveUnder } from './http-json';
import type { NotificationOutbox, NotificationRecord } from './notifications';

/** How the Apple simulator is set up. */
export interface AppleSimulatorOptions {
  /** Root of the local data; the simulator writes under `simulator/` and `secrets/`. */
  dataDir: string;
  /** Keep transactions and keys in memory only. */
  inMemory: boolean;
  /** Clock for purchase, expiry and signed dates (bearer tokens are checked against the wall clock, which signs them). */
  now?: () => Date;
  /** Default `com.example.iapsync`. */
  defaultBundleId?: string;
  /** Default 1234567890; the verifier compares it for Production data. */
  appAppleId?: number;
  /** Where App Store Server Notifications V2 go; without one none is sent and the history is empty. */
  outbox?: NotificationOutbox;
}

/** The App Store Server API stand-in and its control routes. */
export interface AppleSimulator {
  /** Handles requests whose path starts with /__simulator/apple; answers false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** DER of the root the service must trust (APPLE_ROOT_CERTIFICATES). */
  rootCertificateDer: Buffer;
  /** The App Store Connect key the service must sign its bearer tokens with. */
  apiKey: AppleApiKey;
  bundleId: string;
  appAppleId: number;
}

// Declared here, not imported from lambdas/, so the simulator stays independent of the service it stands in for.
type AppleEnvironment = 'Sandbox' | 'Production';

const PREFIX = '/__simulator/apple';
const STORE_API_ROUTE = /^(?:\/(sandbox|production))?\/inApps\/v1\/(transactions|subscriptions)\/([^/]+)$/;
const NOTIFICATIONS_API_ROUTE = /^(?:\/(sandbox|production))?\/inApps\/v1\/notifications\/(history|test)$/;

/**
 * Whether a path is the App Store Server API stand-in (what Apple's own library calls), as opposed
 * to the simulator's control routes: the local stack holds only the control routes to JSON bodies.
 */
export function isAppleStoreApiPath(pathname: string): boolean {
  if (!pathname.startsWith(`${PREFIX}/`)) return false;
  const route = pathname.slice(PREFIX.length);
  return STORE_API_ROUTE.test(route) || NOTIFICATIONS_API_ROUTE.test(route);
}

const PRODUCT_TYPES = ['Auto-Renewable Subscription', 'Non-Consumable', 'Consumable', 'Non-Renewing Subscription'] as const;
const AUTO_RENEWABLE = PRODUCT_TYPES[0];
const DAY_SECONDS = 24 * 3600;
const DEFAULT_EXPIRES_IN_SECONDS = 30 * DAY_SECONDS;
const MAX_EXPIRES_IN_SECONDS = 10 * 365 * DAY_SECONDS;
// Apple's longest grace period; a 16-day default makes the grace outlast any test.
const DEFAULT_GRACE_PERIOD_SECONDS = 16 * DAY_SECONDS;
// All products of the demo app share one subscription group, as monthly and yearly plans do.
const SUBSCRIPTION_GROUP_ID = '21000001';
// 16-digit ids like Apple's; a random start keeps two data dirs from handing out the same ids.
const FIRST_ID_BASE = 2_000_000_000_000_000;
const PRICE = 9990;
const CURRENCY = 'USD';
// Notification History: Apple's page size and how far back it looks.
const HISTORY_PAGE_SIZE = 20;
const HISTORY_MAX_AGE_MS = 180 * DAY_SECONDS * 1000;

const NOT_FOUND = { errorCode: 4040010, errorMessage: 'Transaction id not found.' };
const INVALID_ID = { errorCode: 4000006, errorMessage: 'Invalid transaction id.' };
// Apple's answers to the rehearsed outages: https://developer.apple.com/documentation/appstoreserverapi/error_codes
const FAULT_BODIES: Record<FaultStatus, { errorCode: number; errorMessage: string }> = {
  429: { errorCode: 4290000, errorMessage: 'Rate limit exceeded.' },
  500: { errorCode: 5000000, errorMessage: 'An unknown error occurred.' },
  503: { errorCode: 5000001, errorMessage: 'An unknown error occurred. Please try again.' },
};
const HISTORY_ERRORS = {
  badRequest: { errorCode: 4000000, errorMessage: 'Bad request.' },
  startDateTooFarInPast: { errorCode: 4000012, errorMessage: 'Invalid request. The start date is earlier than the allowed start date.' },
  startDateAfterEndDate: { errorCode: 4000013, errorMessage: 'Invalid request. The end date precedes the start date or the dates are the same.' },
  invalidPaginationToken: { errorCode: 4000014, errorMessage: 'Invalid request. The pagination token is invalid.' },
  invalidStartDate: { errorCode: 4000015, errorMessage: 'Invalid request. The start date is not a timestamp value in milliseconds.' },
  invalidEndDate: { errorCode: 4000016, errorMessage: 'Invalid request. The end date is not a timestamp value in milliseconds.' },
  paginationTokenExpired: { errorCode: 4000017, errorMessage: 'Invalid request. The pagination token is expired.' },
  invalidNotificationType: { errorCode: 4000018, errorMessage: 'Invalid request. The notification type or subtype is invalid.' },
  multipleFilters: { errorCode: 4000019, errorMessage: 'Invalid request. Too many filters were specified.' },
} as const;

const environmentSchema = z.enum(['Sandbox', 'Production']);
const transactionSchema = z.object({
  transactionId: z.string(),
  originalTransactionId: z.string(),
  webOrderLineItemId: z.string().optional(),
  bundleId: z.string(),
  productId: z.string(),
  type: z.enum(PRODUCT_TYPES),
  environment: environmentSchema,
  purchaseDate: z.number(),
  originalPurchaseDate: z.number(),
  expiresDate: z.number().optional(),
  transactionReason: z.enum(['PURCHASE', 'RENEWAL']),
  revocationDate: z.number().optional(),
  revocationType: z.enum(RevocationType).optional(),
});
type SimulatedTransaction = z.infer<typeof transactionSchema>;
/** What Apple knows of a subscription beyond its transactions; a missing entry means all defaults. */
const subscriptionStateSchema = z.object({
  autoRenewStatus: z.enum(AutoRenewStatus).default(AutoRenewStatus.ON),
  /** Apple is retrying a failed renewal, with or without a grace period of continued service. */
  billingIssue: z.enum(['billing-retry', 'grace-period']).optional(),
  gracePeriodExpiresDate: z.number().optional(),
  /** Expired through the expire route, whatever the expiry date says. */
  expired: z.boolean().default(false),
  expirationIntent: z.enum(ExpirationIntent).optional(),
  /** Set when the subscription restarts after lapsing; before that it is the original purchase date. */
  recentSubscriptionStartDate: z.number().optional(),
});
type SubscriptionState = z.infer<typeof subscriptionStateSchema>;

function defaultSubscriptionState(): SubscriptionState {
  return { autoRenewStatus: AutoRenewStatus.ON, expired: false };
}

/** What a successful purchase or renewal resets: no billing issue, not expired. */
const HEALTHY: Partial<SubscriptionState> = { billingIssue: undefined, gracePeriodExpiresDate: undefined, expired: false, expirationIntent: undefined };

// `subscriptions` came later: files written before it load with no entries, i.e. all defaults.
const storedStateSchema = z.object({
  nextId: z.number().int(),
  transactions: z.array(transactionSchema),
  subscriptions: z.record(z.string(), subscriptionStateSchema).default({}),
});
type StoredState = z.infer<typeof storedStateSchema>;

const transactionIdSchema = z.string().regex(/^\d{1,20}$/, 'must be a numeric transaction id');
const secondsSchema = z.number().int().min(-MAX_EXPIRES_IN_SECONDS).max(MAX_EXPIRES_IN_SECONDS).optional();
const createBodySchema = z.strictObject({
  productId: z.string().trim().min(1).max(200),
  type: z.enum(PRODUCT_TYPES).default(AUTO_RENEWABLE),
  expiresInSeconds: secondsSchema,
  bundleId: z.string().trim().min(1).max(200).optional(),
  environment: environmentSchema.optional(),
  originalTransactionId: transactionIdSchema.optional(),
});
const emptyBodySchema = z.strictObject({});
const renewBodySchema = z.strictObject({ expiresInSeconds: secondsSchema });
const graceBodySchema = z.strictObject({ gracePeriodExpiresInSeconds: secondsSchema });
const autoRenewBodySchema = z.strictObject({ enabled: z.boolean() });

const timestampSchema = z.number().int().nonnegative();
// Fields are checked one by one below, because Apple answers a distinct error code for each.
const historyRequestSchema = z.object({
  startDate: z.unknown().optional(),
  endDate: z.unknown().optional(),
  notificationType: z.unknown().optional(),
  notificationSubtype: z.unknown().optional(),
  transactionId: z.unknown().optional(),
  onlyFailures: z.boolean().optional(),
});
const paginationTokenSchema = z.object({ after: z.string() });
// What the history needs from a logged notification body; the simulator signed it, so no verification.
const sentBodySchema = z.object({ signedPayload: z.string() });
const sentPayloadSchema = z.object({
  notificationType: z.string(),
  subtype: z.string().optional(),
  signedDate: z.number(),
  data: z.object({ environment: z.string().optional(), bundleId: z.string().optional(), signedTransactionInfo: z.string().optional() }).optional(),
});
const sentTransactionSchema = z.object({ originalTransactionId: z.string() });

/** An HTTP answer; no body means an empty one (Apple's 401). */
type Answer = { status: number; body?: unknown };

interface Context {
  pki: ApplePki;
  store: TransactionStore;
  faults: FaultInjector;
  outbox: NotificationOutbox | undefined;
  now: () => number;
  bundleId: string;
  appAppleId: number;
}

type Action = (context: Context, transaction: SimulatedTransaction, body: unknown) => Promise<Answer>;

/** Control actions on an existing transaction: POST /transactions/{id}/{action}. */
const ACTIONS: Record<string, Action> = {
  renew: renewTransaction,
  expire: expireSubscription,
  refund: (context, transaction, body) => revoke(context, transaction, body, RevocationType.REFUND_FULL),
  revoke: (context, transaction, body) => revoke(context, transaction, body, RevocationType.FAMILY_REVOKE),
  'refund-reversed': reverseRefund,
  grace: (context, transaction, body) => failRenewal(context, transaction, body, 'grace-period'),
  'billing-retry': (context, transaction, body) => failRenewal(context, transaction, body, 'billing-retry'),
  'auto-renew': changeAutoRenew,
};
const CONTROL_ROUTE = new RegExp(`^/transactions(?:/([^/]+)/(${Object.keys(ACTIONS).join('|')}))?$`);

/**
 * Creates the Apple side of the store simulator: Get Transaction Info, Get All Subscription
 * Statuses, Get Notification History and Request a Test Notification per environment, answering
 * JWS signed by the local chain, plus control routes that create transactions and move
 * subscriptions through their lifecycle, each sending the App Store Server Notification V2 Apple
 * would send (when an outbox is given). State survives restarts unless `inMemory`.
 */
export async function createAppleSimulator(options: AppleSimulatorOptions, faults: FaultInjector): Promise<AppleSimulator> {
  const clock = options.now ?? (() => new Date());
  const context: Context = {
    pki: await loadOrCreateApplePki(options),
    store: await TransactionStore.open(options),
    faults,
    outbox: options.outbox,
    now: () => clock().getTime(),
    bundleId: options.defaultBundleId ?? 'com.example.iapsync',
    appAppleId: options.appAppleId ?? 1234567890,
  };
  return {
    handle: (req, res, url) => handle(context, req, res, url),
    rootCertificateDer: context.pki.rootCertificateDer,
    apiKey: context.pki.apiKey,
    bundleId: context.bundleId,
    appAppleId: context.appAppleId,
  };
}

function handle(context: Context, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  return serveUnder(PREFIX, 'apple simulator', req, res, url, (route) => serve(context, req, route, url));
}

async function serve(context: Context, req: IncomingMessage, route: string, url: URL): Promise<Answer> {
  const api = STORE_API_ROUTE.exec(route);
  if (api) {
    if (req.method !== 'GET') return { status: 405, body: { error: 'method not allowed' } };
    await context.faults.delay('apple');
    return serveStoreApi(context, req, environmentOf(api[1]), api[2] === 'subscriptions', api[3] ?? '');
  }
  const notificationsApi = NOTIFICATIONS_API_ROUTE.exec(route);
  if (notificationsApi) {
    if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
    // Read before answering anything, so an early 401 or fault leaves no unread body on the socket.
    const body = await readStoreApiBody(req);
    await context.faults.delay('apple');
    const fault = context.faults.take('apple');
    if (fault !== undefined) return { status: fault, body: FAULT_BODIES[fault] };
    const bid = context.pki.verifyBearer(req.headers.authorization, Date.now());
    if (bid === undefined) return { status: 401 };
    const environment = environmentOf(notificationsApi[1]);
    if (notificationsApi[2] === 'test') return requestTestNotification(context, environment, bid);
    return notificationHistory(context, environment, bid, body, url.searchParams.get('paginationToken'));
  }
  const control = CONTROL_ROUTE.exec(route);
  if (!control) return { status: 404, body: { error: 'no such simulator route' } };
  if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
  const body: unknown = (await readJsonBody(req)) ?? {};
  const [, transactionId, action] = control;
  if (transactionId === undefined) return createTransaction(context, body);
  const transaction = context.store.find(transactionId);
  if (!transaction) return { status: 404, body: { error: 'transaction not found' } };
  const act = action === undefined ? undefined : ACTIONS[action];
  if (!act) return { status: 404, body: { error: 'no such simulator route' } };
  return act(context, transaction, body);
}

function environmentOf(prefix: string | undefined): AppleEnvironment {
  return prefix === 'production' ? 'Production' : 'Sandbox';
}

/** The App Store Server API: faults first (Apple is "down"), then the bearer token, then the data. */
function serveStoreApi(context: Context, req: IncomingMessage, environment: AppleEnvironment, statuses: boolean, id: string): Answer {
  const fault = context.faults.take('apple');
  if (fault !== undefined) return { status: fault, body: FAULT_BODIES[fault] };
  const bid = context.pki.verifyBearer(req.headers.authorization, Date.now());
  if (bid === undefined) return { status: 401 };
  if (!transactionIdSchema.safeParse(id).success) return { status: 400, body: INVALID_ID };
  const transaction = context.store.find(id, environment);
  // Unlike Apple, the simulator serves another bundle's transaction to any valid token: creating one
  // (`bundleId` on the control route) exists to exercise the service's own bundle-id check.
  if (!transaction || (statuses && transaction.type !== AUTO_RENEWABLE)) return { status: 404, body: NOT_FOUND };
  if (!statuses) return { status: 200, body: { signedTransactionInfo: signTransaction(context, transaction) } };
  return { status: 200, body: subscriptionStatuses(context, transaction) };
}

/** A store API request body; `null` stands for one that is not JSON, which Apple answers with a general 400. */
async function readStoreApiBody(req: IncomingMessage): Promise<unknown> {
  try {
    return (await readJsonBody(req)) ?? {};
  } catch (error) {
    if (error instanceof RequestBodyError && error.status === 400) return null;
    throw error;
  }
}

/** Get All Subscription Statuses for the transaction's subscription; its latest transaction decides. */
function subscriptionStatuses(context: Context, transaction: SimulatedTransaction): object {
  const latest = context.store.latestOf(transaction);
  const status = statusOf(context, latest);
  const lastTransaction = {
    status,
    originalTransactionId: latest.originalTransactionId,
    signedTransactionInfo: signTransaction(context, latest),
    signedRenewalInfo: context.pki.signJws(renewalInfo(context, latest, status)),
  };
  return {
    environment: latest.environment,
    bundleId: latest.bundleId,
    appAppleId: context.appAppleId,
    data: [{ subscriptionGroupIdentifier: SUBSCRIPTION_GROUP_ID, lastTransactions: [lastTransaction] }],
  };
}

/** The subscription's status as Apple reports it, given its latest transaction. */
function statusOf(context: Context, latest: SimulatedTransaction): Status {
  if (latest.revocationDate !== undefined) return Status.REVOKED;
  const state = context.store.peekSubscription(latest.originalTransactionId);
  if (state.expired) return Status.EXPIRED;
  if (state.billingIssue === 'grace-period' && (state.gracePeriodExpiresDate ?? 0) > context.now()) return Status.BILLING_GRACE_PERIOD;
  // A grace period that ran out leaves Apple still retrying the payment.
  if (state.billingIssue !== undefined) return Status.BILLING_RETRY;
  if (latest.expiresDate !== undefined && latest.expiresDate <= context.now()) return Status.EXPIRED;
  return Status.ACTIVE;
}

/** https://developer.apple.com/documentation/appstoreserverapi/jwsrenewalinfodecodedpayload */
function renewalInfo(context: Context, latest: SimulatedTransaction, status: Status): JWSRenewalInfoDecodedPayload {
  const state = context.store.peekSubscription(latest.originalTransactionId);
  const lapsedIntent = state.autoRenewStatus === AutoRenewStatus.OFF ? ExpirationIntent.CUSTOMER_CANCELLED : ExpirationIntent.OTHER;
  // JSON.stringify drops the undefined optional fields, as Apple omits them.
  return {
    originalTransactionId: latest.originalTransactionId,
    autoRenewProductId: latest.productId,
    productId: latest.productId,
    autoRenewStatus: state.autoRenewStatus,
    isInBillingRetryPeriod: status === Status.BILLING_RETRY || status === Status.BILLING_GRACE_PERIOD,
    gracePeriodExpiresDate: state.billingIssue === 'grace-period' ? state.gracePeriodExpiresDate : undefined,
    expirationIntent: status === Status.EXPIRED ? (state.expirationIntent ?? lapsedIntent) : undefined,
    signedDate: context.now(),
    environment: latest.environment,
    recentSubscriptionStartDate: state.recentSubscriptionStartDate ?? latest.originalPurchaseDate,
    renewalDate: latest.expiresDate,
    currency: CURRENCY,
    renewalPrice: PRICE,
  };
}

/** A JWSTransaction as the App Store signs it: https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload */
function signTransaction(context: Context, t: SimulatedTransaction): string {
  // JSON.stringify drops the undefined optional fields, as Apple omits them.
  return context.pki.signJws({
    ...t,
    // Only auto-renewable subscriptions belong to a subscription group.
    subscriptionGroupIdentifier: t.type === AUTO_RENEWABLE ? SUBSCRIPTION_GROUP_ID : undefined,
    quantity: 1,
    inAppOwnershipType: 'PURCHASED',
    signedDate: context.now(),
    revocationReason: t.revocationDate === undefined ? undefined : RevocationReason.REFUNDED_FOR_OTHER_REASON,
    storefront: 'USA',
    storefrontId: '143441',
    price: PRICE,
    currency: CURRENCY,
  });
}

async function createTransaction(context: Context, body: unknown): Promise<Answer> {
  const parsed = createBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  const input = parsed.data;
  let original: SimulatedTransaction | undefined;
  if (input.originalTransactionId !== undefined) {
    original = context.store.find(input.originalTransactionId);
    if (!original) return badRequest('originalTransactionId: no such transaction');
    if (original.type !== AUTO_RENEWABLE || input.type !== AUTO_RENEWABLE) {
      return badRequest('originalTransactionId: only auto-renewable subscriptions can be joined');
    }
    if ((input.environment ?? original.environment) !== original.environment || (input.bundleId ?? original.bundleId) !== original.bundleId) {
      return badRequest('environment and bundleId must be those of the original transaction');
    }
  }
  const lapsed = original !== undefined && [Status.EXPIRED, Status.REVOKED].includes(statusOf(context, context.store.latestOf(original)));
  const transaction = addPurchase(context, {
    ...input,
    bundleId: original?.bundleId ?? input.bundleId ?? context.bundleId,
    environment: original?.environment ?? input.environment ?? 'Sandbox',
    transactionReason: 'PURCHASE',
    original,
  });
  if (original) {
    // A purchase in the subscription's group restarts it, or replaces its product at once (an upgrade).
    const state = context.store.subscription(original.originalTransactionId);
    Object.assign(state, HEALTHY, { autoRenewStatus: AutoRenewStatus.ON });
    if (lapsed) state.recentSubscriptionStartDate = transaction.purchaseDate;
  }
  await context.store.save();
  if (input.type !== AUTO_RENEWABLE) await notify(context, NotificationTypeV2.ONE_TIME_CHARGE, undefined, transaction);
  else if (!original) await notify(context, NotificationTypeV2.SUBSCRIBED, Subtype.INITIAL_BUY, transaction);
  else if (lapsed) await notify(context, NotificationTypeV2.SUBSCRIBED, Subtype.RESUBSCRIBE, transaction);
  else await notify(context, NotificationTypeV2.DID_CHANGE_RENEWAL_PREF, Subtype.UPGRADE, transaction);
  return created(context, transaction);
}

async function renewTransaction(context: Context, transaction: SimulatedTransaction, body: unknown): Promise<Answer> {
  const parsed = renewBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  if (transaction.type !== AUTO_RENEWABLE) return badRequest('only auto-renewable subscriptions renew');
  // Apple renews into the product the subscriber will renew to, i.e. the latest one.
  const latest = context.store.latestOf(transaction);
  const before = statusOf(context, latest);
  const state = context.store.subscription(latest.originalTransactionId);
  const renewal = addPurchase(context, {
    ...latest,
    expiresInSeconds: parsed.data.expiresInSeconds,
    transactionReason: 'RENEWAL',
    original: latest,
  });
  Object.assign(state, HEALTHY);
  if (before === Status.EXPIRED) state.recentSubscriptionStartDate = renewal.purchaseDate;
  await context.store.save();
  const recovered = before === Status.BILLING_RETRY || before === Status.BILLING_GRACE_PERIOD;
  await notify(context, NotificationTypeV2.DID_RENEW, recovered ? Subtype.BILLING_RECOVERY : undefined, renewal);
  return created(context, renewal);
}

/** Ends the subscription now. Other products just get an expiry date: Apple notifies none of theirs. */
async function expireSubscription(context: Context, transaction: SimulatedTransaction, body: unknown): Promise<Answer> {
  const parsed = emptyBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  const latest = context.store.latestOf(transaction);
  // A second ago, so "now" is already past it whatever the clock's resolution.
  latest.expiresDate = context.now() - 1000;
  let subtype: Subtype | undefined;
  if (latest.type === AUTO_RENEWABLE) {
    const state = context.store.subscription(latest.originalTransactionId);
    // Expiring while Apple retries the payment is the retry period ending, not the subscriber leaving.
    const billingIssue = state.billingIssue !== undefined;
    subtype = billingIssue ? Subtype.BILLING_RETRY : Subtype.VOLUNTARY;
    Object.assign(state, HEALTHY, {
      expired: true,
      expirationIntent: billingIssue ? ExpirationIntent.BILLING_ERROR : ExpirationIntent.CUSTOMER_CANCELLED,
      autoRenewStatus: billingIssue ? state.autoRenewStatus : AutoRenewStatus.OFF,
    });
  }
  await context.store.save();
  if (subtype !== undefined) await notify(context, NotificationTypeV2.EXPIRED, subtype, latest);
  return { status: 200, body: { transactionId: latest.transactionId, expiresDate: latest.expiresDate } };
}

/** A refund (REFUND) or the end of Family Sharing access (REVOKE) of the named transaction. */
async function revoke(context: Context, transaction: SimulatedTransaction, body: unknown, revocationType: RevocationType): Promise<Answer> {
  const parsed = emptyBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  transaction.revocationDate = context.now();
  transaction.revocationType = revocationType;
  await context.store.save();
  const type = revocationType === RevocationType.FAMILY_REVOKE ? NotificationTypeV2.REVOKE : NotificationTypeV2.REFUND;
  await notify(context, type, undefined, transaction);
  return { status: 200, body: { transactionId: transaction.transactionId, revocationDate: transaction.revocationDate } };
}

async function reverseRefund(context: Context, transaction: SimulatedTransaction, body: unknown): Promise<Answer> {
  const parsed = emptyBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  if (transaction.revocationDate === undefined) return { status: 409, body: { error: 'transaction is not refunded' } };
  transaction.revocationDate = undefined;
  transaction.revocationType = undefined;
  await context.store.save();
  await notify(context, NotificationTypeV2.REFUND_REVERSED, undefined, transaction);
  return { status: 200, body: { transactionId: transaction.transactionId } };
}

/**
 * A renewal that failed: Apple retries the payment, keeping the service on for a grace period if
 * asked. The renewal was due at the end of the period, so a period still running ends now.
 */
async function failRenewal(
  context: Context,
  transaction: SimulatedTransaction,
  body: unknown,
  billingIssue: 'grace-period' | 'billing-retry',
): Promise<Answer> {
  const parsed = (billingIssue === 'grace-period' ? graceBodySchema : emptyBodySchema).safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  if (transaction.type !== AUTO_RENEWABLE) return badRequest('only auto-renewable subscriptions fail to renew');
  const latest = context.store.latestOf(transaction);
  const now = context.now();
  if (latest.expiresDate === undefined || latest.expiresDate > now) latest.expiresDate = now - 1000;
  const state = context.store.subscription(latest.originalTransactionId);
  const graceSeconds = 'gracePeriodExpiresInSeconds' in parsed.data ? parsed.data.gracePeriodExpiresInSeconds : undefined;
  Object.assign(state, HEALTHY, {
    billingIssue,
    gracePeriodExpiresDate: billingIssue === 'grace-period' ? now + (graceSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS) * 1000 : undefined,
  });
  await context.store.save();
  const subtype = billingIssue === 'grace-period' ? Subtype.GRACE_PERIOD : undefined;
  await notify(context, NotificationTypeV2.DID_FAIL_TO_RENEW, subtype, latest);
  return {
    status: 200,
    body: {
      transactionId: latest.transactionId,
      originalTransactionId: latest.originalTransactionId,
      status: statusOf(context, latest),
      gracePeriodExpiresDate: state.gracePeriodExpiresDate,
    },
  };
}

async function changeAutoRenew(context: Context, transaction: SimulatedTransaction, body: unknown): Promise<Answer> {
  const parsed = autoRenewBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  if (transaction.type !== AUTO_RENEWABLE) return badRequest('only auto-renewable subscriptions renew');
  const latest = context.store.latestOf(transaction);
  const state = context.store.subscription(latest.originalTransactionId);
  state.autoRenewStatus = parsed.data.enabled ? AutoRenewStatus.ON : AutoRenewStatus.OFF;
  await context.store.save();
  const subtype = parsed.data.enabled ? Subtype.AUTO_RENEW_ENABLED : Subtype.AUTO_RENEW_DISABLED;
  await notify(context, NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, subtype, latest);
  return { status: 200, body: { originalTransactionId: latest.originalTransactionId, autoRenewStatus: state.autoRenewStatus } };
}

/**
 * Sends the notification Apple sends about the transaction: data with the transaction and, for a
 * subscription, its renewal info and status after the change.
 */
async function notify(context: Context, type: NotificationTypeV2, subtype: Subtype | undefined, transaction: SimulatedTransaction): Promise<void> {
  if (!context.outbox) return;
  const data: Data = {
    appAppleId: context.appAppleId,
    bundleId: transaction.bundleId,
    bundleVersion: '1',
    environment: transaction.environment,
    signedTransactionInfo: signTransaction(context, transaction),
  };
  if (transaction.type === AUTO_RENEWABLE) {
    const latest = context.store.latestOf(transaction);
    const status = statusOf(context, latest);
    data.signedRenewalInfo = context.pki.signJws(renewalInfo(context, latest, status));
    data.status = status;
  }
  await sendNotification(context, context.outbox, type, subtype, data);
}

/** https://developer.apple.com/documentation/appstoreservernotifications/responsebodyv2decodedpayload */
async function sendNotification(
  context: Context,
  outbox: NotificationOutbox,
  type: NotificationTypeV2,
  subtype: Subtype | undefined,
  data: Data,
): Promise<string> {
  const notificationUUID = randomUUID();
  const payload: ResponseBodyV2DecodedPayload = { notificationType: type, subtype, notificationUUID, data, version: '2.0', signedDate: context.now() };
  const body = JSON.stringify({ signedPayload: context.pki.signJws(payload) });
  await outbox.send({ store: 'apple', id: notificationUUID, type, ...(subtype === undefined ? {} : { subtype }), body });
  return notificationUUID;
}

/** Request a Test Notification: https://developer.apple.com/documentation/appstoreserverapi/request_a_test_notification */
async function requestTestNotification(context: Context, environment: AppleEnvironment, bundleId: string): Promise<Answer> {
  const data: Data = { bundleId, environment, appAppleId: context.appAppleId };
  const notificationUUID = context.outbox ? await sendNotification(context, context.outbox, NotificationTypeV2.TEST, undefined, data) : randomUUID();
  return { status: 200, body: { testNotificationToken: `${notificationUUID}_${context.now()}` } };
}

/**
 * Get Notification History: https://developer.apple.com/documentation/appstoreserverapi/get_notification_history
 * Answers from the outbox log, oldest first, for the token's app in the prefix's environment.
 */
function notificationHistory(
  context: Context,
  environment: AppleEnvironment,
  bundleId: string,
  body: unknown,
  paginationToken: string | null,
): Answer {
  const request = historyRequestSchema.safeParse(body);
  if (!request.success) return { status: 400, body: HISTORY_ERRORS.badRequest };
  const { notificationType, notificationSubtype, transactionId, onlyFailures } = request.data;
  const startDate = timestampSchema.safeParse(request.data.startDate);
  if (!startDate.success) return { status: 400, body: HISTORY_ERRORS.invalidStartDate };
  const endDate = timestampSchema.safeParse(request.data.endDate);
  if (!endDate.success) return { status: 400, body: HISTORY_ERRORS.invalidEndDate };
  const now = context.now();
  if (startDate.data < now - HISTORY_MAX_AGE_MS) return { status: 400, body: HISTORY_ERRORS.startDateTooFarInPast };
  if (endDate.data <= startDate.data) return { status: 400, body: HISTORY_ERRORS.startDateAfterEndDate };
  const types: readonly unknown[] = Object.values(NotificationTypeV2);
  const subtypes: readonly unknown[] = Object.values(Subtype);
  if (notificationType !== undefined && !types.includes(notificationType)) return { status: 400, body: HISTORY_ERRORS.invalidNotificationType };
  if (notificationSubtype !== undefined && (notificationType === undefined || !subtypes.includes(notificationSubtype))) {
    return { status: 400, body: HISTORY_ERRORS.invalidNotificationType };
  }
  if (transactionId !== undefined && notificationType !== undefined) return { status: 400, body: HISTORY_ERRORS.multipleFilters };
  let originalTransactionId: string | undefined;
  if (transactionId !== undefined) {
    const id = transactionIdSchema.safeParse(transactionId);
    if (!id.success) return { status: 400, body: INVALID_ID };
    // "Limit the history to this customer": the simulator has no customers, so the subscription stands in.
    originalTransactionId = context.store.find(id.data, environment)?.originalTransactionId ?? '';
  }

  const all = sentNotifications(context.outbox);
  let start = 0;
  if (paginationToken !== null) {
    const after = decodePaginationToken(paginationToken);
    if (after === undefined) return { status: 400, body: HISTORY_ERRORS.invalidPaginationToken };
    const index = all.findIndex((n) => n.id === after);
    // The notification it points after fell out of the bounded log.
    if (index < 0) return { status: 400, body: HISTORY_ERRORS.paginationTokenExpired };
    start = index + 1;
  }
  // Apple moves an end date in the future to now.
  const end = Math.min(endDate.data, now + 1);
  const matching = all.slice(start).filter(({ payload, originalTransactionId: sentFor, attempts }) =>
    payload.signedDate >= startDate.data &&
    payload.signedDate < end &&
    payload.data?.environment === environment &&
    payload.data.bundleId === bundleId &&
    (notificationType === undefined || payload.notificationType === notificationType) &&
    (notificationSubtype === undefined || payload.subtype === notificationSubtype) &&
    (originalTransactionId === undefined || sentFor === originalTransactionId) &&
    (onlyFailures !== true || !attempts.some((attempt) => sendAttemptResult(attempt) === SendAttemptResult.SUCCESS)));
  const page = matching.slice(0, HISTORY_PAGE_SIZE);
  const hasMore = matching.length > page.length;
  const last = page.at(-1);
  const notificationHistory: NotificationHistoryResponseItem[] = page.map((n) => ({
    signedPayload: n.signedPayload,
    sendAttempts: n.attempts.map((attempt) => ({ attemptDate: Date.parse(attempt.sentAt), sendAttemptResult: sendAttemptResult(attempt) })),
  }));
  const response: NotificationHistoryResponse = { notificationHistory, hasMore };
  if (hasMore && last) response.paginationToken = Buffer.from(JSON.stringify({ after: last.id })).toString('base64url');
  return { status: 200, body: response };
}

interface SentNotification {
  id: string;
  signedPayload: string;
  payload: z.infer<typeof sentPayloadSchema>;
  /** The subscription (or purchase) the notification is about; none for TEST. */
  originalTransactionId: string | undefined;
  attempts: NotificationRecord[];
}

/** The Apple notifications of the outbox log with their send attempts, in the order they were first sent. */
function sentNotifications(outbox: NotificationOutbox | undefined): SentNotification[] {
  const byId = new Map<string, SentNotification>();
  for (const record of outbox?.history('apple') ?? []) {
    const known = byId.get(record.id);
    if (known) {
      known.attempts.push(record);
      continue;
    }
    const body = sentBodySchema.safeParse(parseJson(record.body));
    const payload = body.success ? sentPayloadSchema.safeParse(decodeJwsPayload(body.data.signedPayload)) : undefined;
    if (!body.success || !payload?.success) continue;
    const signedTransactionInfo = payload.data.data?.signedTransactionInfo;
    const transaction = signedTransactionInfo === undefined ? undefined : sentTransactionSchema.safeParse(decodeJwsPayload(signedTransactionInfo));
    byId.set(record.id, {
      id: record.id,
      signedPayload: body.data.signedPayload,
      payload: payload.data,
      originalTransactionId: transaction?.success ? transaction.data.originalTransactionId : undefined,
      attempts: [record],
    });
  }
  return [...byId.values()];
}

function sendAttemptResult(attempt: NotificationRecord): SendAttemptResult {
  if (attempt.responseStatus === null) return SendAttemptResult.NO_RESPONSE;
  return attempt.responseStatus >= 200 && attempt.responseStatus < 300 ? SendAttemptResult.SUCCESS : SendAttemptResult.UNSUCCESSFUL_HTTP_RESPONSE_CODE;
}

function decodePaginationToken(token: string): string | undefined {
  const parsed = paginationTokenSchema.safeParse(parseJson(Buffer.from(token, 'base64url').toString('utf8')));
  return parsed.success ? parsed.data.after : undefined;
}

function decodeJwsPayload(jws: string): unknown {
  return parseJson(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

type PurchaseInput = Pick<SimulatedTransaction, 'productId' | 'type' | 'bundleId' | 'environment' | 'transactionReason'> & {
  expiresInSeconds?: number;
  /** Any transaction of the subscription this purchase joins; none starts a new one. */
  original?: SimulatedTransaction;
};

/** Records a purchase made now (the caller saves). Subscriptions always expire; other products only when asked to. */
function addPurchase(context: Context, input: PurchaseInput): SimulatedTransaction {
  const now = context.now();
  const subscription = input.type === AUTO_RENEWABLE || input.type === 'Non-Renewing Subscription';
  const expiresIn = input.expiresInSeconds ?? (subscription ? DEFAULT_EXPIRES_IN_SECONDS : undefined);
  const transactionId = context.store.nextId();
  const transaction: SimulatedTransaction = {
    transactionId,
    originalTransactionId: input.original?.originalTransactionId ?? transactionId,
    webOrderLineItemId: input.type === AUTO_RENEWABLE ? context.store.nextId() : undefined,
    bundleId: input.bundleId,
    productId: input.productId,
    type: input.type,
    environment: input.environment,
    purchaseDate: now,
    originalPurchaseDate: input.original?.originalPurchaseDate ?? now,
    expiresDate: expiresIn === undefined ? undefined : now + expiresIn * 1000,
    transactionReason: input.transactionReason,
  };
  context.store.add(transaction);
  return transaction;
}

function created(context: Context, t: SimulatedTransaction): Answer {
  const signedTransactionInfo = signTransaction(context, t);
  return { status: 201, body: { transactionId: t.transactionId, originalTransactionId: t.originalTransactionId, signedTransactionInfo } };
}

function badRequest(error: string): Answer {
  return { status: 400, body: { error } };
}

/** Transactions and subscription states in memory, mirrored to `<dataDir>/simulator/apple-transactions.json` after each change. */
class TransactionStore {
  private readonly writeState: (state: unknown) => Promise<void>;

  private constructor(
    private readonly state: StoredState,
    file: string | undefined,
  ) {
    this.writeState = serialStateWriter(file);
  }

  static async open(options: AppleSimulatorOptions): Promise<TransactionStore> {
    const fresh: StoredState = { nextId: FIRST_ID_BASE + randomInt(1_000_000_000), transactions: [], subscriptions: {} };
    if (options.inMemory) return new TransactionStore(fresh, undefined);
    const file = path.join(options.dataDir, 'simulator', 'apple-transactions.json');
    return new TransactionStore((await readJsonFile(file, storedStateSchema)) ?? fresh, file);
  }

  nextId(): string {
    return String(this.state.nextId++);
  }

  /** A transaction by id, optionally only in one environment (Apple keeps Sandbox and Production apart). */
  find(transactionId: string, environment?: AppleEnvironment): SimulatedTransaction | undefined {
    return this.state.transactions.find((t) => t.transactionId === transactionId && (environment ?? t.environment) === t.environment);
  }

  /** The most recent purchase of the transaction's subscription; the higher id breaks ties within one millisecond. */
  latestOf(member: SimulatedTransaction): SimulatedTransaction {
    return this.state.transactions
      .filter((t) => t.originalTransactionId === member.originalTransactionId && t.environment === member.environment)
      .reduce((best, t) => {
        const later = t.purchaseDate !== best.purchaseDate ? t.purchaseDate > best.purchaseDate : Number(t.transactionId) > Number(best.transactionId);
        return later ? t : best;
      }, member);
  }

  /** The subscription's state, to read or change in place (then save). */
  subscription(originalTransactionId: string): SubscriptionState {
    let state = this.state.subscriptions[originalTransactionId];
    if (!state) {
      state = defaultSubscriptionState();
      this.state.subscriptions[originalTransactionId] = state;
    }
    return state;
  }

  /** The subscription's state, read only: reading adds no entry to the saved state. */
  peekSubscription(originalTransactionId: string): Readonly<SubscriptionState> {
    return this.state.subscriptions[originalTransactionId] ?? defaultSubscriptionState();
  }

  add(transaction: SimulatedTransaction): void {
    this.state.transactions.push(transaction);
  }

  /** Writes the whole state (chained: an older snapshot never lands after a newer one). */
  async save(): Promise<void> {
    await this.writeState(this.state);
  }
}
