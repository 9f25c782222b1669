import type { AppleVerification } from './facts';
import type { AppleConfig } from './config';

/**
 * Asks Apple about a transaction and checks what it signed. Throws StoreUnavailableError when
 * Apple cannot answer now (429, 5xx, timeouts) and StoreCredentialsError when Apple refuses our key.
 */
export interface AppleVerifier {
  verify(config: AppleConfig, transactionId: string): Promise<AppleVerification>;
}
