/** Time, injectable so leases and expiries can be tested with fake clocks. */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };
