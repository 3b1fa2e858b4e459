/**
 * The one in-memory form of geosession's metrics: what the collector (./collector.ts) produces, what
 * `metricsText` renders (./text-format.ts) and what prom-client registries read (./prom-client-bridge.ts).
 * Its shape is the one prom-client's metrics return from `get()`, so a registry renders it as it is.
 */

/** A metric's type, as the Prometheus text format names it. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Label names and values of one sample. */
export type MetricLabels = Record<string, string | number>;

/** One sample: a value with its labels (`metricName` for a histogram's `_bucket`, `_sum` and `_count`). */
export interface MetricSample {
  readonly labels: MetricLabels;
  readonly value: number;
  readonly metricName?: string;
}

/** One metric (a family of samples) without the configured name prefix. */
export interface MetricFamily {
  /** The name without the prefix, e.g. `store_operations_total`. */
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly values: MetricSample[];
}

/** A histogram with fixed upper bounds (seconds), cheap to observe. */
export class Histogram {
  /** Observations per bucket, not cumulative; the last counts those above every bound. */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  /** Its samples named after `name` (`_bucket` with `le`, `_sum`, `_count`), with `labels`. */
  samples(name: string, labels: MetricLabels): MetricSample[] {
    const out: MetricSample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i] as number;
      out.push({
        metricName: `${name}_bucket`,
        labels: { ...labels, le: this.bounds[i] as number },
        value: cumulative,
      });
    }
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: this.count });
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: this.count });
    return out;
  }
}

/** Bounds of the replication lag histogram, seconds. */
export const LAG_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/** Bounds of the store operation latency histogram, seconds. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
