/** `iap-sync google configure`: a publisher's Google Play Billing profiles (package name + service account). */
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GoogleRegisterBody } from '../../lambdas/purchases/schemas';
import { GOOGLE_SERVICE_ACCOUNT_FILE } from '../../local/simulator/google-simulator';
import { idOption, optionalString, requiredString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

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
