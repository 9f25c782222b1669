import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { z } from 'zod';
import type { AppleEnvironment } from '../../lambdas/domain/publisher';
import { loadOrCreateApplePki, type AppleApiKey, type ApplePki } from './apple-pki';
import type { FaultInjector, FaultStatus } from './faults';
import { describeIssue, readJsonBody, readJsonFile, serialStateWriter, serveUnder } from './http-json';

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

const PREFIX = '/__simulator/apple';
const STORE_API_ROUTE = /^(?:\/(sandbox|production))?\/inApps\/v1\/(transactions|subscriptions)\/([^/]+)$/;
const CONTROL_ROUTE = /^\/transactions(?:\/([^/]+)\/(renew|refund|expire))?$/;
const PRODUCT_TYPES = ['Auto-Renewable Subscription', 'Non-Consumable', 'Consumable', 'Non-Renewing Subscription'] as const;
const AUTO_RENEWABLE = PRODUCT_TYPES[0];
const DEFAULT_EXPIRES_IN_SECONDS = 30 * 24 * 3600;
const MAX_EXPIRES_IN_SECONDS = 10 * 365 * 24 * 3600;
// All products of the demo app share one subscription group, as monthly and yearly plans do.
const SUBSCRIPTION_GROUP_ID = '21000001';
// 16-digit ids like Apple's; a random start keeps two data dirs from handing out the same ids.
const FIRST_ID_BASE = 2_000_000_000_000_000;

const NOT_FOUND = { errorCode: 4040010, errorMessage: 'Transaction id not found.' };
const INVALID_ID = { errorCode: 4000006, errorMessage: 'Invalid transaction id.' };
// Apple's answers to the rehearsed outages: https://developer.apple.com/documentation/appstoreserverapi/error_codes
const FAULT_BODIES: Record<FaultStatus, { errorCode: number; errorMessage: string }> = {
  429: { errorCode: 4290000, errorMessage: 'Rate limit exceeded.' },
  500: { errorCode: 5000000, errorMessage: 'An unknown error occurred.' },
  503: { errorCode: 5000001, errorMessage: 'An unknown error occurred. Please try again.' },
};

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
});
type SimulatedTransaction = z.infer<typeof transactionSchema>;
const storedStateSchema = z.object({ nextId: z.number().int(), transactions: z.array(transactionSchema) });

const transactionIdSchema = z.string().regex(/^\d{1,20}$/, 'must be a numeric transaction id');
const expiresInSecondsSchema = z.number().int().min(-MAX_EXPIRES_IN_SECONDS).max(MAX_EXPIRES_IN_SECONDS).optional();
const createBodySchema = z.strictObject({
  productId: z.string().trim().min(1).max(200),
  type: z.enum(PRODUCT_TYPES).default(AUTO_RENEWABLE),
  expiresInSeconds: expiresInSecondsSchema,
  bundleId: z.string().trim().min(1).max(200).optional(),
  environment: environmentSchema.optional(),
  originalTransactionId: transactionIdSchema.optional(),
});
const renewBodySchema = z.strictObject({ expiresInSeconds: expiresInSecondsSchema });

/** An HTTP answer; no body means an empty one (Apple's 401). */
type Answer = { status: number; body?: unknown };

interface Context {
  pki: ApplePki;
  store: TransactionStore;
  faults: FaultInjector;
  now: () => number;
  bundleId: string;
  appAppleId: number;
}

/**
 * Creates the Apple side of the store simulator: Get Transaction Info and Get All Subscription
 * Statuses per environment, answering JWS signed by the local chain, plus control routes that
 * create, renew, refund and expire transactions. State survives restarts unless `inMemory`.
 */
export async function createAppleSimulator(options: AppleSimulatorOptions, faults: FaultInjector): Promise<AppleSimulator> {
  const clock = options.now ?? (() => new Date());
  const context: Context = {
    pki: await loadOrCreateApplePki(options),
    store: await TransactionStore.open(options),
    faults,
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
  return serveUnder(PREFIX, 'apple simulator', req, res, url, (route) => serve(context, req, route));
}

async function serve(context: Context, req: IncomingMessage, route: string): Promise<Answer> {
  const api = STORE_API_ROUTE.exec(route);
  if (api) {
    if (req.method !== 'GET') return { status: 405, body: { error: 'method not allowed' } };
    const environment: AppleEnvironment = api[1] === 'production' ? 'Production' : 'Sandbox';
    await context.faults.delay('apple');
    return serveStoreApi(context, req, environment, api[2] === 'subscriptions', api[3] ?? '');
  }
  const control = CONTROL_ROUTE.exec(route);
  if (!control) return { status: 404, body: { error: 'no such simulator route' } };
  if (req.method !== 'POST') return { status: 405, body: { error: 'method not allowed' } };
  const body: unknown = (await readJsonBody(req)) ?? {};
  const [, transactionId, action] = control;
  if (transactionId === undefined) return createTransaction(context, body);
  const transaction = context.store.find(transactionId);
  if (!transaction) return { status: 404, body: { error: 'transaction not found' } };
  if (action === 'renew') return renewTransaction(context, transaction, body);
  if (action === 'refund') transaction.revocationDate = context.now();
  // A second ago, so "now" is already past it whatever the clock's resolution.
  else transaction.expiresDate = context.now() - 1000;
  await context.store.save();
  const { revocationDate, expiresDate } = transaction;
  return { status: 200, body: action === 'refund' ? { transactionId, revocationDate } : { transactionId, expiresDate } };
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

/** Get All Subscription Statuses for the transaction's subscription; its latest transaction decides. */
function subscriptionStatuses(context: Context, transaction: SimulatedTransaction): object {
  const latest = context.store.latestOf(transaction);
  const now = context.now();
  const expired = latest.expiresDate !== undefined && latest.expiresDate <= now;
  const renewalInfo = {
    originalTransactionId: latest.originalTransactionId,
    autoRenewProductId: latest.productId,
    productId: latest.productId,
    autoRenewStatus: 1,
    signedDate: now,
    environment: latest.environment,
    recentSubscriptionStartDate: latest.originalPurchaseDate,
    renewalDate: latest.expiresDate,
  };
  const lastTransaction = {
    status: latest.revocationDate !== undefined ? 5 : expired ? 2 : 1,
    originalTransactionId: latest.originalTransactionId,
    signedTransactionInfo: signTransaction(context, latest),
    signedRenewalInfo: context.pki.signJws(renewalInfo),
  };
  return {
    environment: latest.environment,
    bundleId: latest.bundleId,
    appAppleId: context.appAppleId,
    data: [{ subscriptionGroupIdentifier: SUBSCRIPTION_GROUP_ID, lastTransactions: [lastTransaction] }],
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
    revocationReason: t.revocationDate === undefined ? undefined : 0,
    storefront: 'USA',
    storefrontId: '143441',
    price: 9990,
    currency: 'USD',
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
  const transaction = await addPurchase(context, {
    ...input,
    bundleId: original?.bundleId ?? input.bundleId ?? context.bundleId,
    environment: original?.environment ?? input.environment ?? 'Sandbox',
    transactionReason: 'PURCHASE',
    original,
  });
  return created(context, transaction);
}

async function renewTransaction(context: Context, transaction: SimulatedTransaction, body: unknown): Promise<Answer> {
  const parsed = renewBodySchema.safeParse(body);
  if (!parsed.success) return badRequest(describeIssue(parsed.error));
  if (transaction.type !== AUTO_RENEWABLE) return badRequest('only auto-renewable subscriptions renew');
  // Apple renews into the product the subscriber will renew to, i.e. the latest one.
  const latest = context.store.latestOf(transaction);
  const renewal = await addPurchase(context, {
    ...latest,
    expiresInSeconds: parsed.data.expiresInSeconds,
    transactionReason: 'RENEWAL',
    original: latest,
  });
  return created(context, renewal);
}

type PurchaseInput = Pick<SimulatedTransaction, 'productId' | 'type' | 'bundleId' | 'environment' | 'transactionReason'> & {
  expiresInSeconds?: number;
  /** Any transaction of the subscription this purchase joins; none starts a new one. */
  original?: SimulatedTransaction;
};

/** Records a purchase made now. Subscriptions always expire; other products only when asked to. */
async function addPurchase(context: Context, input: PurchaseInput): Promise<SimulatedTransaction> {
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
  await context.store.add(transaction);
  return transaction;
}

function created(context: Context, t: SimulatedTransaction): Answer {
  const signedTransactionInfo = signTransaction(context, t);
  return { status: 201, body: { transactionId: t.transactionId, originalTransactionId: t.originalTransactionId, signedTransactionInfo } };
}

function badRequest(error: string): Answer {
  return { status: 400, body: { error } };
}

/** Transactions in memory, mirrored to `<dataDir>/simulator/apple-transactions.json` after each change. */
class TransactionStore {
  private readonly writeState: (state: unknown) => Promise<void>;

  private constructor(
    private readonly state: z.infer<typeof storedStateSchema>,
    file: string | undefined,
  ) {
    this.writeState = serialStateWriter(file);
  }

  static async open(options: AppleSimulatorOptions): Promise<TransactionStore> {
    const fresh = { nextId: FIRST_ID_BASE + randomInt(1_000_000_000), transactions: [] };
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

  async add(transaction: SimulatedTransaction): Promise<void> {
    this.state.transactions.push(transaction);
    await this.save();
  }

  /** Writes the whole state (chained: an older snapshot never lands after a newer one). */
  async save(): Promise<void> {
    await this.writeState(this.state);
  }

}
