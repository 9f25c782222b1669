import { defaultApplePurchaseDeps, makeApplePurchaseHandler } from '../shared/apple-purchase-handler';
import { lazyHandler } from '../shared/runtime';

/** `POST /storekit2/purchases/transfers`: move an active Apple purchase to another customer. */
export const handler = lazyHandler(() => makeApplePurchaseHandler('transfer', defaultApplePurchaseDeps('transfer-apple-purchase')));
