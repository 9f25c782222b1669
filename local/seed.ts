import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { DynamoDbPublisherRepository } from '../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { hashPublisherToken } from '../lambdas/tenants/domain/authenticate';
import type { Publisher } from '../lambdas/tenants/domain/publisher';
import { DEFAULT_PUSH_SERVICE_ACCOUNT_EMAIL, GOOGLE_SERVICE_ACCOUNT_FILE } from './simulator/google-simulator';

/** The demo tenant of `npm start` (README, "Two commands"). */
export const DEMO = {
  publisherId: 1,
  customerIds: [101, 102, 103],
  bundleId: 'com.example.iapsync',
  packageName: 'com.example.iapsync',
  appleProducts: { premium_monthly: 'S100000001_US', premium_yearly: 'S100000002_US', lifetime: 'A100000003_US' },
  googleProducts: { premium_monthly: 'S100000001_US', premium_yearly: 'S100000002_US' },
} as const;

export const JWT_SECRET_FILE = (publisherId: number) => `jwt-hs256-publisher-${publisherId}`;
export const PUBLISHER_TOKEN_FILE = (publisherId: number) => `publisher-token-${publisherId}`;
export const APPLE_KEY_FILE = 'apple-api-key.p8';

export interface SeedResult {
  publisherToken: string;
  customerJwts: Record<string, string>;
  created: boolean;
}

function readOrCreate(path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = make();
  writeFileSync(path, value, { mode: 0o600 });
  return value;
}

/** Issues an HS256 customer JWT the way a publisher's identity system would. */
export async function issueCustomerJwt(secret: string, publisherId: number, customerId: number, ttlSeconds = 24 * 3600) {
  return new SignJWT({ customerId, publisherId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

/**
 * Seeds the demo publisher, its customers and offer mappings on first start only; a restart keeps
 * whatever was changed since. Secrets live under `<dataDir>/secrets` (local mode only).
 */
export async function seedDemo(
  publishers: DynamoDbPublisherRepository,
  secretsDir: string,
  apple: { issuerId: string; keyId: string; appAppleId: number },
): Promise<SeedResult> {
  mkdirSync(secretsDir, { recursive: true });
  const { publisherId } = DEMO;
  const jwtSecret = readOrCreate(join(secretsDir, JWT_SECRET_FILE(publisherId)), () => randomBytes(32).toString('base64url'));
  const tokenPath = join(secretsDir, PUBLISHER_TOKEN_FILE(publisherId));
  const hadToken = existsSync(tokenPath);
  const publisherToken = readOrCreate(tokenPath, () => `pt_${randomBytes(24).toString('base64url')}`);
  // The simulator's push subscription; the audience is Pub/Sub's default, the push endpoint's URL.
  const push = { serviceAccountEmail: DEFAULT_PUSH_SERVICE_ACCOUNT_EMAIL };
  const publisher: Publisher = {
    publisherId,
    name: 'Demo Publisher',
    tokenHash: hashPublisherToken(publisherToken),
    jwt: { hs256SecretRef: `file:${JWT_SECRET_FILE(publisherId)}` },
    storeKit: { activated: true, migrationInProgress: false },
    apple: {
      bundleId: DEMO.bundleId,
      appAppleId: apple.appAppleId,
      issuerId: apple.issuerId,
      keyId: apple.keyId,
      privateKeyRef: `file:${APPLE_KEY_FILE}`,
      environments: ['Production', 'Sandbox'],
    },
    google: {
      profiles: [{ packageName: DEMO.packageName, serviceAccountRef: `file:${GOOGLE_SERVICE_ACCOUNT_FILE}` }],
      push,
    },
    ownershipPolicy: 'keep',
  };
  const created = await publishers.createPublisherIfAbsent(publisher);
  if (created) {
    for (const customerId of DEMO.customerIds) await publishers.putCustomer(publisherId, customerId);
    for (const [productId, offerId] of Object.entries(DEMO.appleProducts)) {
      await publishers.putOffer(publisherId, 'apple', productId, offerId);
    }
    for (const [productId, offerId] of Object.entries(DEMO.googleProducts)) {
      await publishers.putOffer(publisherId, 'google', productId, offerId);
    }
  } else if (!hadToken) {
    // The token file was lost: issue a new token (shown in local.json) and keep only its hash.
    const existing = await publishers.getPublisher(publisherId);
    if (existing) await publishers.putPublisher({ ...existing, tokenHash: hashPublisherToken(publisherToken) });
  }
  if (!created) {
    // A data dir from before Google notifications: the demo publisher takes the simulator's pushes from now on.
    const existing = await publishers.getPublisher(publisherId);
    if (existing?.google && existing.google.push === undefined) {
      await publishers.putPublisher({ ...existing, google: { ...existing.google, push } });
    }
  }
  const customerJwts: Record<string, string> = {};
  for (const customerId of DEMO.customerIds) {
    customerJwts[String(customerId)] = await issueCustomerJwt(jwtSecret, publisherId, customerId);
  }
  return { publisherToken, customerJwts, created };
}
