import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MARK_PUBLISHED } from '../../lambdas/purchases/adapters/dynamodb-synchronization-repository';
import { keys } from '../../lambdas/platform/dynamodb-table';
import { StoreUnavailableError } from '../../lambdas/platform/errors';
import { WORKFLOW_DEFINITION_FILE, WORKFLOW_FUNCTIONS, substituteDefinition, workflowValueSubstitutions } from '../../lib/catalog';
import { LocalStepFunctions, type TaskImplementation } from '../../local/step-functions';

interface AslState {
  Type?: string;
  Resource?: string;
  TimeoutSeconds?: number;
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[]; Next: string }[];
}
const ASL = JSON.parse(readFileSync(join(__dirname, '../..', WORKFLOW_DEFINITION_FILE), 'utf8')) as { States: Record<string, AslState> };

const SM_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:test';
const arn = (id: string) => `arn:aws:lambda:us-east-1:000000000000:function:${id}`;
const definition = substituteDefinition(readFileSync(join(__dirname, '../..', WORKFLOW_DEFINITION_FILE), 'utf8'), {
  ...Object.fromEntries(WORKFLOW_FUNCTIONS.map((fn) => [fn.substitution, arn(fn.id)])),
  ...workflowValueSubstitutions({ tableName: 'table' }),
});

const INPUT = {
  synchronizationId: '11111111-2222-4333-8444-555555555555',
  publisherId: 1,
  store: 'apple',
  kind: 'register',
  customerId: 101,
  transactionId: '2000000000000001',
  retry: { attempt: 0 },
};

/** A Google register: the same workflow, verified by the Google function. */
const GOOGLE_INPUT = { ...INPUT, store: 'google', transactionId: undefined };

/** The verify Task state (and function) of each store, chosen by the VerifyStore Choice. */
const VERIFY_STATES = ['VerifyApplePurchase', 'VerifyGooglePurchase'] as const;

interface Script {
  verify?: (call: number) => unknown;
  finalize?: (input: Record<string, unknown>, call: number) => unknown;
  publish?: (call: number) => unknown;
  acknowledge?: (call: number) => unknown;
  markPublished?: (call: number) => unknown;
  markRetrying?: (input: { retry: { attempt: number } }) => unknown;
}

const RESULT_ENTRY = { Source: 'iap-sync', DetailType: 'inappPurchaseSyncResult', EventBusName: 'bus', Detail: { synchronizationId: INPUT.synchronizationId } };

/** What FinalizeSynchronization answers (FinalizeTaskOutput): the entries to publish, by default the result event. */
function finalized(extra: Record<string, unknown> = {}, entries: unknown[] = [RESULT_ENTRY]) {
  return { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, entries, publish: entries.length > 0, ...extra };
}

/** Runs the real ASL with scripted Task implementations and records what each Task received. */
async function run(script: Script, input: Record<string, unknown> = INPUT) {
  const calls: Record<string, unknown[]> = {
    VerifyApplePurchase: [],
    VerifyGooglePurchase: [],
    MarkRetrying: [],
    FinalizeSynchronization: [],
    AcknowledgePurchase: [],
    Publish: [],
    MarkPublished: [],
  };
  const count = (name: string) => calls[name]?.length ?? 0;
  const tasks: Record<string, TaskImplementation> = {
    // Either store's verify function follows the same script, counting its own calls.
    ...Object.fromEntries(
      VERIFY_STATES.map((id): [string, TaskImplementation] => [
        arn(id),
        async (input) => {
          calls[id]?.push(input);
          return (script.verify ?? (() => ({ outcome: 'not_found' })))(count(id));
        },
      ]),
    ),
    [arn('MarkRetrying')]: async (input) => {
      calls.MarkRetrying?.push(input);
      if (script.markRetrying) return script.markRetrying(input as { retry: { attempt: number } });
      const attempt = (input as { retry: { attempt: number } }).retry.attempt + 1;
      return { attempt, waitSeconds: 1, exhausted: attempt >= 3 };
    },
    [arn('FinalizeSynchronization')]: async (input) => {
      calls.FinalizeSynchronization?.push(input);
      return (script.finalize ?? (() => finalized()))(
        input as Record<string, unknown>,
        count('FinalizeSynchronization'),
      );
    },
    [arn('AcknowledgePurchase')]: async (input) => {
      calls.AcknowledgePurchase?.push(input);
      return (script.acknowledge ?? (() => ({ acknowledged: true })))(count('AcknowledgePurchase'));
    },
    'arn:aws:states:::events:putEvents': async (input) => {
      calls.Publish?.push(input);
      return (script.publish ?? (() => ({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] })))(count('Publish'));
    },
    'arn:aws:states:::dynamodb:updateItem': async (input) => {
      calls.MarkPublished?.push(input);
      return (script.markPublished ?? (() => ({})))(count('MarkPublished'));
    },
  };
  const sfn = new LocalStepFunctions({ definition, stateMachineArn: SM_ARN, tasks, waitOverrideMs: 1, retryOverrideMs: 1 });
  const { executionArn } = (await sfn.call('StartExecution', { stateMachineArn: SM_ARN, name: 'x', input: JSON.stringify(input) })) as {
    executionArn: string;
  };
  await sfn.drain();
  const execution = sfn.executions.get(executionArn);
  const entered = (execution?.history ?? []).filter((e) => e.type.endsWith('StateEntered')).map((e) => e.details?.name);
  return { calls, status: execution?.status, error: execution?.error, entered };
}

function failing(name: string) {
  return () => {
    const error = new Error(name);
    error.name = name;
    throw error;
  };
}

describe('statemachines/purchase-sync.asl.json', () => {
  it('happy path: choose the store, verify, finalize, publish, mark published in 6 states (budget: 6 transitions)', async () => {
    const verification = { outcome: 'verified', facts: { productId: 'p' } };
    const result = await run({ verify: () => verification });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toEqual(['VerifyStore', 'VerifyApplePurchase', 'FinalizeSynchronization', 'AcknowledgeNeeded', 'PublishResult', 'MarkPublished']);
    expect(result.calls.VerifyApplePurchase).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId }]);
    expect(result.calls.VerifyGooglePurchase).toEqual([]);
    expect(result.calls.AcknowledgePurchase).toEqual([]);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, verification }]);
    expect(result.calls.Publish).toEqual([
      { Entries: [RESULT_ENTRY] },
    ]);
  });

  it('a Google synchronization is verified by the Google function, never the Apple one (6 states)', async () => {
    const verification = { outcome: 'verified', facts: { productId: 'p' } };
    const result = await run({ verify: () => verification }, GOOGLE_INPUT);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toEqual(['VerifyStore', 'VerifyGooglePurchase', 'FinalizeSynchronization', 'AcknowledgeNeeded', 'PublishResult', 'MarkPublished']);
    expect(result.calls.VerifyGooglePurchase).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId }]);
    expect(result.calls.VerifyApplePurchase).toEqual([]);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, verification }]);
  });

  it('Google down once: marked retrying, then verified again by the Google function', async () => {
    const result = await run(
      {
        verify: (call) => {
          if (call === 1) throw new StoreUnavailableError('503');
          return { outcome: 'verified', facts: {} };
        },
      },
      GOOGLE_INPUT,
    );
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered.slice(0, 7)).toEqual(['VerifyStore', 'VerifyGooglePurchase', 'MarkRetrying', 'RetryBudgetLeft', 'WaitBeforeRetry', 'VerifyStore', 'VerifyGooglePurchase']);
    expect(result.calls.MarkRetrying).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, store: 'google', retry: { attempt: 0 } }]);
    expect(result.calls.VerifyApplePurchase).toEqual([]);
  });

  it('a store without a verify state finalizes as failed (the lock is released) and publishes', async () => {
    const result = await run({ verify: () => ({ outcome: 'not_found' }) }, { ...INPUT, store: 'amazon' });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered.slice(0, 2)).toEqual(['VerifyStore', 'FinalizeFailure']);
    expect(result.calls.VerifyApplePurchase).toEqual([]);
    expect(result.calls.VerifyGooglePurchase).toEqual([]);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, failed: true }]);
    expect(result.calls.Publish).toHaveLength(1);
  });

  it('the two verify states differ only in the function they call: same input, timeout, Retry and Catch', () => {
    const [apple, google] = VERIFY_STATES.map((id) => ASL.States[id]);
    expect(apple?.Type).toBe('Task');
    expect(apple?.Resource).toBe('${VerifyApplePurchaseFunctionArn}');
    expect(google?.Resource).toBe('${VerifyGooglePurchaseFunctionArn}');
    expect({ ...google, Resource: undefined }).toEqual({ ...apple, Resource: undefined });
  });

  it('MarkPublished makes the repository\'s own update of the synchronization record, on its key', async () => {
    const result = await run({ verify: () => ({ outcome: 'not_found' }) });
    const key = keys.synchronization(INPUT.publisherId, INPUT.synchronizationId);
    expect(result.calls.MarkPublished).toEqual([
      {
        TableName: 'table',
        Key: { pk: { S: key.pk }, sk: { S: key.sk } },
        UpdateExpression: MARK_PUBLISHED.UpdateExpression,
        ExpressionAttributeValues: { ':published': { S: MARK_PUBLISHED.ExpressionAttributeValues[':published'] } },
      },
    ]);
  });

  it('a duplicate execution of a synchronization whose event is out publishes nothing', async () => {
    const result = await run({
      verify: () => ({ outcome: 'not_found' }),
      finalize: () => finalized({ published: true }),
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.calls.Publish).toEqual([]);
    expect(result.entered).toEqual(['VerifyStore', 'VerifyApplePurchase', 'FinalizeSynchronization', 'AcknowledgeNeeded', 'Done']);
  });

  it('a MarkPublished that keeps failing ends in MarkPublishedFailed after one publish (the sweeper publishes again)', async () => {
    const result = await run({ verify: () => ({ outcome: 'not_found' }), markPublished: failing('DynamoDB.InternalServerError') });
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('MarkPublishedFailed');
    expect(result.calls.Publish).toHaveLength(1);
    expect(result.calls.MarkPublished).toHaveLength(7);
  });

  it('store down twice: marks retrying twice, waits, verifies again and finalizes the verification', async () => {
    const result = await run({
      verify: (call) => {
        if (call <= 2) throw new StoreUnavailableError('503');
        return { outcome: 'verified', facts: {} };
      },
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.calls.VerifyApplePurchase).toHaveLength(3);
    expect(result.calls.MarkRetrying).toEqual([
      { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, store: 'apple', retry: { attempt: 0 } },
      { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, store: 'apple', retry: { attempt: 1, waitSeconds: 1, exhausted: false } },
    ]);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, verification: { outcome: 'verified', facts: {} } }]);
    expect(result.entered.filter((name) => name === 'WaitBeforeRetry')).toHaveLength(2);
  });

  it('EXPRESS: a parked retry ends the execution without waiting (the sweeper starts the next attempt)', async () => {
    const result = await run({
      verify: () => {
        throw new StoreUnavailableError('503');
      },
      markRetrying: () => ({ attempt: 1, waitSeconds: 15, exhausted: false, park: true }),
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toEqual(['VerifyStore', 'VerifyApplePurchase', 'MarkRetrying', 'RetryBudgetLeft', 'Parked']);
    expect(result.calls.FinalizeSynchronization).toEqual([]);
    expect(result.calls.Publish).toEqual([]);
  });

  it('budget exhausted: finalizes as failed (SYNCHRONIZATION_FAILED path) and still publishes', async () => {
    const result = await run({ verify: () => { throw new StoreUnavailableError('down'); } });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.calls.VerifyApplePurchase).toHaveLength(3);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, failed: true }]);
    expect(result.calls.Publish).toHaveLength(1);
    expect(result.entered).toContain('FinalizeFailure');
  });

  it.each(['StoreCredentialsError', 'ConfigurationError', 'TypeError'])(
    'a permanent %s from verification finalizes as failed without retrying the store',
    async (name) => {
      const result = await run({ verify: failing(name) });
      expect(result.status).toBe('SUCCEEDED');
      expect(result.calls.VerifyApplePurchase).toHaveLength(1);
      expect(result.calls.MarkRetrying).toHaveLength(0);
      expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, failed: true }]);
    },
  );

  it.each(['States.Timeout', 'Lambda.Unknown', 'Sandbox.Timedout'])(
    'a verification that times out (%s) takes the retry path: marked retrying, verified on the next attempt, not SYNCHRONIZATION_FAILED',
    async (name) => {
      const result = await run({
        verify: (call) => {
          if (call === 1) failing(name)();
          return { outcome: 'verified', facts: {} };
        },
      });
      expect(result.status).toBe('SUCCEEDED');
      expect(result.entered.slice(0, 7)).toEqual(['VerifyStore', 'VerifyApplePurchase', 'MarkRetrying', 'RetryBudgetLeft', 'WaitBeforeRetry', 'VerifyStore', 'VerifyApplePurchase']);
      expect(result.calls.MarkRetrying).toEqual([
        { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, store: 'apple', retry: { attempt: 0 } },
      ]);
      expect(result.calls.FinalizeSynchronization).toEqual([
        { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, verification: { outcome: 'verified', facts: {} } },
      ]);
      expect(result.entered).not.toContain('FinalizeFailure');
    },
  );

  it('a verification that keeps timing out spends the store retry budget (retrying, then failed), never the Lambda retries', async () => {
    const result = await run({ verify: failing('Lambda.Unknown') });
    expect(result.status).toBe('SUCCEEDED');
    // One invocation per store attempt: the 50 s function is not invoked 4 more times per attempt.
    expect(result.calls.VerifyApplePurchase).toHaveLength(3);
    expect(result.calls.MarkRetrying).toHaveLength(3);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, failed: true }]);
  });

  it.each(VERIFY_STATES)('States.Timeout can fire: %s\'s Task timeout is below its function\'s, so Step Functions gives up first', (id) => {
    const verify = ASL.States[id];
    const fn = WORKFLOW_FUNCTIONS.find((entry) => entry.id === id);
    expect(verify?.TimeoutSeconds).toBeLessThan(fn?.timeoutSeconds ?? 0);
    // Not retried as a Lambda error first: straight to the catch that marks the synchronization retrying.
    const retried = (verify?.Retry ?? []).flatMap((retry) => retry.ErrorEquals);
    for (const name of ['States.Timeout', 'Lambda.Unknown', 'Sandbox.Timedout', 'States.ALL']) expect(retried).not.toContain(name);
    expect(verify?.Catch?.[0]).toMatchObject({ Next: 'MarkRetrying' });
    expect(verify?.Catch?.[0]?.ErrorEquals).toEqual(expect.arrayContaining(['StoreUnavailableError', 'States.Timeout', 'Lambda.Unknown', 'Sandbox.Timedout']));
  });

  it('every Task that retries Lambda service errors also retries Lambda.ClientExecutionTimeoutException', () => {
    const lambdaRetries = Object.entries(ASL.States).flatMap(([name, state]) =>
      (state.Retry ?? []).filter((retry) => retry.ErrorEquals.includes('Lambda.ServiceException')).map((retry) => [name, retry.ErrorEquals] as const),
    );
    expect(lambdaRetries.map(([name]) => name)).toEqual(['VerifyApplePurchase', 'VerifyGooglePurchase', 'MarkRetrying', 'FinalizeSynchronization']);
    for (const [, errors] of lambdaRetries) expect(errors).toContain('Lambda.ClientExecutionTimeoutException');
  });

  it('retries Lambda service errors of a Task before giving up on it', async () => {
    const result = await run({
      verify: (call) => {
        if (call === 1) failing('Lambda.ServiceException')();
        return { outcome: 'not_found' };
      },
    });
    expect(result.calls.VerifyApplePurchase).toHaveLength(2);
    expect(result.calls.FinalizeSynchronization).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, verification: { outcome: 'not_found' } }]);
  });

  it('a finalize that keeps losing its fenced write falls back to finalizing as failed', async () => {
    const result = await run({
      verify: () => ({ outcome: 'not_found' }),
      finalize: (input) => {
        if (!('failed' in input)) failing('ConcurrentUpdateError')();
        return finalized();
      },
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.calls.FinalizeSynchronization).toHaveLength(7 + 1);
    expect(result.calls.FinalizeSynchronization?.at(-1)).toEqual({ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId, failed: true });
  });

  it('an event that cannot be published after its retries ends in PublishFailed, visible to the sweeper', async () => {
    const result = await run({ verify: () => ({ outcome: 'not_found' }), publish: failing('EventBridge.FailedEntry') });
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('PublishFailed');
    expect(result.calls.Publish).toHaveLength(9);
  });

  it('a Google purchase to acknowledge: acknowledged after finalize, before publishing (7 states)', async () => {
    const result = await run({
      verify: () => ({ outcome: 'verified', facts: {} }),
      finalize: () => finalized({ acknowledge: { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId } }),
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toEqual(['VerifyStore', 'VerifyApplePurchase', 'FinalizeSynchronization', 'AcknowledgeNeeded', 'AcknowledgePurchase', 'PublishNeeded', 'PublishResult', 'MarkPublished']);
    expect(result.calls.AcknowledgePurchase).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId }]);
  });

  it('an acknowledgement that keeps failing does not hold back the event', async () => {
    const result = await run({
      verify: () => ({ outcome: 'verified', facts: {} }),
      finalize: () => finalized({ acknowledge: { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId } }),
      acknowledge: failing('StoreUnavailableError'),
    });
    expect(result.status).toBe('SUCCEEDED');
    // 4 attempts, then AcknowledgeLater (the same function, failing here too: 3 tries); test/workflow/acknowledge-later.test.ts has the rest.
    expect(result.calls.AcknowledgePurchase).toHaveLength(4 + 3);
    expect(result.calls.Publish).toHaveLength(1);
  });

  it('a store notification that changed no entitlement publishes nothing but still leaves the open index', async () => {
    const result = await run({ verify: () => ({ outcome: 'verified', facts: { productId: 'p' } }), finalize: () => finalized({}, []) });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toEqual(['VerifyStore', 'VerifyApplePurchase', 'FinalizeSynchronization', 'AcknowledgeNeeded', 'MarkPublished']);
    expect(result.calls.Publish).toEqual([]);
    expect(result.calls.MarkPublished).toHaveLength(1);
  });

  it('a store notification that changed no entitlement but finds the purchase unacknowledged acknowledges it, then publishes nothing', async () => {
    const result = await run({
      verify: () => ({ outcome: 'verified', facts: { productId: 'p' } }),
      finalize: () => finalized({ acknowledge: { synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId } }, []),
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.entered).toEqual(['VerifyStore', 'VerifyApplePurchase', 'FinalizeSynchronization', 'AcknowledgeNeeded', 'AcknowledgePurchase', 'PublishNeeded', 'MarkPublished']);
    expect(result.calls.AcknowledgePurchase).toEqual([{ synchronizationId: INPUT.synchronizationId, publisherId: INPUT.publisherId }]);
    expect(result.calls.Publish).toEqual([]);
  });

  it('a register that changed an entitlement publishes the result and inappEntitlementChanged in one PutEvents', async () => {
    const changed = { Source: 'iap-sync', DetailType: 'inappEntitlementChanged', EventBusName: 'bus', Detail: { reason: 'PURCHASED' } };
    const result = await run({ verify: () => ({ outcome: 'verified', facts: { productId: 'p' } }), finalize: () => finalized({}, [RESULT_ENTRY, changed]) });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.calls.Publish).toEqual([{ Entries: [RESULT_ENTRY, changed] }]);
  });
});
