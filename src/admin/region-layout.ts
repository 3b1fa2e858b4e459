/**
 * How the copies of resync (src/admin/session-state.ts, src/admin/resync.ts) name one region's keys and
 * split their calls, on a single Redis or a Redis Cluster (docs/cluster.md, "Admin functions"):
 *
 * - the key layout: the sharded one (`P{T}<sid>`, `{T}:m:P{T}<sid>`, src/keys.ts) when the region's
 *   stores keep it (`outboxShards` above 1, or a Cluster that replicates: 8 shards by default), else the
 *   unsharded one;
 * - the groups a batch of sessions is split into, so that each script call names keys of one slot on a
 *   Cluster and one digest key: the session's shard in the sharded layout (a shard is one slot, its
 *   digest key beside it), else one group (a single Redis, or a Cluster whose prefix holds a hash tag,
 *   which puts every key, the digest key too, in one slot). A Cluster without a tagged prefix always
 *   has the sharded layout here, as a store that replicates there does;
 * - the masters to walk, each with a name to resume on (`host:port`), in a stable order.
 */
import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import { DEFAULT_CLUSTER_OUTBOX_SHARDS } from '../session/outbox-shards-option.js';
import type { RedisClient } from '../types.js';
import { hashTagOf, keyPrefixOf } from '../wire/internal-keys.js';
import { MAX_OUTBOX_SHARDS } from '../wire/outbox-shards.js';

/** One region's keys as a copy names and groups them. */
export interface RegionLayout {
  readonly client: RedisClient;
  readonly keys: KeySpace;
  /** The client's ioredis `keyPrefix` (what Redis hashes starts with it). */
  readonly keyPrefix: string;
  readonly cluster: boolean;
  /** The group of session `sid`: its calls hold only sessions of one group (see the module's comment). */
  groupOf(sid: string): string;
  /** The digest key of the group `sid` is in, for `region` (its shard's, or the region's one). */
  digestOf(sid: string, region: string): string;
}

/** Whether `client` is an ioredis Cluster. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/**
 * The layout of a region reached through `client` whose stores use `prefix` and `outboxShards`
 * (`undefined`: 8 on a Cluster whose prefix has no hash tag, the unsharded layout otherwise). Throws a
 * `ConfigError` naming `option` for a shard count the stores would refuse.
 */
export function regionLayout(
  client: RedisClient,
  prefix: string,
  outboxShards: number | undefined,
  option: string,
): RegionLayout {
  const keyPrefix = keyPrefixOf(client);
  const cluster = isCluster(client);
  const tagged = hashTagOf(keyPrefix + prefix) !== undefined;
  if (
    outboxShards !== undefined &&
    (typeof outboxShards !== 'number' ||
      !Number.isInteger(outboxShards) ||
      outboxShards < 1 ||
      outboxShards > MAX_OUTBOX_SHARDS ||
      (tagged && outboxShards > 1))
  ) {
    throw new ConfigError(
      option,
      `must be the stores' outboxShards, 1 to ${MAX_OUTBOX_SHARDS} (1 with a prefix that holds a hash tag)`,
    );
  }
  // As the store resolves it (src/session/outbox-shards-option.ts): a tagged prefix never shards; a
  // Cluster that replicates always does, with one shard at least.
  const shards = tagged ? 0 : (outboxShards ?? (cluster ? DEFAULT_CLUSTER_OUTBOX_SHARDS : 1));
  const sharded = shards > 1 || (cluster && !tagged);
  const keys = createKeySpace(prefix, keyPrefix, sharded ? shards : 0);
  return {
    client,
    keys,
    keyPrefix,
    cluster,
    groupOf: (sid) => (sharded ? `s${keys.shardOf(sid)}` : ''),
    digestOf: (sid, region) => keys.digestOf(sid, region),
  };
}

/** `items` grouped by `groupOf(item)`, each group in first-seen order, groups in first-seen order. */
export function groupsOf<T>(items: readonly T[], groupOf: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const name = groupOf(item);
    const group = groups.get(name);
    if (group) group.push(item);
    else groups.set(name, [item]);
  }
  return [...groups.values()];
}

/** The Redis servers holding a region's keys: the client itself, or every master in `host:port` order. */
export function mastersOf(client: RedisClient): { name: string; node: Redis }[] {
  if (!isCluster(client)) return [{ name: '', node: client }];
  return client
    .nodes('master')
    .map((node) => ({ name: `${node.options.host}:${node.options.port}`, node }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The number of keys of the region (every master's, on a Cluster). */
export async function keyCount(client: RedisClient): Promise<number> {
  const counts = await Promise.all(mastersOf(client).map((m) => m.node.dbsize()));
  return counts.reduce((a, n) => a + n, 0);
}
