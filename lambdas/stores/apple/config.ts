/** What the App Store Server API and Apple's verifier need to know about a publisher's app. */
export type AppleEnvironment = 'Production' | 'Sandbox';
export const APPLE_ENVIRONMENTS: readonly AppleEnvironment[] = ['Production', 'Sandbox'];

export interface AppleConfig {
  bundleId: string;
  /** Required by Apple's verifier for production data. */
  appAppleId?: number;
  issuerId: string;
  keyId: string;
  /** Where the App Store Connect API key (.p8) lives: `file:` locally, a Secrets Manager ARN when deployed. */
  privateKeyRef: string;
  /** Looked up in this order; Apple recommends production first, then sandbox on 4040010. */
  environments: AppleEnvironment[];
  /**
   * When set, a register made with a customer JWT must be of a transaction whose `appAccountToken`
   * is this customer's: the UUID v5 of its decimal customer id under this namespace UUID (see
   * app-account-token.ts). The app sets it at purchase time:
   * https://developer.apple.com/documentation/storekit/product/purchaseoption/appaccounttoken(_:)
   */
  appAccountTokenNamespace?: string;
}

