import type { Redis } from 'ioredis';
import { ClosedError, ConfigError, TransportError } from '../errors.js';
import { StreamGroupReader, trimConsumed } from '../internal/stream-reader.js';
import { TransportEvents } from '../internal/transport-state.js';
import { outboxKey } from '../keys.js';
import { eventFromOutbox, eventToFlat } from '../replication/codec.js';
import type { ChangeEvent } from '../replication/events.js';
import { isValidRegion } from '../session-id.js';
import type { ReplicationTransport, SubscribeOptions, Subscription } from './transport.js';

/** Options of {@link createRedisStreamsTransport}. */
export interface RedisStreamsTransportOptions {
  /**
   * Every region's Redis client, this process's own region included, by region id. The clients stay
   * yours; the transport opens duplicates of them for its blocking reads and closes only those.
   */
  regions: Record<string, Redis>;
  /**
   * Most entries one read takes from another region's outbox (XREADGROUP COUNT), unless the subscriber
   * asks for fewer (`maxBatch`). Batches fill only when a backlog waits, and then their size is what sets
   * the catch-up rate over a long link: a read is answered one round trip after it is sent, so 2000
   * entries per read over a 40 ms round trip allow up to 50,000 events/s.
   * @default 2000
   */
  readBatch?: number;
  /**
   * BLOCK of each read, in ms. Reads are always finite.
   * @default 1000
   */
  blockMs?: number;
  /**
   * A read that has not returned this long after its BLOCK ran out is abandoned and its connection
   * rebuilt (ioredis#1285).
   * @default 5000
   */
  watchdogMs?: number;
  /**
   * Events left pending this long by a consumer that died are claimed by another (XAUTOCLAIM).
   * @default 30000
   */
  claimIdleMs?: number;
  /**
   * How often each region's outbox is trimmed below what every region has consumed, in ms.
   * @default 5000
   */
  trimIntervalMs?: number;
}

/**
 * The Redis Streams transport: each region's outbox stream, written in the same atomic script as the
 * session itself, is read directly by every other region through a consumer group named after the
 * reading region. No relay and no extra hop; nothing is lost while a region is away, because its group
 * keeps its place and the outbox is trimmed only below what every region has consumed.
 *
 * @example
 * const transport = createRedisStreamsTransport({ regions: { hk: redisHK, kr: redisKR } });
 * const store = new GeoSessionStore({ region: 'hk', client: redisHK, transport });
 */
export function createRedisStreamsTransport(options: RedisStreamsTransportOptions): ReplicationTransport {
  return new RedisStreamsTransport(options);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(name, `must be a positive number, got ${String(value)}`);
  }
  return value;
}

class RedisStreamsTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'redis-streams';
  readonly readsOutbox = true;
  private readonly regions: Readonly<Record<string, Redis>>;
  private readonly readBatch: number;
  private readonly blockMs: number;
  private readonly watchdogMs: number;
  private readonly claimIdleMs: number;
  private readonly trimIntervalMs: number;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;

  constructor(options: RedisStreamsTransportOptions) {
    super();
    if (typeof options !== 'object' || options === null || typeof options.regions !== 'object') {
      throw new ConfigError('regions', 'is required: an object of region id to ioredis client');
    }
    const entries = Object.entries(options.regions ?? {});
    if (entries.length < 2) throw new ConfigError('regions', 'must name at least two regions');
    for (const [region, client] of entries) {
      if (!isValidRegion(region)) throw new ConfigError(`regions.${region}`, 'is not a valid region id');
      if (typeof client?.xreadgroup !== 'function' || typeof client.duplicate !== 'function') {
        throw new ConfigError(`regions.${region}`, 'must be an ioredis client');
      }
    }
    this.regions = Object.freeze({ ...options.regions });
    this.readBatch = positive('readBatch', options.readBatch, 2000);
    if (!Number.isInteger(this.readBatch)) {
      throw new ConfigError('readBatch', `must be a whole number, got ${this.readBatch}`);
    }
    this.blockMs = positive('blockMs', options.blockMs, 1000);
    this.watchdogMs = positive('watchdogMs', options.watchdogMs, 5000);
    this.claimIdleMs = positive('claimIdleMs', options.claimIdleMs, 30_000);
    this.trimIntervalMs = positive('trimIntervalMs', options.trimIntervalMs, 5000);
    this.setState('ready');
  }

  private client(region: string): Redis {
    const client = this.regions[region];
    if (!client) throw new TransportError(`region "${region}" is not among the transport's regions`);
    return client;
  }

  /** Appends events to their origin region's outbox (stores write there themselves, in their scripts). */
  async publish(channel: string, events: readonly ChangeEvent[]): Promise<void> {
    if (this.closed) throw new ClosedError('the redis-streams transport');
    try {
      await Promise.all(
        events.map((event) =>
          this.client(event.origin).xadd(outboxKey(channel, event.origin), '*', ...eventToFlat(event)),
        ),
      );
    } catch (error) {
      throw error instanceof TransportError
        ? error
        : new TransportError('XADD to an outbox failed', { cause: error });
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the redis-streams transport');
    const { channel, region, handler } = options;
    this.client(region);
    const others = Object.keys(this.regions).filter((r) => r !== region);
    const unhealthy = new Set<string>();
    const readers = others.map((origin) => {
      const key = outboxKey(channel, origin);
      return new StreamGroupReader({
        client: this.client(origin),
        key,
        group: region,
        consumerPrefix: region,
        batchSize: Math.min(options.maxBatch ?? this.readBatch, this.readBatch),
        blockMs: this.blockMs,
        claimIdleMs: this.claimIdleMs,
        watchdogMs: this.watchdogMs,
        onBatch: async (entries) => {
          const events: ChangeEvent[] = [];
          for (const [id, fields] of entries) {
            if (fields === null) continue; // trimmed after it was claimed
            try {
              events.push(eventFromOutbox(id, fields));
            } catch (error) {
              // Malformed: reported and acknowledged with its batch, so it cannot block the stream.
              this.reportError(error);
            }
          }
          if (events.length > 0) await handler(events);
        },
        onError: (error) => this.reportError(new TransportError(`reading ${key} failed`, { cause: error })),
        onHealth: (healthy) => {
          if (healthy) unhealthy.delete(origin);
          else unhealthy.add(origin);
          this.setState(unhealthy.size > 0 ? 'degraded' : 'ready');
        },
      });
    });
    // Every destination region gets its group on every outbox at id 0 as soon as anyone subscribes, so
    // a region that has never run yet still finds everything written for it.
    await this.createGroups(channel);
    for (const reader of readers) reader.start();
    const trimmer = setInterval(() => {
      void this.trim(channel, region);
    }, this.trimIntervalMs);
    trimmer.unref();
    const subscription: Subscription = {
      close: async () => {
        clearInterval(trimmer);
        await Promise.all(readers.map((reader) => reader.stop()));
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  private async createGroups(channel: string): Promise<void> {
    const regions = Object.keys(this.regions);
    await Promise.all(
      regions.flatMap((origin) =>
        regions
          .filter((destination) => destination !== origin)
          .map(async (destination) => {
            try {
              await this.client(origin).xgroup(
                'CREATE',
                outboxKey(channel, origin),
                destination,
                '0',
                'MKSTREAM',
              );
            } catch (error) {
              if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) {
                this.reportError(
                  new TransportError(`creating group ${destination} failed`, { cause: error }),
                );
              }
            }
          }),
      ),
    );
  }

  /** Trims this region's own outbox below what every other region has consumed. */
  private async trim(channel: string, region: string): Promise<void> {
    const others = Object.keys(this.regions).filter((r) => r !== region);
    try {
      await trimConsumed(this.client(region), outboxKey(channel, region), others);
    } catch (error) {
      this.reportError(new TransportError(`trimming the ${region} outbox failed`, { cause: error }));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.setState('closed');
  }
}
