/**
 * `iap-sync publisher create | set | list`, and the publisher lookup the other groups share. Like every
 * file in cli/commands/: plain functions that take the target stack and the parsed options (long
 * option names as keys, strings as typed on the command line) and answer what to print. This file
 * imports no other command group, so the groups that use its lookup cannot form a cycle with it.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDbPublisherRepository } from '../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { hashPublisherToken } from '../../lambdas/tenants/domain/authenticate';
import { type OwnershipPolicy, type Publisher } from '../../lambdas/tenants/domain/publisher';
import { JWT_SECRET_FILE } from '../../local/seed';
import { MAX_JWT_CLAIM, boundedText, flag, idOption, oneOf, optionalString, requiredString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';

const MAX_NAME = 200;

export function publishersOf(target: StackTarget): DynamoDbPublisherRepository {
  return new DynamoDbPublisherRepository(target.db, target.tableName);
}

export async function requirePublisher(target: StackTarget, publishers: DynamoDbPublisherRepository, publisherId: number): Promise<Publisher> {
  const publisher = await publishers.getPublisher(publisherId);
  if (!publisher) throw new CommandError(`Publisher ${publisherId} not found in ${target.description}`);
  return publisher;
}

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

const ON_OFF = ['on', 'off'] as const;

export interface PublisherSetInput {
  publisherId: number;
  /** `--storekit-migration on|off`: while on, Apple transfers answer 422 SK2C0005 (contract §6). */
  storeKitMigration: boolean;
}

export function parsePublisherSet(args: Args): PublisherSetInput {
  const publisherId = idOption(args, 'publisher');
  const migration = optionalString(args, 'storekit-migration');
  if (migration === undefined) throw new UsageError('publisher set needs a setting to change: --storekit-migration on|off');
  return { publisherId, storeKitMigration: oneOf('--storekit-migration', migration, ON_OFF) === 'on' };
}

/**
 * Changes settings of an existing publisher that no other command sets: today the StoreKit
 * migration flag (before it, only a raw edit of the table could set it). Prints the StoreKit settings.
 */
export async function publisherSet(
  target: StackTarget,
  args: Args,
): Promise<{ publisherId: number; storeKit: Publisher['storeKit'] }> {
  const { publisherId, storeKitMigration } = parsePublisherSet(args);
  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, publisherId);
  const storeKit = { ...publisher.storeKit, migrationInProgress: storeKitMigration };
  await publishers.putPublisher({ ...publisher, storeKit });
  return { publisherId, storeKit };
}

/** Publisher ids, from the table's publisher directory (no Scan once it is complete: DynamoDbPublisherRepository.listPublisherIds). */
export async function publisherList(target: StackTarget): Promise<{ publisherIds: number[] }> {
  return { publisherIds: await publishersOf(target).listPublisherIds() };
}
