import { Environment, SignedDataVerifier } from '@apple/app-store-server-library';
import type { AppleConfig, AppleEnvironment } from '../config';

const ENVIRONMENT: Record<AppleEnvironment, Environment.PRODUCTION | Environment.SANDBOX> = {
  Production: Environment.PRODUCTION,
  Sandbox: Environment.SANDBOX,
};

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
}
