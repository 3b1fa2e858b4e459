/**
 * Resolving the options of {@link GeoSessionStore}: the defaults ({@link DEFAULT_OPTIONS}) and the
 * validation that throws a {@link ConfigError} naming the first bad option. The option types and their
 * TSDoc live in ./store-options.ts (re-exported here); near cache, alert and outbox-shard options are
 * resolved by their own modules.
 */

import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { prefixProblem } from '../keys.js';
import type { RedisClient, Serializer } from '../types.js';
import { isValidRegion } from '../validation/ids.js';
import {
  booleanOption,
  describe,
  numberOption,
  rejectUnknown,
  requireObject,
} from '../validation/options.js';
import { hashTagOf, keyPrefixOf } from '../wire/internal-keys.js';
import { DEFAULT_ALERT_RULES, resolveAlertRules } from './alert-options.js';
import { resolveNearCache } from './near-cache-options.js';
import { resolveOutboxShards } from './outbox-shards-option.js';
import type { GeoSessionStoreOptions, ResolvedOptions } from './store-options.js';

export type { GeoSessionStoreOptions, ResolvedOptions } from './store-options.js';

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
  readThroughNegativeTtlMs: 250,
  replicateTouchAfter: 60,
  maxClockSkewMs: 60_000,
  acceptUnsealed: false,
  sendUnsealed: false,
  maxSessionBytes: 128 * 1024,
  deadLetterLimit: 10_000,
  relayInFlight: 32,
  maxOutboxBacklogEntries: 1_000_000,
  consumerIdleMs: 3_600_000,
  gapGraceMs: 40_000,
  heartbeatMs: 5000,
  alerts: DEFAULT_ALERT_RULES,
  statusIntervalMs: 10_000,
  statusRecord: true,
});

const KNOWN = [
  'region',
  'client',
  'prefix',
  'ttl',
  'userId',
  'serializer',
  'disableTouch',
  'disableTTL',
  'scanCount',
  'allowClearWithoutPrefix',
  'operationTimeoutMs',
  'tombstoneTtl',
  'transport',
  'outboxShards',
  'remotes',
  'readThroughTimeoutMs',
  'readThroughNegativeTtlMs',
  'nearCache',
  'replicateTouchAfter',
  'maxClockSkewMs',
  'sealer',
  'acceptUnsealed',
  'sendUnsealed',
  'maxSessionBytes',
  'deadLetterLimit',
  'relayInFlight',
  'maxOutboxBacklog',
  'consumerIdleMs',
  'gapGraceMs',
  'heartbeatMs',
  'onAlert',
  'alerts',
  'statusIntervalMs',
  'statusRecord',
  'clock',
] as const;

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

/** Fills in defaults and validates, throwing a {@link ConfigError} that names the first bad option. */
export function resolveOptions(input: GeoSessionStoreOptions): ResolvedOptions {
  requireObject(input, 'options', 'at least `region` and `client`');
  rejectUnknown(input, KNOWN, 'GeoSessionStore');
  if (input.region === undefined) throw new ConfigError('region', 'is required (e.g. "hk")');
  if (!isValidRegion(input.region)) {
    throw new ConfigError(
      'region',
      `must be 1 to 32 lowercase letters, digits or '-', got ${describe(input.region)}`,
    );
  }
  if (input.client === undefined) throw new ConfigError('client', 'is required: pass an ioredis client');
  if (!isRedisClient(input.client))
    throw new ConfigError('client', 'must be an ioredis client (Redis or Cluster)');

  // connect-redis parity: only null/undefined get the default prefix; '' is kept.
  const prefix = input.prefix ?? DEFAULT_OPTIONS.prefix;
  if (typeof prefix !== 'string')
    throw new ConfigError('prefix', `must be a string, got ${describe(prefix)}`);
  const problem = prefixProblem(prefix);
  if (problem) throw new ConfigError('prefix', problem);
  const allowClearWithoutPrefix = booleanOption(
    'allowClearWithoutPrefix',
    input.allowClearWithoutPrefix,
    false,
  );
  if (allowClearWithoutPrefix && prefix !== '') {
    throw new ConfigError(
      'allowClearWithoutPrefix',
      "only applies with `prefix: ''` (clear() is scoped by the prefix)",
    );
  }

  let ttl: ResolvedOptions['ttl'];
  if (typeof input.ttl === 'function') ttl = input.ttl;
  else if (input.ttl === undefined || input.ttl === null || input.ttl === 0) ttl = DEFAULT_OPTIONS.ttl;
  else {
    ttl = numberOption('ttl', input.ttl, DEFAULT_OPTIONS.ttl);
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

  const userId = input.userId ?? undefined;
  if (userId !== undefined && typeof userId !== 'function')
    throw new ConfigError('userId', `must be a function of the session, got ${describe(userId)}`);

  const transport = input.transport;
  if (transport !== undefined) {
    if (typeof transport !== 'object' || transport === null || typeof transport.subscribe !== 'function') {
      throw new ConfigError(
        'transport',
        'must be a replication transport (e.g. createRedisStreamsTransport())',
      );
    }
  }
  const outboxShards = resolveOutboxShards({
    outboxShards: input.outboxShards,
    client: input.client,
    prefix,
    transport,
  });
  if (
    userId !== undefined &&
    outboxShards === 0 &&
    (input.client as Cluster).isCluster &&
    hashTagOf(keyPrefixOf(input.client) + prefix) === undefined
  ) {
    // Unsharded on a Cluster, a session's keys are in a slot of their own, never the user index's: the
    // index is kept per shard, in the slot of the sessions it lists (src/session/users.ts).
    throw new ConfigError(
      'userId',
      'needs the sharded key layout on a Redis Cluster (a `transport`, or `outboxShards` above 1), or a prefix with a hash tag of its own: the per-user index lives in the slot of the sessions it lists',
    );
  }

  const sealer = input.sealer === 'none' ? undefined : input.sealer;
  if (sealer !== undefined) {
    if (
      typeof sealer !== 'object' ||
      sealer === null ||
      typeof sealer.seal !== 'function' ||
      typeof sealer.open !== 'function'
    ) {
      throw new ConfigError(
        'sealer',
        "must be a sealer (e.g. createPasetoSealer() from geosession/paseto), or 'none'",
      );
    }
    if (transport === undefined)
      throw new ConfigError('sealer', 'needs a `transport`: a single-region store sends nothing');
  }
  const acceptUnsealed = booleanOption('acceptUnsealed', input.acceptUnsealed, false);
  if (acceptUnsealed && sealer === undefined) {
    throw new ConfigError(
      'acceptUnsealed',
      'only makes sense with a `sealer` (without one, nothing is sealed)',
    );
  }
  const sendUnsealed = booleanOption('sendUnsealed', input.sendUnsealed, false);
  if (sendUnsealed && !acceptUnsealed) {
    throw new ConfigError(
      'sendUnsealed',
      'needs a `sealer` and `acceptUnsealed: true` (a region that sends unsealed is in the switch-on window)',
    );
  }
  if (transport !== undefined && input.sealer === undefined) {
    throw new ConfigError(
      'sealer',
      "is required with a `transport`: without one, anyone who can write to the broker or the streams between regions can rewrite any session. Pass `sealer: createPasetoSealer({ purpose: 'local', deployment, keys: [key] })` from 'geosession/paseto' (make a key with `generatePasetoKey()`, the same in every region), or `sealer: 'none'` to replicate unsealed on purpose",
    );
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

  if (input.onAlert !== undefined && typeof input.onAlert !== 'function') {
    throw new ConfigError('onAlert', `must be a function, got ${describe(input.onAlert)}`);
  }

  const clock = input.clock ?? Date.now;
  if (typeof clock !== 'function') throw new ConfigError('clock', 'must be a function returning epoch ms');

  const tombstoneTtl = numberOption('tombstoneTtl', input.tombstoneTtl, DEFAULT_OPTIONS.tombstoneTtl);
  const backlog = input.maxOutboxBacklog ?? {};
  if (typeof backlog !== 'object' || backlog === null)
    throw new ConfigError('maxOutboxBacklog', 'must be an object');
  rejectUnknown(backlog, ['entries', 'ageMs', 'warnAt'], 'maxOutboxBacklog', 'maxOutboxBacklog.');

  return Object.freeze({
    region: input.region,
    client: input.client,
    prefix,
    ttl,
    userId,
    serializer,
    disableTouch: booleanOption('disableTouch', input.disableTouch, false),
    disableTTL: booleanOption('disableTTL', input.disableTTL, false),
    scanCount: numberOption('scanCount', input.scanCount, DEFAULT_OPTIONS.scanCount, { integer: true }),
    allowClearWithoutPrefix,
    operationTimeoutMs: numberOption(
      'operationTimeoutMs',
      input.operationTimeoutMs,
      DEFAULT_OPTIONS.operationTimeoutMs,
    ),
    tombstoneTtl,
    transport,
    outboxShards,
    remotes: Object.freeze(remotes),
    readThroughTimeoutMs: numberOption(
      'readThroughTimeoutMs',
      input.readThroughTimeoutMs,
      DEFAULT_OPTIONS.readThroughTimeoutMs,
    ),
    readThroughNegativeTtlMs: numberOption(
      'readThroughNegativeTtlMs',
      input.readThroughNegativeTtlMs,
      DEFAULT_OPTIONS.readThroughNegativeTtlMs,
      { min: 0, minExclusive: false },
    ),
    nearCache: resolveNearCache(input.nearCache, input.client),
    replicateTouchAfter: numberOption(
      'replicateTouchAfter',
      input.replicateTouchAfter,
      DEFAULT_OPTIONS.replicateTouchAfter,
      {
        min: 0,
        minExclusive: false,
      },
    ),
    maxClockSkewMs: numberOption('maxClockSkewMs', input.maxClockSkewMs, DEFAULT_OPTIONS.maxClockSkewMs, {
      min: 1000,
      minExclusive: false,
    }),
    sealer,
    acceptUnsealed,
    sendUnsealed,
    maxSessionBytes:
      input.maxSessionBytes === Number.POSITIVE_INFINITY
        ? Number.POSITIVE_INFINITY
        : numberOption('maxSessionBytes', input.maxSessionBytes, DEFAULT_OPTIONS.maxSessionBytes, {
            integer: true,
          }),
    deadLetterLimit: numberOption('deadLetterLimit', input.deadLetterLimit, DEFAULT_OPTIONS.deadLetterLimit, {
      integer: true,
    }),
    relayInFlight: numberOption('relayInFlight', input.relayInFlight, DEFAULT_OPTIONS.relayInFlight, {
      integer: true,
      max: 1000,
    }),
    maxOutboxBacklog: Object.freeze({
      entries: numberOption(
        'maxOutboxBacklog.entries',
        backlog.entries,
        DEFAULT_OPTIONS.maxOutboxBacklogEntries,
        { integer: true },
      ),
      ageMs: numberOption('maxOutboxBacklog.ageMs', backlog.ageMs, tombstoneTtl * 1000),
      warnAt: numberOption('maxOutboxBacklog.warnAt', backlog.warnAt, 0.5, { max: 1 }),
    }),
    consumerIdleMs: numberOption('consumerIdleMs', input.consumerIdleMs, DEFAULT_OPTIONS.consumerIdleMs),
    gapGraceMs: numberOption('gapGraceMs', input.gapGraceMs, DEFAULT_OPTIONS.gapGraceMs, {
      min: 0,
      minExclusive: false,
    }),
    heartbeatMs: numberOption('heartbeatMs', input.heartbeatMs, DEFAULT_OPTIONS.heartbeatMs, {
      min: 0,
      minExclusive: false,
    }),
    onAlert: input.onAlert,
    alerts: resolveAlertRules(input.alerts),
    statusIntervalMs: numberOption(
      'statusIntervalMs',
      input.statusIntervalMs,
      DEFAULT_OPTIONS.statusIntervalMs,
      {
        min: 100,
        minExclusive: false,
      },
    ),
    statusRecord: booleanOption('statusRecord', input.statusRecord, DEFAULT_OPTIONS.statusRecord),
    clock,
  });
}
