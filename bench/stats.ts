import { cpus, loadavg, totalmem } from 'node:os';
/** Latency summary of one measured series, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

/**
 * Nearest-rank percentile (no interpolation): with 200 samples p99 is the 198th smallest, so a
 * reported figure is always a latency that was actually observed.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

export function median(samples: readonly number[]): number {
  return percentile([...samples].sort((a, b) => a - b), 50);
}

/** Rounds for the JSON report: enough digits for milliseconds and dollars, no float noise. */
export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The machine a report was measured on; call `loadAverage()` at the start and pass it here at the end. */
export function describeMachine(loadAverageAtStart: number[]) {
  const cpu = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    totalMemoryMb: Math.round(totalmem() / 2 ** 20),
    loadAverageAtStart,
    loadAverageAtEnd: loadAverage(),
  };
}

/** 1, 5 and 15-minute load averages, two decimals. */
export function loadAverage(): number[] {
  return loadavg().map((n) => Number(n.toFixed(2)));
}
