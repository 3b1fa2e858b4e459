import { ConfigError } from '../errors.js';
import type { GeoSessionStore } from '../session/store.js';
import { DEFAULT_PREFIX, METRICS } from './catalog.js';
import {
  holdCollector,
  type MetricsCollector,
  pinCollector,
  releaseCollector,
  unpinCollector,
} from './collector.js';
import type { MetricFamily, MetricSample, MetricType } from './metric-family.js';
import { renderText } from './text-format.js';

/**
 * What {@link registerMetrics} needs of a registry: prom-client's `Registry` (or its default `register`)
 * has it. Typed here so that this module needs no prom-client at run time or in its types.
 */
export interface MetricsRegistry {
  registerMetric(metric: never): void;
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
}

/** Options of {@link registerMetrics}. */
export interface RegisterMetricsOptions {
  /** The registry to register on, e.g. `new Registry()` from prom-client. Required: never the global default unless you pass it. */
  readonly registry: MetricsRegistry;
  /** Put before every metric name. Default `geosession_`. */
  readonly prefix?: string;
}

/** Options of {@link metricsText}. */
export interface MetricsTextOptions {
  /** Put before every metric name. Default `geosession_`. */
  readonly prefix?: string;
}

/** Stops what {@link registerMetrics} started: the store's metrics leave the registry. */
export type UnregisterMetrics = () => void;

/** The metric object a prom-client registry holds: its `get()` is what the registry renders. */
interface BridgeMetric {
  name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: MetricType; aggregator: 'sum'; values: MetricSample[] }>;
  reset(): void;
}

/** The stores registered on one registry under one prefix, and the metric objects that render them. */
class Registration {
  /** How many times each store was registered (each registration returns its own unregister). */
  readonly stores = new Map<MetricsCollector, number>();
  readonly metrics: BridgeMetric[];
  private cached: Map<string, MetricSample[]> | undefined;

  constructor(prefix: string) {
    this.metrics = METRICS.map((definition) => {
      const metric: BridgeMetric = {
        name: prefix + definition.name,
        help: definition.help,
        type: definition.type,
        aggregator: 'sum' as const,
        // The registry's own name for it: an OpenMetrics registry renames counters (without `_total`).
        get: async () => ({
          name: metric.name,
          help: definition.help,
          type: definition.type,
          aggregator: 'sum' as const,
          values: this.samples(prefix).get(definition.name) ?? [],
        }),
        reset: () => {},
      };
      return metric;
    });
  }

  /**
   * Every store's samples, names prefixed; collected once for all the metrics a registry reads in one
   * go (it calls every `get()` before its first await), then dropped.
   */
  private samples(prefix: string): Map<string, MetricSample[]> {
    if (this.cached) return this.cached;
    const merged = new Map<string, MetricSample[]>();
    for (const collector of this.stores.keys()) {
      for (const family of collector.collect()) {
        const values = merged.get(family.name) ?? [];
        for (const sample of family.values) {
          values.push(
            sample.metricName === undefined ? sample : { ...sample, metricName: prefix + sample.metricName },
          );
        }
        merged.set(family.name, values);
      }
    }
    this.cached = merged;
    queueMicrotask(() => {
      this.cached = undefined;
    });
    return merged;
  }
}

const registrations = new WeakMap<MetricsRegistry, Map<string, Registration>>();

/**
 * Registers `store`'s metrics (docs/operations.md, "Metrics") on `options.registry`, a prom-client
 * `Registry`, and nowhere else. Every sample carries the store's `region` and `keyspace` labels, so
 * several stores share a registry; registering a store again is harmless. Counting of store operations
 * and replication batches starts with the first registration (or {@link metricsText} call) of a store.
 * Returns the function that takes this registration back: the metrics leave the registry with the
 * last store registered on it, and the store's counting stops with its last registration (unless
 * {@link metricsText} is used for it too).
 */
export function registerMetrics(store: GeoSessionStore, options: RegisterMetricsOptions): UnregisterMetrics {
  const { registry } = options ?? {};
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.registerMetric !== 'function' ||
    typeof registry.removeSingleMetric !== 'function' ||
    typeof registry.getSingleMetric !== 'function'
  ) {
    throw new ConfigError('registry', 'must be a prom-client Registry (e.g. `new Registry()`)');
  }
  const prefix = prefixOption(options.prefix);
  const collector = holdCollector(store);
  let byPrefix = registrations.get(registry);
  if (!byPrefix) {
    byPrefix = new Map();
    registrations.set(registry, byPrefix);
  }
  let registration = byPrefix.get(prefix);
  if (!registration) {
    registration = new Registration(prefix);
    const taken = registration.metrics.find((m) => registry.getSingleMetric(m.name) !== undefined);
    if (taken) {
      releaseCollector(store, collector);
      throw new ConfigError(
        'prefix',
        `gives the metric name ${taken.name}, which this registry already holds: pass another prefix`,
      );
    }
    for (const metric of registration.metrics) registry.registerMetric(metric as never);
    byPrefix.set(prefix, registration);
  }
  const owner = registration;
  owner.stores.set(collector, (owner.stores.get(collector) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const count = (owner.stores.get(collector) ?? 1) - 1;
    if (count > 0) owner.stores.set(collector, count);
    else owner.stores.delete(collector);
    releaseCollector(store, collector);
    if (owner.stores.size > 0) return;
    owner.metrics.forEach((metric, i) => {
      // Under the name it was registered with (an OpenMetrics registry renames counters as it renders).
      const name = prefix + (METRICS[i]?.name ?? '');
      if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name);
    });
    byPrefix.delete(prefix);
  };
}

/**
 * `store`'s metrics in the Prometheus text exposition format (the same metrics {@link registerMetrics}
 * registers, from the same collector), for a `/metrics` route without prom-client. Counting of store
 * operations and replication batches starts with the first call for a store: call it once at startup.
 * Serve it with the content type {@link PROMETHEUS_CONTENT_TYPE}.
 */
export function metricsText(store: GeoSessionStore, options: MetricsTextOptions = {}): string {
  const prefix = prefixOption(options.prefix);
  return renderText(pinCollector(store).collect(), prefix);
}

/**
 * Stops the counting {@link metricsText} started for `store` (a registration from
 * {@link registerMetrics} keeps it going until the function it returned is called). Counts start
 * afresh on the next use.
 */
export function stopMetrics(store: GeoSessionStore): void {
  unpinCollector(store);
}

/** The metrics of `store` as data (names without the prefix), for custom exporters; counts as {@link metricsText} does. */
export function collectMetrics(store: GeoSessionStore): MetricFamily[] {
  return pinCollector(store).collect();
}

function prefixOption(prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new ConfigError(
      'prefix',
      'must be a metric name prefix: letters, digits, _ and :, not a digit first',
    );
  }
  return prefix;
}
