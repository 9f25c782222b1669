import { defaultPurchaseDeps, makePurchaseHandler } from '../shared/purchase-handler';
import { lazyHandler } from '../shared/runtime';

/** `POST /google-play/purchases`: register a Google Play subscription and start its synchronization. */
export const handler = lazyHandler(() => makePurchaseHandler('google', 'register', defaultPurchaseDeps('register-google-purchase')));
