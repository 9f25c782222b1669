import { verifyGooglePurchase, type GoogleVerifyDeps } from '../domain/verify-purchase';
import { systemClock } from '../../platform/clock';
import { createRuntime } from '../runtime';
import { createGoogleVerifier } from '../google-verifier';
import { createTracing } from '../../platform/tracer';
import { instrument, lazyHandler } from '../../platform/handler';
import { makeVerifyHandler, type VerifyHandlerDeps } from './verify-handler';

/** Task `VerifyGooglePurchase`: the Google Play Developer API's verdict on a Google synchronization (see makeVerifyHandler). */
export function makeVerifyGooglePurchaseHandler(deps: GoogleVerifyDeps & VerifyHandlerDeps) {
  return makeVerifyHandler('google', (ref) => verifyGooglePurchase(deps, ref), deps);
}

export const handler = lazyHandler(() => {
  const tracing = createTracing();
  const runtime = createRuntime('verify-google-purchase', process.env, { captureClient: tracing.captureClient });
  const deps = { ...runtime, google: createGoogleVerifier(runtime), clock: systemClock, timeoutMs: runtime.config.VERIFY_TIMEOUT_MS };
  return tracing.wrap(instrument(runtime, makeVerifyGooglePurchaseHandler(deps)));
});
