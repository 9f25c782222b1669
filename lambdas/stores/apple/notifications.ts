import { SignedDataVerifiers, statusName, verified } from './adapters/signed-data-verifiers';
import type { JWSTransactionDecodedPayload, ResponseBodyV2DecodedPayload } from '@apple/app-store-server-library';
// The verifier's own module, not the package index (see ./adapters/signed-data-verifiers.ts).
import { type SignedDataVerifier, VerificationStatus } from '@apple/app-store-server-library/dist/jws_verification';
import { ConfigurationError, StoreUnavailableError } from '../../platform/errors';
import type { AppleConfig, AppleEnvironment } from './config';

/** How the decoder trusts Apple's signatures; the same settings as AppleStoreVerifier's. */
export interface AppleNotificationDecoderOptions {
  /** DER certificates this deployment trusts as roots of Apple's signing chain (APPLE_ROOT_CERTIFICATES). */
  rootCertificates: Buffer[];
  /** OCSP revocation checks (deployed stacks); off locally, where Apple's responder is unreachable. */
  onlineChecks: boolean;
}

/**
 * What a verified App Store Server Notification V2 says, as far as this service needs it.
 * https://developer.apple.com/documentation/appstoreservernotifications/responsebodyv2decodedpayload
 */
export interface DecodedAppleNotification {
  /** Apple's unique id of the notification; a retry by Apple carries the same one. */
  notificationUUID: string;
  /** https://developer.apple.com/documentation/appstoreservernotifications/notificationtype */
  notificationType: string;
  /** https://developer.apple.com/documentation/appstoreservernotifications/subtype */
  subtype?: string;
  /** The environment whose verifier accepted it: one of the publisher's configured environments. */
  environment: AppleEnvironment;
  bundleId: string;
  /** When the App Store signed it (ISO 8601). */
  signedDate: string;
  /** From `data.signedTransactionInfo`, verified with the same verifier; absent when Apple sent none. */
  transactionId?: string;
  originalTransactionId?: string;
  productId?: string;
}

/**
 * The notification is not a genuine App Store notification for this publisher's app: bad JWS,
 * untrusted chain, another bundle id / app id, or an environment the publisher has not configured.
 * `reason` is for the logs only; callers answer a fixed error.
 */
export class NotificationRejectedError extends Error {
  override readonly name = 'NotificationRejectedError';
  readonly retryable = false;
  constructor(readonly reason: string) {
    super(`App Store notification rejected: ${reason}`);
  }
}

/**
 * Verifies App Store Server Notifications V2 with Apple's own SignedDataVerifier: the JWS signature,
 * the x5c chain up to a trusted root (with OCSP when online checks are on), the bundle id, the
 * appAppleId for Production, and the environment; then the `signedTransactionInfo` it carries, with
 * the same verifier. https://developer.apple.com/documentation/appstoreservernotifications/responding-to-app-store-server-notifications
 */
export class AppleNotificationDecoder {
  private readonly signedData: SignedDataVerifiers;

  constructor(options: AppleNotificationDecoderOptions) {
    if (options.rootCertificates.length === 0) throw new ConfigurationError('no trusted Apple root certificates configured');
    this.signedData = new SignedDataVerifiers(options);
  }

  /**
   * The verified notification. Tries one verifier per environment the publisher configured (a
   * notification names its environment only inside the signed payload), so it is accepted only for
   * one of those environments.
   * @throws NotificationRejectedError when no configured environment accepts it.
   * @throws StoreUnavailableError when Apple's certificate status could not be checked (OCSP): Apple should retry.
   */
  async decode(config: AppleConfig, signedPayload: string): Promise<DecodedAppleNotification> {
    const attempt = await this.signedData.inConfiguredEnvironments(config, (verifier) => verifier.verifyAndDecodeNotification(signedPayload));
    if (attempt.ok) return this.complete(attempt.verifier, attempt.environment, config, attempt.value);
    if (attempt.unavailable) throw new StoreUnavailableError('Apple certificate status could not be checked');
    throw new NotificationRejectedError(attempt.reasons.join('; '));
  }

  private async complete(
    verifier: SignedDataVerifier,
    environment: AppleEnvironment,
    config: AppleConfig,
    payload: ResponseBodyV2DecodedPayload,
  ): Promise<DecodedAppleNotification> {
    // Apple documents all three on every V2 notification; without the UUID there is no idempotency key.
    const { notificationUUID, notificationType, subtype, signedDate } = payload;
    if (!notificationUUID) throw new NotificationRejectedError('no notificationUUID');
    if (!notificationType) throw new NotificationRejectedError('no notificationType');
    if (typeof signedDate !== 'number' || !Number.isFinite(signedDate)) throw new NotificationRejectedError('no signedDate');
    const decoded: DecodedAppleNotification = {
      notificationUUID,
      notificationType,
      ...(subtype ? { subtype } : {}),
      environment,
      // verifyAndDecodeNotification compared the payload's bundle id with this one.
      bundleId: config.bundleId,
      signedDate: new Date(signedDate).toISOString(),
    };
    // Only `data` carries a transaction; `summary` (renewal date extensions), `externalPurchaseToken`
    // and `appData` do not, nor does `data` of TEST: https://developer.apple.com/documentation/appstoreservernotifications/data
    const signedTransactionInfo = payload.data?.signedTransactionInfo;
    if (signedTransactionInfo === undefined) return decoded;
    // The nested JWS is signed separately: a genuine outer payload does not vouch for it.
    const transaction = await verified(() => verifier.verifyAndDecodeTransaction(signedTransactionInfo));
    if (!transaction.ok) {
      if (transaction.status === VerificationStatus.RETRYABLE_VERIFICATION_FAILURE) {
        throw new StoreUnavailableError('Apple certificate status could not be checked');
      }
      throw new NotificationRejectedError(`signedTransactionInfo: ${statusName(transaction.status)}`);
    }
    return { ...decoded, ...transactionFields(transaction.value) };
  }
}

/** Ids are numeric strings in JWSTransaction: https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload */
function transactionFields(tx: JWSTransactionDecodedPayload): Pick<DecodedAppleNotification, 'transactionId' | 'originalTransactionId' | 'productId'> {
  return {
    ...(tx.transactionId ? { transactionId: String(tx.transactionId) } : {}),
    ...(tx.originalTransactionId ? { originalTransactionId: String(tx.originalTransactionId) } : {}),
    ...(tx.productId ? { productId: String(tx.productId) } : {}),
  };
}
