/**
 * What the admin tools (verify, repair) read of a region: which sessions it holds, and each one's state
 * (metadata and value) read straight from its Redis. Standalone Redis only: the reads use MGET.
 */
import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { createKeySpace, type KeySpace, prefixProblem } from '../keys.js';
import { parseMeta, type SessionMeta } from '../redis/meta.js';
import { isValidSessionId } from '../validation/ids.js';
import { globEscape, hashTagOf, keyPrefixOf } from '../wire/internal-keys.js';
import { regionLayout } from './region-layout.js';

/** One region as the admin tools reach it. */
export interface AdminRegion {
  /** The region id, as its store's `region` option. */
  readonly id: string;
  /** A client of the region's Redis: a `Redis`, or a `Cluster` (every master is scanned). */
  readonly client: Redis | Cluster;
  /** The store's key prefix. @default 'sess:' */
  readonly prefix?: string;
  /**
   * The region's stores' `outboxShards` when they keep the sharded layout (they replicate on a Redis
   * Cluster, or set it above 1; docs/replication.md "Sharded outboxes"): 8 for a replicating Cluster
   * left at the default. Omitted: the unsharded layout.
   * @default undefined
   */
  readonly outboxShards?: number;
}

/** A region with its key space resolved. */
export interface ResolvedRegion {
  readonly id: string;
  readonly client: Redis | Cluster;
  readonly keys: KeySpace;
  /** The client's ioredis `keyPrefix` (keys as Redis names them start with it). */
  readonly keyPrefix: string;
}

/** A session's state in one region: its metadata and whether (and what) its value is. */
export interface SessionState {
  /** The parsed metadata, `undefined` when there is none. */
  readonly meta: SessionMeta | undefined;
  /** The stored value, `undefined` when there is none. */
  readonly value: string | undefined;
}

/** Checks the regions and binds each to its key space (`ConfigError` naming the option at fault). */
export function resolveRegions(regions: readonly AdminRegion[]): ResolvedRegion[] {
  if (!Array.isArray(regions) || regions.length < 2) {
    throw new ConfigError('regions', 'must list at least two regions to compare');
  }
  const seen = new Set<string>();
  return regions.map((region, i) => {
    if (typeof region?.id !== 'string' || region.id === '' || seen.has(region.id)) {
      throw new ConfigError(`regions[${i}].id`, 'must be a region id given once');
    }
    seen.add(region.id);
    if (!region.client || typeof region.client.mget !== 'function') {
      throw new ConfigError(`regions[${i}].client`, 'must be an ioredis client (a Redis or a Cluster)');
    }
    const prefix = region.prefix ?? 'sess:';
    const problem = typeof prefix === 'string' ? prefixProblem(prefix) : 'must be a string';
    if (problem !== undefined) throw new ConfigError(`regions[${i}].prefix`, problem);
    const keyPrefix = keyPrefixOf(region.client);
    // Without outboxShards, the unsharded layout (a Cluster without replication); with it, the layout
    // resync copies with, which checks the count (src/admin/region-layout.ts).
    const keys =
      region.outboxShards === undefined
        ? createKeySpace(prefix, keyPrefix)
        : regionLayout(region.client, prefix, region.outboxShards, `regions[${i}].outboxShards`).keys;
    return { id: region.id, client: region.client, keys, keyPrefix };
  });
}

/**
 * A Cluster region given without `outboxShards` is read in the unsharded layout, but a store that
 * replicates on a Cluster keeps the sharded one (`P{s<i>.<k>}<sid>`), whose keys that reading skips:
 * verify would compare nothing and call the regions clean. Rejects that case with a `ConfigError` naming
 * the option, when a sample of each master's keys (one SCAN page) holds shard-tagged session keys.
 */
export async function refuseUnsaidShards(
  given: readonly AdminRegion[],
  regions: readonly ResolvedRegion[],
): Promise<void> {
  for (const [i, region] of regions.entries()) {
    const cluster = (region.client as Cluster).isCluster === true;
    const prefix = region.keyPrefix + region.keys.prefix;
    if (!cluster || given[i]?.outboxShards !== undefined || hashTagOf(prefix) !== undefined) continue;
    const pattern = `${globEscape(prefix)}{s*`;
    for (const node of (region.client as Cluster).nodes('master')) {
      const [, keys] = await node.scan('0', 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length === 0) continue;
      throw new ConfigError(
        `regions[${i}].outboxShards`,
        `must be given for region ${region.id}: its Cluster holds sessions in the sharded layout of a store that replicates (${keys[0]}); say the stores' outboxShards, 8 by default`,
      );
    }
  }
}

const MARK = 'x';

/**
 * The metadata key of `sid` as Redis names it (with the client's `keyPrefix`): what the scripts see,
 * and what a session's digest bucket is made from.
 */
export function fullMetaKey(region: ResolvedRegion, sid: string): string {
  return region.keyPrefix + region.keys.meta(sid);
}

/**
 * Calls `onPage` with the session ids found in `region` (of a value or a metadata key), one SCAN page
 * at a time; an id may come more than once.
 */
export async function scanSessionIds(
  region: ResolvedRegion,
  count: number,
  onPage: (sids: string[]) => void,
): Promise<void> {
  const { client, keys, keyPrefix } = region;
  if (keys.shards > 0) return scanShardedIds(region, count, onPage);
  const metaKey = keyPrefix + keys.meta(MARK);
  const at = metaKey.lastIndexOf(MARK);
  const before = metaKey.slice(0, at);
  const after = metaKey.slice(at + MARK.length);
  const valueStart = keyPrefix + keys.prefix;
  const patterns: [string, (key: string) => string | undefined][] = [
    [
      `${globEscape(valueStart)}*`,
      (key) => (key.startsWith(valueStart) ? key.slice(valueStart.length) : undefined),
    ],
    [
      `${globEscape(before)}*${globEscape(after)}`,
      (key) =>
        key.startsWith(before) && key.endsWith(after)
          ? key.slice(before.length, key.length - after.length)
          : undefined,
    ],
  ];
  // On a Redis Cluster each master holds its own keys: every master is scanned (a Cluster's own
  // `scan` would ask one node only).
  const nodes = (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  for (const [match, sidOf] of patterns) {
    for (const node of nodes) await scanNode(node, match, count, sidOf, onPage);
  }
}

/**
 * {@link scanSessionIds} for the sharded layout: values `P{s<i>.<k>}<sid>`, metadata
 * `{s<i>.<k>}:m:P{s<i>.<k>}<sid>` (src/keys.ts), each checked by the key space.
 */
async function scanShardedIds(
  region: ResolvedRegion,
  count: number,
  onPage: (sids: string[]) => void,
): Promise<void> {
  const { client, keys, keyPrefix } = region;
  const start = keyPrefix + keys.prefix;
  const sidOfValue = (key: string) =>
    key.startsWith(keyPrefix) ? keys.sidOf(key.slice(keyPrefix.length)) : undefined;
  const patterns: [string, (key: string) => string | undefined][] = [
    [`${globEscape(start)}{s*}*`, sidOfValue],
    [
      `${globEscape(keyPrefix)}{s*}:m:${globEscape(keys.prefix)}{s*}*`,
      (key) => {
        const at = key.indexOf('}:m:');
        const sid = at < 0 ? undefined : keys.sidOf(key.slice(at + 4));
        return sid !== undefined && key === keyPrefix + keys.meta(sid) ? sid : undefined;
      },
    ],
  ];
  const nodes = (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  for (const [match, sidOf] of patterns) {
    for (const node of nodes) await scanNode(node, match, count, sidOf, onPage);
  }
}

async function scanNode(
  node: Redis,
  match: string,
  count: number,
  sidOf: (key: string) => string | undefined,
  onPage: (sids: string[]) => void,
): Promise<void> {
  {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      cursor = next;
      const sids: string[] = [];
      for (const key of found) {
        const sid = sidOf(key);
        if (sid !== undefined && isValidSessionId(sid)) sids.push(sid);
      }
      if (sids.length > 0) onPage(sids);
    } while (cursor !== '0');
  }
}

/**
 * Reads the state of `sids` in `region` (metadata and value), `batch` keys per MGET, every MGET sent at
 * once (ioredis pipelines them): callers hand over a bounded number of ids at a time.
 */
export async function readStates(
  region: ResolvedRegion,
  sids: readonly string[],
  batch: number,
): Promise<SessionState[]> {
  const { client, keys } = region;
  const chunks: Promise<[(string | null)[], (string | null)[]]>[] = [];
  if ((client as Cluster).isCluster) {
    // An MGET of many sessions spans slots; a session's two keys share one.
    const pairs = await Promise.all(sids.map((sid) => client.mget(keys.meta(sid), keys.session(sid))));
    return pairs.map(([meta, value]) => ({
      meta: parseMeta(meta ?? null),
      value: typeof value === 'string' ? value : undefined,
    }));
  }
  for (let i = 0; i < sids.length; i += batch) {
    const chunk = sids.slice(i, i + batch);
    chunks.push(
      Promise.all([
        client.mget(chunk.map((sid) => keys.meta(sid))),
        client.mget(chunk.map((sid) => keys.session(sid))),
      ]),
    );
  }
  const states: SessionState[] = [];
  for (const [metas, values] of await Promise.all(chunks)) {
    metas.forEach((meta, j) => {
      const value = values[j];
      states.push({ meta: parseMeta(meta), value: typeof value === 'string' ? value : undefined });
    });
  }
  return states;
}
