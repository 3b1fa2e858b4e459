import diagnostics from 'node:diagnostics_channel';
import type { TransportState } from '../contracts/transport.js';
import {
  CHANNELS,
  type ReadThroughMessage,
  type ReplicationBatchMessage,
  type ReplicationLagMessage,
  type StoreOperation,
  type StoreOperationResult,
} from '../runtime/tracing.js';
import type { RefusedWrite } from '../session/events.js';
import { type OperationObserver, operationObservers } from '../session/operation-observers.js';
import type { GeoSessionStore } from '../session/store.js';
import { METRICS, type MetricName } from './catalog.js';
import {
  DURATION_BUCKETS,
  Histogram,
  LAG_BUCKETS,
  type MetricFamily,
  type MetricLabels,
  type MetricSample,
} from './metric-family.js';

/** Refusal reasons that come from sealing (a subset of the dead-letter reasons). */
const SEAL_REASONS = new Set(['unsealed', 'tampered', 'unknown-key', 'origin-mismatch', 'wrong-channel']);

const TRANSPORT_STATES: readonly TransportState[] = ['connecting', 'ready', 'degraded', 'failed', 'closed'];

/** One store operation's counts by result and its latency. */
interface OperationStats {
  readonly results: Record<StoreOperationResult | 'error', number>;
  readonly latency: Histogram;
}

/** A counter keyed by its labels' values joined with `\u0000`. */
class Counts {
  readonly values = new Map<string, number>();
  add(key: string, by = 1): void {
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
}

/**
 * Gathers one store's metrics: its operations and their latency (told by the store itself, see
 * src/session/operation-observers.ts) and what happens on the diagnostics channels (read-through,
 * replication lag and batches), counted as it happens, and what
 * `store.replicationStats()` knows, read when the metrics are collected. The one source both
 * `metricsText` and `registerMetrics` render from. It listens only to messages of its store's region
 * and keyspace, and stops listening once the store is garbage (it holds the store weakly).
 */
export class MetricsCollector implements OperationObserver {
  private readonly store: WeakRef<GeoSessionStore>;
  private readonly base: MetricLabels;
  /** Per operation: its counts by result and its latency histogram (made on its first call). */
  private readonly ops: Partial<Record<StoreOperation, OperationStats>> = {};
  private readonly refused = new Counts();
  private readonly readThrough = new Counts();
  private readonly lag = new Map<string, Histogram>();
  private readonly batches = new Counts();
  private readonly subscriptions: [string, (message: unknown) => void][] = [];
  private readonly onRefused: (refused: RefusedWrite) => void;
  private readonly observers: OperationObserver[];
  private stopped = false;

  constructor(store: GeoSessionStore) {
    this.store = new WeakRef(store);
    const region = store.region;
    const keyspace = store.prefix;
    this.base = { region, keyspace };
    const mine = (m: { region: string; keyspace: string }) => {
      if (m.region === region && m.keyspace === keyspace) return true;
      if (this.store.deref() === undefined) this.stop();
      return false;
    };
    this.observers = operationObservers(store);
    this.observers.push(this);
    this.listen(CHANNELS.readThrough, (m: ReadThroughMessage) => {
      if (mine(m)) this.readThrough.add(`${m.origin}\u0000${m.result}`);
    });
    this.listen(CHANNELS.lag, (m: ReplicationLagMessage) => {
      if (!mine(m)) return;
      let histogram = this.lag.get(m.origin);
      if (!histogram) {
        histogram = new Histogram(LAG_BUCKETS);
        this.lag.set(m.origin, histogram);
      }
      histogram.observe(m.lagMs / 1000);
    });
    for (const op of ['apply', 'publish'] as const) {
      const channel = CHANNELS[op];
      this.listen(`tracing:${channel}:asyncEnd`, (m: ReplicationBatchMessage) => {
        if (mine(m)) this.batches.add(`${m.transport}\u0000${op}\u0000${m.error ? 'error' : 'ok'}`);
      });
    }
    this.onRefused = (refused) => this.refused.add(refused.op);
    store.on('refused', this.onRefused);
  }

  private listen<M>(name: string, handler: (message: M) => void): void {
    const listener = handler as (message: unknown) => void;
    diagnostics.subscribe(name, listener);
    this.subscriptions.push([name, listener]);
  }

  /** One store operation ended (see OperationObserver): counted, and its latency observed. */
  operationEnded(op: StoreOperation, result: StoreOperationResult | 'error', seconds: number): void {
    let stats = this.ops[op];
    if (!stats) {
      stats = { results: { hit: 0, miss: 0, ok: 0, error: 0 }, latency: new Histogram(DURATION_BUCKETS) };
      this.ops[op] = stats;
    }
    stats.results[result]++;
    stats.latency.observe(seconds);
  }

  /** Stops listening (the counts gathered so far stay). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const [name, listener] of this.subscriptions.splice(0)) diagnostics.unsubscribe(name, listener);
    this.store.deref()?.off('refused', this.onRefused);
    const at = this.observers.indexOf(this);
    if (at !== -1) this.observers.splice(at, 1);
  }

  /** Every metric now, in catalog order, names without the prefix. */
  collect(): MetricFamily[] {
    const values = new Map<MetricName, MetricSample[]>(METRICS.map((m) => [m.name, []]));
    const put = (name: MetricName, labels: MetricLabels, value: number) =>
      values.get(name)?.push({ labels: { ...this.base, ...labels }, value });
    const counts = (name: MetricName, counts: Counts, labelNames: readonly string[]) => {
      for (const [key, value] of counts.values) {
        const parts = key.split('\u0000');
        put(name, Object.fromEntries(labelNames.map((label, i) => [label, parts[i] ?? ''])), value);
      }
    };
    for (const [op, stats] of Object.entries(this.ops)) {
      for (const [result, n] of Object.entries(stats.results)) {
        if (n > 0) put('store_operations_total', { op, result }, n);
      }
    }
    for (const [op, { latency: histogram }] of Object.entries(this.ops)) {
      values
        .get('store_operation_duration_seconds')
        ?.push(...histogram.samples('store_operation_duration_seconds', { ...this.base, op }));
    }
    counts('store_refused_writes_total', this.refused, ['op']);
    counts('read_through_total', this.readThrough, ['origin', 'result']);
    for (const [origin, histogram] of this.lag) {
      values
        .get('replication_lag_seconds')
        ?.push(...histogram.samples('replication_lag_seconds', { ...this.base, origin }));
    }
    counts('replication_batches_total', this.batches, ['transport', 'op', 'result']);

    const stats = this.store.deref()?.replicationStats();
    if (stats) {
      for (const [origin, ms] of Object.entries(stats.lagMs))
        put('replication_last_lag_seconds', { origin }, ms / 1000);
      const { batches: _batches, ...outcome } = stats.received;
      for (const [result, n] of Object.entries(outcome)) put('replication_events_total', { result }, n);
      for (const [reason, n] of Object.entries(stats.rejected)) {
        put('replication_dead_lettered_total', { reason }, n ?? 0);
        if (SEAL_REASONS.has(reason)) put('replication_seal_failures_total', { reason }, n ?? 0);
      }
      for (const [reason, n] of Object.entries(stats.transient.byReason)) {
        put('replication_transient_failures_total', { reason }, n);
      }
      for (const [origin, seq] of Object.entries(stats.sequences)) {
        put('replication_duplicates_total', { origin }, seq.duplicates);
      }
      put('replication_published_total', {}, stats.published);
      for (const peer of stats.backlog) {
        put('replication_backlog_entries', { peer: peer.region }, peer.entries);
        if (peer.oldestAgeMs !== undefined) {
          put('replication_backlog_oldest_age_seconds', { peer: peer.region }, peer.oldestAgeMs / 1000);
        }
      }
      for (const [peer, need] of Object.entries(stats.needsResync)) {
        put('replication_needs_resync', { peer, reason: need.cause ?? 'unknown' }, 1);
      }
      for (const state of TRANSPORT_STATES) {
        put(
          'replication_transport_state',
          { transport: stats.transportName, state },
          state === stats.transport ? 1 : 0,
        );
      }
    }
    const near = this.store.deref()?.nearCacheStats();
    if (near) {
      put('near_cache_events_total', { event: 'hit' }, near.hits);
      put('near_cache_events_total', { event: 'miss' }, near.misses);
      put('near_cache_events_total', { event: 'invalidation' }, near.invalidations);
      put('near_cache_events_total', { event: 'drop' }, near.drops);
      put('near_cache_entries', {}, near.entries);
    }
    return METRICS.map((m) => ({
      name: m.name,
      help: m.help,
      type: m.type,
      values: values.get(m.name) ?? [],
    }));
  }
}

const collectors = new WeakMap<GeoSessionStore, MetricsCollector>();

/**
 * The collector of `store`, made (and listening) on the first call: counts of store operations and
 * replication batches start then. The same collector serves `metricsText` and every registry.
 */
export function collectorFor(store: GeoSessionStore): MetricsCollector {
  let collector = collectors.get(store);
  if (!collector) {
    collector = new MetricsCollector(store);
    collectors.set(store, collector);
  }
  return collector;
}

/** Registrations holding each collector: the last one released stops it, unless `metricsText` pinned it. */
const holds = new WeakMap<MetricsCollector, number>();
const pinned = new WeakSet<MetricsCollector>();

/** {@link collectorFor}, held until {@link releaseCollector}. */
export function holdCollector(store: GeoSessionStore): MetricsCollector {
  const collector = collectorFor(store);
  holds.set(collector, (holds.get(collector) ?? 0) + 1);
  return collector;
}

/** {@link collectorFor}, kept listening until {@link stopCollector}. */
export function pinCollector(store: GeoSessionStore): MetricsCollector {
  const collector = collectorFor(store);
  pinned.add(collector);
  return collector;
}

/** Lets go of a {@link holdCollector}; the last one stops the collector unless it is pinned. */
export function releaseCollector(store: GeoSessionStore, collector: MetricsCollector): void {
  const count = (holds.get(collector) ?? 1) - 1;
  holds.set(collector, count);
  if (count > 0 || pinned.has(collector)) return;
  stopCollector(store);
}

/** Undoes {@link pinCollector}: the collector stops unless a registration holds it. */
export function unpinCollector(store: GeoSessionStore): void {
  const collector = collectors.get(store);
  if (!collector) return;
  pinned.delete(collector);
  if ((holds.get(collector) ?? 0) > 0) return;
  stopCollector(store);
}

/** Stops `store`'s collector and forgets it: counting starts afresh with the next use. */
function stopCollector(store: GeoSessionStore): void {
  const collector = collectors.get(store);
  if (!collector) return;
  collector.stop();
  collectors.delete(store);
  holds.delete(collector);
}
