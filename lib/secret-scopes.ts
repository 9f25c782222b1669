/**
 * Publishers' secrets by purpose, defined once: the command line names every secret it stores with
 * one of these prefixes (cli/target/deployed.ts refuses any other name), and the CDK stack lets each
 * function read only the prefixes of its purpose, so the internet-facing API functions, which need
 * customers' JWT secrets, can never read an App Store key, a Google service account or a webhook
 * signing secret. No AWS or CDK import: cli/ and lib/ both use it.
 *
 * The prefixes are the names the command line has always used (`iap-sync/<stack>/<prefix>…` in
 * Secrets Manager), so secrets stored before the scoping stay readable by the right function, with
 * nothing to move or rename.
 */
export const SECRET_SCOPES = {
  /** HS256 secrets of customers' JWTs (`publisher create`; local/seed.ts JWT_SECRET_FILE). Read by the API functions. */
  jwt: { prefix: 'jwt-hs256-publisher-', holds: "customers' JWT secrets" },
  /** App Store Connect API keys, .p8 (`apple configure`; cli/commands/apple.ts appleKeySecretName). */
  apple: { prefix: 'apple-api-key-publisher-', holds: 'App Store Connect API keys' },
  /** Google service-account keys (`google configure`; cli/commands/google.ts googleServiceAccountSecretName). */
  google: { prefix: 'google-service-account-', holds: 'Google service-account keys' },
  /** Webhook signing secrets, one per endpoint and rotation (`webhook add`/`rotate-secret`; cli/commands/webhook.ts). */
  webhook: { prefix: 'webhook-secret-', holds: 'webhook signing secrets' },
} as const;

export type SecretScope = keyof typeof SECRET_SCOPES;

export const SECRET_SCOPE_NAMES = Object.keys(SECRET_SCOPES) as SecretScope[];

/** The scope of a secret the command line stores, by its purpose (the last part of its name). */
export function secretScopeOf(purpose: string): SecretScope | undefined {
  return SECRET_SCOPE_NAMES.find((scope) => purpose.startsWith(SECRET_SCOPES[scope].prefix));
}

/** `iap-sync/<stack name>/`: a dev stack cannot read the prod stack's secrets in the same account. */
export function stackSecretsPrefix(stackName: string): string {
  return `iap-sync/${stackName}/`;
}

/** The Secrets Manager name pattern (IAM wildcard) of one scope of one stack. */
export function secretNamePattern(stackName: string, scope: SecretScope): string {
  return `${stackSecretsPrefix(stackName)}${SECRET_SCOPES[scope].prefix}*`;
}
