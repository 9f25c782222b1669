import type { Store } from '../events/vocabulary';
import type { GooglePlayVerifier } from '../stores/google/ports';
import type { AppleVerifier } from '../stores/apple/ports';
import type { MetricsRecorder } from '../platform/metrics';

/** Failures of the store itself (5xx, 429, timeouts, network, 401/403, other 4xx), not of our configuration or secrets. */
const STORE_ERRORS = new Set(['StoreUnavailableError', 'StoreCredentialsError', 'StoreRejectedError']);

/** Runs one store call, adding its duration to StoreLatency and, when the store failed, one StoreErrors. */
export async function measureStoreCall<R>(metrics: MetricsRecorder, store: Store, call: () => Promise<R>): Promise<R> {
  const started = performance.now();
  try {
    return await call();
  } catch (error) {
    if (error instanceof Error && STORE_ERRORS.has(error.name)) metrics.add('storeErrors', store);
    throw error;
  } finally {
    metrics.add('storeLatency', store, Math.round((performance.now() - started) * 10) / 10);
  }
}

/** The Apple port with every call measured (StoreLatency, StoreErrors; dimension `store`). */
export function measuredApple(metrics: MetricsRecorder, apple: AppleVerifier): AppleVerifier {
  return { verify: (...args) => measureStoreCall(metrics, 'apple', () => apple.verify(...args)) };
}

/** The Google port with every call measured (StoreLatency, StoreErrors; dimension `store`). */
export function measuredGoogle(metrics: MetricsRecorder, google: GooglePlayVerifier): GooglePlayVerifier {
  return {
    verify: (...args) => measureStoreCall(metrics, 'google', () => google.verify(...args)),
    acknowledge: (...args) => measureStoreCall(metrics, 'google', () => google.acknowledge(...args)),
    listVoided: (...args) => measureStoreCall(metrics, 'google', () => google.listVoided(...args)),
  };
}
