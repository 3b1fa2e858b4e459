/**
 * Reading the per-bucket digests the scripts keep (see "Per-bucket digests" in
 * src/redis/scripts/includes/common.lua and docs/replication.md): a region's digest key is a set of
 * window names, each window a hash `<digest key>:<window>` of bucket → sum.
 */
import { createHash } from 'node:crypto';
import { fullMetaKey, type ResolvedRegion } from './region-state.js';

/** The digest window, ms (DIGEST_WINDOW_MS in common.lua). */
export const DIGEST_WINDOW_MS = 600_000;

/** The number of buckets (the first byte of the SHA-1 of the metadata key, as in common.lua). */
export const DIGEST_BUCKETS = 256;

/** A session's digest bucket in `region`. */
export function bucketOf(region: ResolvedRegion, sid: string): number {
  return createHash('sha1').update(fullMetaKey(region, sid)).digest()[0] as number;
}

/** One region's digests: window → bucket → sum (as text). */
export type RegionDigests = Map<string, Map<number, string>>;

/** Whether window `name` starts after `after` (epoch ms); "n" (never expires) always does. */
function windowCounts(name: string, after: number): boolean {
  if (name === 'n') return true;
  const index = Number(name);
  return Number.isFinite(index) && index * DIGEST_WINDOW_MS > after;
}

/**
 * Reads `region`'s digest windows that start after `after` (epoch ms), and forgets the names of windows
 * whose hash has expired. `undefined` when the region keeps no digests at all. With outbox shards each
 * shard keeps its own digests (src/keys.ts): the region's are their sums, window by window and bucket
 * by bucket.
 */
export async function readDigests(region: ResolvedRegion, after: number): Promise<RegionDigests | undefined> {
  const parts = await Promise.all(
    region.keys.digests(region.id).map((key) => readDigestKey(region, key, after)),
  );
  const found = parts.filter((part): part is RegionDigests => part !== undefined);
  if (found.length === 0) return undefined;
  if (found.length === 1) return found[0];
  const total = new Map<string, Map<number, bigint>>();
  for (const part of found) {
    for (const [name, buckets] of part) {
      const window = total.get(name) ?? new Map<number, bigint>();
      total.set(name, window);
      for (const [bucket, sum] of buckets) window.set(bucket, (window.get(bucket) ?? 0n) + BigInt(sum));
    }
  }
  const digests: RegionDigests = new Map();
  for (const [name, buckets] of total) {
    const kept = new Map<number, string>();
    for (const [bucket, sum] of buckets) if (sum !== 0n) kept.set(bucket, sum.toString());
    digests.set(name, kept);
  }
  return digests;
}

/** The digest windows of one digest key (one slot: the key and its windows share a hash tag). */
async function readDigestKey(
  region: ResolvedRegion,
  key: string,
  after: number,
): Promise<RegionDigests | undefined> {
  const names = await region.client.smembers(key);
  if (names.length === 0) return undefined;
  const ended = names.filter((name) => name !== 'n' && (Number(name) + 2) * DIGEST_WINDOW_MS < Date.now());
  if (ended.length > 0) await region.client.srem(key, ...ended);
  const wanted = names.filter((name) => windowCounts(name, after));
  const pipeline = region.client.pipeline();
  for (const name of wanted) pipeline.hgetall(`${key}:${name}`);
  const replies = wanted.length === 0 ? [] : ((await pipeline.exec()) ?? []);
  const digests: RegionDigests = new Map();
  wanted.forEach((name, i) => {
    const [error, hash] = replies[i] ?? [null, {}];
    if (error) throw error;
    const buckets = new Map<number, string>();
    for (const [field, sum] of Object.entries((hash ?? {}) as Record<string, string>)) {
      if (sum !== '0') buckets.set(Number(field), sum);
    }
    digests.set(name, buckets);
  });
  return digests;
}

/** The buckets whose sums differ between any two of `all` (a window or bucket missing counts as 0). */
export function differingBuckets(all: readonly RegionDigests[]): { buckets: Set<number>; windows: number } {
  const windows = new Set<string>();
  for (const digests of all) for (const name of digests.keys()) windows.add(name);
  const buckets = new Set<number>();
  for (const name of windows) {
    const seen = new Set<number>();
    for (const digests of all) for (const bucket of digests.get(name)?.keys() ?? []) seen.add(bucket);
    for (const bucket of seen) {
      const first = all[0]?.get(name)?.get(bucket) ?? '0';
      if (all.some((digests) => (digests.get(name)?.get(bucket) ?? '0') !== first)) buckets.add(bucket);
    }
  }
  return { buckets, windows: windows.size };
}
