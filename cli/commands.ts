/**
 * The `iap-sync` commands as plain functions: each takes the target stack and the parsed options
 * (long option names as keys, strings as typed on the command line) and answers what to print.
 * They validate their own input, so tests call them without a process (cli/main.ts only parses).
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { DynamoDbPublisherRepository } from '../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { ReferenceSecretStore } from '../lambdas/platform/reference-secret-store';
import { hashPublisherToken } from '../lambdas/tenants/domain/authenticate';
import { APPLE_ENVIRONMENTS, type AppleConfig, type AppleEnvironment } from '../lambdas/stores/apple/config';
import {
  type JwtSettings,
  type OwnershipPolicy,
  type Publisher,
} from '../lambdas/tenants/domain/publisher';
import { STORES, type Store } from '../lambdas/events/vocabulary';
import { jwksUrlProblem } from '../lambdas/tenants/ports/credential-verifier';
import { toStatusView } from '../lambdas/purchases/domain/synchronization';
import { GoogleRegisterBody } from '../lambdas/purchases/schemas';
import { APPLE_KEY_FILE, JWT_SECRET_FILE, issueCustomerJwt } from '../local/seed';
import { GOOGLE_SERVICE_ACCOUNT_FILE } from '../local/simulator/google-simulator';
import type { StackTarget } from './stack-target';
import { UUID_PATTERN } from '../lambdas/platform/schema-primitives';

/** The command line is wrong (unknown option, missing or malformed value): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command was well formed but could not be done (not found, already exists, bad file): exit code 1. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** Parsed options, keyed by long option name without dashes (`bundle-id`), as node:util parseArgs gives them. */
export type Args = Readonly<Record<string, string | boolean | undefined>>;

const INT32_MAX = 2_147_483_647;
/** Apple's App Store Connect API key ids are 10 upper-case letters or digits. */
const APPLE_KEY_ID = /^[A-Z0-9]{10}$/;
/** Any 8-4-4-4-12 hex UUID: Apple issuer ids are not always RFC 4122 variants. */
const APPLE_ISSUER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Apple bundle ids: letters, digits, hyphens and periods (reverse-DNS), at most 155 characters. */
const BUNDLE_ID = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;
const MAX_BUNDLE_ID = 155;
/** Store product ids and offer ids: visible characters only, so a stray space is not stored as part of an id. */
const PLAIN_ID = /^[\x21-\x7E]+$/;
const MAX_PRODUCT_ID = 255;
const MAX_OFFER_ID = 64;
const MAX_NAME = 200;
const MAX_JWT_CLAIM = 256;
/** A .p8 file is a few hundred bytes; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 16 * 1024;
const DEFAULT_JWT_TTL_SECONDS = 3600;
const MAX_JWT_TTL_SECONDS = 30 * 24 * 3600;

// ---------------------------------------------------------------------------------------------
// Option helpers

export function optionalString(args: Args, name: string): string | undefined {
  const value = args[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError(`--${name} needs a value`);
  return value;
}

export function requiredString(args: Args, name: string): string {
  const value = optionalString(args, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function flag(args: Args, name: string): boolean {
  const value = args[name];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new UsageError(`--${name} takes no value`);
  return value;
}

/** Every publisher and customer id is an int32 > 0 (contract §2, §3), written in plain decimal. */
export function parsePositiveInt32(option: string, raw: string | undefined): number {
  if (raw === undefined || raw === '') throw new UsageError(`${option} is required`);
  const value = /^[1-9][0-9]{0,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value > INT32_MAX) {
    throw new UsageError(`${option} must be an integer from 1 to ${INT32_MAX}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function idOption(args: Args, name: string): number {
  return parsePositiveInt32(`--${name}`, optionalString(args, name));
}

function boundedText(option: string, value: string, max: number): string {
  // Control characters would corrupt the one-line output and logs.
  if (value.length === 0 || value.length > max || /[\x00-\x1F\x7F]/.test(value)) {
    throw new UsageError(`${option} must be 1 to ${max} characters without control characters`);
  }
  return value;
}

function plainId(option: string, value: string, max: number): string {
  if (value.length === 0 || value.length > max || !PLAIN_ID.test(value)) {
    throw new UsageError(`${option} must be 1 to ${max} visible ASCII characters (no spaces)`);
  }
  return value;
}

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) throw new UsageError(`${option} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return found;
}

function publishersOf(target: StackTarget): DynamoDbPublisherRepository {
  return new DynamoDbPublisherRepository(target.db, target.tableName);
}

async function requirePublisher(target: StackTarget, publishers: DynamoDbPublisherRepository, publisherId: number): Promise<Publisher> {
  const publisher = await publishers.getPublisher(publisherId);
  if (!publisher) throw new CommandError(`Publisher ${publisherId} not found in ${target.description}`);
  return publisher;
}

// ---------------------------------------------------------------------------------------------
// publisher create | list

export interface PublisherCreated {
  publisherId: number;
  /** Shown once: only its SHA-256 hash is stored. */
  publisherToken: string;
}

const OWNERSHIP_POLICIES: readonly OwnershipPolicy[] = ['keep', 'transfer'];

export interface PublisherCreateInput {
  publisherId: number;
  name: string;
  ownershipPolicy: OwnershipPolicy;
  storeKitActivated: boolean;
  issuer?: string;
  audience?: string;
}

export function parsePublisherCreate(args: Args): PublisherCreateInput {
  const publisherId = idOption(args, 'id');
  const name = boundedText('--name', requiredString(args, 'name'), MAX_NAME);
  const ownershipPolicy = oneOf('--ownership-policy', optionalString(args, 'ownership-policy') ?? 'keep', OWNERSHIP_POLICIES);
  const issuer = optionalString(args, 'jwt-issuer');
  const audience = optionalString(args, 'jwt-audience');
  if (issuer !== undefined) boundedText('--jwt-issuer', issuer, MAX_JWT_CLAIM);
  if (audience !== undefined) boundedText('--jwt-audience', audience, MAX_JWT_CLAIM);
  return {
    publisherId,
    name,
    ownershipPolicy,
    storeKitActivated: flag(args, 'storekit-activated'),
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  };
}

/**
 * Creates a publisher with a new opaque publisher token (stored only as its hash, contract §5) and
 * a new HS256 secret for its customer JWTs (stored as a secret, referenced from the publisher).
 */
export async function publisherCreate(target: StackTarget, args: Args): Promise<PublisherCreated> {
  const { publisherId, name, ownershipPolicy, storeKitActivated, issuer, audience } = parsePublisherCreate(args);
  const publishers = publishersOf(target);
  // Checked before the secret is written so an existing publisher's JWT secret is never replaced.
  if (await publishers.getPublisher(publisherId)) throw new CommandError(`Publisher ${publisherId} already exists`);

  const publisherToken = `pt_${randomBytes(24).toString('base64url')}`;
  const hs256SecretRef = await target.storeSecret(JWT_SECRET_FILE(publisherId), randomBytes(32).toString('base64url'));
  const publisher: Publisher = {
    publisherId,
    name,
    tokenHash: hashPublisherToken(publisherToken),
    jwt: {
      hs256SecretRef,
      ...(issuer !== undefined ? { issuer } : {}),
      ...(audience !== undefined ? { audience } : {}),
    },
    storeKit: { activated: storeKitActivated, migrationInProgress: false },
    ownershipPolicy,
  };
  if (!(await publishers.createPublisherIfAbsent(publisher))) throw new CommandError(`Publisher ${publisherId} already exists`);
  return { publisherId, publisherToken };
}

export async function publisherList(target: StackTarget): Promise<{ publisherIds: number[] }> {
  return { publisherIds: await publishersOf(target).listPublisherIds() };
}

// ---------------------------------------------------------------------------------------------
// customer add, offer map

export function parseCustomerAdd(args: Args): { publisherId: number; customerId: number } {
  return { publisherId: idOption(args, 'publisher'), customerId: idOption(args, 'customer') };
}

export async function customerAdd(target: StackTarget, args: Args): Promise<{ publisherId: number; customerId: number }> {
  const { publisherId, customerId } = parseCustomerAdd(args);
  const publishers = publishersOf(target);
  await requirePublisher(target, publishers, publisherId);
  await publishers.putCustomer(publisherId, customerId);
  return { publisherId, customerId };
}

export interface OfferMapped {
  publisherId: number;
  store: Store;
  productId: string;
  offerId: string;
}

export function parseOfferMap(args: Args): OfferMapped {
  return {
    publisherId: idOption(args, 'publisher'),
    store: oneOf('--store', requiredString(args, 'store'), STORES),
    productId: plainId('--product', requiredString(args, 'product'), MAX_PRODUCT_ID),
    offerId: plainId('--offer', requiredString(args, 'offer'), MAX_OFFER_ID),
  };
}

export async function offerMap(target: StackTarget, args: Args): Promise<OfferMapped> {
  const { publisherId, store, productId, offerId } = parseOfferMap(args);
  const publishers = publishersOf(target);
  await requirePublisher(target, publishers, publisherId);
  await publishers.putOffer(publisherId, store, productId, offerId);
  return { publisherId, store, productId, offerId };
}

// ---------------------------------------------------------------------------------------------
// apple configure

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
  return {
    publisherId,
    bundleId,
    issuerId,
    keyId,
    ...(appAppleId !== undefined ? { appAppleId } : {}),
    environments,
    ...(keyFile !== undefined ? { keyFile } : {}),
    activate: flag(args, 'activate'),
  };
}

/**
 * Sets the publisher's App Store Server API configuration. The key comes from --private-key-file
 * (stored as a secret); without it the publisher's current key is kept, or locally the store
 * simulator's key (`file:apple-api-key.p8`) is used.
 */
export async function appleConfigure(target: StackTarget, args: Args): Promise<AppleConfigured> {
  const { publisherId, bundleId, issuerId, keyId, appAppleId, environments, keyFile, activate } = parseAppleConfigure(args);
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
  const storeKit = activate ? { ...publisher.storeKit, activated: true } : publisher.storeKit;
  await publishers.putPublisher({ ...publisher, apple, storeKit });
  return { publisherId, apple, storeKit };
}

// ---------------------------------------------------------------------------------------------
// google configure

const PACKAGE_NAME = GoogleRegisterBody.shape.packageName;

export interface GoogleConfigureInput {
  publisherId: number;
  packageName: string;
  serviceAccountFile?: string;
}

export function parseGoogleConfigure(args: Args): GoogleConfigureInput {
  const publisherId = idOption(args, 'publisher');
  const packageName = requiredString(args, 'package-name');
  if (!PACKAGE_NAME.safeParse(packageName).success) {
    throw new UsageError(`--package-name must be an Android application id, got ${JSON.stringify(packageName)}`);
  }
  const serviceAccountFile = optionalString(args, 'service-account-file');
  if (serviceAccountFile === '') throw new UsageError('--service-account-file needs a path');
  return { publisherId, packageName, ...(serviceAccountFile !== undefined ? { serviceAccountFile } : {}) };
}

/** A Google service account key file: JSON with client_email and a PEM private_key. */
function readServiceAccountFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CommandError(`Cannot read ${path}`);
  }
  try {
    const account = JSON.parse(text) as { client_email?: unknown; private_key?: unknown };
    if (typeof account.client_email !== 'string' || typeof account.private_key !== 'string') throw new Error('fields');
    createPrivateKey(account.private_key);
  } catch {
    throw new CommandError(`${path} is not a Google service account key file (JSON with client_email and private_key)`);
  }
  return text;
}

/**
 * Adds or replaces the publisher's Google Play Billing configuration profile for a package name.
 * The service account JSON comes from --service-account-file (stored as a secret); locally without
 * it, the Play simulator's service account is used.
 */
export async function googleConfigure(target: StackTarget, args: Args) {
  const { publisherId, packageName, serviceAccountFile } = parseGoogleConfigure(args);
  const json = serviceAccountFile !== undefined ? readServiceAccountFile(serviceAccountFile) : undefined;
  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, publisherId);
  const current = publisher.google?.profiles.find((profile) => profile.packageName === packageName);
  let serviceAccountRef: string;
  if (json !== undefined) {
    serviceAccountRef = await target.storeSecret(`google-service-account-${publisherId}-${packageName}`, json);
  } else if (current) {
    serviceAccountRef = current.serviceAccountRef;
  } else if (target.kind === 'local' && target.secretsDir !== undefined && existsSync(join(target.secretsDir, GOOGLE_SERVICE_ACCOUNT_FILE))) {
    serviceAccountRef = `file:${GOOGLE_SERVICE_ACCOUNT_FILE}`;
  } else {
    throw new UsageError('--service-account-file is required: this package has no service account yet');
  }
  const profiles = [...(publisher.google?.profiles ?? []).filter((profile) => profile.packageName !== packageName), { packageName, serviceAccountRef }];
  await publishers.putPublisher({ ...publisher, google: { profiles } });
  return { publisherId, google: { profiles } };
}

// ---------------------------------------------------------------------------------------------
// jwt issue

/**
 * A customer JWT signed with the publisher's HS256 secret, as the publisher's identity system
 * would issue it (local only: a deployed stack's secret stays in Secrets Manager).
 */
export function parseJwtIssue(args: Args): { publisherId: number; customerId: number; ttl: number } {
  const publisherId = idOption(args, 'publisher');
  const customerId = idOption(args, 'customer');
  const ttlRaw = optionalString(args, 'ttl');
  const ttl = ttlRaw === undefined ? DEFAULT_JWT_TTL_SECONDS : /^[1-9][0-9]{0,7}$/.test(ttlRaw) ? Number(ttlRaw) : NaN;
  if (!Number.isInteger(ttl) || ttl > MAX_JWT_TTL_SECONDS) {
    throw new UsageError(`--ttl must be a number of seconds from 1 to ${MAX_JWT_TTL_SECONDS}, got ${JSON.stringify(ttlRaw)}`);
  }
  return { publisherId, customerId, ttl };
}

export async function jwtIssue(target: StackTarget, args: Args): Promise<string> {
  const { publisherId, customerId, ttl } = parseJwtIssue(args);
  if (target.kind !== 'local' || target.secretsDir === undefined) {
    throw new UsageError(`jwt issue works only with the local stack: ${target.description} keeps its JWT secrets in Secrets Manager`);
  }
  const publisher = await requirePublisher(target, publishersOf(target), publisherId);
  const ref = publisher.jwt.hs256SecretRef;
  if (!ref?.startsWith('file:')) throw new CommandError(`Publisher ${publisherId} has no local HS256 JWT secret`);
  let secret: string;
  try {
    // The same reader the API uses, so the token is signed with exactly the bytes it verifies with.
    secret = await new ReferenceSecretStore({ localDir: target.secretsDir, cacheSeconds: 0 }).get(ref);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CommandError(`Cannot read the JWT secret ${ref} of publisher ${publisherId}: ${code ?? (error as Error).message}`);
  }
  const { issuer, audience } = publisher.jwt;
  if (issuer === undefined && audience === undefined) return issueCustomerJwt(secret, publisherId, customerId, ttl);
  // The API checks iss/aud when the publisher configures them, so the token must carry them.
  const jwt = new SignJWT({ customerId, publisherId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
  if (issuer !== undefined) jwt.setIssuer(issuer);
  if (audience !== undefined) jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

// ---------------------------------------------------------------------------------------------
// jwt configure

export interface JwtConfigureInput {
  publisherId: number;
  jwksUrl?: string;
  removeJwksUrl: boolean;
  issuer?: string;
  clearIssuer: boolean;
  audience?: string;
  clearAudience: boolean;
  disableHs256: boolean;
}

export interface JwtConfigured {
  publisherId: number;
  jwt: JwtSettings;
}

/** One of a pair of options that set and clear the same setting. */
function exclusive(args: Args, set: string, clear: string): void {
  if (args[set] !== undefined && args[clear] !== undefined) throw new UsageError(`--${set} and --${clear} cannot be combined`);
}

export function parseJwtConfigure(args: Args): JwtConfigureInput {
  const publisherId = idOption(args, 'publisher');
  exclusive(args, 'jwks-url', 'remove-jwks-url');
  exclusive(args, 'issuer', 'clear-issuer');
  exclusive(args, 'audience', 'clear-audience');
  const jwksUrl = optionalString(args, 'jwks-url');
  if (jwksUrl !== undefined) {
    // The same rule the repository enforces, said here before anything is written.
    const problem = jwksUrlProblem(jwksUrl);
    if (problem !== undefined) throw new UsageError(`--jwks-url ${problem}, got ${JSON.stringify(jwksUrl)}`);
  }
  const issuer = optionalString(args, 'issuer');
  const audience = optionalString(args, 'audience');
  if (issuer !== undefined) boundedText('--issuer', issuer, MAX_JWT_CLAIM);
  if (audience !== undefined) boundedText('--audience', audience, MAX_JWT_CLAIM);
  const input: JwtConfigureInput = {
    publisherId,
    ...(jwksUrl !== undefined ? { jwksUrl } : {}),
    removeJwksUrl: flag(args, 'remove-jwks-url'),
    ...(issuer !== undefined ? { issuer } : {}),
    clearIssuer: flag(args, 'clear-issuer'),
    ...(audience !== undefined ? { audience } : {}),
    clearAudience: flag(args, 'clear-audience'),
    disableHs256: flag(args, 'disable-hs256'),
  };
  const changes =
    jwksUrl !== undefined || issuer !== undefined || audience !== undefined || input.removeJwksUrl || input.clearIssuer || input.clearAudience || input.disableHs256;
  if (!changes) {
    throw new UsageError('Nothing to change: give --jwks-url, --issuer, --audience, --remove-jwks-url, --clear-issuer, --clear-audience or --disable-hs256');
  }
  return input;
}

/**
 * Changes how a publisher's customer JWTs are verified (contract §5): a JWKS URL of RS256/ES256
 * keys (https; http only on a loopback host), the required `iss`/`aud`, and whether the HS256
 * secret made by `publisher create` is still accepted. Settings not named are kept. Disabling HS256
 * only drops the reference: the secret stays where it was stored (a file locally, Secrets Manager
 * when deployed) and no longer verifies anything.
 */
export async function jwtConfigure(target: StackTarget, args: Args): Promise<JwtConfigured> {
  const input = parseJwtConfigure(args);
  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, input.publisherId);
  const { hs256SecretRef, jwksUrl, issuer, audience } = publisher.jwt;
  const next = {
    hs256SecretRef: input.disableHs256 ? undefined : hs256SecretRef,
    jwksUrl: input.removeJwksUrl ? undefined : (input.jwksUrl ?? jwksUrl),
    issuer: input.clearIssuer ? undefined : (input.issuer ?? issuer),
    audience: input.clearAudience ? undefined : (input.audience ?? audience),
  };
  const jwt: JwtSettings = {
    ...(next.hs256SecretRef !== undefined ? { hs256SecretRef: next.hs256SecretRef } : {}),
    ...(next.jwksUrl !== undefined ? { jwksUrl: next.jwksUrl } : {}),
    ...(next.issuer !== undefined ? { issuer: next.issuer } : {}),
    ...(next.audience !== undefined ? { audience: next.audience } : {}),
  };
  await publishers.putPublisher({ ...publisher, jwt });
  return { publisherId: input.publisherId, jwt };
}

// ---------------------------------------------------------------------------------------------
// sync show

export type SynchronizationShown = ReturnType<typeof toStatusView> & {
  publisherId: number;
  store: Store;
  kind: string;
  customerId: number;
  transactionId?: string;
  packageName?: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
};

/** The stored synchronization: what the status route shows, plus the fields support asks for. */
export function parseSyncShow(synchronizationId: string | undefined, args: Args): { id: string; publisherId?: number } {
  if (synchronizationId === undefined || !UUID_PATTERN.test(synchronizationId)) {
    throw new UsageError(`sync show needs a synchronizationId (a UUID), got ${JSON.stringify(synchronizationId ?? '')}`);
  }
  const publisherRaw = optionalString(args, 'publisher');
  return {
    // Ids are stored lower-cased (a Correlation-Id UUID becomes the id as lower case).
    id: synchronizationId.toLowerCase(),
    ...(publisherRaw !== undefined ? { publisherId: parsePositiveInt32('--publisher', publisherRaw) } : {}),
  };
}

export async function syncShow(target: StackTarget, synchronizationId: string | undefined, args: Args): Promise<SynchronizationShown> {
  const { id, publisherId } = parseSyncShow(synchronizationId, args);
  const sync = await new DynamoDbSynchronizationRepository(target.db, target.tableName).get(id);
  // Another publisher's synchronization reads as unknown, as on the API (contract §5).
  if (!sync || (publisherId !== undefined && sync.publisherId !== publisherId)) {
    throw new CommandError(`Synchronization ${id} not found${publisherId !== undefined ? ` for publisher ${publisherId}` : ''} in ${target.description}`);
  }
  return {
    ...toStatusView(sync),
    publisherId: sync.publisherId,
    store: sync.store,
    kind: sync.kind,
    customerId: sync.customerId,
    ...(sync.transactionId !== undefined ? { transactionId: sync.transactionId } : {}),
    ...(sync.packageName !== undefined ? { packageName: sync.packageName } : {}),
    attempts: sync.attempts,
    createdAt: sync.createdAt,
    updatedAt: sync.updatedAt,
    ...(sync.finalizedAt !== undefined ? { finalizedAt: sync.finalizedAt } : {}),
  };
}
