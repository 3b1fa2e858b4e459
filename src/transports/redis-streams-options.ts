// The options of the Redis Streams transport (src/transports/redis-streams.ts): their type with
// defaults, and their validation into the settings the transport runs with.
import type { Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import type { BacklogBound } from '../streams/trim.js';
import { isValidRegion } from '../validation/ids.js';
import { numberOption, rejectUnknown, requireObject } from '../validation/options.js';

/** Options of `createRedisStreamsTransport`. */
export interface RedisStreamsTransportOptions {
  /**
   * Every region's Redis client, this process's own region included, by region id. The clients stay
   * yours; the transport opens duplicates of them for its blocking reads and closes only those.
   */
  regions: Record<string, Redis>;
  /**
   * Most entries one read takes from another region's stream (XREADGROUP COUNT), unless the subscriber
   * asks for fewer. Batches fill only when a backlog waits, and then their size is what sets the
   * catch-up rate over a long link: 2000 entries per read over a 40 ms round trip allow 50,000/s.
   * @default 2000
   */
  readBatch?: number;
  /**
   * Reads kept waiting on each other region's stream at once, each on its own connection. Over a link
   * with a round trip of R ms an entry waits up to R / readers ms for a read to be there to take it, so
   * more readers mean lower lag across long links, and cost a connection and some CPU each. `'auto'`
   * measures the round trip to each region when subscribing and keeps one read per 5 ms of it (1 on a
   * local link, 8 over 40 ms, at most 16).
   * @default 'auto'
   */
  readers?: number | 'auto';
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
   * Entries left pending this long by a consumer that died are claimed by another (XAUTOCLAIM).
   * @default 30000
   */
  claimIdleMs?: number;
  /**
   * How often each region trims its streams below what every region has consumed, checks its backlogs
   * and removes dead consumers, in ms.
   * @default 5000
   */
  trimIntervalMs?: number;
  /**
   * What a region's streams keep for another region that does not consume them: past `entries` or
   * `ageMs` the oldest are dropped for it (and it needs a resync); past `warnAt` of either an `error`
   * event and the state `degraded` warn first. The default age matches the store's default
   * `tombstoneTtl`: older changes would be refused as stale anyway.
   * @default { entries: 1000000, ageMs: 86400000, warnAt: 0.5 }
   */
  maxBacklog?: { entries?: number; ageMs?: number; warnAt?: number };
  /**
   * Consumers idle this long with nothing pending (processes that stopped) are removed from their group.
   * @default 3600000
   */
  consumerIdleMs?: number;
}

const KNOWN = [
  'regions',
  'readBatch',
  'readers',
  'blockMs',
  'watchdogMs',
  'claimIdleMs',
  'trimIntervalMs',
  'maxBacklog',
  'consumerIdleMs',
] as const;

/** The options of a Redis Streams transport, checked and with their defaults. */
export interface RedisStreamsSettings {
  readBatch: number;
  readers: number | 'auto';
  blockMs: number;
  watchdogMs: number;
  claimIdleMs: number;
  trimIntervalMs: number;
  bound: BacklogBound;
  consumerIdleMs: number;
}

function settingsOf(options: RedisStreamsTransportOptions): RedisStreamsSettings {
  const backlog = options.maxBacklog ?? {};
  if (typeof backlog !== 'object' || backlog === null)
    throw new ConfigError('maxBacklog', 'must be an object');
  rejectUnknown(backlog, ['entries', 'ageMs', 'warnAt'], 'maxBacklog', 'maxBacklog.');
  return {
    readBatch: numberOption('readBatch', options.readBatch, 2000, { integer: true }),
    readers:
      options.readers === 'auto' || options.readers === undefined
        ? 'auto'
        : numberOption('readers', options.readers, 1, { integer: true, min: 1, max: 64 }),
    blockMs: numberOption('blockMs', options.blockMs, 1000),
    watchdogMs: numberOption('watchdogMs', options.watchdogMs, 5000),
    claimIdleMs: numberOption('claimIdleMs', options.claimIdleMs, 30_000),
    trimIntervalMs: numberOption('trimIntervalMs', options.trimIntervalMs, 5000),
    bound: {
      maxEntries: numberOption('maxBacklog.entries', backlog.entries, 1_000_000, { integer: true }),
      maxAgeMs: numberOption('maxBacklog.ageMs', backlog.ageMs, 86_400_000),
      warnAt: numberOption('maxBacklog.warnAt', backlog.warnAt, 0.5, { max: 1 }),
    },
    consumerIdleMs: numberOption('consumerIdleMs', options.consumerIdleMs, 3_600_000),
  };
}

/**
 * Checks `options` (a `ConfigError` naming the option at fault) and returns the regions' clients and
 * the settings with their defaults.
 */
export function resolveRedisStreamsOptions(options: RedisStreamsTransportOptions): {
  regions: Readonly<Record<string, Redis>>;
  settings: RedisStreamsSettings;
} {
  requireObject(options, 'regions', '`regions`: an object of region id to ioredis client');
  rejectUnknown(options, KNOWN, 'createRedisStreamsTransport');
  if (typeof options.regions !== 'object' || options.regions === null) {
    throw new ConfigError('regions', 'is required: an object of region id to ioredis client');
  }
  const entries = Object.entries(options.regions);
  if (entries.length < 2) throw new ConfigError('regions', 'must name at least two regions');
  for (const [region, client] of entries) {
    if (!isValidRegion(region)) throw new ConfigError(`regions.${region}`, 'is not a valid region id');
    if (typeof client?.xreadgroup !== 'function' || typeof client.duplicate !== 'function') {
      throw new ConfigError(`regions.${region}`, 'must be an ioredis client (Redis, not Cluster)');
    }
  }
  return { regions: Object.freeze({ ...options.regions }), settings: settingsOf(options) };
}
