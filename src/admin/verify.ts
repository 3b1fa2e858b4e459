/**
 * `verifyRegions`: compares the sessions of two or more regions and lists every difference. By default
 * it compares the digests the scripts keep (O(windows x buckets), no SCAN) and looks key by key only
 * into the buckets whose digests differ; `full` compares every session key by key.
 */
import { ConfigError } from '../errors.js';
import { compareStates, type Difference } from './difference.js';
import { bucketOf, differingBuckets, type RegionDigests, readDigests } from './digests.js';
import {
  type AdminRegion,
  type ResolvedRegion,
  readStates,
  refuseUnsaidShards,
  resolveRegions,
  type SessionState,
  scanSessionIds,
} from './region-state.js';

/** Where a verify is (for progress bars). */
export interface VerifyProgress {
  /** `digests`: reading digests; `scan`: listing sessions; `compare`: reading and comparing them; `recheck`. */
  readonly phase: 'digests' | 'scan' | 'compare' | 'recheck';
  readonly done: number;
  /** Total for the phase, when known. */
  readonly total: number | undefined;
}

/** Options of {@link verifyRegions}. */
export interface VerifyOptions {
  /** Compare every session key by key instead of the digests first. @default false */
  readonly full?: boolean;
  /** Largest expiry difference that is not a difference, ms (the default touch step). @default 60000 */
  readonly toleranceMs?: number;
  /**
   * Sessions and digest windows that end within this many ms are not compared (their expiry may have
   * passed in one region and not yet in another). @default 60000
   */
  readonly marginMs?: number;
  /**
   * Differences are read again after this many ms and kept only if they remain (changes in flight are
   * not differences); 0 reads once. @default 1000
   */
  readonly settleMs?: number;
  /** SCAN COUNT. @default 1000 */
  readonly scanCount?: number;
  /** Keys per MGET. @default 500 */
  readonly batch?: number;
  /** Told of progress. */
  readonly onProgress?: (progress: VerifyProgress) => void;
}

/** What {@link verifyRegions} found. */
export interface VerifyResult {
  /** No difference found. */
  readonly clean: boolean;
  /** `digests` when digests were compared first, `full` when every session was compared. */
  readonly mode: 'digests' | 'full';
  /** Digest windows compared (0 in `full` mode). */
  readonly windows: number;
  /** Buckets whose digests differed (looked into key by key). */
  readonly buckets: number;
  /** Sessions compared key by key. */
  readonly compared: number;
  /** Every difference, by session id. */
  readonly differences: readonly Difference[];
}

interface Resolved {
  full: boolean;
  toleranceMs: number;
  marginMs: number;
  settleMs: number;
  scanCount: number;
  batch: number;
  onProgress: (progress: VerifyProgress) => void;
}

function count(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ConfigError(name, `must be a number >= ${min}`);
  }
  return value;
}

/** Checks verify's options (`ConfigError` naming the one at fault). */
export function resolveVerifyOptions(options: VerifyOptions = {}): Resolved {
  const onProgress = options.onProgress ?? (() => {});
  if (typeof onProgress !== 'function') throw new ConfigError('onProgress', 'must be a function');
  return {
    full: options.full === true,
    toleranceMs: count('toleranceMs', options.toleranceMs, 60_000),
    marginMs: count('marginMs', options.marginMs, 60_000),
    settleMs: count('settleMs', options.settleMs, 1000),
    scanCount: count('scanCount', options.scanCount, 1000, 1),
    batch: count('batch', options.batch, 500, 1),
    onProgress,
  };
}

/** How many ids are read at once (bounded memory). */
const GROUP = 20_000;

/** Reads and compares `sids` in every region; the differences found. */
export async function compareSessions(
  regions: readonly ResolvedRegion[],
  sids: readonly string[],
  o: Pick<Resolved, 'batch' | 'marginMs' | 'toleranceMs'>,
  onDone: (done: number) => void = () => {},
): Promise<Difference[]> {
  const ids = regions.map((r) => r.id);
  const differences: Difference[] = [];
  for (let at = 0; at < sids.length; at += GROUP) {
    const group = sids.slice(at, at + GROUP);
    const all = await Promise.all(regions.map((region) => readStates(region, group, o.batch)));
    const rules = { now: Date.now(), marginMs: o.marginMs, toleranceMs: o.toleranceMs };
    group.forEach((sid, i) => {
      const states = all.map((states) => states[i] as SessionState);
      const difference = compareStates(sid, ids, states, rules);
      if (difference) differences.push(difference);
    });
    onDone(at + group.length);
  }
  return differences;
}

/**
 * Compares the sessions of `regions` and lists every difference: a session or tombstone missing in a
 * region, an older version, an expiry further off than the tolerance, a tombstone in one region and the
 * live session in another, a value changed outside geosession. Read-only (but for forgetting the names
 * of expired digest windows).
 */
export async function verifyRegions(
  regionList: readonly AdminRegion[],
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const regions = resolveRegions(regionList);
  const o = resolveVerifyOptions(options);
  await refuseUnsaidShards(regionList, regions);
  let full = o.full;
  let windows = 0;
  let buckets: Set<number> | undefined;
  if (!full) {
    o.onProgress({ phase: 'digests', done: 0, total: regions.length });
    const after = Date.now() + o.marginMs;
    const digests: (RegionDigests | undefined)[] = [];
    for (const region of regions) {
      digests.push(await readDigests(region, after));
      o.onProgress({ phase: 'digests', done: digests.length, total: regions.length });
    }
    if (digests.every((d) => d === undefined)) {
      // No region keeps digests (nothing written since they exist, or stores that do not replicate).
      full = true;
    } else {
      const compared = differingBuckets(digests.map((d) => d ?? new Map()));
      windows = compared.windows;
      buckets = compared.buckets;
      if (buckets.size === 0) {
        return { clean: true, mode: 'digests', windows, buckets: 0, compared: 0, differences: [] };
      }
    }
  }

  const sids = new Set<string>();
  for (const region of regions) {
    await scanSessionIds(region, o.scanCount, (page) => {
      for (const sid of page) {
        if (buckets === undefined || regions.some((r) => (buckets as Set<number>).has(bucketOf(r, sid)))) {
          sids.add(sid);
        }
      }
      o.onProgress({ phase: 'scan', done: sids.size, total: undefined });
    });
  }
  const list = [...sids];
  let differences = await compareSessions(regions, list, o, (done) =>
    o.onProgress({ phase: 'compare', done, total: list.length }),
  );
  if (differences.length > 0 && o.settleMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, o.settleMs));
    const again = await compareSessions(
      regions,
      differences.map((d) => d.sid),
      o,
      (done) => o.onProgress({ phase: 'recheck', done, total: differences.length }),
    );
    const before = new Map(differences.map((d) => [d.sid, d.kind]));
    differences = again.filter((d) => before.get(d.sid) === d.kind);
  }
  return {
    clean: differences.length === 0,
    mode: full ? 'full' : 'digests',
    windows,
    buckets: buckets?.size ?? 0,
    compared: list.length,
    differences,
  };
}
