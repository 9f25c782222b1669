import { SignedDataVerifiers } from './adapters/signed-data-verifiers';
import { appleRootCertificates, type Config } from '../../platform/config';
import { ConfigurationError, StoreUnavailableError } from '../../platform/errors';
import type { AppleConfig } from './config';
import type { AppleSignedTransactionVerifier, SignedTransactionCheck } from './ports';

/**
 * Verifies the signed transaction an app holds (StoreKit 2 `Transaction.jwsRepresentation`,
 * https://developer.apple.com/documentation/storekit/verificationresult/jwsrepresentation-21vgo) with
 * Apple's SignedDataVerifier: the JWS signature, the x5c chain up to a trusted root (OCSP only when
 * online checks are on), the bundle id, the appAppleId for Production and the environment, trying the
 * publisher's configured environments in order. No call to the App Store Server API.
 */
export class AppleSignedTransactionDecoder implements AppleSignedTransactionVerifier {
  private readonly signedData: SignedDataVerifiers;

  constructor(options: { rootCertificates: Buffer[]; onlineChecks: boolean }) {
    if (options.rootCertificates.length === 0) throw new ConfigurationError('no trusted Apple root certificates configured');
    this.signedData = new SignedDataVerifiers(options);
  }

  /** @throws StoreUnavailableError when Apple's certificate status could not be checked (OCSP). */
  async verify(config: AppleConfig, signedTransactionInfo: string): Promise<SignedTransactionCheck> {
    const attempt = await this.signedData.inConfiguredEnvironments(config, (verifier) => verifier.verifyAndDecodeTransaction(signedTransactionInfo));
    if (!attempt.ok) {
      if (attempt.unavailable) throw new StoreUnavailableError('Apple certificate status could not be checked');
      return { outcome: 'rejected', reason: attempt.reasons.join('; ') };
    }
    const { transactionId, originalTransactionId, appAccountToken } = attempt.value;
    // Both ids are on every JWSTransaction: https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload
    if (!transactionId || !originalTransactionId) return { outcome: 'rejected', reason: 'no transactionId or originalTransactionId' };
    return {
      outcome: 'verified',
      claims: {
        transactionId: String(transactionId),
        originalTransactionId: String(originalTransactionId),
        environment: attempt.environment,
        ...(typeof appAccountToken === 'string' && appAccountToken !== '' ? { appAccountToken } : {}),
      },
    };
  }
}

/**
 * The verifier of the signed transactions apps send as proof of possession, from the trusted Apple
 * roots (APPLE_ROOT_CERTIFICATES; the catalog gives them to the Apple register and transfer
 * functions). Built on first use: it refuses to exist without roots, and most calls need none.
 */
export function signedTransactionsFrom(config: Pick<Config, 'APPLE_ROOT_CERTIFICATES' | 'APPLE_ONLINE_CHECKS'>): AppleSignedTransactionVerifier {
  let decoder: AppleSignedTransactionDecoder | undefined;
  return {
    verify: (...args) => {
      decoder ??= new AppleSignedTransactionDecoder({ rootCertificates: appleRootCertificates(config), onlineChecks: config.APPLE_ONLINE_CHECKS === 'true' });
      return decoder.verify(...args);
    },
  };
}
