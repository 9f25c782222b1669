import { defaultPurchaseDeps, makePurchaseHandler } from '../shared/purchase-handler';
import { lazyHandler } from '../shared/runtime';

/** `POST /storekit2/purchases/transfers`: move an active Apple purchase to another customer. */
export const handler = lazyHandler(() => makePurchaseHandler('apple', 'transfer', defaultPurchaseDeps('transfer-apple-purchase')));
