import type { FaultInjector, SimulatedStore } from '../local/simulator/faults';

/** Store API calls counted since the counter was made (read differences for a window). */
export interface StoreCallCounter {
  readonly calls: Readonly<Record<SimulatedStore, number>>;
}

/**
 * Counts store API calls: both simulators await `faults.delay(store)` once per store API request
 * (App Store Server API; Play's subscriptionsv2.get, acknowledge and voidedpurchases.list, not its
 * OAuth token endpoint), so wrapping that method of the stack's FaultInjector counts them.
 */
export function countStoreCalls(faults: FaultInjector): StoreCallCounter {
  const calls: Record<SimulatedStore, number> = { apple: 0, google: 0 };
  const delay = faults.delay.bind(faults);
  faults.delay = (store) => {
    calls[store] += 1;
    return delay(store);
  };
  return { calls };
}
