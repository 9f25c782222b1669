/**
 * Waits for `work` at most `ms`, then rejects with `onTimeout()`. The work is not cancelled (a
 * library's request may take no signal): it goes on in the background and its outcome is ignored,
 * so only work without side effects (reads, verifications) is bounded this way.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
  });
  // Promise.race listens to `work` too, so a rejection after the timeout is not an unhandled one.
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/**
 * A time allowance spent by several waits in a row (e.g. every OCSP check of one verification):
 * each wait gets what is left, and what it used is taken off.
 */
export class TimeAllowance {
  private leftMs: number;

  constructor(
    totalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.leftMs = totalMs;
  }

  get remainingMs(): number {
    return this.leftMs;
  }

  async spend<T>(work: Promise<T>, onTimeout: () => Error): Promise<T> {
    const started = this.now();
    try {
      return await withTimeout(work, this.leftMs, onTimeout);
    } finally {
      this.leftMs = Math.max(0, this.leftMs - (this.now() - started));
    }
  }
}
