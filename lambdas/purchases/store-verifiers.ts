import type { GooglePlayVerifier } from '../stores/google/ports';
import type { AppleVerifier } from '../stores/apple/ports';
import type { Runtime } from './runtime';
import { createAppleVerifier } from './apple-verifier';
import { createGoogleVerifier } from './google-verifier';

export { measureStoreCall } from './store-metrics';

/**
 * Both stores' clients, measured. A function that talks to one store builds only that one
 * (createAppleVerifier, createGoogleVerifier): importing this pulls both libraries into its bundle.
 */
export function createStoreVerifiers(runtime: Runtime): { apple: AppleVerifier; google: GooglePlayVerifier } {
  return { apple: createAppleVerifier(runtime), google: createGoogleVerifier(runtime) };
}
