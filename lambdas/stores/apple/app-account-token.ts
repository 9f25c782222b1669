import { createHash } from 'node:crypto';
import { UUID_PATTERN } from '../../platform/schema-primitives';

/** The name-based UUID version 5 (RFC 9562 §5.5, SHA-1) of `name` under `namespace`, lower-case. */
export function uuidV5(namespace: string, name: string): string {
  if (!UUID_PATTERN.test(namespace)) throw new Error('the namespace must be a UUID');
  const bytes = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50; // version 5
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The `appAccountToken` a publisher's app sets on a purchase for one of its customers: the UUID v5
 * of the customer id written in decimal (`"101"`), under the publisher's own namespace UUID.
 * Deterministic, so the app and this service derive the same value sharing nothing but the
 * namespace; opaque to Apple.
 * https://developer.apple.com/documentation/storekit/product/purchaseoption/appaccounttoken(_:)
 */
export function appAccountTokenFor(namespace: string, customerId: number): string {
  return uuidV5(namespace, String(customerId));
}

/** Whether `token` (as Apple returns it) is `expected`; UUIDs compare case-insensitively. */
export function sameAppAccountToken(token: string | undefined, expected: string): boolean {
  return token !== undefined && token.toLowerCase() === expected.toLowerCase();
}
