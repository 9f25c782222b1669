/** `iap-sync apple configure | test-notification`: a publisher's App Store Server API configuration and key. */
import { Environment } from '@apple/app-store-server-library';
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { APPLE_ENVIRONMENTS, type AppleConfig, type AppleEnvironment } from '../../lambdas/stores/apple/config';
import type { Publisher } from '../../lambdas/tenants/domain/publisher';
import { AppStoreClient } from '../../lambdas/stores/apple/adapters/app-store-client';
import { ReferenceSecretStore } from '../../lambdas/platform/reference-secret-store';
import { APPLE_KEY_FILE } from '../../local/seed';
import { flag, idOption, optionalString, requiredString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

/** Apple's App Store Connect API key ids are 10 upper-case letters or digits. */
const APPLE_KEY_ID = /^[A-Z0-9]{10}$/;
/** Any 8-4-4-4-12 hex UUID: Apple issuer ids are not always RFC 4122 variants. */
const APPLE_ISSUER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Apple bundle ids: letters, digits, hyphens and periods (reverse-DNS), at most 155 characters. */
const BUNDLE_ID = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;
const MAX_BUNDLE_ID = 155;
/** The appAccountToken namespace: any 8-4-4-4-12 hex UUID (the app derives UUID v5 names under it). */
const NAMESPACE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A .p8 file is a few hundred bytes; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 16 * 1024;

export interface AppleConfigured {
  publisherId: number;
  apple: AppleConfig;
  storeKit: Publisher['storeKit'];
}

/** Secret name of a publisher's App Store Connect API key (file name locally). */
export const appleKeySecretName = (publisherId: number) => `apple-api-key-publisher-${publisherId}.p8`;

function parseEnvironments(raw: string | undefined): AppleEnvironment[] {
  // Apple recommends production first, then sandbox (on 4040010); that is the default order.
  if (raw === undefined) return ['Production', 'Sandbox'];
  const names = raw.split(',').map((part) => part.trim());
  const environments: AppleEnvironment[] = [];
  for (const name of names) {
    const environment = APPLE_ENVIRONMENTS.find((candidate) => candidate.toLowerCase() === name.toLowerCase());
    if (!environment) throw new UsageError(`--environments must list ${APPLE_ENVIRONMENTS.join(' and/or ')}, got ${JSON.stringify(name)}`);
    if (environments.includes(environment)) throw new UsageError(`--environments lists ${environment} twice`);
    environments.push(environment);
  }
  return environments;
}

function parseAppAppleId(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  // Not an int32: recent App Apple IDs have ten digits (6xxxxxxxxx).
  const value = /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`--app-apple-id must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * Reads an App Store Connect API key (.p8) and checks it is what Apple issues: a PKCS#8 PEM of a
 * P-256 EC key (ES256). A wrong file is refused here rather than at the first verification.
 */
export function readAppleKeyFile(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (error) {
    throw new CommandError(`Cannot read --private-key-file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (size > MAX_KEY_FILE_BYTES) throw new CommandError(`${path} is not an App Store Connect key (.p8): too large`);
  const pem = readFileSync(path, 'utf8');
  if (!/^-----BEGIN PRIVATE KEY-----\r?\n/.test(pem.trimStart())) {
    throw new CommandError(`${path} is not an App Store Connect key (.p8): expected a PKCS#8 PEM ("BEGIN PRIVATE KEY")`);
  }
  let details: { type?: string; curve?: string };
  try {
    const key = createPrivateKey({ key: pem, format: 'pem' });
    details = { type: key.asymmetricKeyType, curve: key.asymmetricKeyDetails?.namedCurve };
  } catch {
    throw new CommandError(`${path} is not an App Store Connect key (.p8): the PEM does not parse as a private key`);
  }
  if (details.type !== 'ec' || details.curve !== 'prime256v1') {
    throw new CommandError(
      `${path} is not an App Store Connect key (.p8): expected an EC P-256 key, got ${details.type ?? 'unknown'}${details.curve ? ` ${details.curve}` : ''}`,
    );
  }
  return pem;
}

export interface AppleConfigureInput {
  publisherId: number;
  bundleId: string;
  issuerId: string;
  keyId: string;
  appAppleId?: number;
  environments: AppleEnvironment[];
  keyFile?: string;
  activate: boolean;
  /**
   * The appAccountToken namespace (AppleConfig.appAccountTokenNamespace): a UUID sets it, null
   * removes it, undefined keeps the publisher's current setting.
   */
  appAccountTokenNamespace?: string | null;
}

function parseAppAccountTokenNamespace(args: Args): string | null | undefined {
  const namespace = optionalString(args, 'require-app-account-token');
  const allowAny = flag(args, 'allow-any-app-account-token');
  if (namespace !== undefined && allowAny) throw new UsageError('--require-app-account-token and --allow-any-app-account-token exclude each other');
  if (allowAny) return null;
  if (namespace === undefined) return undefined;
  if (!NAMESPACE_UUID.test(namespace)) {
    throw new UsageError(`--require-app-account-token must be the namespace UUID your app derives appAccountToken under, got ${JSON.stringify(namespace)}`);
  }
  return namespace.toLowerCase();
}

export function parseAppleConfigure(args: Args): AppleConfigureInput {
  const publisherId = idOption(args, 'publisher');
  const bundleId = requiredString(args, 'bundle-id');
  if (bundleId.length > MAX_BUNDLE_ID || !BUNDLE_ID.test(bundleId)) {
    throw new UsageError(`--bundle-id must be a reverse-DNS bundle id (letters, digits, '-' and '.'), got ${JSON.stringify(bundleId)}`);
  }
  const issuerId = requiredString(args, 'issuer-id');
  if (!APPLE_ISSUER_ID.test(issuerId)) throw new UsageError(`--issuer-id must be the UUID of App Store Connect's Keys page, got ${JSON.stringify(issuerId)}`);
  const keyId = requiredString(args, 'key-id');
  if (!APPLE_KEY_ID.test(keyId)) throw new UsageError(`--key-id must be 10 upper-case letters or digits, got ${JSON.stringify(keyId)}`);
  const appAppleId = parseAppAppleId(optionalString(args, 'app-apple-id'));
  const environments = parseEnvironments(optionalString(args, 'environments'));
  if (environments.includes('Production') && appAppleId === undefined) {
    // Apple's verifier needs the app's Apple ID to accept production data.
    throw new UsageError('Production in --environments requires --app-apple-id (or use --environments Sandbox)');
  }
  const keyFile = optionalString(args, 'private-key-file');
  if (keyFile === '') throw new UsageError('--private-key-file needs a path');
  const appAccountTokenNamespace = parseAppAccountTokenNamespace(args);
  return {
    publisherId,
    bundleId,
    issuerId,
    keyId,
    ...(appAppleId !== undefined ? { appAppleId } : {}),
    environments,
    ...(keyFile !== undefined ? { keyFile } : {}),
    activate: flag(args, 'activate'),
    ...(appAccountTokenNamespace !== undefined ? { appAccountTokenNamespace } : {}),
  };
}

/**
 * Sets the publisher's App Store Server API configuration. The key comes from --private-key-file
 * (stored as a secret); without it the publisher's current key is kept, or locally the store
 * simulator's key (`file:apple-api-key.p8`) is used. The appAccountToken requirement is kept unless
 * --require-app-account-token or --allow-any-app-account-token changes it: reconfiguring the key
 * must not quietly drop a security setting.
 */
export async function appleConfigure(target: StackTarget, args: Args): Promise<AppleConfigured> {
  const { publisherId, bundleId, issuerId, keyId, appAppleId, environments, keyFile, activate, appAccountTokenNamespace } = parseAppleConfigure(args);
  // Read and check the key before touching the stack: a bad file changes nothing.
  const pem = keyFile !== undefined ? readAppleKeyFile(keyFile) : undefined;

  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, publisherId);
  let privateKeyRef: string;
  if (pem !== undefined) {
    privateKeyRef = await target.storeSecret(appleKeySecretName(publisherId), pem);
  } else if (publisher.apple?.privateKeyRef) {
    privateKeyRef = publisher.apple.privateKeyRef;
  } else if (target.kind === 'local' && target.secretsDir !== undefined) {
    if (!existsSync(join(target.secretsDir, APPLE_KEY_FILE))) {
      throw new CommandError(
        `The store simulator's key ${join(target.secretsDir, APPLE_KEY_FILE)} is missing: start the local stack once, or pass --private-key-file`,
      );
    }
    privateKeyRef = `file:${APPLE_KEY_FILE}`;
  } else {
    throw new UsageError('--private-key-file is required: this publisher has no App Store Connect key yet');
  }
  const apple: AppleConfig = {
    bundleId,
    ...(appAppleId !== undefined ? { appAppleId } : {}),
    issuerId,
    keyId,
    privateKeyRef,
    environments,
  };
  const namespace = appAccountTokenNamespace === undefined ? publisher.apple?.appAccountTokenNamespace : (appAccountTokenNamespace ?? undefined);
  if (namespace !== undefined) apple.appAccountTokenNamespace = namespace;
  const storeKit = activate ? { ...publisher.storeKit, activated: true } : publisher.storeKit;
  await publishers.putPublisher({ ...publisher, apple, storeKit });
  return { publisherId, apple, storeKit };
}

// ---------------------------------------------------------------------------------------------
// apple test-notification

/** Apple's App Store Server API hosts; the local stack's simulator stands in for both. */
const APPLE_API_BASE_URLS: Record<AppleEnvironment, string> = {
  Production: 'https://api.storekit.itunes.apple.com',
  Sandbox: 'https://api.storekit-sandbox.itunes.apple.com',
};

export function parseAppleTestNotification(args: Args): { publisherId: number; environment: AppleEnvironment } {
  const raw = optionalString(args, 'environment') ?? 'Sandbox';
  const environment = APPLE_ENVIRONMENTS.find((candidate) => candidate.toLowerCase() === raw.toLowerCase());
  if (!environment) throw new UsageError(`--environment must be ${APPLE_ENVIRONMENTS.join(' or ')}, got ${JSON.stringify(raw)}`);
  return { publisherId: idOption(args, 'publisher'), environment };
}

/**
 * `iap-sync apple test-notification`: asks Apple (or, on the local stack, its simulator) to send a
 * TEST notification to the URL set in App Store Connect, which proves the URL, the route and the
 * verification end to end. Apple answers a token; the notification arrives within seconds.
 * https://developer.apple.com/documentation/appstoreserverapi/request_a_test_notification
 */
export async function appleTestNotification(target: StackTarget, args: Args): Promise<{ publisherId: number; environment: AppleEnvironment; testNotificationToken: string }> {
  const { publisherId, environment } = parseAppleTestNotification(args);
  const publisher = await requirePublisher(target, publishersOf(target), publisherId);
  const apple = publisher.apple;
  if (!apple) throw new CommandError(`Publisher ${publisherId} has no Apple configuration (iap-sync apple configure).`);
  if (!apple.environments.includes(environment)) throw new CommandError(`Publisher ${publisherId} is not configured for ${environment}.`);
  const secrets = new ReferenceSecretStore({ ...(target.secretsDir ? { localDir: target.secretsDir } : {}), cacheSeconds: 0 });
  const privateKey = await secrets.get(apple.privateKeyRef);
  const baseUrl =
    target.kind === 'local' && target.apiUrl ? `${target.apiUrl}/__simulator/apple/${environment.toLowerCase()}` : APPLE_API_BASE_URLS[environment];
  const client = new AppStoreClient(
    privateKey,
    apple.keyId,
    apple.issuerId,
    apple.bundleId,
    environment === 'Production' ? Environment.PRODUCTION : Environment.SANDBOX,
    baseUrl,
    10_000,
  );
  try {
    const answer = await client.requestTestNotification();
    if (!answer.testNotificationToken) throw new CommandError('Apple answered no testNotificationToken.');
    return { publisherId, environment, testNotificationToken: answer.testNotificationToken };
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(`Apple refused the test notification request: ${(error as Error).message}`);
  }
}
