import { SignedDataVerifiers } from './signed-data-verifiers';
import {
  APIException,
  type SignedDataVerifier,
  VerificationException,
  VerificationStatus,
  type JWSTransactionDecodedPayload,
} from '@apple/app-store-server-library';
import type { AppleFacts, AppleProductType, AppleVerification } from '../facts';
import { ConfigurationError, StoreCredentialsError, StoreRejectedError, StoreUnavailableError } from '../../../platform/errors';
import type { AppleConfig, AppleEnvironment } from '../config';
import type { SecretStore } from '../../../platform/secret-store';
import type { AppleVerifier } from '../ports';
import { AppStoreClients, type AppStoreClient } from './app-store-client';
import { TimeAllowance } from '../../../platform/deadline';

export interface AppleStoreVerifierOptions {
  secrets: SecretStore;
  /** DER certificates this deployment trusts as roots of Apple's signing chain. */
  rootCertificates: Buffer[];
  /** OCSP revocation checks (deployed stacks); off locally, where Apple's responder is unreachable. */
  onlineChecks: boolean;
  baseUrls: Record<AppleEnvironment, string>;
  /** Per App Store Server API request (APPLE_REQUEST_TIMEOUT_MS). */
  timeoutMs: number;
  /**
   * All the waiting for OCSP in one `verify` (APPLE_ONLINE_CHECK_TIMEOUT_MS): Apple's library
   * gives each check 30 s and takes no setting, so the verification stops waiting after this.
   */
  onlineCheckTimeoutMs: number;
}

/** Apple answers that mean "not now" rather than "no": retry later. */
const RETRYABLE_API_ERRORS = new Set([4040002, 4040004, 4040006, 4290000, 5000000, 5000001]);
const NOT_FOUND_API_ERRORS = new Set([4040010, 4000006]);


type Lookup<T> = { found: true; value: T } | { found: false };

/**
 * Verifies Apple purchases with Apple's own library: the App Store Server API for the transaction
 * (and, for auto-renewable subscriptions, Get All Subscription Statuses, so the latest renewal
 * decides access) and SignedDataVerifier for the signature, the full chain to a trusted root,
 * the bundle id and the environment.
 */
export class AppleStoreVerifier implements AppleVerifier {
  private readonly appStore: AppStoreClients;
  private readonly signedData: SignedDataVerifiers;

  constructor(private readonly options: AppleStoreVerifierOptions) {
    if (options.rootCertificates.length === 0) throw new ConfigurationError('no trusted Apple root certificates configured');
    this.signedData = new SignedDataVerifiers(options);
    this.appStore = new AppStoreClients(options);
  }

  async verify(config: AppleConfig, transactionId: string): Promise<AppleVerification> {
    const privateKey = await this.options.secrets.get(config.privateKeyRef);
    // Apple's advice: production first, sandbox when production does not know the transaction.
    const environments = [...config.environments].sort((a) => (a === 'Production' ? -1 : 1));
    // The decodes below share one allowance for OCSP (the first checks the chain, the next ones
    // usually find it in the library's cache): the sum of this verification's waits stays bounded.
    const onlineChecks = new TimeAllowance(this.options.onlineCheckTimeoutMs);
    for (const environment of environments) {
      const client = this.client(config, environment, privateKey);
      const info = await this.call(() => client.getTransactionInfo(transactionId));
      if (!info.found) continue;
      const signed = info.value.signedTransactionInfo;
      if (!signed) return { outcome: 'invalid', reason: 'no signedTransactionInfo in Apple answer' };
      const verifier = this.verifier(config, environment);
      const decoded = await this.decode(verifier, signed, onlineChecks);
      if ('invalid' in decoded) return { outcome: 'invalid', reason: decoded.invalid };
      let latest = decoded.payload;
      let subscriptionStatus: number | undefined;
      let renewal: AppleFacts['renewal'];
      if (latest.type === 'Auto-Renewable Subscription') {
        const statuses = await this.call(() => client.getAllSubscriptionStatuses(transactionId));
        if (statuses.found) {
          const entry = (statuses.value.data ?? [])
            .flatMap((group) => group.lastTransactions ?? [])
            .find((item) => item.originalTransactionId === latest.originalTransactionId);
          if (entry?.signedTransactionInfo) {
            const renewed = await this.decode(verifier, entry.signedTransactionInfo, onlineChecks);
            if ('invalid' in renewed) return { outcome: 'invalid', reason: renewed.invalid };
            latest = renewed.payload;
            subscriptionStatus = typeof entry.status === 'number' ? entry.status : undefined;
            if (entry.signedRenewalInfo) renewal = await this.decodeRenewal(verifier, entry.signedRenewalInfo, onlineChecks);
          }
        }
      }
      return { outcome: 'verified', facts: toFacts(environment, latest, subscriptionStatus, renewal) };
    }
    return { outcome: 'not_found' };
  }

  private client(config: AppleConfig, environment: AppleEnvironment, privateKey: string): AppStoreClient {
    return this.appStore.get(config, environment, privateKey);
  }

  private verifier(config: AppleConfig, environment: AppleEnvironment): SignedDataVerifier {
    const verifier = this.signedData.get(config, environment);
    if (!verifier) throw new ConfigurationError('appAppleId is required to verify production transactions');
    return verifier;
  }

  /** Runs one verification of signed data within what is left of the verification's OCSP allowance. */
  private checked<T>(verification: Promise<T>, onlineChecks: TimeAllowance): Promise<T> {
    if (!this.options.onlineChecks) return verification;
    return onlineChecks.spend(
      verification,
      () => new StoreUnavailableError(`Apple certificate status could not be checked within ${this.options.onlineCheckTimeoutMs} ms`),
    );
  }

  private async decode(
    verifier: SignedDataVerifier,
    signed: string,
    onlineChecks: TimeAllowance,
  ): Promise<{ payload: JWSTransactionDecodedPayload } | { invalid: string }> {
    try {
      return { payload: await this.checked(verifier.verifyAndDecodeTransaction(signed), onlineChecks) };
    } catch (error) {
      if (error instanceof VerificationException) {
        if (error.status === VerificationStatus.RETRYABLE_VERIFICATION_FAILURE) {
          throw new StoreUnavailableError('Apple certificate status could not be checked', { cause: error });
        }
        return { invalid: VerificationStatus[error.status] ?? 'VERIFICATION_FAILURE' };
      }
      throw error;
    }
  }

  /**
   * The renewal info decides grace period, billing retry and auto-renew. It is signed like the
   * transaction; one that does not verify is ignored (the status still decides access) rather than
   * failing the purchase.
   */
  private async decodeRenewal(verifier: SignedDataVerifier, signed: string, onlineChecks: TimeAllowance): Promise<AppleFacts['renewal']> {
    try {
      const info = await this.checked(verifier.verifyAndDecodeRenewalInfo(signed), onlineChecks);
      return {
        ...(typeof info.autoRenewStatus === 'number' ? { autoRenewStatus: info.autoRenewStatus } : {}),
        ...(typeof info.isInBillingRetryPeriod === 'boolean' ? { isInBillingRetryPeriod: info.isInBillingRetryPeriod } : {}),
        ...(typeof info.gracePeriodExpiresDate === 'number' ? { gracePeriodExpiresDate: info.gracePeriodExpiresDate } : {}),
        ...(typeof info.signedDate === 'number' ? { signedDate: info.signedDate } : {}),
        ...(typeof info.autoRenewProductId === 'string' ? { autoRenewProductId: info.autoRenewProductId } : {}),
      };
    } catch (error) {
      if (error instanceof VerificationException && error.status === VerificationStatus.RETRYABLE_VERIFICATION_FAILURE) {
        throw new StoreUnavailableError('Apple certificate status could not be checked', { cause: error });
      }
      if (error instanceof VerificationException) return undefined;
      throw error;
    }
  }

  /** Maps Apple's failures: not found → not found; 401/403 → our credentials; 429/5xx/network → retryable. */
  private async call<T>(request: () => Promise<T>): Promise<Lookup<T>> {
    try {
      return { found: true, value: await request() };
    } catch (error) {
      if (error instanceof APIException) {
        const apiError = typeof error.apiError === 'number' ? error.apiError : undefined;
        if (apiError !== undefined && NOT_FOUND_API_ERRORS.has(apiError)) return { found: false };
        if (apiError !== undefined && RETRYABLE_API_ERRORS.has(apiError)) {
          throw new StoreUnavailableError(`Apple answered ${error.httpStatusCode} (${apiError})`);
        }
        if (error.httpStatusCode === 401 || error.httpStatusCode === 403) {
          throw new StoreCredentialsError(`Apple refused our API key (${error.httpStatusCode})`);
        }
        if (error.httpStatusCode === 429 || error.httpStatusCode >= 500) {
          throw new StoreUnavailableError(`Apple answered ${error.httpStatusCode}`);
        }
        if (error.httpStatusCode === 404) return { found: false };
        throw new StoreRejectedError(`Apple rejected the request (${error.httpStatusCode}, ${apiError ?? 'no code'})`);
      }
      // fetch failures (connection refused, DNS, timeout) and malformed answers: Apple may answer later.
      throw new StoreUnavailableError(`Apple could not be reached: ${(error as Error).name}`, { cause: error });
    }
  }
}

function toIso(ms: number | undefined): string | null {
  return typeof ms === 'number' ? new Date(ms).toISOString() : null;
}

/** A decoded JWSTransaction as facts (exported for tests). */
export function toFacts(
  environment: AppleEnvironment,
  tx: JWSTransactionDecodedPayload,
  subscriptionStatus?: number,
  renewal?: AppleFacts['renewal'],
): AppleFacts {
  return {
    environment,
    transactionId: String(tx.transactionId),
    originalTransactionId: String(tx.originalTransactionId ?? tx.transactionId),
    productId: String(tx.productId),
    type: (tx.type ?? 'Non-Consumable') as AppleProductType,
    expiresAt: toIso(tx.expiresDate),
    revokedAt: toIso(tx.revocationDate),
    ...(subscriptionStatus !== undefined ? { subscriptionStatus } : {}),
    ...(typeof tx.signedDate === 'number' ? { signedDate: tx.signedDate } : {}),
    ...(typeof tx.revocationReason === 'number' ? { revocationReason: tx.revocationReason } : {}),
    ...(typeof tx.appAccountToken === 'string' && tx.appAccountToken !== '' ? { appAccountToken: tx.appAccountToken } : {}),
    ...(renewal ? { renewal } : {}),
  };
}
