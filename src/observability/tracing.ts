import { CHANNELS } from '../runtime/tracing.js';

export type {
  ReadThroughMessage,
  ReadThroughResult,
  ReplicationBatchMessage,
  ReplicationLagMessage,
  StoreOperation,
  StoreOperationMessage,
  StoreOperationResult,
} from '../runtime/tracing.js';

/**
 * The `node:diagnostics_channel` names geosession publishes on (docs/operations.md, "Tracing").
 * `store`, `apply` and `publish` are tracing channels: subscribe with
 * `diagnostics_channel.tracingChannel(name).subscribe({ start, end, asyncStart, asyncEnd, error })`, or
 * to `tracing:<name>:start` and the others one by one. `lag` and `readThrough` are plain channels.
 */
export const TRACING_CHANNELS: {
  /** Tracing channel: every store operation (`StoreOperationMessage`). */
  readonly store: 'geosession:store';
  /** Tracing channel: every batch received from other regions and applied (`ReplicationBatchMessage`). */
  readonly apply: 'geosession:replication:apply';
  /** Tracing channel: every batch of this region's changes published (`ReplicationBatchMessage`). */
  readonly publish: 'geosession:replication:publish';
  /** Channel: the lag of every change applied (`ReplicationLagMessage`). */
  readonly lag: 'geosession:replication:lag';
  /** Channel: every read-through to the region that made a session (`ReadThroughMessage`). */
  readonly readThrough: 'geosession:read-through';
} = CHANNELS;
