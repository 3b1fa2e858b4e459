/**
 * The fault suite's invalidation part: each region runs an invalidator beside its store (same transport,
 * same sealing, its own channel), schedules write region-local cache keys (`cache`) and invalidate them
 * (`invalidate`) between the faults, and the checker holds the rule "every invalidation applied
 * everywhere": once replication settled, no region holds a cache value whose write was acknowledged
 * before an acknowledged invalidation of its key began, in whichever region.
 *
 * Excused, as for sessions: an invalidation made in a region whose Redis later came back empty (its
 * outbox went with the data before the others may have read it).
 */
import type { Redis } from 'ioredis';
import { REGIONS } from './rig.js';

/** Cache keys per schedule: few, so that writes and invalidations meet. */
export const CACHE_KEYS = 3;

/** The cache key `k` of a schedule on `prefix` (apart from every session key). */
export const cacheKey = (prefix: string, k: number) => `cache/${prefix}${k}`;

/** A cache write as it happened (region-local: an app filling its region's cache). */
export interface CacheWrite {
  readonly r: number;
  readonly k: number;
  /** The value written, `v<id>`, unique in the schedule. */
  readonly value: string;
  end: number;
  ok: boolean;
}

/** An `invalidate()` call as it happened. */
export interface InvalidationRecord {
  readonly r: number;
  readonly k: number;
  readonly start: number;
  ok: boolean;
}

/** What a schedule did to the cache. */
export interface CachePlay {
  readonly writes: CacheWrite[];
  readonly invalidations: InvalidationRecord[];
}

/** The cache keys' values in every region, and the violations of the rule, `[]` when it holds. */
async function violations(
  prefix: string,
  readers: Redis[],
  cache: CachePlay,
  wipedAt: readonly number[],
): Promise<string[]> {
  const found: string[] = [];
  for (let k = 0; k < CACHE_KEYS; k++) {
    const values = await Promise.all(readers.map((reader) => reader.get(cacheKey(prefix, k))));
    values.forEach((value, r) => {
      if (value === null) return;
      const write = cache.writes.find((w) => w.value === value);
      if (!write?.ok) return; // its outcome unknown: it may have run after any invalidation
      const missed = cache.invalidations.find(
        (i) =>
          i.ok &&
          i.k === k &&
          i.start > write.end &&
          // lost with its region's data before the others read it
          !((wipedAt[i.r] ?? 0) > i.start),
      );
      if (missed) {
        found.push(
          `${REGIONS[r]} still holds cache key ${k} = ${value} (written in ${REGIONS[write.r]} at ${write.end}), invalidated in ${REGIONS[missed.r]} at ${missed.start}`,
        );
      }
    });
  }
  return found;
}

/**
 * Waits, at most `timeoutMs`, until every invalidation is applied everywhere; returns what still breaks
 * the rule then (`[]`: it holds).
 */
export async function checkInvalidations(
  prefix: string,
  readers: Redis[],
  cache: CachePlay,
  wipedAt: readonly number[],
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await violations(prefix, readers, cache, wipedAt).catch((e: unknown) => [String(e)]);
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}
