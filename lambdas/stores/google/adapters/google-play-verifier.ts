import { androidpublisher, type androidpublisher_v3, type MethodOptions } from '@googleapis/androidpublisher';
import * as z from 'zod';
import type { GoogleFacts, GoogleVerification, VoidedPurchase, VoidedPurchasesPage } from '../facts';
import { StoreCredentialsError, StoreRejectedError, StoreUnavailableError } from '../../../platform/errors';
import type { AccessTokenProvider, GooglePlayVerifier, GoogleProfile } from '../ports';
import type { SecretStore } from '../../../platform/secret-store';

export const GOOGLE_API_ROOT_URL = 'https://androidpublisher.googleapis.com/';
const DEFAULT_TIMEOUT_MS = 10_000;
const ACKNOWLEDGED = 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED';

export interface GooglePlayStoreVerifierOptions {
  secrets: SecretStore;
  tokens: AccessTokenProvider;
  /** GOOGLE_API_ROOT_URL: Google's by default, `http://127.0.0.1:<port>/__simulator/google/` locally. */
  rootUrl?: string;
  /** Per call to Google; default 10 s. */
  timeoutMs?: number;
}

/**
 * The parts of a SubscriptionPurchaseV2 the service reads, checked at run time: the client's
 * types describe what Google should send, not what arrived.
 * https://developers.google.com/android-publisher/api-ref/rest/v3/purchases.subscriptionsv2#SubscriptionPurchaseV2
 */
const purchaseSchema = z.object({
  subscriptionState: z.string().nullish(),
  acknowledgementState: z.string().nullish(),
  linkedPurchaseToken: z.string().nullish(),
  testPurchase: z.object({}).nullish(),
  lineItems: z
    .array(
      z.object({
        productId: z.string().nullish(),
        expiryTime: z.string().nullish(),
        autoRenewingPlan: z.object({ autoRenewEnabled: z.boolean().nullish() }).nullish(),
      }),
    )
    .nullish(),
  // Not in SubscriptionPurchaseV2 today; compared if Google ever sends it.
  packageName: z.string().nullish(),
});

/** The parts of a VoidedPurchasesListResponse the service reads. */
const voidedListSchema = z.object({
  voidedPurchases: z
    .array(
      z.object({
        purchaseToken: z.string().nullish(),
        orderId: z.string().nullish(),
        voidedTimeMillis: z.string().regex(/^\d{1,15}$/).nullish(),
        voidedSource: z.number().int().nullish(),
        voidedReason: z.number().int().nullish(),
      }),
    )
    .nullish(),
  tokenPagination: z.object({ nextPageToken: z.string().nullish() }).nullish(),
});

/** Google's page size limit for voided purchases. */
const VOIDED_PAGE_SIZE = 1000;
/** `type=1`: subscriptions included (the default 0 lists one-time products only). */
const VOIDED_TYPE_WITH_SUBSCRIPTIONS = 1;

const httpErrorSchema = z.object({ response: z.object({ status: z.number().int() }) });

/** `cause`: what the client threw, kept for the logs when Google gave no answer. */
type Answer<T> = { ok: true; data: T } | { ok: false; status: number | undefined; cause?: unknown };

/**
 * Verifies Google Play subscriptions with Google's own client (`@googleapis/androidpublisher`),
 * authenticated by a bearer token from the AccessTokenProvider. The client's automatic retries are
 * off: the workflow owns the retry budget, and hidden retries would multiply it.
 */
export class GooglePlayStoreVerifier implements GooglePlayVerifier {
  private readonly client: androidpublisher_v3.Androidpublisher = androidpublisher({ version: 'v3' });

  constructor(private readonly options: GooglePlayStoreVerifierOptions) {}

  async verify(profile: GoogleProfile, purchaseToken: string, expectedProductId?: string): Promise<GoogleVerification> {
    const answer = await this.send(profile, (options) =>
      this.client.purchases.subscriptionsv2.get({ packageName: profile.packageName, token: purchaseToken }, options),
    );
    if (!answer.ok) {
      throwUnlessNotFound(answer, 'read the subscription');
      return { outcome: 'not_found' };
    }
    const parsed = purchaseSchema.safeParse(answer.data);
    if (!parsed.success) throw new StoreUnavailableError('Google answered an unreadable subscription');
    const purchase = parsed.data;
    if (purchase.packageName && purchase.packageName !== profile.packageName) {
      return { outcome: 'invalid', reason: 'package name mismatch' };
    }
    const lineItems = purchase.lineItems ?? [];
    const item = expectedProductId === undefined ? lineItems[0] : lineItems.find((line) => line.productId === expectedProductId);
    if (!item?.productId) {
      return { outcome: 'invalid', reason: expectedProductId === undefined ? 'no line item in Google answer' : 'product id mismatch' };
    }
    const facts: GoogleFacts = {
      packageName: profile.packageName,
      purchaseToken,
      productId: item.productId,
      subscriptionState: purchase.subscriptionState ?? 'SUBSCRIPTION_STATE_UNSPECIFIED',
      expiresAt: toIso(item.expiryTime),
      acknowledged: purchase.acknowledgementState === ACKNOWLEDGED,
      testPurchase: purchase.testPurchase !== undefined && purchase.testPurchase !== null,
    };
    if (purchase.linkedPurchaseToken) facts.linkedPurchaseToken = purchase.linkedPurchaseToken;
    const autoRenewEnabled = item.autoRenewingPlan?.autoRenewEnabled;
    if (typeof autoRenewEnabled === 'boolean') facts.autoRenewEnabled = autoRenewEnabled;
    return { outcome: 'verified', facts };
  }

  async acknowledge(profile: GoogleProfile, purchaseToken: string, productId: string): Promise<void> {
    const answer = await this.send(profile, (options) =>
      this.client.purchases.subscriptions.acknowledge(
        { packageName: profile.packageName, subscriptionId: productId, token: purchaseToken, requestBody: {} },
        options,
      ),
    );
    if (answer.ok) return;
    if (answer.status === 400) {
      // Google answers 400 (invalidPurchaseState) both to a second acknowledge and to purchases it
      // cannot acknowledge; its state, not its message, tells which.
      const current = await this.verify(profile, purchaseToken, productId);
      if (current.outcome === 'verified' && current.facts.acknowledged) return;
    }
    throwUnlessNotFound(answer, 'acknowledge the subscription');
    throw new StoreRejectedError(`Google does not know the purchase token it was asked to acknowledge (${answer.status})`);
  }

  async listVoided(profile: GoogleProfile, window: { startTime: Date; endTime: Date }, pageToken?: string): Promise<VoidedPurchasesPage> {
    const answer = await this.send(profile, (options) =>
      this.client.purchases.voidedpurchases.list(
        {
          packageName: profile.packageName,
          // With a token, Google wants the first page's window again; it is sent every time.
          startTime: String(window.startTime.getTime()),
          endTime: String(window.endTime.getTime()),
          type: VOIDED_TYPE_WITH_SUBSCRIPTIONS,
          maxResults: VOIDED_PAGE_SIZE,
          ...(pageToken !== undefined ? { token: pageToken } : {}),
        },
        options,
      ),
    );
    if (!answer.ok) {
      throwUnlessNotFound(answer, 'list voided purchases');
      throw new StoreRejectedError(`Google does not know the app ${profile.packageName} (${answer.status})`);
    }
    const parsed = voidedListSchema.safeParse(answer.data);
    if (!parsed.success) throw new StoreUnavailableError('Google answered an unreadable voided purchases list');
    const purchases: VoidedPurchase[] = [];
    for (const entry of parsed.data.voidedPurchases ?? []) {
      // An entry without a token or time names nothing this service could re-read.
      if (!entry.purchaseToken || !entry.voidedTimeMillis) continue;
      purchases.push({
        purchaseToken: entry.purchaseToken,
        orderId: entry.orderId ?? '',
        voidedAt: new Date(Number(entry.voidedTimeMillis)).toISOString(),
        ...(typeof entry.voidedSource === 'number' ? { voidedSource: entry.voidedSource } : {}),
        ...(typeof entry.voidedReason === 'number' ? { voidedReason: entry.voidedReason } : {}),
      });
    }
    const next = parsed.data.tokenPagination?.nextPageToken;
    return { purchases, ...(next ? { nextPageToken: next } : {}) };
  }

  /** One call to Google with a fresh bearer token; HTTP and network failures come back as a status (undefined: no answer). */
  private async send<T>(profile: GoogleProfile, request: (options: MethodOptions) => Promise<{ data: T }>): Promise<Answer<T>> {
    const serviceAccount = await this.options.secrets.get(profile.serviceAccountRef);
    const accessToken = await this.options.tokens.getAccessToken(serviceAccount);
    try {
      const response = await request({
        // Per call, not in androidpublisher({ rootUrl }): googleapis-common rebuilds a global rootUrl
        // with `new URL(absolutePath, rootUrl)`, which drops a path prefix like /__simulator/google/.
        rootUrl: this.options.rootUrl ?? GOOGLE_API_ROOT_URL,
        headers: { Authorization: `Bearer ${accessToken}` },
        timeout: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        retry: false,
        // Node's own fetch: gaxios would otherwise `import('node-fetch')` at the first call, an ESM
        // import that Jest's VM refuses and the Lambda bundle does not need.
        fetchImplementation: fetch,
      });
      return { ok: true, data: response.data };
    } catch (error) {
      const http = httpErrorSchema.safeParse(error);
      return http.success ? { ok: false, status: http.data.response.status } : { ok: false, status: undefined, cause: error };
    }
  }
}

/**
 * Google's failures, grouped as the workflow needs them: 404/410 return (not found), 429/5xx/no
 * answer are retryable, 401/403 mean our service account, any other 4xx a refusal.
 */
function throwUnlessNotFound({ status, cause }: { status: number | undefined; cause?: unknown }, what: string): void {
  if (status === 404 || status === 410) return;
  if (status === undefined) throw new StoreUnavailableError(`Google could not be reached to ${what}`, { cause });
  if (status === 401 || status === 403) throw new StoreCredentialsError(`Google refused our service account (${status}) to ${what}`);
  if (status === 408 || status === 429 || status >= 500) throw new StoreUnavailableError(`Google answered ${status} to ${what}`);
  throw new StoreRejectedError(`Google rejected the request to ${what} (${status})`);
}

function toIso(time: string | null | undefined): string | null {
  if (!time) return null;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) throw new StoreUnavailableError('Google answered an unreadable expiryTime');
  return new Date(ms).toISOString();
}
