import { phaseNames, summarizePhases, syncPhases, type SyncPhases } from '../../../bench/end-to-end';
import type { LocalExecution } from '../../../local/step-functions';

type Step = [type: string, name: string | undefined, at: number];

function execution(steps: Step[]): LocalExecution {
  return {
    executionArn: 'arn:aws:states:us-east-1:000000000000:execution:m:e',
    name: 'e',
    input: '{}',
    status: 'SUCCEEDED',
    startDate: steps[0]?.[2] ?? 0,
    history: steps.map(([type, name, timestamp], i) => ({ id: i + 1, previousEventId: i, timestamp, type, ...(name ? { details: { name } } : {}) })),
    abort: () => undefined,
    done: Promise.resolve(),
  };
}

const happyPath: Step[] = [
  ['ExecutionStarted', undefined, 1010],
  ['ChoiceStateEntered', 'VerifyStore', 1011],
  ['ChoiceStateExited', 'VerifyStore', 1011],
  ['TaskStateEntered', 'VerifyApplePurchase', 1012],
  ['TaskStateExited', 'VerifyApplePurchase', 1040],
  ['TaskStateEntered', 'FinalizeSynchronization', 1041],
  ['TaskStateExited', 'FinalizeSynchronization', 1060],
  // The states after the finalize may run in the same millisecond: still not part of register → finalized.
  ['ChoiceStateEntered', 'AcknowledgeNeeded', 1060],
  ['ChoiceStateExited', 'AcknowledgeNeeded', 1060],
  ['TaskStateEntered', 'PublishResult', 1060],
  ['TaskStateExited', 'PublishResult', 1060],
  ['TaskStateEntered', 'MarkPublished', 1061],
  ['TaskStateExited', 'MarkPublished', 1070],
  ['ExecutionSucceeded', undefined, 1071],
];

const storeRetry: Step[] = [
  ['ExecutionStarted', undefined, 1002],
  ['ChoiceStateEntered', 'VerifyStore', 1003],
  ['ChoiceStateExited', 'VerifyStore', 1003],
  ['TaskStateEntered', 'VerifyApplePurchase', 1004],
  ['TaskStateExited', 'VerifyApplePurchase', 1020],
  ['TaskStateEntered', 'MarkRetrying', 1021],
  ['TaskStateExited', 'MarkRetrying', 1030],
  ['ChoiceStateEntered', 'RetryBudgetLeft', 1030],
  ['ChoiceStateExited', 'RetryBudgetLeft', 1031],
  ['WaitStateEntered', 'WaitBeforeRetry', 1031],
  ['WaitStateExited', 'WaitBeforeRetry', 2031],
  ['ChoiceStateEntered', 'VerifyStore', 2032],
  ['ChoiceStateExited', 'VerifyStore', 2032],
  ['TaskStateEntered', 'VerifyApplePurchase', 2033],
  ['TaskStateExited', 'VerifyApplePurchase', 2050],
  ['TaskStateEntered', 'FinalizeSynchronization', 2051],
  ['TaskStateExited', 'FinalizeSynchronization', 2070],
];

const additive = (p: SyncPhases) => p.accept + p.toFirstState + p.betweenStates + Object.values(p.tasks).reduce((sum, ms) => sum + ms, 0);

describe('register → finalized by part, from the execution history', () => {
  it('splits the happy path into accept, the stand-in\'s steps and each Task state, up to the finalize', () => {
    expect(syncPhases(1000, 15, execution(happyPath))).toEqual({
      accept: 10,
      toFirstState: 1,
      tasks: { VerifyApplePurchase: 28, FinalizeSynchronization: 19 },
      betweenStates: 2,
      total: 60,
      registerRoundTrip: 15,
    });
  });

  it('sums a Task state that ran twice and counts Choice and Wait states between states', () => {
    const parts = syncPhases(1000, 5, execution(storeRetry));
    expect(parts?.tasks).toEqual({ VerifyApplePurchase: 33, MarkRetrying: 9, FinalizeSynchronization: 19 });
    expect(parts?.betweenStates).toBe(1006);
  });

  it.each([
    ['happy path', happyPath],
    ['store retry', storeRetry],
  ])('has parts that add up to register → finalized (%s)', (_, steps) => {
    const parts = syncPhases(1000, 1, execution(steps));
    expect(parts).toBeDefined();
    if (parts) expect(additive(parts)).toBe(parts.total);
  });

  it('gives nothing for an execution whose finalize never returned', () => {
    expect(syncPhases(1000, 1, execution(happyPath.slice(0, 5)))).toBeUndefined();
  });
});

describe('the summary of the parts', () => {
  const sample = (total: number): SyncPhases => ({ accept: total / 2, toFirstState: 0, tasks: { FinalizeSynchronization: total / 2 }, betweenStates: 0, total, registerRoundTrip: 1 });

  it('gives each part its percentiles and what the slowest 1 % were made of', () => {
    const summary = summarizePhases(Array.from({ length: 100 }, (_, i) => sample(i + 1)));
    expect(summary.samples).toBe(100);
    expect(summary.phases['register → finalized']?.p99).toBe(99);
    expect(summary.phases['accept (POST → execution started)']?.p50).toBe(25);
    // Totals 99 and 100 are at or above the p99: their accept halves average 49.75.
    expect(summary.slowestOnePercentMeans['accept (POST → execution started)']).toBe(49.8);
    expect(summary.slowestOnePercentMeans['register → finalized']).toBe(99.5);
  });

  it('lists a part seen in one run only with the others, before the total and the 202', () => {
    const oneClient = summarizePhases([syncPhases(1000, 1, execution(happyPath))].filter((p) => p !== undefined));
    const underLoad = summarizePhases([syncPhases(1000, 1, execution(storeRetry))].filter((p) => p !== undefined));
    expect(phaseNames(oneClient, underLoad)).toEqual([
      'accept (POST → execution started)',
      'stand-in: start → first state',
      'VerifyApplePurchase (Task)',
      'FinalizeSynchronization (Task)',
      'stand-in: between states',
      'MarkRetrying (Task)',
      'register → finalized',
      '202 round trip (overlaps)',
    ]);
  });
});
