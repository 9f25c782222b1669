import * as z from 'zod';

/**
 * The AWS SDK clients of the functions (DynamoDB, Step Functions, EventBridge, SQS, Secrets
 * Manager): connection and per-attempt request timeouts, and attempts per call (the SDK's own
 * AWS_MAX_ATTEMPTS, read here so the worst case can be computed). Defaults: a call to a stalled
 * dependency gives up after 3 × 2 s plus back-off, inside the API functions' 10 s (aws-client-config.ts).
 */
export const AWS_CLIENT_ENV = {
  AWS_CONNECTION_TIMEOUT_MS: z.coerce.number().int().min(100).max(30000).default(1000),
  AWS_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(60000).default(2000),
  AWS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
};

/**
 * Configuration read once from the environment. Deployed stacks and `npm start` differ only here:
 * endpoints, base URLs and trusted roots (handlers never branch on "local").
 */
const EnvSchema = z.object({
  TABLE_NAME: z.string().min(1).optional(),
  STATE_MACHINE_ARN: z.string().min(1).optional(),
  /** Base URLs of the App Store Server API; default Apple's own. The simulator's when local. */
  APPLE_API_BASE_URL_PRODUCTION: z.url().default('https://api.storekit.apple.com'),
  APPLE_API_BASE_URL_SANDBOX: z.url().default('https://api.storekit-sandbox.apple.com'),
  /** Trusted roots for signed App Store data: comma-separated base64 DER certificates. */
  APPLE_ROOT_CERTIFICATES: z.string().optional(),
  /** OCSP revocation checks of Apple's chain; off only where Apple's OCSP responder cannot be reached (local). */
  APPLE_ONLINE_CHECKS: z.enum(['true', 'false']).default('true'),
  /**
   * Per App Store Server API request. One verification may make three in a row (production, the
   * sandbox retry, the subscription statuses): 3 × 8 s + the online checks' 8 s fit VERIFY_TIMEOUT_MS.
   */
  APPLE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(60000).default(8000),
  /**
   * All the waiting for Apple's OCSP responder in one verification. Apple's library allows each
   * check 30 s and takes no setting, so the adapter stops waiting here (StoreUnavailableError).
   */
  APPLE_ONLINE_CHECK_TIMEOUT_MS: z.coerce.number().int().min(100).max(30000).default(8000),
  /** Google Play Developer API root and OAuth token endpoint; Google's by default, the simulator's locally. */
  GOOGLE_API_ROOT_URL: z.url().optional(),
  GOOGLE_OAUTH_TOKEN_URL: z.url().optional(),
  /**
   * The keys that verify Pub/Sub push OIDC tokens (contract §9): Google's by default. Only the
   * local runtime points it elsewhere (the simulator's issuer); the CDK stack never sets it.
   */
  GOOGLE_PUSH_JWKS_URL: z.url().default('https://www.googleapis.com/oauth2/v3/certs'),
  /**
   * Per Google call. One verification may make seven in a row (token, subscription, five Voided
   * Purchases pages): 7 × 4 s fit VERIFY_TIMEOUT_MS.
   */
  GOOGLE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(60000).default(4000),
  /**
   * The whole of one verification (VerifyApplePurchase, VerifyGooglePurchase: records, secret, store): past it the function answers
   * StoreUnavailableError (the workflow's retry path), before the Task state's 45 s and the
   * function's 50 s run out. test/unit/purchases/verify-timeouts.test.ts checks the sums.
   */
  VERIFY_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600000).default(40000),
  ...AWS_CLIENT_ENV,
  /** Store retry budget: attempts, first wait and longest wait (8 attempts over ~32 min by default). */
  RETRY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  RETRY_BASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(15),
  RETRY_MAX_WAIT_SECONDS: z.coerce.number().int().min(1).max(86400).default(960),
  /** Suggested client back-off while a purchase is locked (Retry-After). */
  LOCK_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  /** Base folder of `file:` secret references (local runtime only). */
  LOCAL_SECRETS_DIR: z.string().optional(),
  /** How long a secret read is reused in one container. */
  SECRET_CACHE_SECONDS: z.coerce.number().int().min(0).max(86400).default(300),
  /** The recovery sweeper: where it publishes, how it sees executions, and when it acts. */
  EVENT_BUS_NAME: z.string().min(1).optional(),
  WORKFLOW_TYPE: z.enum(['STANDARD', 'EXPRESS']).default('STANDARD'),
  /** Open synchronizations younger than this are left to their workflow (above the API timeout). */
  RECOVERY_GRACE_SECONDS: z.coerce.number().int().min(0).max(86400).default(180),
  /** Restarts before the sweeper finalizes SYNCHRONIZATION_FAILED. */
  RECOVERY_MAX_RESTARTS: z.coerce.number().int().min(0).max(10).default(2),
  /** Synchronizations handled per sweep. */
  RECOVERY_BATCH_LIMIT: z.coerce.number().int().min(1).max(10000).default(500),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
});

export type Config = z.infer<typeof EnvSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const names = parsed.error.issues.map((issue) => issue.path.join('.')).join(', ');
    throw new Error(`Invalid configuration in environment: ${names}`);
  }
  return parsed.data;
}

/** A configuration value a handler cannot run without. */
export function required<K extends keyof Config>(config: Config, name: K): NonNullable<Config[K]> {
  const value = config[name];
  if (value === undefined || value === null || value === '') {
    throw new Error(`Missing configuration: ${String(name)}`);
  }
  return value as NonNullable<Config[K]>;
}

/** APPLE_ROOT_CERTIFICATES: the trusted Apple roots, comma-separated base64 DER (empty: none). */
export function appleRootCertificates(config: Pick<Config, 'APPLE_ROOT_CERTIFICATES'>): Buffer[] {
  return (config.APPLE_ROOT_CERTIFICATES ?? '')
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean)
    .map((value) => Buffer.from(value, 'base64'));
}
