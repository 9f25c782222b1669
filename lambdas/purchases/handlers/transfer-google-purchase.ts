import { purchaseHandler } from './purchase-handler';

/** `POST /google-play/purchases/transfers`: move an active Google Play subscription to another customer. */
export const handler = purchaseHandler('google', 'transfer', 'transfer-google-purchase');
