import { defaultApplePurchaseDeps, makeApplePurchaseHandler } from '../shared/apple-purchase-handler';
import { lazyHandler } from '../shared/runtime';

/** `POST /storekit2/purchases`: register an Apple purchase and start its synchronization. */
export const handler = lazyHandler(() => makeApplePurchaseHandler('register', defaultApplePurchaseDeps('register-apple-purchase')));
