import { notificationCostModel, PRICES, reconciledPurchaseCostModel, RECONCILE_ASSUMPTIONS } from '../../../bench/cost-model';
import { itemKind, itemSize } from '../../../bench/dynamodb-proxy';

const appleNotification = notificationCostModel({
  source: 'fixture',
  store: 'apple',
  transitionsPerRefresh: 4,
  lambdaInvocationsPerRefresh: { VerifyApplePurchase: 1, FinalizeSynchronization: 1 },
  lambdaMedianMs: { VerifyApplePurchase: 40, FinalizeSynchronization: 10 },
  putEventsPerRefresh: 0.5,
  notificationMs: 20,
  executionMs: 120,
  storeCallsPerRefresh: { 'transactions.get': 1 },
});

describe('cost of a reconciled purchase', () => {
  const reconciled = reconciledPurchaseCostModel(appleNotification);

  it('is the refresh without the HTTP route and the notification function, plus the run\'s wait, index read and postpone', () => {
    for (const model of [reconciled.standard, reconciled.express]) {
      expect(model.lines.some((l) => l.service === 'API Gateway')).toBe(false);
      expect(model.lines.some((l) => l.item.includes('duration notification'))).toBe(false);
      expect(model.lines.find((l) => l.item.startsWith('postpone'))?.quantity).toBe(RECONCILE_ASSUMPTIONS.postponeWriteUnits + RECONCILE_ASSUMPTIONS.reconcileIndexWriteUnits);
      expect(model.lines.find((l) => l.item.startsWith('requests'))?.quantity).toBe(2);
      expect(model.totalUsdPerMillion).toBeCloseTo(model.lines.reduce((sum, l) => sum + l.usdPerMillion, 0), 2);
    }
    // The HTTP request ($1 a million) is gone; the rate limiter's wait is billed: 2 calls at 10/s = 200 ms at 512 MB.
    const api = appleNotification.express.lines.find((l) => l.service === 'API Gateway');
    expect(api?.usdPerMillion).toBe(PRICES.httpApiPerRequest * 1e6);
    const wait = reconciled.express.lines.find((l) => l.item.startsWith('duration reconcile'));
    expect(wait?.quantity).toBeCloseTo(0.5 * 0.2, 6);
  });
});

describe('the counting proxy sizes items by DynamoDB\'s rules', () => {
  it('names an item by its key prefixes', () => {
    expect(itemKind({ pk: { S: 'SYNC#1#abc' }, sk: { S: 'SYNC' } })).toBe('SYNC');
    expect(itemKind({ pk: { S: 'PUBLISHER#1#CUSTOMER#9' }, sk: { S: 'ENTITLEMENT#apple#1' } })).toBe('PUBLISHER/ENTITLEMENT');
  });

  it('counts binary attributes by their bytes, whether base64 on the wire or bytes from the SDK', () => {
    const bytes = new Uint8Array(300);
    expect(itemSize({ events: { B: Buffer.from(bytes).toString('base64') } })).toBe('events'.length + 300);
    expect(itemSize({ events: { B: bytes } as never })).toBe('events'.length + 300);
  });
});
