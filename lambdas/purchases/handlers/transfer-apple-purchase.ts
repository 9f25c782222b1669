import { purchaseHandler } from './purchase-handler';
import { signedTransactionsFrom } from '../../stores/apple/signed-transactions';

/** `POST /storekit2/purchases/transfers`: move an active Apple purchase to another customer. */
export const handler = purchaseHandler('apple', 'transfer', 'transfer-apple-purchase', (config) => ({ signedTransactions: signedTransactionsFrom(config) }));
