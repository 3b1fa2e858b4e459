import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from './errors.js';
import { isValidRegion } from './session-id.js';
import type { ReplicationTransport } from './transports/transport.js';

/** Any ioredis 5 or 6 client: a single `Redis` or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/** The cookie part of a session: what the store reads to work out the session's lifetime. */
export interface SessionCookie {
  expires?: Date | string | null;
  originalMaxAge?: number | null;
}

/**
 * What `set` and `touch` accept: anything with an optional `cookie`. It has no index signature, so that
 * express-session's declaration-merged `SessionData` and fastify's `Session` fit as they are.
 */
export interface SessionInput {
  cookie?: SessionCookie | null;
}

/** A stored session as `get` and `all` return it: a `cookie` plus the application's own fields. */
export interface SessionData extends SessionInput {
  [key: string]: unknown;
}

/** How sessions are turned into strings and back. `parse` may be async. */
export interface Serializer {
  parse(text: string): SessionData | Promise<SessionData>;
  stringify(session: SessionData): string;
}

/** Options of {@link GeoSessionStore}. Only `region` and `client` are required. */
export interface GeoSessionStoreOptions {
  /** This process's region: 1 to 32 of lowercase letters, digits and '-' (e.g. `hk`, `ap-seoul-1`). */
  region: string;
  /** The region's ioredis client (5 or 6, `Redis` or `Cluster`). It stays yours: `close()` never quits it. */
  client: RedisClient;
  /**
   * Key prefix of session values, as in connect-redis. `''` is allowed.
   * @default 'sess:'
   */
  prefix?: string;
  /**
   * Lifetime in seconds when the cookie has no expiry, or a function of the session that always wins.
   * @default 86400
   */
  ttl?: number | ((session: SessionData) => number);
  /**
   * Turns sessions into strings and back.
   * @default JSON
   */
  serializer?: Serializer;
  /**
   * Make `touch` a no-op (express-session then only writes on change).
   * @default false
   */
  disableTouch?: boolean;
  /**
   * Store sessions without expiry; `touch` becomes a no-op.
   * @default false
   */
  disableTTL?: boolean;
  /**
   * `COUNT` hint of each `SCAN` in `all`, `ids`, `length` and `clear`.
   * @default 100
   */
  scanCount?: number;
  /**
   * Longest wait for Redis on any call, in ms. Past it the call fails with a `TimeoutError`, so a Redis
   * that is down or stalled never hangs a request.
   * @default 2000
   */
  operationTimeoutMs?: number;
  /**
   * Shortest lifetime of a logout's tombstone, in seconds. A tombstone also outlives the session it
   * ends: it expires at whichever is later, the session's own expiry or now plus this.
   * @default 86400
   */
  tombstoneTtl?: number;
  /**
   * Replication transport. Without one, the store is a single-region store.
   * @default undefined
   */
  transport?: ReplicationTransport;
  /**
   * Clients of other regions' Redis, by region id, for read-through: a local miss for an id born in
   * one of them is read from there.
   * @default {}
   */
  remotes?: Record<string, RedisClient>;
  /**
   * Longest wait for a remote region during read-through, in ms.
   * @default 250
   */
  readThroughTimeoutMs?: number;
}

/** The options after defaults and validation. */
export interface ResolvedOptions {
  readonly region: string;
  readonly client: RedisClient;
  readonly prefix: string;
  readonly ttl: number | ((session: SessionData) => number);
  readonly serializer: Serializer;
  readonly disableTouch: boolean;
  readonly disableTTL: boolean;
  readonly scanCount: number;
  readonly operationTimeoutMs: number;
  readonly tombstoneTtl: number;
  readonly transport: ReplicationTransport | undefined;
  readonly remotes: Readonly<Record<string, RedisClient>>;
  readonly readThroughTimeoutMs: number;
}

/** Defaults of every optional option. */
export const DEFAULT_OPTIONS = Object.freeze({
  prefix: 'sess:',
  ttl: 86400,
  serializer: JSON as Serializer,
  disableTouch: false,
  disableTTL: false,
  scanCount: 100,
  operationTimeoutMs: 2000,
  tombstoneTtl: 86400,
  readThroughTimeoutMs: 250,
});

const KNOWN = new Set([
  'region',
  'client',
  'prefix',
  'ttl',
  'serializer',
  'disableTouch',
  'disableTTL',
  'scanCount',
  'operationTimeoutMs',
  'tombstoneTtl',
  'transport',
  'remotes',
  'readThroughTimeoutMs',
]);

/** True when `value` quacks like an ioredis client. */
export function isRedisClient(value: unknown): value is RedisClient {
  const c = value as Partial<Redis> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.evalsha === 'function' &&
    typeof c.get === 'function' &&
    typeof c.scan === 'function' &&
    typeof c.on === 'function'
  );
}

function positive(name: string, value: unknown, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new ConfigError(name, `must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  }
  return value;
}

function bool(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ConfigError(name, `must be a boolean, got ${typeof value}`);
  return value;
}

/** Fills in defaults and validates, throwing a {@link ConfigError} that names the first bad option. */
export function resolveOptions(input: GeoSessionStoreOptions): ResolvedOptions {
  if (typeof input !== 'object' || input === null) {
    throw new ConfigError('options', 'must be an object with at least `region` and `client`');
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new ConfigError(key, 'is not an option of GeoSessionStore');
  }
  if (input.region === undefined) throw new ConfigError('region', 'is required (e.g. "hk")');
  if (!isValidRegion(input.region)) {
    throw new ConfigError(
      'region',
      `must be 1 to 32 lowercase letters, digits or '-', got ${JSON.stringify(input.region)}`,
    );
  }
  if (input.client === undefined) throw new ConfigError('client', 'is required: pass an ioredis client');
  if (!isRedisClient(input.client))
    throw new ConfigError('client', 'must be an ioredis client (Redis or Cluster)');

  // connect-redis parity: only null/undefined get the default prefix; '' is kept.
  const prefix = input.prefix ?? DEFAULT_OPTIONS.prefix;
  if (typeof prefix !== 'string') throw new ConfigError('prefix', `must be a string, got ${typeof prefix}`);

  let ttl: ResolvedOptions['ttl'];
  if (typeof input.ttl === 'function') ttl = input.ttl;
  else if (input.ttl === undefined || input.ttl === null || input.ttl === 0) ttl = DEFAULT_OPTIONS.ttl;
  else {
    ttl = positive('ttl', input.ttl, DEFAULT_OPTIONS.ttl);
    if (ttl > 10 * 365 * 86400) {
      // connect-redis#376: a TTL in milliseconds is an easy mistake; the option is in seconds.
      process.emitWarning(
        `geosession: option \`ttl\` is ${ttl} seconds (over 10 years). It is in seconds, not milliseconds.`,
        { code: 'GEOSESSION_TTL_UNITS' },
      );
    }
  }

  const serializer = input.serializer ?? DEFAULT_OPTIONS.serializer;
  if (
    typeof serializer !== 'object' ||
    serializer === null ||
    typeof serializer.parse !== 'function' ||
    typeof serializer.stringify !== 'function'
  ) {
    throw new ConfigError('serializer', 'must have `parse` and `stringify` functions');
  }

  const transport = input.transport;
  if (transport !== undefined) {
    if (typeof transport !== 'object' || transport === null || typeof transport.subscribe !== 'function') {
      throw new ConfigError(
        'transport',
        'must be a replication transport (e.g. createRedisStreamsTransport())',
      );
    }
    if ((input.client as Cluster).isCluster) {
      throw new ConfigError(
        'transport',
        'needs a single-node Redis client: replication over Redis Cluster is not supported yet',
      );
    }
  }

  const remotes: Record<string, RedisClient> = {};
  if (input.remotes !== undefined) {
    if (typeof input.remotes !== 'object' || input.remotes === null) {
      throw new ConfigError('remotes', 'must be an object of region id to ioredis client');
    }
    for (const [region, client] of Object.entries(input.remotes)) {
      if (!isValidRegion(region)) throw new ConfigError(`remotes.${region}`, 'is not a valid region id');
      if (region === input.region)
        throw new ConfigError(`remotes.${region}`, 'names this store’s own region');
      if (!isRedisClient(client)) throw new ConfigError(`remotes.${region}`, 'must be an ioredis client');
      remotes[region] = client;
    }
  }

  return Object.freeze({
    region: input.region,
    client: input.client,
    prefix,
    ttl,
    serializer,
    disableTouch: bool('disableTouch', input.disableTouch),
    disableTTL: bool('disableTTL', input.disableTTL),
    scanCount: positive('scanCount', input.scanCount, DEFAULT_OPTIONS.scanCount, true),
    operationTimeoutMs: positive(
      'operationTimeoutMs',
      input.operationTimeoutMs,
      DEFAULT_OPTIONS.operationTimeoutMs,
    ),
    tombstoneTtl: positive('tombstoneTtl', input.tombstoneTtl, DEFAULT_OPTIONS.tombstoneTtl),
    transport,
    remotes: Object.freeze(remotes),
    readThroughTimeoutMs: positive(
      'readThroughTimeoutMs',
      input.readThroughTimeoutMs,
      DEFAULT_OPTIONS.readThroughTimeoutMs,
    ),
  });
}
