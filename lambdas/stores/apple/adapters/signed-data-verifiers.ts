// Apple's SignedDataVerifier from its own module, not the package index: the index also loads the App
// Store Server API client, every response model and the offer signers, which the Apple routes (they
// only verify signed data) never run: 46 kB of each of their bundles. The version is pinned in
// package.json (README, Pinned versions), so the path cannot move under us.
import { SignedDataVerifier, VerificationException, VerificationStatus } from '@apple/app-store-server-library/dist/jws_verification';
import { Environment } from '@apple/app-store-server-library/dist/models/Environment';
import type { AppleConfig, AppleEnvironment } from '../config';

const ENVIRONMENT: Record<AppleEnvironment, Environment.PRODUCTION | Environment.SANDBOX> = {
  Production: Environment.PRODUCTION,
  Sandbox: Environment.SANDBOX,
};

/**
 * Failures that another environment's verifier may not have: the library checks the app identity
 * (bundle id, and appAppleId for Production only) and the environment after the signature, so a
 * Sandbox payload fails the Production verifier with one of these and passes the Sandbox one.
 * Every other status (signature, chain, malformed payload) would fail every verifier the same way.
 */
const ENVIRONMENT_DEPENDENT = new Set<VerificationStatus>([VerificationStatus.INVALID_APP_IDENTIFIER, VerificationStatus.INVALID_ENVIRONMENT]);

export type Attempt<T> = { ok: true; value: T } | { ok: false; status: VerificationStatus };

/** What trying the verifiers of a publisher's configured environments gave. */
export type EnvironmentAttempt<T> =
  | { ok: true; value: T; environment: AppleEnvironment; verifier: SignedDataVerifier }
  /** `unavailable`: Apple's certificate status could not be checked (OCSP); `reasons` are for the logs. */
  | { ok: false; unavailable: boolean; reasons: string[] };

/**
 * Apple's SignedDataVerifier per app and environment, built once per container: it checks the
 * x5c chain against the trusted roots, the bundle id, the environment and (Production) the app's
 * Apple id. Undefined for Production without an app Apple id, which Apple's library requires.
 */
export class SignedDataVerifiers {
  private readonly verifiers = new Map<string, SignedDataVerifier>();

  constructor(private readonly options: { rootCertificates: Buffer[]; onlineChecks: boolean }) {}

  get(config: AppleConfig, environment: AppleEnvironment): SignedDataVerifier | undefined {
    if (environment === 'Production' && config.appAppleId === undefined) return undefined;
    const cacheKey = [config.bundleId, config.appAppleId ?? '', environment].join('|');
    let verifier = this.verifiers.get(cacheKey);
    if (!verifier) {
      verifier = new SignedDataVerifier(this.options.rootCertificates, this.options.onlineChecks, ENVIRONMENT[environment], config.bundleId, config.appAppleId);
      this.verifiers.set(cacheKey, verifier);
    }
    return verifier;
  }

  /**
   * Runs `verify` with one verifier per environment the publisher configured, in order, until one
   * accepts: signed data names its environment only inside the signed payload, so it is accepted
   * only for one of those environments. Stops early on a failure no other environment can cure.
   */
  async inConfiguredEnvironments<T>(config: AppleConfig, verify: (verifier: SignedDataVerifier) => Promise<T>): Promise<EnvironmentAttempt<T>> {
    const reasons: string[] = [];
    let unavailable = false;
    for (const environment of new Set(config.environments)) {
      const verifier = this.get(config, environment);
      if (verifier === undefined) {
        // SignedDataVerifier refuses Production without the app's Apple id: nothing of Production can be verified.
        reasons.push(`${environment}: appAppleId is not configured`);
        continue;
      }
      const attempt = await verified(() => verify(verifier));
      if (attempt.ok) return { ok: true, value: attempt.value, environment, verifier };
      reasons.push(`${environment}: ${statusName(attempt.status)}`);
      if (attempt.status === VerificationStatus.RETRYABLE_VERIFICATION_FAILURE) unavailable = true;
      else if (!ENVIRONMENT_DEPENDENT.has(attempt.status)) break;
    }
    return { ok: false, unavailable, reasons: reasons.length > 0 ? reasons : ['no App Store environment configured'] };
  }
}

/** Runs one verification, turning Apple's VerificationException into its status; anything else propagates. */
export async function verified<T>(verify: () => Promise<T>): Promise<Attempt<T>> {
  try {
    return { ok: true, value: await verify() };
  } catch (error) {
    if (error instanceof VerificationException) return { ok: false, status: error.status };
    throw error;
  }
}

export function statusName(status: VerificationStatus): string {
  return VerificationStatus[status] ?? 'VERIFICATION_FAILURE';
}
