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

export type OwnershipPolicy = 'keep' | 'transfer';

export interface Publisher {
  publisherId: number;
  name: string;
  /** SHA-256 (hex) of the publisher token; the token itself is never stored. */
  tokenHash: string;
  jwt: JwtSettings;
  storeKit: { activated: boolean; migrationInProgress: boolean };
  apple?: AppleConfig;
  google?: { profiles: GoogleProfileConfig[] };
  ownershipPolicy: OwnershipPolicy;
}

export interface Customer {
  publisherId: number;
  customerId: number;
  lastActivityIp?: string;
  lastActivityAt?: string;
}
