// The `geosession/prometheus` entry point: a store's metrics for Prometheus, registered on a prom-client
// registry (`registerMetrics`) or rendered as text without prom-client (`metricsText`). Nothing here
// loads prom-client: the registry is the one you pass.

export { DEFAULT_PREFIX, METRICS, type MetricDefinition } from './observability/catalog.js';
export type { MetricFamily, MetricLabels, MetricSample, MetricType } from './observability/metric-family.js';
export {
  collectMetrics,
  type MetricsRegistry,
  type MetricsTextOptions,
  metricsText,
  type RegisterMetricsOptions,
  registerMetrics,
  stopMetrics,
  type UnregisterMetrics,
} from './observability/prometheus.js';
export { PROMETHEUS_CONTENT_TYPE } from './observability/text-format.js';
