import type { ChangeEvent } from '../replication/events.js';

/**
 * What every replication transport implements. A transport moves {@link ChangeEvent}s from the region
 * that made them to every other region, at least once. It never interprets them: ordering, duplicates
 * and conflicts are the applier's business, so a transport only has to be durable and to redeliver
 * what was not acknowledged.
 */
export interface ReplicationTransport {
  /** Short name for logs and errors, e.g. `memory` or `redis-streams`. */
  readonly name: string;

  /**
   * True when other regions read each region's outbox stream directly (Redis Streams): the store then
   * runs no relay. False when a relay must read the outbox and {@link ReplicationTransport.publish}
   * its entries to a broker.
   */
  readonly readsOutbox: boolean;

  /** Current connection state. */
  readonly state: TransportState;

  /**
   * Publishes a batch of events made in one region (`events[i].origin`). Resolves only when the
   * broker has confirmed every event (publisher confirm, PubAck, XADD reply); rejects with a
   * `TransportError` otherwise, and the caller retries with the same event ids.
   *
   * @param channel names the keyspace the events belong to (the store's key prefix); stores that share
   *   a transport but not a prefix never see each other's events.
   */
  publish(channel: string, events: readonly ChangeEvent[]): Promise<void>;

  /**
   * Starts delivering to `region` every event published by any other region, never its own.
   * The handler gets batches; when its promise resolves the batch is acknowledged, when it rejects
   * the batch is delivered again later. Durable transports keep undelivered events for a region
   * while it is away.
   */
  subscribe(options: SubscribeOptions): Promise<Subscription>;

  /** Listens for state changes and background errors. */
  on(event: 'state', listener: (state: TransportState) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  off(event: 'state', listener: (state: TransportState) => void): this;
  off(event: 'error', listener: (error: Error) => void): this;

  /**
   * Stops every subscription (waiting for batches in flight) and releases what the transport opened
   * itself. Clients the user passed in are left open.
   */
  close(): Promise<void>;
}

/** Connection state of a transport. */
export type TransportState = 'connecting' | 'ready' | 'degraded' | 'closed';

/** Handler of delivered batches. Resolve to acknowledge, reject to have the batch delivered again. */
export type BatchHandler = (events: ChangeEvent[]) => Promise<void>;

/** Options of {@link ReplicationTransport.subscribe}. */
export interface SubscribeOptions {
  /** The keyspace to receive events of (the store's key prefix). */
  channel: string;
  /** The region receiving; its own events are never delivered to it. */
  region: string;
  /** Called with 1 to `maxBatch` events at a time. */
  handler: BatchHandler;
  /**
   * Largest batch handed to the handler.
   * @default 500
   */
  maxBatch?: number;
}

/** A running subscription. */
export interface Subscription {
  /** Stops delivery; resolves after the batch in flight, if any, has settled. */
  close(): Promise<void>;
}
