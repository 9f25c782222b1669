import { TimeAllowance, withTimeout } from '../../../lambdas/platform/deadline';

const never = () => new Promise<never>(() => undefined);
const timeout = () => new Error('too late');

describe('withTimeout', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('answers what the work answers in time, and rejects with the given error once the time is up', async () => {
    await expect(withTimeout(Promise.resolve('done'), 100, timeout)).resolves.toBe('done');
    const late = withTimeout(never(), 100, timeout);
    jest.advanceTimersByTime(100);
    await expect(late).rejects.toThrow('too late');
  });

  it('a rejection of the work after the time is up is not an unhandled one', async () => {
    let fail: (error: Error) => void = () => undefined;
    const work = new Promise<never>((_resolve, reject) => {
      fail = reject;
    });
    const late = withTimeout(work, 10, timeout);
    jest.advanceTimersByTime(10);
    await expect(late).rejects.toThrow('too late');
    fail(new Error('the abandoned request failed'));
    await Promise.resolve();
  });
});

describe('TimeAllowance', () => {
  it('gives each wait what is left, and takes off what it used', async () => {
    let now = 0;
    const allowance = new TimeAllowance(100, () => now);
    // The work ends 60 ms after it started (after spend noted the start).
    const work = Promise.resolve().then(() => {
      now = 60;
      return 'first';
    });
    await expect(allowance.spend(work, timeout)).resolves.toBe('first');
    expect(allowance.remainingMs).toBe(40);
    jest.useFakeTimers();
    try {
      const second = allowance.spend(never(), timeout);
      jest.advanceTimersByTime(39);
      await Promise.resolve();
      now = 100;
      jest.advanceTimersByTime(1);
      await expect(second).rejects.toThrow('too late');
      expect(allowance.remainingMs).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });
});
