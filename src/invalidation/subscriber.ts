import { type PubSubConnection, pubsubConnection } from '../redis/pubsub.js';
import type { RedisClient } from '../types.js';
import { decodeBody, type Invalidation } from './codec.js';

/** An invalidation as a process learns it from its region's pub/sub channel. */
export interface InvalidatedEvent {
  /** The keys invalidated, as the app named them (the client's key prefix not included). */
  readonly keys: readonly string[];
  /** The tags invalidated: every key of each was deleted; drop what your process cached under them. */
  readonly tags: readonly string[];
  /** The region where `invalidate()` was called. */
  readonly origin: string;
  /** From the call in `origin` to the delete in this region, ms (Redis clocks; 0 in `origin`). */
  readonly lagMs: number;
}

/** Why a process must drop its whole in-process cache: it may have missed invalidations. */
export interface FlushEvent {
  /**
   * `disconnected`: the subscriber connection was lost, so invalidations may be missed from now on;
   * `resubscribed`: it is back, and invalidations made while it was away were not heard.
   */
  readonly reason: 'disconnected' | 'resubscribed';
}

/** Options of {@link InvalidationSubscriber}. */
export interface InvalidationSubscriberOptions {
  /** The client to duplicate: the subscriber has a connection of its own. */
  readonly client: RedisClient;
  /** The pub/sub channel invalidate.lua publishes on. */
  readonly channel: string;
  onInvalidated(event: InvalidatedEvent): void;
  onFlush(event: FlushEvent): void;
  /** A message that is not an invalidation (someone else publishing on the channel). */
  onMalformed(raw: string, problem: string): void;
  onError(error: unknown): void;
}

/**
 * One pub/sub connection per invalidator, on which every process of a region hears every invalidation
 * applied to the region's Redis (its own, and the other regions' as they are applied), once each. A lost
 * connection means invalidations may be missed: the process is told to drop its whole cache when the
 * connection goes, and again once it is subscribed again (ioredis reconnects by itself).
 */
export class InvalidationSubscriber {
  private readonly connection: PubSubConnection;
  private subscribed = false;
  private closed = false;
  /** The connection was lost after subscribing: the next subscription is followed by a flush. */
  private lost = false;

  constructor(private readonly options: InvalidationSubscriberOptions) {
    // Pub/sub channels are not keys: no key prefix. Commands wait in the queue while reconnecting. On a
    // Redis Cluster it listens on one node, and moves to another when that node goes.
    this.connection = pubsubConnection(options.client, { lazyConnect: true });
    this.connection.on('message', (channel: string, message: string) => {
      if (channel === options.channel) this.message(message);
    });
    this.connection.on('error', (error: Error) => {
      if (!this.closed) options.onError(error);
    });
    this.connection.on('close', () => {
      if (this.closed || !this.subscribed) return;
      this.subscribed = false;
      this.lost = true;
      options.onFlush({ reason: 'disconnected' });
    });
    this.connection.on('ready', () => {
      // A reconnection: subscribe again (ours, so that the flush comes after it is in place).
      if (this.closed || this.subscribed || !this.lost) return;
      this.subscribe().then(
        () => {
          if (this.closed || !this.lost) return;
          this.lost = false;
          options.onFlush({ reason: 'resubscribed' });
        },
        () => {
          // The connection went again: its next ready tries again.
        },
      );
    });
  }

  /** True while subscribed: invalidations reach this process. */
  get listening(): boolean {
    return this.subscribed;
  }

  /** Connects and subscribes; resolves once invalidations reach this process. */
  async start(): Promise<void> {
    if (this.connection.status === 'wait') await this.connection.connect();
    if (!this.subscribed) await this.subscribe();
  }

  private async subscribe(): Promise<void> {
    await this.connection.subscribe(this.options.channel);
    if (!this.closed) this.subscribed = true;
  }

  private message(message: string): void {
    const newline = message.indexOf('\n');
    const head = newline < 0 ? [] : message.slice(0, newline).split(' ');
    const [origin = '', , lag = ''] = head;
    if (head.length !== 3 || !/^\d{1,16}$/.test(lag)) {
      this.options.onMalformed(message, 'not "<origin> <time> <lag>" and a body');
      return;
    }
    let invalidation: Invalidation;
    try {
      invalidation = decodeBody(message.slice(newline + 1));
    } catch (error) {
      this.options.onMalformed(message, error instanceof Error ? error.message : String(error));
      return;
    }
    this.options.onInvalidated({
      keys: invalidation.keys,
      tags: invalidation.tags,
      origin,
      lagMs: Number(lag),
    });
  }

  /** Closes the connection (bounded by ioredis: QUIT, else a disconnect). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribed = false;
    try {
      await Promise.race([
        this.connection.quit(),
        new Promise((resolve) => setTimeout(resolve, 1000).unref()),
      ]);
    } catch {
      // Already gone.
    }
    this.connection.disconnect();
  }
}
