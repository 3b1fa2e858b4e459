import type { Redis } from 'ioredis';
import type { Sealer } from '../contracts/sealer.js';
import type { ReplicationTransport } from '../contracts/transport.js';
import { ConfigError } from '../errors.js';
import { prefixProblem } from '../keys.js';
import type { RedisClient } from '../types.js';
import { isValidRegion } from '../validation/ids.js';
import { MAX_NAMES_PER_EVENT } from './codec.js';

/** Options of {@link createInvalidator}. */
export interface InvalidatorOptions {
  /**
   * This region's Redis (the cached keys live there). Left open by `close()`. An ioredis `Redis` or
   * `Cluster`: on a Cluster each call appends its event to the outbox first (with a `transport`), then
   * deletes slot by slot (docs/cluster.md).
   */
  client: RedisClient;
  /** This region's id (1 to 32 of `a-z`, `0-9`, `-`), the same as its store's. */
  region: string;
  /**
   * Carries invalidations to the other regions (any geosession transport; it may be the store's).
   * Without one, invalidations stay in this region (its Redis and its processes).
   * @default undefined
   */
  transport?: ReplicationTransport;
  /**
   * The invalidator's keyspace: its outbox, numbering, dead letters and tag sets are `{<channel>|…}`
   * keys, and a transport keeps its envelopes apart from other channels'. It must differ from every
   * session store's `prefix` and be the same in every region.
   * @default 'cache:'
   */
  channel?: string;
  /**
   * Seals what is sent and opens what arrives, as a store's `sealer`. Required with a `transport`: a
   * sealer, or `'none'` said explicitly.
   * @default undefined (an error with a `transport`)
   */
  sealer?: Sealer | 'none';
  /**
   * Keys plus tags per atomic step: a larger `invalidate()` is split into steps of this many, each its
   * own atomic delete and event.
   * @default 1000
   */
  maxKeysPerEvent?: number;
  /** Shortest lifetime of a tag set, ms (a tag lives as long as its longest-lived key, and this long). @default 86400000 */
  tagLifetimeMs?: number;
  /** Bound on each Redis call, ms. @default 2000 */
  operationTimeoutMs?: number;
  /** Entries kept in the dead-letter stream. @default 10000 */
  deadLetterLimit?: number;
  /** Numbers of an origin missing this long are a gap (an `ERR_GEOSESSION_RESYNC_NEEDED` error). @default 40000 */
  gapGraceMs?: number;
  /** A quiet region announces its last number this often; 0 turns heartbeats off. @default 5000 */
  heartbeatMs?: number;
  /** The clock lag is measured with (tests). @default Date.now */
  clock?: () => number;
}

/** {@link InvalidatorOptions} with every default filled in. */
export interface ResolvedInvalidatorOptions {
  readonly client: RedisClient;
  readonly region: string;
  readonly transport: ReplicationTransport | undefined;
  readonly channel: string;
  readonly sealer: Sealer | undefined;
  readonly maxKeysPerEvent: number;
  readonly tagLifetimeMs: number;
  readonly operationTimeoutMs: number;
  readonly deadLetterLimit: number;
  readonly gapGraceMs: number;
  readonly heartbeatMs: number;
  readonly clock: () => number;
}

const KNOWN = new Set([
  'client',
  'region',
  'transport',
  'channel',
  'sealer',
  'maxKeysPerEvent',
  'tagLifetimeMs',
  'operationTimeoutMs',
  'deadLetterLimit',
  'gapGraceMs',
  'heartbeatMs',
  'clock',
]);

/** Checks `input` and fills in the defaults; throws a `ConfigError` naming the option at fault. */
export function resolveInvalidatorOptions(input: InvalidatorOptions): ResolvedInvalidatorOptions {
  if (typeof input !== 'object' || input === null) {
    throw new ConfigError('options', 'must be an object with at least `client` and `region`');
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new ConfigError(key, 'is not an option of createInvalidator');
  }
  const { client, transport } = input;
  if (typeof client !== 'object' || client === null || typeof (client as Redis).evalsha !== 'function') {
    throw new ConfigError('client', 'must be an ioredis client');
  }
  if (!isValidRegion(input.region)) {
    throw new ConfigError('region', 'must be 1 to 32 of a-z, 0-9 and -');
  }
  const channel = input.channel ?? 'cache:';
  if (typeof channel !== 'string' || channel === '')
    throw new ConfigError('channel', 'must be a non-empty string');
  const problem = prefixProblem(channel);
  if (problem) throw new ConfigError('channel', problem);
  if (
    transport !== undefined &&
    (typeof transport !== 'object' ||
      transport === null ||
      typeof transport.publish !== 'function' ||
      typeof transport.subscribe !== 'function')
  ) {
    throw new ConfigError(
      'transport',
      'must be a replication transport (e.g. createRedisStreamsTransport())',
    );
  }
  const sealer = input.sealer === 'none' ? undefined : input.sealer;
  if (
    sealer !== undefined &&
    (typeof sealer !== 'object' ||
      sealer === null ||
      typeof sealer.seal !== 'function' ||
      typeof sealer.open !== 'function')
  ) {
    throw new ConfigError(
      'sealer',
      "must be a sealer (e.g. createPasetoSealer() from geosession/paseto), or 'none'",
    );
  }
  if (sealer !== undefined && transport === undefined) {
    throw new ConfigError('sealer', 'needs a `transport`: an invalidator without one sends nothing');
  }
  if (transport !== undefined && input.sealer === undefined) {
    throw new ConfigError(
      'sealer',
      "is required with a `transport`: without one, anyone who can write between regions can delete any cached key. Pass the store's sealer, or `sealer: 'none'` to replicate unsealed on purpose",
    );
  }
  const clock = input.clock ?? Date.now;
  if (typeof clock !== 'function') throw new ConfigError('clock', 'must be a function returning epoch ms');
  return {
    client,
    region: input.region,
    transport,
    channel,
    sealer,
    maxKeysPerEvent: integer(input, 'maxKeysPerEvent', 1000, 1, MAX_NAMES_PER_EVENT),
    tagLifetimeMs: integer(input, 'tagLifetimeMs', 86_400_000, 1, Number.MAX_SAFE_INTEGER),
    operationTimeoutMs: integer(input, 'operationTimeoutMs', 2000, 1, 3_600_000),
    deadLetterLimit: integer(input, 'deadLetterLimit', 10_000, 1, 10_000_000),
    gapGraceMs: integer(input, 'gapGraceMs', 40_000, 1, 86_400_000),
    heartbeatMs: integer(input, 'heartbeatMs', 5000, 0, 86_400_000),
    clock,
  };
}

type NumericOption =
  | 'maxKeysPerEvent'
  | 'tagLifetimeMs'
  | 'operationTimeoutMs'
  | 'deadLetterLimit'
  | 'gapGraceMs'
  | 'heartbeatMs';

function integer(
  input: InvalidatorOptions,
  name: NumericOption,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = input[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}`);
  }
  return value;
}
