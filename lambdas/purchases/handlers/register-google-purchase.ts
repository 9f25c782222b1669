import { purchaseHandler } from './purchase-handler';

/** `POST /google-play/purchases`: register a Google Play subscription and start its synchronization. */
export const handler = purchaseHandler('google', 'register', 'register-google-purchase');
