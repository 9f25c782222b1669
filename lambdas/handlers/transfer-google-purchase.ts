import { defaultPurchaseDeps, makePurchaseHandler } from '../shared/purchase-handler';
import { lazyHandler } from '../shared/runtime';

/** `POST /google-play/purchases/transfers`: move an active Google Play subscription to another customer. */
export const handler = lazyHandler(() => makePurchaseHandler('google', 'transfer', defaultPurchaseDeps('transfer-google-purchase')));
