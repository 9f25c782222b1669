import type { AppleEnvironment } from './config';

/** Apple's product types as they appear in a JWSTransaction `type`. */
export type AppleProductType =
  | 'Auto-Renewable Subscription'
  | 'Non-Consumable'
  | 'Consumable'
  | 'Non-Renewing Subscription';

/**
 * What a verified Apple transaction tells us, after the signature, chain, bundle id and
 * environment checks. For auto-renewable subscriptions these are the facts of the *latest*
 * transaction of the subscription, so a renewal decides access.
 */
export interface AppleFacts {
  environment: AppleEnvironment;
  transactionId: string;
  originalTransactionId: string;
  productId: string;
  type: AppleProductType;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Subscription status from Get All Subscription Statuses: 1 active, 2 expired, 3 billing retry, 4 grace period, 5 revoked. */
  subscriptionStatus?: number;
  /** Apple's `signedDate` of the transaction (epoch ms): when Apple produced this answer. */
  signedDate?: number;
  /** `revocationReason` (0 other, 1 app issue) when revoked. */
  revocationReason?: number;
  /**
   * The UUID the app attached to the purchase (StoreKit `appAccountToken`), when it set one; Apple
   * keeps it on every renewal: https://developer.apple.com/documentation/appstoreserverapi/appaccounttoken
   */
  appAccountToken?: string;
  /**
   * The subscription's JWSRenewalInfo from Get All Subscription Statuses (auto-renewables):
   * https://developer.apple.com/documentation/appstoreserverapi/jwsrenewalinfodecodedpayload
   */
  renewal?: {
    autoRenewStatus?: number;
    isInBillingRetryPeriod?: boolean;
    gracePeriodExpiresDate?: number;
    signedDate?: number;
    autoRenewProductId?: string;
  };
}

/** Outcome of asking the store; retryable failures are thrown instead (StoreUnavailableError). */
export type AppleVerification =
  | { outcome: 'verified'; facts: AppleFacts }
  | { outcome: 'not_found' }
  | { outcome: 'invalid'; reason: string };
