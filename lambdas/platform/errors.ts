/**
 * The error-code table of the API contract (§6), defined once: API handlers map codes to HTTP,
 * the OpenAPI generator documents them, tests iterate over them. The seed codes (SK2C…, GPLAY…)
 * whose wording Cleeng's clients show keep Cleeng's messages word for word, punctuation included.
 */
export const ERROR_CODES = {
  REQ0001: { status: 400, message: 'The request body is invalid.' },
  REQ0003: { status: 400, message: 'The path parameter is invalid.' },
  REQ0004: { status: 400, message: 'The request headers are invalid.' },
  REQ0100: { status: 404, message: 'The synchronization was not found.' },
  REQ0101: { status: 404, message: 'The customer was not found.' },
  REQ0007: { status: 409, message: 'The Correlation-Id was already used with a different request.' },
  REQ0006: { status: 413, message: 'The request body is too large.' },
  REQ0005: { status: 415, message: 'The request body must be JSON (Content-Type: application/json).' },
  // Not in the contract's table: what an unknown method or path answers (proposed in the issue note).
  REQ0008: { status: 404, message: 'No such route.' },
  NOTIF0001: { status: 400, message: 'The store notification could not be verified for a configured app of this publisher.' },
  AUTH0001: { status: 401, message: 'Missing credentials.' },
  AUTH0002: { status: 401, message: 'Invalid credentials.' },
  AUTH0003: { status: 403, message: 'The credential is not allowed to act for this customer.' },
  AUTH0004: { status: 403, message: 'Proof of possession required or invalid: send the signedTransactionInfo of this purchase.' },
  SK2C0101: { status: 409, message: 'The resource is temporarily locked due to a concurrent request.' },
  SK2C0103: { status: 409, message: 'A synchronization of this transaction is in progress.' },
  SK2C0104: { status: 409, message: 'A synchronization or transfer of this subscription is in progress.' },
  SK2C0100: { status: 422, message: 'Unable to find customer' },
  SK2C0005: { status: 422, message: 'The migration is in progress.' },
  SK2C0004: { status: 500, message: 'StoreKit2 integration not activated' },
  GPLAY0004: { status: 400, message: 'Provided product type is not supported' },
  GPLAY0300: { status: 409, message: 'Synchronization already in progress' },
  GPLAY0100: { status: 422, message: 'Customer not found.' },
  GPLAY0200: { status: 422, message: 'No Google Play Billing configuration profile found for the provided packageName' },
  S0001: { status: 500, message: 'Unexpected internal error.' },
  S0002: { status: 503, message: 'A dependency is temporarily unavailable. Retry later.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A failure the API answers with a documented code. Chosen by use cases, mapped to HTTP by handlers only. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    readonly extra: { retryAfterSeconds?: number; synchronizationId?: string } = {},
    detail?: string,
  ) {
    super(detail ?? ERROR_CODES[code].message);
  }
}

/**
 * Workflow errors. Step Functions matches Retry/Catch on `name`, so each class sets it and the
 * ASL names the same strings. Retryable: the store or a dependency may answer later.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly retryable = true;
}

/** The store rejected our own credentials (401/403): retrying will not help; alarm instead. */
export class StoreCredentialsError extends Error {
  override readonly name = 'StoreCredentialsError';
  readonly retryable = false;
}

/** The store refused the request itself (a 4xx other than not-found or credentials): retrying will not help. */
export class StoreRejectedError extends Error {
  override readonly name = 'StoreRejectedError';
  readonly retryable = false;
}

/** Configuration is missing or wrong for this publisher (not a store outage). */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
  readonly retryable = false;
}

/** A fenced write lost its race: another worker changed the record first. Retried by the workflow. */
export class ConcurrentUpdateError extends Error {
  override readonly name = 'ConcurrentUpdateError';
  readonly retryable = true;
}

/** The synchronization record the workflow was started for does not exist. */
export class SynchronizationMissingError extends Error {
  override readonly name = 'SynchronizationMissingError';
  readonly retryable = false;
}

/** A dependency of ours (database, workflow engine) could not answer now; safe to retry. */
export class DependencyUnavailableError extends Error {
  override readonly name = 'DependencyUnavailableError';
  readonly retryable = true;
}

/** A short reason for the logs from a library's error (jose's `code`, else its name, and its message), at most 300 characters. */
export function errorReason(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === 'string' ? code : error.name}: ${error.message}`.slice(0, 300);
  }
  return 'unknown error';
}
