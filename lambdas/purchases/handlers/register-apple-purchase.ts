import { purchaseHandler } from './purchase-handler';

/** `POST /storekit2/purchases`: register an Apple purchase and start its synchronization. */
export const handler = purchaseHandler('apple', 'register', 'register-apple-purchase');
