import type { Redis } from 'ioredis';
import type { Sealer } from '../contracts/sealer.js';
import type { ReplicationTransport } from '../contracts/transport.js';
import type { GeoSessionError } from '../errors.js';
import { ConfigError } from '../errors.js';
import { createKeySpace, type KeySpace, prefixProblem } from '../keys.js';
import type { BacklogBound } from '../streams/trim.js';
import { isValidRegion } from '../validation/ids.js';
import { booleanOption, describe, numberOption } from '../validation/options.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import type { RejectedEnvelope } from './pipeline.js';

/**
 * Options of a {@link ReplicationNode} (src/replication/node.ts). Only `region`, `channel`, `client`,
 * `transport` and `onError` are required; every other option has the default the session store uses.
 */
export interface ReplicationNodeOptions {
  /** This region's id (1 to 32 of `a-z`, `0-9`, `-`). */
  readonly region: string;
  /**
   * The keyspace of this node's envelopes on the transport, and the prefix of its Redis keys (outbox,
   * counter, dead letters, resync state, numbers seen): nodes with different channels never see each
   * other's envelopes. Same rules as a store's `prefix` (no `|`, at most one `{tag}`); it must differ
   * from every store's prefix and every other node's channel on the same transport and Redis.
   */
  readonly channel: string;
  /** This region's Redis (ioredis), which holds the outbox. */
  readonly client: Redis;
  readonly transport: ReplicationTransport;
  /** Seals what this region publishes and opens what arrives. @default undefined (nothing sealed) */
  readonly sealer?: Sealer | undefined;
  /** With a sealer: also accept unsealed envelopes (switching sealing on). @default false */
  readonly acceptUnsealed?: boolean;
  /** With a sealer: publish unsealed (the first step of switching sealing on). @default false */
  readonly sendUnsealed?: boolean;
  /** The keys, when the caller has a key space already. @default createKeySpace(channel, client's keyPrefix) */
  readonly keys?: KeySpace;
  /** Deadline of each Redis call of the node's own housekeeping, ms. @default 2000 */
  readonly operationTimeoutMs?: number;
  /** Most dead letters kept. @default 10000 */
  readonly deadLetterLimit?: number;
  /** Numbers of an origin missing this long are a gap (the origin is flagged for resync). @default 40000 */
  readonly gapGraceMs?: number;
  /** A quiet region announces its last number this often, ms; 0 turns heartbeats off. @default 5000 */
  readonly heartbeatMs?: number;
  /** The relay's batches in flight. @default 32 */
  readonly relayInFlight?: number;
  /** The relay's outbox bound. @default 1,000,000 entries, 1 day, warn at half */
  readonly outboxBound?: Partial<BacklogBound>;
  /** The relay's consumers idle this long with nothing pending are removed from its group. @default 1 hour */
  readonly consumerIdleMs?: number;
  /** The host clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Background failures (transport, Redis, refused envelopes, gaps): each a `GeoSessionError`. */
  onError(error: GeoSessionError): void;
  /** Every refused envelope, after it was counted and dead-lettered. */
  onRejected?(rejected: RejectedEnvelope): void;
}

/** {@link ReplicationNodeOptions} with every default filled in and checked. */
export interface ResolvedNodeOptions {
  readonly region: string;
  readonly channel: string;
  readonly client: Redis;
  readonly transport: ReplicationTransport;
  readonly sealer: Sealer | undefined;
  readonly acceptUnsealed: boolean;
  readonly sendUnsealed: boolean;
  readonly keys: KeySpace;
  readonly operationTimeoutMs: number;
  readonly deadLetterLimit: number;
  readonly gapGraceMs: number;
  readonly heartbeatMs: number;
  readonly relayInFlight: number;
  readonly outboxBound: BacklogBound;
  readonly consumerIdleMs: number;
  readonly now: () => number;
  onError(error: GeoSessionError): void;
  onRejected?(rejected: RejectedEnvelope): void;
}

/** The defaults of a node's options (the session store's). */
export const NODE_DEFAULTS = Object.freeze({
  operationTimeoutMs: 2000,
  deadLetterLimit: 10_000,
  gapGraceMs: 40_000,
  heartbeatMs: 5000,
  relayInFlight: 32,
  outboxBound: Object.freeze({ maxEntries: 1_000_000, maxAgeMs: 86_400_000, warnAt: 0.5 }),
  consumerIdleMs: 3_600_000,
});

/** Checks `input` and fills in the defaults; throws a `ConfigError` naming the option at fault. */
export function resolveNodeOptions(input: ReplicationNodeOptions): ResolvedNodeOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigError('options', 'must be an object');
  if (!isValidRegion(input.region)) {
    throw new ConfigError('region', `must be 1 to 32 of a-z, 0-9, -, got ${describe(input.region)}`);
  }
  if (typeof input.channel !== 'string') {
    throw new ConfigError('channel', `must be a string, got ${describe(input.channel)}`);
  }
  const problem = prefixProblem(input.channel);
  if (problem) throw new ConfigError('channel', problem);
  const client = input.client as Redis | undefined;
  if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
    throw new ConfigError('client', 'must be an ioredis client');
  }
  const transport = input.transport as ReplicationTransport | undefined;
  if (typeof transport !== 'object' || transport === null || typeof transport.subscribe !== 'function') {
    throw new ConfigError('transport', 'must be a replication transport');
  }
  if (typeof input.onError !== 'function') throw new ConfigError('onError', 'must be a function');
  const sealer = input.sealer;
  if (sealer !== undefined && (typeof sealer?.seal !== 'function' || typeof sealer.open !== 'function')) {
    throw new ConfigError('sealer', 'must be a sealer (e.g. createPasetoSealer() from geosession/paseto)');
  }
  const acceptUnsealed = booleanOption('acceptUnsealed', input.acceptUnsealed, false);
  if (acceptUnsealed && !sealer) throw new ConfigError('acceptUnsealed', 'only makes sense with a `sealer`');
  const sendUnsealed = booleanOption('sendUnsealed', input.sendUnsealed, false);
  if (sendUnsealed && !acceptUnsealed) {
    throw new ConfigError('sendUnsealed', 'needs a `sealer` and `acceptUnsealed: true`');
  }
  const now = input.now ?? Date.now;
  if (typeof now !== 'function') throw new ConfigError('now', 'must be a function returning epoch ms');
  const d = NODE_DEFAULTS;
  const bound = input.outboxBound ?? {};
  return {
    region: input.region,
    channel: input.channel,
    client,
    transport,
    sealer,
    acceptUnsealed,
    sendUnsealed,
    keys: input.keys ?? createKeySpace(input.channel, keyPrefixOf(client)),
    operationTimeoutMs: numberOption('operationTimeoutMs', input.operationTimeoutMs, d.operationTimeoutMs),
    deadLetterLimit: numberOption('deadLetterLimit', input.deadLetterLimit, d.deadLetterLimit, {
      integer: true,
    }),
    gapGraceMs: numberOption('gapGraceMs', input.gapGraceMs, d.gapGraceMs, { min: 0, minExclusive: false }),
    heartbeatMs: numberOption('heartbeatMs', input.heartbeatMs, d.heartbeatMs, {
      min: 0,
      minExclusive: false,
    }),
    relayInFlight: numberOption('relayInFlight', input.relayInFlight, d.relayInFlight, {
      integer: true,
      max: 1000,
    }),
    outboxBound: {
      maxEntries: numberOption('outboxBound.maxEntries', bound.maxEntries, d.outboxBound.maxEntries, {
        integer: true,
      }),
      maxAgeMs: numberOption('outboxBound.maxAgeMs', bound.maxAgeMs, d.outboxBound.maxAgeMs),
      warnAt: numberOption('outboxBound.warnAt', bound.warnAt, d.outboxBound.warnAt, { max: 1 }),
    },
    consumerIdleMs: numberOption('consumerIdleMs', input.consumerIdleMs, d.consumerIdleMs),
    now,
    onError: input.onError,
    ...(input.onRejected ? { onRejected: input.onRejected } : {}),
  };
}
