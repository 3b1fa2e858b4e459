import type { MetricType } from './metric-family.js';

/** One metric geosession exports: its name without the prefix, type, labels and meaning. */
export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  /** Its labels besides `region` and `keyspace`, which every metric has. */
  readonly labels: readonly string[];
  readonly help: string;
}

/**
 * Every metric, in the order they are rendered (docs/operations.md, "Metrics", lists the same). Every
 * label is bounded: regions, transports, operations and reasons, never a session or user id.
 */
export const METRICS = [
  {
    name: 'store_operations_total',
    type: 'counter',
    labels: ['op', 'result'],
    help: 'Store operations by op and result (hit, miss, ok, error).',
  },
  {
    name: 'store_operation_duration_seconds',
    type: 'histogram',
    labels: ['op'],
    help: 'Latency of store operations, seconds.',
  },
  {
    name: 'store_refused_writes_total',
    type: 'counter',
    labels: ['op'],
    help: 'Writes and touches of a destroyed session, dropped (the store emitted refused).',
  },
  {
    name: 'read_through_total',
    type: 'counter',
    labels: ['origin', 'result'],
    help: 'Reads from the region that made a session after a local miss, by result (hit, miss, error).',
  },
  {
    name: 'replication_lag_seconds',
    type: 'histogram',
    labels: ['origin'],
    help: 'Lag of each change applied here, from its making in the origin region to its apply, seconds.',
  },
  {
    name: 'replication_last_lag_seconds',
    type: 'gauge',
    labels: ['origin'],
    help: 'Lag of the newest change applied from each origin region, seconds.',
  },
  {
    name: 'replication_events_total',
    type: 'counter',
    labels: ['result'],
    help: 'Changes received from other regions by result (applied, unchanged, expired, refused, stale, skewed, invalid, coalesced).',
  },
  {
    name: 'replication_dead_lettered_total',
    type: 'counter',
    labels: ['reason'],
    help: 'Envelopes refused before they could be applied, by reason; each is kept in the dead-letter stream.',
  },
  {
    name: 'replication_seal_failures_total',
    type: 'counter',
    labels: ['reason'],
    help: 'Sealed envelopes that could not be opened or checked, by reason (a subset of dead_lettered).',
  },
  {
    name: 'replication_transient_failures_total',
    type: 'counter',
    labels: ['reason'],
    help: 'Batches failed by a transient error and delivered again, by reason (OOM, BUSY, CONNECTION, TIMEOUT...).',
  },
  {
    name: 'replication_duplicates_total',
    type: 'counter',
    labels: ['origin'],
    help: 'Envelopes dropped because their number was handled before (replays, redeliveries).',
  },
  {
    name: 'replication_published_total',
    type: 'counter',
    labels: [],
    help: 'Changes this region published through its relay (0 for Redis Streams without a sealer).',
  },
  {
    name: 'replication_batches_total',
    type: 'counter',
    labels: ['transport', 'op', 'result'],
    help: 'Replication batches by op (apply: received from other regions; publish: sent) and result (ok, error).',
  },
  {
    name: 'replication_backlog_entries',
    type: 'gauge',
    labels: ['peer'],
    help: 'Changes a peer region has not consumed yet (peer "*": the outbox every region waits on).',
  },
  {
    name: 'replication_backlog_oldest_age_seconds',
    type: 'gauge',
    labels: ['peer'],
    help: 'Age of the oldest change a peer region has not consumed yet, seconds.',
  },
  {
    name: 'replication_needs_resync',
    type: 'gauge',
    labels: ['peer', 'reason'],
    help: 'One per region this region needs a resync with, by cause (gap, horizon, backlog, trimmed...).',
  },
  {
    name: 'replication_transport_state',
    type: 'gauge',
    labels: ['transport', 'state'],
    help: 'The transport state: 1 for the current state (connecting, ready, degraded, failed, closed), 0 for the others.',
  },
  {
    name: 'near_cache_events_total',
    type: 'counter',
    labels: ['event'],
    help: 'Near cache: reads served from memory (hit) or from Redis (miss), sessions invalidated (invalidation), whole-cache drops (drop).',
  },
  {
    name: 'near_cache_entries',
    type: 'gauge',
    labels: [],
    help: 'Near cache: sessions held in memory now.',
  },
] as const satisfies readonly MetricDefinition[];

/** A metric's name without the prefix. */
export type MetricName = (typeof METRICS)[number]['name'];

/** The default prefix of every metric name. */
export const DEFAULT_PREFIX = 'geosession_';
