import { nextRetry, totalWaitSeconds } from '../../../lambdas/purchases/domain/retry-policy';

const DEFAULT = { maxAttempts: 8, baseSeconds: 15, maxWaitSeconds: 960 };

describe('store retry budget', () => {
  it.each([
    [1, 15, false],
    [2, 30, false],
    [3, 60, false],
    [7, 960, false],
    [8, 960, true],
  ])('after %i failed attempts waits %i s (exhausted: %s)', (failed, wait, exhausted) => {
    expect(nextRetry(DEFAULT, failed)).toEqual({ attempt: failed, waitSeconds: wait, exhausted });
  });

  it('spends about 32 minutes waiting with the default budget of 8 attempts', () => {
    expect(totalWaitSeconds(DEFAULT)).toBe(15 + 30 + 60 + 120 + 240 + 480 + 960);
  });

  it('caps every wait at maxWaitSeconds', () => {
    expect(nextRetry({ maxAttempts: 20, baseSeconds: 60, maxWaitSeconds: 100 }, 10).waitSeconds).toBe(100);
  });
});
