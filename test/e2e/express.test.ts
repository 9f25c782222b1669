import { LOCAL_STATE_MACHINE_ARN } from '../../local/stack';
import { startTestStack } from '../support/local-client';
import { executionName } from '../../lambdas/purchases/domain/synchronization';

/**
 * An EXPRESS stack's store outage, rehearsed locally: retries park the synchronization (its
 * execution ends) and the recovery sweeper starts each next attempt when it is due, so EXPRESS keeps
 * the retry budget STANDARD has. Waits are 1 s; the sweeper runs every 200 ms with a 1 s grace.
 */
describe('EXPRESS workflow type on npm start', () => {
  let run: Awaited<ReturnType<typeof startTestStack>>;
  beforeAll(async () => {
    run = await startTestStack({
      workflowType: 'EXPRESS',
      retry: { maxAttempts: 6, baseSeconds: 1, maxWaitSeconds: 1 },
      recovery: { intervalMs: 200, graceSeconds: 1 },
    });
  }, 90_000);
  afterAll(async () => run?.stop());

  it('parks through three store failures, each attempt a new execution, then finalizes with one event', async () => {
    const { client, stack } = run;
    const { transactionId } = await client.createTransaction();
    // Three lookups fail (production and sandbox count as one each): 503 for the next 3 App Store calls.
    await client.request('POST', '/__simulator/faults', { headers: { 'content-type': 'application/json' }, body: { store: 'apple', status: 503, count: 3 } });
    const accepted = await client.register({ cleengCustomerId: 101, transactionId, ipAddress: '203.0.113.7' });
    const id = String(accepted.body.synchronizationId);

    const { final, seen } = await client.waitFinalized(id);
    expect(final).toMatchObject({ status: 'finalized', result: 'PURCHASE_SYNCHRONIZED' });
    expect(seen).toContain('retrying');
    await client.settled();
    expect(client.eventsFor(id)).toHaveLength(1);
    // The first execution parked; the sweeper started the later attempts as executions of their own.
    const name = executionName({ publisherId: 1, synchronizationId: id });
    const names = [...stack.stepFunctions.executions.values()].filter((e) => e.name.startsWith(name)).map((e) => e.name);
    expect(names[0]).toBe(name);
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names.slice(1).every((name) => /\.a\d+$/.test(name))).toBe(true);
    const first = stack.stepFunctions.executions.get(`${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`);
    expect(first?.history.some((event) => event.details?.name === 'Parked')).toBe(true);
  });
});
