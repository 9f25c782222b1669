import { verifyApplePurchase, type AppleVerifyDeps } from '../domain/verify-purchase';
import { systemClock } from '../../platform/clock';
import { createRuntime } from '../runtime';
import { createAppleVerifier } from '../apple-verifier';
import { createTracing } from '../../platform/tracer';
import { instrument, lazyHandler } from '../../platform/handler';
import { makeVerifyHandler, type VerifyHandlerDeps } from './verify-handler';

/** Task `VerifyApplePurchase`: the App Store Server API's verdict on an Apple synchronization (see makeVerifyHandler). */
export function makeVerifyApplePurchaseHandler(deps: AppleVerifyDeps & VerifyHandlerDeps) {
  return makeVerifyHandler('apple', (ref) => verifyApplePurchase(deps, ref), deps);
}

export const handler = lazyHandler(() => {
  const tracing = createTracing();
  const runtime = createRuntime('verify-apple-purchase', process.env, { captureClient: tracing.captureClient });
  const deps = { ...runtime, apple: createAppleVerifier(runtime), clock: systemClock, timeoutMs: runtime.config.VERIFY_TIMEOUT_MS };
  return tracing.wrap(instrument(runtime, makeVerifyApplePurchaseHandler(deps)));
});
