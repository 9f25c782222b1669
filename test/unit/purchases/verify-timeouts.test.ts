import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AppStoreServerAPIClient, SignedDataVerifier } from '@apple/app-store-server-library';
import { WORKFLOW_DEFINITION_FILE, WORKFLOW_FUNCTIONS } from '../../../lib/catalog';
import { awsCallWorstCaseMs, awsClientSettings } from '../../../lambdas/platform/aws-client-config';
import { loadConfig } from '../../../lambdas/platform/config';
import { StoreUnavailableError } from '../../../lambdas/platform/errors';
import { createLogger } from '../../../lambdas/platform/logger';
import { verifyGooglePurchase } from '../../../lambdas/purchases/domain/verify-purchase';
import { makeVerifyApplePurchaseHandler } from '../../../lambdas/purchases/handlers/verify-apple-purchase';
import { AppleStoreVerifier } from '../../../lambdas/stores/apple/adapters/apple-store-verifier';
import type { GoogleVerification, VoidedPurchasesPage } from '../../../lambdas/stores/google/facts';
import type { GooglePlayVerifier } from '../../../lambdas/stores/google/ports';
import type { Publisher } from '../../../lambdas/tenants';
import { FakePublisherRepository, FakeSecretStore, FakeSynchronizationRepository, FixedClock } from '../../support/fakes';
import { googleRegisterSync } from '../../support/synchronizations';
import { appleConfig } from '../lifecycle/apple-notification-fixtures';

/*
 * The verify functions' time (VerifyApplePurchase, VerifyGooglePurchase), from the configuration defaults: what its longest conversation with each
 * store may take (every request to its timeout), the deadline that bounds the whole of it, the Task
 * state's timeout and the function's. Step Functions' States.Timeout must come before the
 * function's own timeout (it goes to MarkRetrying; a Lambda timeout arrives as Lambda.Unknown).
 */

const ROOT = path.join(__dirname, '../../..');
const ASL = JSON.parse(readFileSync(path.join(ROOT, WORKFLOW_DEFINITION_FILE), 'utf8')) as { States: Record<string, { TimeoutSeconds?: number }> };
/** Each verify state is named after its function. */
const VERIFY_FUNCTIONS = ['VerifyApplePurchase', 'VerifyGooglePurchase'];
const taskTimeoutMs = (id: string) => (ASL.States[id]?.TimeoutSeconds ?? 0) * 1000;
const functionTimeoutMs = (id: string) => (WORKFLOW_FUNCTIONS.find((fn) => fn.id === id)?.timeoutSeconds ?? 0) * 1000;
const DEFAULTS = loadConfig({});
const AWS_CALL_MS = awsCallWorstCaseMs(awsClientSettings({}));
/** A cold start before the handler runs: Step Functions' clock runs, the function's does not yet. */
const COLD_START_ALLOWANCE_MS = 3_000;

const T0 = Date.parse('2026-12-07T10:00:00.000Z');
const PUBLISHER: Publisher = {
  publisherId: 1,
  name: 'Demo',
  tokenHash: '0'.repeat(64),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  google: { profiles: [{ packageName: 'com.example.iapsync', serviceAccountRef: 'file:sa.json' }] },
  apple: appleConfig({ environments: ['Production', 'Sandbox'] }),
  ownershipPolicy: 'keep',
};

/** Google as slow as can be: a lapsed subscription (so the Voided Purchases list is read) whose list never ends. */
class EndlessGoogle implements GooglePlayVerifier {
  calls = 0;
  async verify(): Promise<GoogleVerification> {
    this.calls += 1;
    return {
      outcome: 'verified',
      facts: {
        packageName: 'com.example.iapsync',
        purchaseToken: 'tok.en',
        productId: 'premium_monthly',
        subscriptionState: 'SUBSCRIPTION_STATE_EXPIRED',
        expiresAt: new Date(T0 - 3_600_000).toISOString(),
        acknowledged: true,
        testPurchase: true,
      },
    };
  }
  async acknowledge(): Promise<void> {
    throw new Error('not used');
  }
  async listVoided(): Promise<VoidedPurchasesPage> {
    this.calls += 1;
    return { purchases: [], nextPageToken: `page-${this.calls}` };
  }
}

/** The most Google calls one verification makes (the token request comes on top, once per hour). */
async function googleCallsOnTheLongestPath(): Promise<number> {
  const google = new EndlessGoogle();
  const sync = googleRegisterSync('11111111-2222-4333-8444-555555555555');
  await verifyGooglePurchase(
    {
      publishers: new FakePublisherRepository([PUBLISHER]),
      syncs: new FakeSynchronizationRepository([sync]),
      google,
      clock: new FixedClock(T0),
    },
    sync,
  );
  return google.calls;
}

describe('the verify functions\' time budget, from the configuration defaults', () => {
  it('the longest Apple conversation fits the verification deadline with one slow AWS call to spare', () => {
    // Production lookup (not found), the sandbox retry, the subscription statuses; plus all the
    // waiting for OCSP, which one allowance bounds however many signed items are decoded.
    const apple = 3 * DEFAULTS.APPLE_REQUEST_TIMEOUT_MS + DEFAULTS.APPLE_ONLINE_CHECK_TIMEOUT_MS;
    expect(apple).toBe(32_000);
    expect(apple + AWS_CALL_MS).toBeLessThanOrEqual(DEFAULTS.VERIFY_TIMEOUT_MS);
  });

  it('the longest Google conversation fits the verification deadline with one slow AWS call to spare', async () => {
    const calls = await googleCallsOnTheLongestPath();
    expect(calls).toBe(6); // the subscription, then five Voided Purchases pages
    const google = (1 + calls) * DEFAULTS.GOOGLE_REQUEST_TIMEOUT_MS; // + the token request
    expect(google).toBe(28_000);
    expect(google + AWS_CALL_MS).toBeLessThanOrEqual(DEFAULTS.VERIFY_TIMEOUT_MS);
  });

  it.each(VERIFY_FUNCTIONS)('%s: deadline < Task timeout < function timeout: the function answers first, then Step Functions (States.Timeout), never Lambda', (id) => {
    expect({ deadline: DEFAULTS.VERIFY_TIMEOUT_MS, task: taskTimeoutMs(id), fn: functionTimeoutMs(id) }).toEqual({ deadline: 40_000, task: 45_000, fn: 50_000 });
    expect(DEFAULTS.VERIFY_TIMEOUT_MS + COLD_START_ALLOWANCE_MS).toBeLessThan(taskTimeoutMs(id));
    expect(taskTimeoutMs(id)).toBeLessThan(functionTimeoutMs(id));
  });
});

describe('the verification deadline', () => {
  it('a store that never answers becomes StoreUnavailableError (the retry path) at the deadline', async () => {
    const sync = { ...googleRegisterSync('11111111-2222-4333-8444-555555555555'), store: 'apple' as const, transactionId: '2000000000000001' };
    const handler = makeVerifyApplePurchaseHandler({
      publishers: new FakePublisherRepository([PUBLISHER]),
      syncs: new FakeSynchronizationRepository([sync]),
      apple: { verify: () => new Promise(() => undefined) },
      clock: new FixedClock(T0),
      logger: createLogger('t', 'silent'),
      timeoutMs: 50,
    });
    const started = Date.now();
    const failure = handler({ synchronizationId: sync.synchronizationId, publisherId: 1 });
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(/did not finish within 50 ms/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('Apple\'s online checks (OCSP)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('an OCSP responder that never answers costs the verification at most APPLE_ONLINE_CHECK_TIMEOUT_MS, as StoreUnavailableError', async () => {
    // Apple's library waits 30 s per check and takes no setting; here it would wait for ever.
    jest.spyOn(AppStoreServerAPIClient.prototype, 'getTransactionInfo').mockResolvedValue({ signedTransactionInfo: 'eyJ.signed.transaction' });
    const decode = jest.spyOn(SignedDataVerifier.prototype, 'verifyAndDecodeTransaction').mockReturnValue(new Promise(() => undefined));
    const verifier = new AppleStoreVerifier({
      secrets: new FakeSecretStore({ 'file:apple-api-key.p8': 'unused: the client call is replaced' }),
      rootCertificates: [readFileSync(path.join(ROOT, 'config/apple-roots/AppleRootCA-G3.cer'))],
      onlineChecks: true,
      baseUrls: { Production: 'https://api.storekit.example', Sandbox: 'https://api.storekit-sandbox.example' },
      timeoutMs: 1_000,
      onlineCheckTimeoutMs: 100,
    });
    const started = Date.now();
    const failure = verifier.verify(appleConfig(), '2000000000000001');
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(/certificate status could not be checked within 100 ms/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(decode).toHaveBeenCalledTimes(1);
  });
});
