import { Metrics as PowertoolsMetrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC } from './metric-names';

export type MetricKey = keyof typeof METRIC;

/** The value of a metric's one extra dimension (`store`, `result`, `outcome`, `action`); undefined for `stuck`, which has none. */
export type DimensionValue<K extends MetricKey> = (typeof METRIC)[K]['dimension'] extends string ? string : undefined;

/**
 * The metrics of one function. Values are kept until `flush`, which the handler wrapper calls once
 * per invocation (`instrument` in runtime.ts).
 */
export interface MetricsRecorder {
  /** Adds one sample: a count (default 1) or, for `storeLatency`, milliseconds. */
  add<K extends MetricKey>(metric: K, dimensionValue: DimensionValue<K>, value?: number): void;
  /** Publishes what was added since the last flush. */
  flush(): void;
}

/** Records nothing: the local runtime, tests, and any run without POWERTOOLS_METRICS_NAMESPACE. */
export const noMetrics: MetricsRecorder = { add: () => undefined, flush: () => undefined };

const UNITS: Partial<Record<MetricKey, (typeof MetricUnit)[keyof typeof MetricUnit]>> = { storeLatency: MetricUnit.Milliseconds };

interface Group {
  dimension: string | undefined;
  value: string | undefined;
  /** Counts are summed; durations kept one by one (CloudWatch takes an array of values). */
  metrics: Map<MetricKey, number[]>;
}

/**
 * Publishes through Powertools Metrics (EMF on stdout). Each metric must carry exactly {service, its
 * dimension} so that the alarms' dimension sets match, and one EMF document has one dimension set
 * for all its metrics: `flush` therefore writes one document per (dimension, value) seen, e.g. one
 * per webhook outcome of a batch.
 */
class EmfMetrics implements MetricsRecorder {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly emf: PowertoolsMetrics) {}

  add<K extends MetricKey>(metric: K, dimensionValue: DimensionValue<K>, value = 1): void {
    const dimension: string | undefined = METRIC[metric].dimension;
    const key = `${dimension ?? ''}\n${dimensionValue ?? ''}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { dimension, value: dimensionValue, metrics: new Map() };
      this.groups.set(key, group);
    }
    const values = group.metrics.get(metric) ?? [];
    if (UNITS[metric] === undefined && values.length > 0) values[0] = (values[0] ?? 0) + value;
    else values.push(value);
    group.metrics.set(metric, values);
  }

  flush(): void {
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const group of groups) {
      if (group.dimension !== undefined && group.value !== undefined) this.emf.addDimension(group.dimension, group.value);
      for (const [metric, values] of group.metrics) {
        for (const value of values) this.emf.addMetric(METRIC[metric].name, UNITS[metric] ?? MetricUnit.Count, value);
      }
      // Clears the metrics and the dimension; the default `service` dimension stays.
      this.emf.publishStoredMetrics();
    }
  }
}

/**
 * The function's metrics: Powertools Metrics when POWERTOOLS_METRICS_NAMESPACE is set (the deployed
 * stack sets `IapSync` and POWERTOOLS_SERVICE_NAME `iap-sync-<stage>`, the `service` dimension),
 * otherwise nothing at all. Powertools alone would still print EMF documents under a default
 * namespace unless POWERTOOLS_METRICS_DISABLED or POWERTOOLS_DEV is set, and POWERTOOLS_DEV also
 * changes how the logger prints; keying on the namespace keeps `npm start` and the tests quiet with
 * no extra variable. POWERTOOLS_METRICS_DISABLED=true still silences a configured function.
 */
export function createMetrics(env: NodeJS.ProcessEnv = process.env): MetricsRecorder {
  const namespace = env.POWERTOOLS_METRICS_NAMESPACE;
  if (!namespace) return noMetrics;
  return new EmfMetrics(
    new PowertoolsMetrics({ namespace, ...(env.POWERTOOLS_SERVICE_NAME ? { serviceName: env.POWERTOOLS_SERVICE_NAME } : {}) }),
  );
}
