import diagnostics from 'node:diagnostics_channel';
import type { Callback } from './callback.js';

/**
 * The `node:diagnostics_channel` channels geosession publishes on (docs/operations.md, "Tracing"). Names
 * follow undici's `<library>:<area>:<event>` for plain channels and Node's `tracingChannel` (as fastify
 * uses it) for operations with a start and an end: `tracing:geosession:store:start`, `:end`,
 * `:asyncStart`, `:asyncEnd`, `:error`. Nothing is published, and no message is made, while nobody
 * subscribes. Messages carry the store's region and keyspace (its key prefix), never a session id.
 */

/** A store operation a {@link StoreOperationMessage} describes. */
export type StoreOperation = 'get' | 'set' | 'touch' | 'destroy' | 'all' | 'ids' | 'length' | 'clear';

/** How a store operation ended: `hit` or `miss` for `get`, `ok` for the others. */
export type StoreOperationResult = 'hit' | 'miss' | 'ok';

/** The message of the `geosession:store` tracing channel: one store operation. */
export interface StoreOperationMessage {
  readonly op: StoreOperation;
  /** The store's region. */
  readonly region: string;
  /** The store's keyspace (its key prefix). */
  readonly keyspace: string;
  /** Set when the operation succeeded. */
  result?: StoreOperationResult;
  /** Set when it failed. */
  error?: unknown;
}

/**
 * The message of the `geosession:replication:apply` (a batch delivered from other regions) and
 * `geosession:replication:publish` (a batch of this region's changes sent) tracing channels.
 */
export interface ReplicationBatchMessage {
  /** The region of the store doing the work. */
  readonly region: string;
  /** The keyspace (the store's key prefix, the transport's channel). */
  readonly keyspace: string;
  /** The transport's name (`redis-streams`, `amqp`, `nats`, `memory`...). */
  readonly transport: string;
  /** Envelopes in the batch as delivered or handed over (a sealed batch counts as one). */
  readonly envelopes: number;
  /** Set when the batch failed (it is delivered or published again). */
  error?: unknown;
  result?: unknown;
}

/** The message of the `geosession:replication:lag` channel: one envelope applied. */
export interface ReplicationLagMessage {
  readonly region: string;
  readonly keyspace: string;
  /** The region that made the change. */
  readonly origin: string;
  /** Ms from its making (origin's Redis clock) to its apply here (this region's Redis clock). */
  readonly lagMs: number;
}

/** How a read-through ended: found at its origin, not found (or destroyed here), or failed. */
export type ReadThroughResult = 'hit' | 'miss' | 'error';

/** The message of the `geosession:read-through` channel: one read from the region that made a session. */
export interface ReadThroughMessage {
  readonly region: string;
  readonly keyspace: string;
  /** The region read from. */
  readonly origin: string;
  readonly result: ReadThroughResult;
}

/** Channel names, for subscribers. */
export const CHANNELS = {
  store: 'geosession:store',
  apply: 'geosession:replication:apply',
  publish: 'geosession:replication:publish',
  lag: 'geosession:replication:lag',
  readThrough: 'geosession:read-through',
} as const;

export const storeChannel = diagnostics.tracingChannel<StoreOperationMessage>(CHANNELS.store);
export const applyChannel = diagnostics.tracingChannel<ReplicationBatchMessage>(CHANNELS.apply);
export const publishChannel = diagnostics.tracingChannel<ReplicationBatchMessage>(CHANNELS.publish);
export const lagChannel = diagnostics.channel(CHANNELS.lag);
export const readThroughChannel = diagnostics.channel(CHANNELS.readThrough);

/**
 * Runs a callback-style store operation inside the `geosession:store` tracing channel, with the same
 * events and async-context binding as `TracingChannel#traceCallback` (`run` runs in the stores bound to
 * `start`, `done` in those bound to `asyncStart`) at a fraction of its cost; `result` set to how it
 * ended. Call it only when `storeChannel.hasSubscribers`: otherwise just run the operation.
 */
export function traceStoreOperation<T>(
  message: StoreOperationMessage,
  run: (done: Callback<T>) => void,
  done: Callback<T>,
): void {
  const { start, end, asyncStart, asyncEnd, error } = storeChannel;
  const traced: Callback<T> = (err, value) => {
    if (err) {
      message.error = err;
      error.publish(message);
    } else {
      message.result = message.op === 'get' ? (value == null ? 'miss' : 'hit') : 'ok';
    }
    try {
      asyncStart.runStores(message, done, undefined, err, value);
    } finally {
      asyncEnd.publish(message);
    }
  };
  try {
    start.runStores(message, run, undefined, traced);
  } catch (thrown) {
    message.error = thrown;
    error.publish(message);
    throw thrown;
  } finally {
    end.publish(message);
  }
}

/** The promise form of {@link traceStoreOperation}, for the bulk operations. */
export function traceStorePromise<T>(message: StoreOperationMessage, work: () => Promise<T>): Promise<T> {
  let value: T;
  return storeChannel
    .tracePromise(async () => {
      value = await work();
      return 'ok' as const;
    }, message)
    .then(() => value);
}
