import type { ReplicationTransport } from '../contracts/transport.js';
import { ConfigError } from '../errors.js';
import type { RedisClient } from '../types.js';
import { describe } from '../validation/options.js';
import { hashTagOf, keyPrefixOf } from '../wire/internal-keys.js';
import { MAX_OUTBOX_SHARDS } from '../wire/outbox-shards.js';

/** Default `outboxShards` of a Redis Cluster that replicates (a prefix without a hash tag of its own). */
export const DEFAULT_CLUSTER_OUTBOX_SHARDS = 8;

/**
 * Resolves the `outboxShards` option (docs/replication.md, "Sharded outboxes") to the key space's shard
 * count: 0 for the unsharded layout (a single node with one shard: every key as before, connect-redis
 * compatible), else the number of shards, each with its own hash tag. Throws a `ConfigError` naming
 * `outboxShards` for what cannot work: a prefix (or the client's ioredis `keyPrefix`) with a hash tag of
 * its own puts every key in one slot, so it has exactly one outbox: more shards are refused, and it
 * stays unsharded.
 */
export function resolveOutboxShards(input: {
  readonly outboxShards: unknown;
  readonly client: RedisClient;
  readonly prefix: string;
  readonly transport: ReplicationTransport | undefined;
}): number {
  const { outboxShards: value, client, prefix, transport } = input;
  if (
    value !== undefined &&
    (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_OUTBOX_SHARDS)
  ) {
    throw new ConfigError(
      'outboxShards',
      `must be an integer from 1 to ${MAX_OUTBOX_SHARDS}, got ${describe(value)}`,
    );
  }
  const cluster = (client as { isCluster?: boolean }).isCluster === true;
  const tagged = hashTagOf(keyPrefixOf(client) + prefix) !== undefined;
  if (tagged) {
    if (value !== undefined && value > 1) {
      throw new ConfigError(
        'outboxShards',
        `must be 1 with the prefix ${JSON.stringify(keyPrefixOf(client) + prefix)}: its own hash tag puts every key, and so the outbox, in one cluster slot`,
      );
    }
    return 0;
  }
  const replicatesOnCluster = cluster && transport !== undefined;
  const shards = (value as number | undefined) ?? (replicatesOnCluster ? DEFAULT_CLUSTER_OUTBOX_SHARDS : 1);
  const sharded = shards > 1 || replicatesOnCluster;
  return sharded ? shards : 0;
}
