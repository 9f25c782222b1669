import { generateKeyPairSync, sign } from 'node:crypto';
import os from 'node:os';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Publisher } from '../../../lambdas/tenants';
import type { AppleConfig } from '../../../lambdas/stores/apple/config';
import { loadOrCreateApplePki, type ApplePki } from '../../../local/simulator/apple-pki';

/*
 * Shared by the Apple notification tests: publishers, Apple configurations, and signed payloads
 * made with the store simulator's PKI (the chain Apple's SignedDataVerifier accepts when the
 * service trusts the simulator's root), so verification in the tests is Apple's real one.
 */

export const BUNDLE_ID = 'com.example.iapsync';
export const APP_APPLE_ID = 1234567890;

/** The simulator's signing material, in memory: a fresh chain per call. */
export function newPki(): Promise<ApplePki> {
  return loadOrCreateApplePki({ dataDir: os.tmpdir(), inMemory: true });
}

export function appleConfig(overrides: Partial<AppleConfig> = {}): AppleConfig {
  return {
    bundleId: BUNDLE_ID,
    appAppleId: APP_APPLE_ID,
    issuerId: '11111111-2222-4333-8444-555555555555',
    keyId: 'ABCDEFGHIJ',
    privateKeyRef: 'file:apple-api-key.p8',
    environments: ['Sandbox'],
    ...overrides,
  };
}

export function publisher(publisherId: number, apple: AppleConfig | undefined): Publisher {
  return {
    publisherId,
    name: `Publisher ${publisherId}`,
    tokenHash: '0'.repeat(64),
    jwt: {},
    storeKit: { activated: true, migrationInProgress: false },
    ...(apple ? { apple } : {}),
    ownershipPolicy: 'keep',
  };
}

// The port fakes are shared ones (test/support/fakes.ts), still importable here by their old names.
export { FakePublisherRepository as FakePublishers, FakeNoticeIntake as RecordingIntake, RecordingLogger, type LogEntry } from '../../support/fakes';

export type AppleEnvironmentName = 'Sandbox' | 'Production';

export interface TransactionClaims {
  transactionId?: string;
  originalTransactionId?: string;
  bundleId?: string;
  productId?: string;
  environment?: AppleEnvironmentName;
  signedDate?: number;
}

/** A JWSTransaction payload as Apple signs it (https://developer.apple.com/documentation/appstoreserverapi/jwstransactiondecodedpayload). */
export function transactionPayload(claims: TransactionClaims = {}): Record<string, unknown> {
  const now = claims.signedDate ?? Date.now();
  const payload: Record<string, unknown> = {
    transactionId: claims.transactionId ?? '2000000000000002',
    originalTransactionId: claims.originalTransactionId ?? '2000000000000001',
    webOrderLineItemId: '2000000000000003',
    bundleId: claims.bundleId ?? BUNDLE_ID,
    productId: claims.productId ?? 'premium_monthly',
    subscriptionGroupIdentifier: '21000001',
    purchaseDate: now,
    originalPurchaseDate: now - 30 * 86_400_000,
    expiresDate: now + 30 * 86_400_000,
    quantity: 1,
    type: 'Auto-Renewable Subscription',
    inAppOwnershipType: 'PURCHASED',
    signedDate: now,
    environment: claims.environment ?? 'Sandbox',
    transactionReason: 'RENEWAL',
    storefront: 'USA',
    storefrontId: '143441',
    price: 9990,
    currency: 'USD',
  };
  if ('originalTransactionId' in claims && claims.originalTransactionId === undefined) delete payload.originalTransactionId;
  return payload;
}

export interface NotificationClaims {
  notificationType?: string;
  subtype?: string;
  notificationUUID?: string;
  signedDate?: number;
  environment?: AppleEnvironmentName;
  bundleId?: string;
  appAppleId?: number;
  /** A signed transaction to carry; `null` carries none (TEST, some types). */
  signedTransactionInfo?: string | null;
  /** A `summary` instead of `data` (RENEWAL_EXTENSION with a summary). */
  summary?: boolean;
}

/** A responseBodyV2DecodedPayload (https://developer.apple.com/documentation/appstoreservernotifications/responsebodyv2decodedpayload). */
export function notificationPayload(pki: ApplePki, claims: NotificationClaims = {}): Record<string, unknown> {
  const environment = claims.environment ?? 'Sandbox';
  const app = { bundleId: claims.bundleId ?? BUNDLE_ID, environment, appAppleId: claims.appAppleId ?? APP_APPLE_ID };
  const signedTransactionInfo =
    claims.signedTransactionInfo === null
      ? undefined
      : (claims.signedTransactionInfo ?? pki.signJws(transactionPayload({ environment, ...(claims.bundleId ? { bundleId: claims.bundleId } : {}) })));
  const payload: Record<string, unknown> = {
    notificationType: claims.notificationType ?? 'DID_RENEW',
    ...(claims.subtype !== undefined ? { subtype: claims.subtype } : {}),
    notificationUUID: claims.notificationUUID ?? '9a1c7d2e-0b3f-4e5a-8c6d-7e8f9a0b1c2d',
    version: '2.0',
    signedDate: claims.signedDate ?? Date.now(),
  };
  if (claims.summary) {
    payload.summary = { ...app, productId: 'premium_monthly', requestIdentifier: 'a1b2c3', succeededCount: 3, failedCount: 0 };
  } else {
    payload.data = { ...app, bundleVersion: '1', ...(signedTransactionInfo !== undefined ? { signedTransactionInfo, status: 1 } : {}) };
  }
  return payload;
}

/** The HTTP body Apple POSTs. */
export function notificationBody(signedPayload: string): string {
  return JSON.stringify({ signedPayload });
}

/** The same JWS with another payload: the signature no longer matches. */
export function tamperedPayload(jws: string, change: (payload: Record<string, unknown>) => void): string {
  const [header = '', payload = '', signature = ''] = jws.split('.');
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  change(decoded);
  return `${header}.${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${signature}`;
}

/** The genuine header (x5c of the trusted chain) and payload, signed by a key outside that chain. */
export function signedOutsideTheChain(jws: string): string {
  const [header = '', payload = ''] = jws.split('.');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${header}.${payload}.${signature.toString('base64url')}`;
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | number | boolean>;
}

export function answer(result: APIGatewayProxyStructuredResultV2): Answer {
  return {
    status: result.statusCode ?? 200,
    body: JSON.parse(result.body ?? '{}') as Record<string, unknown>,
    headers: result.headers ?? {},
  };
}
