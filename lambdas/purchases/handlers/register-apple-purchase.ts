import { purchaseHandler } from './purchase-handler';
import { signedTransactionsFrom } from '../../stores/apple/signed-transactions';

/** `POST /storekit2/purchases`: register an Apple purchase and start its synchronization. */
export const handler = purchaseHandler('apple', 'register', 'register-apple-purchase', (config) => ({ signedTransactions: signedTransactionsFrom(config) }));
