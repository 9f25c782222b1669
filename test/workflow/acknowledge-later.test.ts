import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreUnavailableError } from '../../lambdas/platform/errors';
import { makeAcknowledgePurchaseHandler } from '../../lambdas/purchases/handlers/acknowledge-purchase';
import type { Synchronization } from '../../lambdas/purchases/domain/synchronization';
import type { PendingAcknowledgementInput } from '../../lambdas/purchases/ports/pending-acknowledgements';
import type { GooglePlayVerifier } from '../../lambdas/stores/google/ports';
import type { Publisher } from '../../lambdas/tenants';
import { WORKFLOW_DEFINITION_FILE, WORKFLOW_FUNCTIONS, substituteDefinition, workflowValueSubstitutions } from '../../lib/catalog';
import { worstCaseTaskSeconds } from '../../lib/retry-budget';
import { LocalStepFunctions, type TaskImplementation } from '../../local/step-functions';
import { FakePublisherRepository, FakeSynchronizationRepository, FixedClock, RecordingLogger } from '../support/fakes';
import { googleRegisterSync } from '../support/synchronizations';

/*
 * The ASL's AcknowledgePurchase and AcknowledgeLater states with the real AcknowledgePurchase handler
 * (Google faked, the pending acknowledgement recorded in memory): a few attempts, then the purchase is
 * handed to the reconciliation, and the event goes out whatever happens to the acknowledgement.
 */

const ASL_TEXT = readFileSync(join(__dirname, '../..', WORKFLOW_DEFINITION_FILE), 'utf8');
const ASL = JSON.parse(ASL_TEXT) as { States: Record<string, { Type: string; TimeoutSeconds?: number; Retry?: { MaxAttempts?: number; IntervalSeconds?: number; BackoffRate?: number; MaxDelaySeconds?: number }[] }> };
const SM_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:test';
const arn = (id: string) => `arn:aws:lambda:us-east-1:000000000000:function:${id}`;
const definition = substituteDefinition(ASL_TEXT, {
  ...Object.fromEntries(WORKFLOW_FUNCTIONS.map((fn) => [fn.substitution, arn(fn.id)])),
  ...workflowValueSubstitutions({ tableName: 'table' }),
});

const ID = '21111111-2222-4333-8444-555555555555';
const PACKAGE = 'com.example.iapsync';
const PUBLISHER: Publisher = {
  publisherId: 1,
  name: 'Demo',
  tokenHash: '0'.repeat(64),
  jwt: {},
  storeKit: { activated: true, migrationInProgress: false },
  google: { profiles: [{ packageName: PACKAGE, serviceAccountRef: 'file:sa.json' }] },
  ownershipPolicy: 'keep',
};
/** Finalized and entitled: the finalize asked for the acknowledgement. */
const SYNC: Synchronization = {
  ...googleRegisterSync(ID),
  productId: 'premium_monthly',
  status: 'finalized',
  result: 'PURCHASE_SYNCHRONIZED',
  acknowledge: true,
  publishState: 'claimed',
};
const RESULT_ENTRY = { Source: 'iap-sync', DetailType: 'inappPurchaseSyncResult', EventBusName: 'bus', Detail: { synchronizationId: ID } };

/** Google's acknowledge, failing the first `failures` calls (Infinity: always). */
class FlakyGoogle implements Pick<GooglePlayVerifier, 'acknowledge'> {
  calls = 0;
  constructor(private readonly failures: number) {}
  async acknowledge(): Promise<void> {
    this.calls += 1;
    if (this.calls <= this.failures) throw new StoreUnavailableError('Google answered 503 to acknowledge the subscription');
  }
}

async function run(google: FlakyGoogle, recordFails = false) {
  const recorded: PendingAcknowledgementInput[] = [];
  const handler = makeAcknowledgePurchaseHandler({
    publishers: new FakePublisherRepository([PUBLISHER]),
    syncs: new FakeSynchronizationRepository([SYNC]),
    google: { verify: async () => ({ outcome: 'not_found' }), listVoided: async () => ({ purchases: [] }), acknowledge: () => google.acknowledge() },
    logger: new RecordingLogger(),
    clock: new FixedClock('2026-11-23T10:00:05.000Z'),
    pending: {
      record: async (input) => {
        if (recordFails) throw new Error('DynamoDB is down');
        recorded.push(input);
        return 'recorded';
      },
    },
  });
  const published: unknown[] = [];
  const tasks: Record<string, TaskImplementation> = Object.fromEntries(
    WORKFLOW_FUNCTIONS.map((fn): [string, TaskImplementation] => {
      if (fn.id === 'AcknowledgePurchase') return [arn(fn.id), async (input) => handler(input)];
      if (fn.id === 'FinalizeSynchronization') {
        return [arn(fn.id), async () => ({ synchronizationId: ID, publisherId: 1, entries: [RESULT_ENTRY], publish: true, acknowledge: { synchronizationId: ID, publisherId: 1 } })];
      }
      // The store's verification (one function per store, or one for both).
      return [arn(fn.id), async () => ({ outcome: 'verified', facts: {} })];
    }),
  );
  tasks['arn:aws:states:::events:putEvents'] = async (input) => {
    published.push(input);
    return { FailedEntryCount: 0, Entries: [{ EventId: 'e' }] };
  };
  tasks['arn:aws:states:::dynamodb:updateItem'] = async () => ({});
  const sfn = new LocalStepFunctions({ definition, stateMachineArn: SM_ARN, tasks, waitOverrideMs: 1, retryOverrideMs: 1 });
  const input = { synchronizationId: ID, publisherId: 1, store: 'google', kind: 'register', customerId: 101, retry: { attempt: 0 } };
  const { executionArn } = (await sfn.call('StartExecution', { stateMachineArn: SM_ARN, name: 'x', input: JSON.stringify(input) })) as { executionArn: string };
  await sfn.drain();
  const execution = sfn.executions.get(executionArn);
  const entered = (execution?.history ?? []).filter((e) => e.type.endsWith('StateEntered')).map((e) => e.details?.name);
  return { status: execution?.status, entered, recorded, published };
}

describe('AcknowledgePurchase, then AcknowledgeLater (statemachines/purchase-sync.asl.json)', () => {
  it('Google refusing every attempt: 4 attempts, the purchase recorded as pending for the reconciliation, the event published', async () => {
    const google = new FlakyGoogle(Infinity);
    const result = await run(google);
    expect(result.status).toBe('SUCCEEDED');
    expect(google.calls).toBe(4);
    expect(result.entered.slice(-5)).toEqual(['AcknowledgePurchase', 'AcknowledgeLater', 'PublishNeeded', 'PublishResult', 'MarkPublished']);
    expect(result.recorded).toEqual([
      {
        publisherId: 1,
        purchaseToken: 'tok.en',
        productId: 'premium_monthly',
        packageName: PACKAGE,
        synchronizationId: ID,
        // Three days from the synchronization's creation (the purchase is older: never early).
        acknowledgeBy: new Date('2026-11-26T10:00:00.000Z'),
        lastError: 'StoreUnavailableError',
      },
    ]);
    expect(result.published).toHaveLength(1);
  });

  it('Google answering on the third attempt: acknowledged, nothing recorded (the happy path writes nothing more)', async () => {
    const google = new FlakyGoogle(2);
    const result = await run(google);
    expect(result.status).toBe('SUCCEEDED');
    expect(google.calls).toBe(3);
    expect(result.entered).not.toContain('AcknowledgeLater');
    expect(result.recorded).toEqual([]);
    expect(result.published).toHaveLength(1);
  });

  it('even when the pending acknowledgement cannot be recorded, the event is published', async () => {
    const result = await run(new FlakyGoogle(Infinity), true);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toContain('AcknowledgeLater');
    expect(result.published).toHaveLength(1);
  });

  it('both states fit well inside an EXPRESS execution (5 minutes), even if every try runs to its timeout', () => {
    const acknowledge = worstCaseTaskSeconds('AcknowledgePurchase', ASL.States.AcknowledgePurchase);
    const later = worstCaseTaskSeconds('AcknowledgeLater', ASL.States.AcknowledgeLater);
    expect(acknowledge + later).toBeLessThan(300);
    // The waits alone (Google answering fast, with an error): about a minute at most.
    const waits = (ASL.States.AcknowledgePurchase?.Retry ?? []).reduce((total, retrier) => {
      let sum = 0;
      for (let retry = 0; retry < (retrier.MaxAttempts ?? 3); retry += 1) {
        sum += Math.min((retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** retry, retrier.MaxDelaySeconds ?? Infinity);
      }
      return total + sum;
    }, 0);
    expect(waits).toBeLessThanOrEqual(90);
  });
});
