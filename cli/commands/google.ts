/**
 * `iap-sync google configure`: a publisher's Google Play Billing profiles (package name + service
 * account) and how its Real-time Developer Notification pushes are authenticated.
 */
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GoogleRegisterBody } from '../../lambdas/purchases/schemas';
import type { GooglePushSettings } from '../../lambdas/tenants/domain/publisher';
import { jwksUrlProblem } from '../../lambdas/tenants/ports/credential-verifier';
import { GOOGLE_SERVICE_ACCOUNT_FILE } from '../../local/simulator/google-simulator';
import { idOption, optionalString, requiredString, type Args } from '../args';
import { CommandError, UsageError } from '../errors';
import type { StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

const PACKAGE_NAME = GoogleRegisterBody.shape.packageName;
/** A service account's email, e.g. `pubsub-push@my-project.iam.gserviceaccount.com` (RFC 5321 caps an address at 254). */
const EMAIL = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;
const MAX_EMAIL_LENGTH = 254;

/** Secret name of a package's Google service account (file name locally); its prefix is the `google` scope of lib/secret-scopes.ts. */
export const googleServiceAccountSecretName = (publisherId: number, packageName: string) => `google-service-account-${publisherId}-${packageName}`;

export interface GoogleConfigureInput {
  publisherId: number;
  packageName: string;
  serviceAccountFile?: string;
  /** The push subscription's service account: the `email` its OIDC tokens must carry. */
  pushServiceAccount?: string;
  /** The `aud` its OIDC tokens must carry, when not the push endpoint's URL. */
  pushAudience?: string;
}

export function parseGoogleConfigure(args: Args): GoogleConfigureInput {
  const publisherId = idOption(args, 'publisher');
  const packageName = requiredString(args, 'package-name');
  if (!PACKAGE_NAME.safeParse(packageName).success) {
    throw new UsageError(`--package-name must be an Android application id, got ${JSON.stringify(packageName)}`);
  }
  const serviceAccountFile = optionalString(args, 'service-account-file');
  if (serviceAccountFile === '') throw new UsageError('--service-account-file needs a path');
  const pushServiceAccount = optionalString(args, 'push-service-account');
  if (pushServiceAccount !== undefined && (pushServiceAccount.length > MAX_EMAIL_LENGTH || !EMAIL.test(pushServiceAccount))) {
    throw new UsageError(`--push-service-account must be a service account email, got ${JSON.stringify(pushServiceAccount)}`);
  }
  const pushAudience = optionalString(args, 'push-audience');
  if (pushAudience !== undefined) {
    // An audience is compared as a string, but Pub/Sub's are URLs: the JWKS URL rule keeps a typo or plain http out.
    const problem = jwksUrlProblem(pushAudience);
    if (problem !== undefined) throw new UsageError(`--push-audience ${problem}, got ${JSON.stringify(pushAudience)}`);
  }
  return {
    publisherId,
    packageName,
    ...(serviceAccountFile !== undefined ? { serviceAccountFile } : {}),
    ...(pushServiceAccount !== undefined ? { pushServiceAccount } : {}),
    ...(pushAudience !== undefined ? { pushAudience } : {}),
  };
}

/** The push settings after this command: the options given over the current ones. */
function nextPush(current: GooglePushSettings | undefined, input: GoogleConfigureInput): GooglePushSettings | undefined {
  const serviceAccountEmail = input.pushServiceAccount ?? current?.serviceAccountEmail;
  const audience = input.pushAudience ?? current?.audience;
  if (serviceAccountEmail === undefined) {
    if (audience !== undefined) throw new CommandError('--push-audience needs --push-service-account: this publisher has no push service account yet');
    return undefined;
  }
  return { serviceAccountEmail, ...(audience !== undefined ? { audience } : {}) };
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
 * it, the Play simulator's service account is used. --push-service-account and --push-audience set
 * how the pushes of its Real-time Developer Notifications subscription are authenticated (contract
 * §9); without them the current push settings are kept.
 */
export async function googleConfigure(target: StackTarget, args: Args) {
  const input = parseGoogleConfigure(args);
  const { publisherId, packageName, serviceAccountFile } = input;
  const json = serviceAccountFile !== undefined ? readServiceAccountFile(serviceAccountFile) : undefined;
  const publishers = publishersOf(target);
  const publisher = await requirePublisher(target, publishers, publisherId);
  const current = publisher.google?.profiles.find((profile) => profile.packageName === packageName);
  let serviceAccountRef: string;
  if (json !== undefined) {
    serviceAccountRef = await target.storeSecret(googleServiceAccountSecretName(publisherId, packageName), json);
  } else if (current) {
    serviceAccountRef = current.serviceAccountRef;
  } else if (target.kind === 'local' && target.secretsDir !== undefined && existsSync(join(target.secretsDir, GOOGLE_SERVICE_ACCOUNT_FILE))) {
    serviceAccountRef = `file:${GOOGLE_SERVICE_ACCOUNT_FILE}`;
  } else {
    throw new UsageError('--service-account-file is required: this package has no service account yet');
  }
  const push = nextPush(publisher.google?.push, input);
  const profiles = [...(publisher.google?.profiles ?? []).filter((profile) => profile.packageName !== packageName), { packageName, serviceAccountRef }];
  const google = { profiles, ...(push !== undefined ? { push } : {}) };
  await publishers.putPublisher({ ...publisher, google });
  return { publisherId, google };
}
