import type { GoogleVerification, VoidedPurchasesPage } from './facts';

/** A publisher's Google Play Billing configuration profile, selected by package name. */
export interface GoogleProfile {
  /** Android application id, e.g. `com.example.iapsync`. */
  packageName: string;
  /**
   * Where the service account JSON lives, read through the SecretStore port: `file:` locally,
   * a Secrets Manager ARN on deployed stacks. The table holds only this reference.
   */
  serviceAccountRef: string;
}

/**
 * Asks Google Play about a subscription purchase token. Throws StoreUnavailableError when Google
 * cannot answer now (429, 5xx, timeouts, network), StoreCredentialsError when Google refuses our
 * service account (401/403, token endpoint refusal) and StoreRejectedError for other 4xx.
 */
export interface GooglePlayVerifier {
  /**
   * `purchases.subscriptionsv2.get`. `expectedProductId`, when given, must be one of the line
   * items (else `invalid`); it also selects the line item the facts describe. 404/410 answer
   * `not_found`, as does another app's token (Google never shows it).
   */
  verify(profile: GoogleProfile, purchaseToken: string, expectedProductId?: string): Promise<GoogleVerification>;
  /**
   * `purchases.subscriptions.acknowledge`. Call it after the entitlement is saved: Google refunds
   * a purchase left unacknowledged for three days. Already acknowledged counts as success.
   */
  acknowledge(profile: GoogleProfile, purchaseToken: string, productId: string): Promise<void>;
  /**
   * `purchases.voidedpurchases.list` with `type=1` (subscriptions included): the orders of the app
   * voided between `window.startTime` and `window.endTime` (Google refuses a start older than 30
   * days), one page of at most 1000; `pageToken` continues the same window. Same errors as `verify`.
   */
  listVoided(profile: GoogleProfile, window: { startTime: Date; endTime: Date }, pageToken?: string): Promise<VoidedPurchasesPage>;
}

/**
 * OAuth 2.0 access tokens for a Google service account (JWT bearer grant, RFC 7523). Injectable so
 * the local runtime points it at the store simulator's token endpoint.
 */
export interface AccessTokenProvider {
  /** A bearer token for the androidpublisher scope; cached by implementations until shortly before it expires. */
  getAccessToken(serviceAccountJson: string): Promise<string>;
}
