import { defaultPurchaseDeps, makePurchaseHandler } from '../shared/purchase-handler';
import { lazyHandler } from '../shared/runtime';

/** `POST /storekit2/purchases`: register an Apple purchase and start its synchronization. */
export const handler = lazyHandler(() => makePurchaseHandler('apple', 'register', defaultPurchaseDeps('register-apple-purchase')));
