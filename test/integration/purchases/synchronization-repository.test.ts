import { createDocumentClient } from '../../../lambdas/platform/dynamodb-client';
import { DynamoDbPublisherRepository } from '../../../lambdas/tenants/adapters/dynamodb-publisher-repository';
import { DynamoDbSynchronizationRepository } from '../../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../../local/dynamodb-local';
import { googleRegisterSync } from '../../support/synchronizations';

const TABLE = 'sync-repository-test';
let dynamodb: DynamoDbLocal;
let syncs: DynamoDbSynchronizationRepository;

beforeAll(async () => {
  dynamodb = await startDynamoDbLocal({ tableName: TABLE });
  const db = createDocumentClient(dynamodb.client);
  syncs = new DynamoDbSynchronizationRepository(db, TABLE);
  await new DynamoDbPublisherRepository(db, TABLE).putCustomer(1, 101);
});
afterAll(async () => dynamodb?.stop());

const googleRegister = googleRegisterSync;

describe('DynamoDB synchronization repository', () => {
  it('claims a Google token once; abandoning an accept frees the lock, the claim and the record', async () => {
    const leaseExpiresAt = Date.now() + 60_000;
    const first = googleRegister('11111111-2222-4333-8444-000000000001');
    expect(await syncs.accept({ sync: first, leaseExpiresAt, claimKey: first.claimKey })).toEqual({ outcome: 'accepted' });
    const second = googleRegister('11111111-2222-4333-8444-000000000002');
    // The claim is checked before the lock: the answer names the synchronization that holds the token.
    expect(await syncs.accept({ sync: second, leaseExpiresAt, claimKey: second.claimKey })).toEqual({
      outcome: 'claimed',
      synchronizationId: first.synchronizationId,
    });

    await syncs.abandon(first);
    expect(await syncs.get(first)).toBeUndefined();
    expect(await syncs.accept({ sync: second, leaseExpiresAt, claimKey: second.claimKey })).toEqual({ outcome: 'accepted' });
  });

  it('after finalize the lock is free but the claim answers with the first synchronization', async () => {
    const leaseExpiresAt = Date.now() + 60_000;
    const owner = googleRegister('11111111-2222-4333-8444-000000000002');
    const finalized = { ...owner, status: 'finalized' as const, result: 'PURCHASE_SYNCHRONIZED' as const };
    expect(await syncs.finalize({ sync: finalized, entitlementChanges: [] })).toBe(true);
    expect(await syncs.finalize({ sync: finalized, entitlementChanges: [] })).toBe(false);
    const late = googleRegister('11111111-2222-4333-8444-000000000003');
    expect(await syncs.accept({ sync: late, leaseExpiresAt, claimKey: late.claimKey })).toEqual({
      outcome: 'claimed',
      synchronizationId: owner.synchronizationId,
    });
  });
});
