import type { AppleConfig } from '../../stores/apple/config';

/** A publisher (tenant) and its configuration, as the use cases see it. */
/**
 * How customer JWTs of a publisher are verified (contract §5). A publisher may have both keys: the
 * token's `alg` header picks one (HS256 → the secret; RS256/ES256 → the JWKS), never both.
 */
export interface JwtSettings {
  /** Reference to the HS256 secret (same reference scheme as keys). */
  hs256SecretRef?: string;
  /** The publisher's JSON Web Key Set of RS256/ES256 keys: https, or http on a loopback host only. */
  jwksUrl?: string;
  /** Required `iss` when set. */
  issuer?: string;
  /** Required `aud` (one of the token's audiences) when set. */
  audience?: string;
}

/** A Google Play Billing configuration profile, selected by the request's package name. */
export interface GoogleProfileConfig {
  packageName: string;
  /** Service account JSON: `file:` locally, a Secrets Manager ARN when deployed. */
  serviceAccountRef: string;
}

/**
 * How the Pub/Sub push requests of the publisher's Real-time Developer Notifications subscription
 * are authenticated (contract §9): Google signs an OIDC ID token for the push subscription's
 * service account. https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 */
export interface GooglePushSettings {
  /** The push subscription's service account: the token's `email` must be this one (and verified). */
  serviceAccountEmail: string;
  /** The token's `aud`; when absent, the push endpoint's own URL (Pub/Sub's default audience). */
  audience?: string;
}

/** A publisher's Google Play configuration: one profile per app, and the push authentication of its notifications. */
export interface GoogleConfig {
  profiles: GoogleProfileConfig[];
  /** Absent: the publisher takes no Google notifications (every push is refused, 401 AUTH0002). */
  push?: GooglePushSettings;
}

export type OwnershipPolicy = 'keep' | 'transfer';

export interface Publisher {
  publisherId: number;
  name: string;
  /** SHA-256 (hex) of the publisher token; the token itself is never stored. */
  tokenHash: string;
  jwt: JwtSettings;
  storeKit: { activated: boolean; migrationInProgress: boolean };
  apple?: AppleConfig;
  google?: GoogleConfig;
  ownershipPolicy: OwnershipPolicy;
}

export interface Customer {
  publisherId: number;
  customerId: number;
  lastActivityIp?: string;
  lastActivityAt?: string;
}
