import type { AppleVerification } from './facts';
import type { AppleConfig } from './config';

/**
 * Asks Apple about a transaction and checks what it signed. Throws StoreUnavailableError when
 * Apple cannot answer now (429, 5xx, timeouts) and StoreCredentialsError when Apple refuses our key.
 */
export interface AppleVerifier {
  verify(config: AppleConfig, transactionId: string): Promise<AppleVerification>;
}

/** What a signed transaction from the device (StoreKit 2 `Transaction.jwsRepresentation`) says, once verified. */
export interface SignedTransactionClaims {
  transactionId: string;
  originalTransactionId: string;
  /** The configured environment whose verifier accepted it. */
  environment: AppleConfig['environments'][number];
  appAccountToken?: string;
}

export type SignedTransactionCheck =
  | { outcome: 'verified'; claims: SignedTransactionClaims }
  /** Not Apple's signature or chain, another app, an environment the publisher has not configured, or malformed. `reason` is for logs only. */
  | { outcome: 'rejected'; reason: string };

/**
 * Verifies a JWSTransaction an app sends (proof of possession, contract §5) with Apple's library,
 * offline apart from the certificate status checks APPLE_ONLINE_CHECKS turns on. Throws
 * StoreUnavailableError when that status could not be checked.
 */
export interface AppleSignedTransactionVerifier {
  verify(config: AppleConfig, signedTransactionInfo: string): Promise<SignedTransactionCheck>;
}
