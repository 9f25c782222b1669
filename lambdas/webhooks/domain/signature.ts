import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signing (contract §8, https://www.standardwebhooks.com/):
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the
 * base64-decoded part of the endpoint secret after `whsec_`. Byte-compatible with the reference
 * verifier (npm `standardwebhooks`), which the unit tests use as the oracle.
 */

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const WEBHOOK_ID_PREFIX = 'msg_';
export const WEBHOOK_SIGNATURE_VERSION = 'v1';

/** The three request headers of a delivery, lower-case as HTTP/2 and Node expose them. */
export const WEBHOOK_HEADER = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** Bytes of randomness in a secret we generate; the contract's floor for any secret is 24. */
const GENERATED_SECRET_BYTES = 32;
export const MIN_SECRET_BYTES = 24;

/** Receivers' default window for the timestamp (the reference verifier's is also 5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The secret is not `whsec_` + canonical base64 of at least 24 bytes. Permanent: fix the configuration. */
export class InvalidWebhookSecretError extends Error {
  override readonly name = 'InvalidWebhookSecretError';
  readonly retryable = false;
}

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes. Shown to the user once. */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(GENERATED_SECRET_BYTES).toString('base64');
}

/**
 * A new delivery id, `msg_` + 22 url-safe characters (128 random bits). Stable across retries
 * and replays of one delivery, so receivers de-duplicate on it.
 */
export function newWebhookId(): string {
  return WEBHOOK_ID_PREFIX + randomBytes(16).toString('base64url');
}

/** True when `secret` is a usable signing secret (prefix, canonical base64, ≥ 24 bytes). */
export function isValidWebhookSecret(secret: string): boolean {
  try {
    decodeWebhookSecret(secret);
    return true;
  } catch {
    return false;
  }
}

/**
 * The HMAC key of a secret. Node's base64 decoder skips invalid characters silently, so the
 * text is checked first: a mangled secret must fail loudly, not sign with a different key.
 */
export function decodeWebhookSecret(secret: string): Buffer {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) {
    throw new InvalidWebhookSecretError(`A webhook secret starts with "${WEBHOOK_SECRET_PREFIX}".`);
  }
  const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new InvalidWebhookSecretError('A webhook secret is base64 after its prefix.');
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES) {
    throw new InvalidWebhookSecretError(`A webhook secret holds at least ${MIN_SECRET_BYTES} bytes.`);
  }
  return key;
}

function checkTimestamp(timestampSeconds: number): void {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError(`A webhook timestamp is a whole number of unix seconds, got ${timestampSeconds}.`);
  }
}

function hmac(key: Buffer, id: string, timestampSeconds: number, body: string | Buffer): string {
  return createHmac('sha256', key).update(`${id}.${timestampSeconds}.`).update(body).digest('base64');
}

/** `v1,<signature>` of one delivery attempt with one secret. `body` is the exact bytes sent. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string | Buffer): string {
  if (id.length === 0) throw new RangeError('A webhook id is not empty.');
  checkTimestamp(timestampSeconds);
  return `${WEBHOOK_SIGNATURE_VERSION},${hmac(decodeWebhookSecret(secret), id, timestampSeconds, body)}`;
}

/**
 * The `webhook-signature` value: one `v1,…` per active secret, space-separated. During a
 * rotation both the old and the new secret are active, so a receiver holding either verifies.
 */
export function signatureHeader(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string | Buffer,
): string {
  const distinct = [...new Set(secrets)];
  if (distinct.length === 0) throw new InvalidWebhookSecretError('An endpoint has at least one active secret.');
  return distinct.map((secret) => signWebhook(secret, id, timestampSeconds, body)).join(' ');
}

/** The three Standard Webhooks headers of one attempt (the timestamp is that of the attempt). */
export function webhookHeaders(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string | Buffer,
): Record<(typeof WEBHOOK_HEADER)[keyof typeof WEBHOOK_HEADER], string> {
  return {
    [WEBHOOK_HEADER.id]: id,
    [WEBHOOK_HEADER.timestamp]: String(timestampSeconds),
    [WEBHOOK_HEADER.signature]: signatureHeader(secrets, id, timestampSeconds, body),
  };
}

export type WebhookVerification =
  | { valid: true; id: string; timestampSeconds: number }
  | {
      valid: false;
      reason: 'missing-headers' | 'invalid-timestamp' | 'timestamp-too-old' | 'timestamp-too-new' | 'no-matching-signature';
    };

/** Headers as Node (`IncomingHttpHeaders`), fetch (after `Object.fromEntries`) or a test give them. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

function header(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    return typeof value === 'string' ? value : value?.join(' ');
  }
  return undefined;
}

function sameSignature(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Receiver-side check, for our tests and documentation (receivers normally use their platform's
 * Standard Webhooks library). Accepts if any `v1` signature matches any of `secrets`, and the
 * timestamp is within `toleranceSeconds` of `nowSeconds` either way (replay window).
 */
export function verifyWebhook(
  secrets: string | readonly string[],
  headers: HeaderBag,
  body: string | Buffer,
  nowSeconds: number,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
): WebhookVerification {
  const id = header(headers, WEBHOOK_HEADER.id);
  const timestamp = header(headers, WEBHOOK_HEADER.timestamp);
  const signatures = header(headers, WEBHOOK_HEADER.signature);
  if (!id || !timestamp || !signatures) return { valid: false, reason: 'missing-headers' };
  if (!/^\d{1,15}$/.test(timestamp)) return { valid: false, reason: 'invalid-timestamp' };
  const timestampSeconds = Number(timestamp);
  if (nowSeconds - timestampSeconds > toleranceSeconds) return { valid: false, reason: 'timestamp-too-old' };
  if (timestampSeconds - nowSeconds > toleranceSeconds) return { valid: false, reason: 'timestamp-too-new' };

  const offered = signatures
    .split(' ')
    .filter((entry) => entry.startsWith(`${WEBHOOK_SIGNATURE_VERSION},`))
    .map((entry) => entry.slice(WEBHOOK_SIGNATURE_VERSION.length + 1));
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) {
    const expected = hmac(decodeWebhookSecret(secret), id, timestampSeconds, body);
    if (offered.some((signature) => sameSignature(signature, expected))) {
      return { valid: true, id, timestampSeconds };
    }
  }
  return { valid: false, reason: 'no-matching-signature' };
}
