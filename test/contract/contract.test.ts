import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../lambdas/platform/errors';
import { RESULTS } from '../../lambdas/events/vocabulary';
import { toStatusView, type Synchronization } from '../../lambdas/purchases/domain/synchronization';
import { AcceptedResponse, SynchronizationStatusResponse } from '../../lambdas/purchases/schemas';
import { SyncResultDetail, SyncResultWebhookBody, toDetail } from '../../lambdas/events/schemas';
import { ErrorResponse } from '../../lambdas/platform/schema-primitives';

/** The examples of the API reference (docs/api.md), kept as fixtures: our schemas must accept them as they are. */
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8'));

describe('contract fixtures', () => {
  it.each([
    ['accepted.json', AcceptedResponse],
    ['status-finalized.json', SynchronizationStatusResponse],
    ['error-locked.json', ErrorResponse],
    ['inapp-purchase-sync-result.webhook.json', SyncResultWebhookBody],
  ])('%s matches its schema', (name, schema) => {
    expect(schema.parse(fixture(name))).toEqual(fixture(name));
  });

  it('the EventBridge detail is the webhook data plus broadcasterId', () => {
    const webhook = SyncResultWebhookBody.parse(fixture('inapp-purchase-sync-result.webhook.json'));
    const detail = toDetail(webhook.broadcasterId, webhook.data);
    expect(SyncResultDetail.parse(detail)).toEqual({ ...webhook.data, broadcasterId: 123 });
  });

  it('the data refuses fields the contract does not define', () => {
    const webhook = fixture('inapp-purchase-sync-result.webhook.json') as { data: Record<string, unknown> };
    expect(SyncResultWebhookBody.safeParse({ ...webhook, data: { ...webhook.data, secret: 1 } }).success).toBe(false);
  });

  it('the error table uses the contract message for SK2C0101', () => {
    expect(ERROR_CODES.SK2C0101.message).toBe((fixture('error-locked.json') as { message: string }).message);
  });

  it.each(Object.entries(RESULTS))('status view of %s shows offerId only with access (%s)', (result, access) => {
    const sync = {
      synchronizationId: '5b0e9f3a-0a55-4f55-9d0e-0d8c9a1f2b11',
      status: 'finalized',
      result,
      accessGranted: access,
      offerId: 'S1',
    } as Synchronization;
    const view = toStatusView(sync);
    expect(SynchronizationStatusResponse.parse(view)).toEqual(view);
    expect('offerId' in view).toBe(access);
    expect('correlationId' in view).toBe(false);
  });

  it.each(['processing', 'retrying'] as const)('a %s synchronization shows neither result nor access', (status) => {
    const view = toStatusView({ synchronizationId: 'x', status, correlationId: 'c' } as Synchronization);
    expect(view).toEqual({ synchronizationId: 'x', status, correlationId: 'c' });
  });
});
