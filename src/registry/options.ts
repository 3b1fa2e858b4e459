import type { Sealer } from '../contracts/sealer.js';
import type { ReplicationTransport } from '../contracts/transport.js';
import { ConfigError } from '../errors.js';
import { prefixProblem } from '../keys.js';
import type { RedisClient } from '../types.js';
import { isValidRegion } from '../validation/ids.js';
import { describe, numberOption, rejectUnknown, requireObject } from '../validation/options.js';
import { registryIdProblem } from './ids.js';

/** Options of {@link createConnectionRegistry}. */
export interface ConnectionRegistryOptions {
  /** The local region's Redis (an ioredis client or cluster); left open by `close()`. */
  readonly client: RedisClient;
  /** This region's id (1 to 32 of `a-z`, `0-9`, `-`). */
  readonly region: string;
  /** This pod's id, unique in the region: what a sender addresses (a user, connection or pod id alphabet). */
  readonly pod: string;
  /**
   * How long the pod's connections outlive its last lease renewal, ms: a pod that dies without a word
   * disappears from `podsOf` within this time.
   * @default 15000
   */
  readonly leaseMs?: number;
  /**
   * How often the lease is renewed, ms; less than `leaseMs` (a third of it leaves room for two missed
   * renewals).
   * @default leaseMs / 3
   */
  readonly renewMs?: number;
  /**
   * Key prefix: the registry's keys are `{<prefix>|registry}:...`, beside a store with the same prefix
   * (on a Redis Cluster with a `transport` they share the slot of the registry's outbox instead,
   * `{<channel>|outbox}:registry|...`: src/registry/keys.ts).
   * @default 'sess:'
   */
  readonly prefix?: string;
  /**
   * Replicates the registry to the other regions through this transport, so a sender in one region
   * finds the pods of every region holding a user's connections. Without one each region lists its own.
   * Works on a Redis Cluster too: the registry's keys then move to its outbox's slot (docs/cluster.md).
   */
  readonly transport?: ReplicationTransport;
  /** Seals what the registry replicates (with `transport`); every region must use the same setting. */
  readonly sealer?: Sealer;
  /**
   * The replication channel (with `transport`): every region's registry must use the same, and no store
   * may use it as its prefix.
   * @default prefix + 'registry:'
   */
  readonly channel?: string;
}

/** The options once validated, with their defaults. */
export interface ResolvedRegistryOptions {
  readonly client: RedisClient;
  readonly region: string;
  readonly pod: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly prefix: string;
  readonly transport: ReplicationTransport | undefined;
  readonly sealer: Sealer | undefined;
  readonly channel: string;
}

const KNOWN = [
  'client',
  'region',
  'pod',
  'leaseMs',
  'renewMs',
  'prefix',
  'transport',
  'sealer',
  'channel',
] as const;

/** Validates `input`, throwing a `ConfigError` naming the first option at fault. */
export function resolveRegistryOptions(input: unknown): ResolvedRegistryOptions {
  requireObject(input, 'options', 'client, region and pod');
  rejectUnknown(input, KNOWN, 'createConnectionRegistry');
  const o = input as Partial<Record<(typeof KNOWN)[number], unknown>>;
  const client = o.client as { evalsha?: unknown } | undefined;
  if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
    throw new ConfigError('client', `is required: an ioredis client or cluster, got ${describe(o.client)}`);
  }
  if (!isValidRegion(o.region)) {
    throw new ConfigError('region', `must be 1 to 32 of a-z, 0-9 and "-", got ${describe(o.region)}`);
  }
  const podProblem = registryIdProblem(o.pod);
  if (podProblem !== undefined) throw new ConfigError('pod', podProblem);
  const leaseMs = numberOption('leaseMs', o.leaseMs, 15_000, { min: 100, max: 86_400_000, integer: true });
  const renewMs = numberOption('renewMs', o.renewMs, Math.max(1, Math.floor(leaseMs / 3)), {
    min: 10,
    integer: true,
  });
  if (renewMs >= leaseMs) {
    throw new ConfigError('renewMs', `must be less than leaseMs (${leaseMs}), got ${renewMs}`);
  }
  const prefix = o.prefix ?? 'sess:';
  if (typeof prefix !== 'string')
    throw new ConfigError('prefix', `must be a string, got ${describe(prefix)}`);
  const problem = prefixProblem(prefix);
  if (problem !== undefined) throw new ConfigError('prefix', problem);
  const transport = o.transport as ReplicationTransport | undefined;
  if (
    transport !== undefined &&
    (typeof transport !== 'object' || typeof transport?.subscribe !== 'function')
  ) {
    throw new ConfigError('transport', `must be a replication transport, got ${describe(transport)}`);
  }
  const sealer = o.sealer as Sealer | undefined;
  if (sealer !== undefined && transport === undefined) {
    throw new ConfigError('sealer', 'is given without a transport: nothing is replicated to seal');
  }
  if (sealer !== undefined && (typeof sealer !== 'object' || typeof sealer?.seal !== 'function')) {
    throw new ConfigError('sealer', `must be a sealer, got ${describe(sealer)}`);
  }
  const channel = o.channel ?? `${prefix}registry:`;
  if (typeof channel !== 'string')
    throw new ConfigError('channel', `must be a string, got ${describe(channel)}`);
  const channelProblem = prefixProblem(channel);
  if (channelProblem !== undefined) throw new ConfigError('channel', channelProblem);
  return {
    client: o.client as RedisClient,
    region: o.region,
    pod: o.pod as string,
    leaseMs,
    renewMs,
    prefix,
    transport,
    sealer,
    channel,
  };
}
