/**
 * The one DynamoDB table of iap-sync (single-table design), defined once for the CDK stack, the
 * local runtime and the tests. Item keys are built only by `keys` below.
 */
export const TABLE_DEFINITION = {
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  /** Epoch seconds; DynamoDB deletes the item some time after. */
  timeToLiveAttribute: 'ttl',
} as const;

export const keys = {
  publisher: (publisherId: number) => ({ pk: `PUBLISHER#${publisherId}`, sk: 'PROFILE' }),
  customer: (publisherId: number, customerId: number) => ({ pk: `PUBLISHER#${publisherId}`, sk: `CUSTOMER#${customerId}` }),
  offer: (publisherId: number, store: string, productId: string) => ({
    pk: `PUBLISHER#${publisherId}`,
    sk: `OFFER#${store}#${productId}`,
  }),
  synchronization: (synchronizationId: string) => ({ pk: `SYNC#${synchronizationId}`, sk: 'SYNC' }),
  /** A lock key (stored on the synchronization) names what is locked, e.g. `apple#txn#2000000123`. */
  lock: (publisherId: number, lockKey: string) => ({ pk: `LOCK#${publisherId}#${lockKey}`, sk: 'LOCK' }),
  /** Transaction → subscription link (Apple), written when a transaction is verified. */
  transaction: (publisherId: number, store: string, transactionId: string) => ({
    pk: `TXN#${publisherId}#${store}#${transactionId}`,
    sk: 'TXN',
  }),
  purchase: (publisherId: number, store: string, purchaseKey: string) => ({
    pk: `PURCHASE#${publisherId}#${store}#${purchaseKey}`,
    sk: 'PURCHASE',
  }),
  entitlement: (publisherId: number, customerId: number, store: string, purchaseKey: string) => ({
    pk: `PUBLISHER#${publisherId}#CUSTOMER#${customerId}`,
    sk: `ENTITLEMENT#${store}#${purchaseKey}`,
  }),
} as const;
