/**
 * The copy primitive of resync and repair: read the whole state of many sessions from one region
 * (value, metadata, tombstone, and how long each key lives) and merge it into another region by the
 * applier's own join (docs/replication.md, "The rules"): the highest version's data wins, the expiry
 * travels with the version, a tombstone absorbs everything. A copy is therefore idempotent and
 * order-independent against live replication racing it, and never revives an id logged out in the
 * target. Nothing is appended to the target's outbox: the state came from a region that has it.
 *
 * The stale-event horizon of the applier does not apply to a copy: it protects against an old *change*
 * arriving after the tombstone it should have met was forgotten, while a copy carries the source's
 * *current* state, which went through the source's rules already (a session live there is live now,
 * however old its version: sessions may outlive the horizon; a tombstone there comes with it). The
 * clock-skew check does apply, so that a copy accepts exactly the versions replication would accept.
 * The expiry written with the value (metadata `w`) travels with the data, so `get` in the target
 * reports the same `cookie.expires` as in the source.
 *
 * Either region may be a Redis Cluster (src/admin/region-layout.ts): each script call holds the sessions
 * of one slot and one digest key, and each region's keys are named in its own layout (`outboxShards`).
 */
import { ConfigError } from '../errors.js';
import { CopyResult, copyStates, readStates, type StoredState } from '../redis/commands.js';
import { parseMeta, type SessionMeta } from '../redis/meta.js';
import type { RedisClient } from '../types.js';
import { isValidSessionId } from '../validation/ids.js';
import { groupsOf, type RegionLayout, regionLayout } from './region-layout.js';

/** One region as the admin tools see it: its id and its Redis. */
export interface RegionRef {
  /** The region id (`hk`, `ap-seoul-1`). */
  readonly id: string;
  /**
   * An ioredis client of the region's Redis: a `Redis`, or a `Cluster` (every master is walked, and
   * each script call holds the sessions of one slot). It stays yours: nothing here quits it.
   */
  readonly client: RedisClient;
  /**
   * The region's stores' `outboxShards` (docs/replication.md, "Sharded outboxes"): the key layout its
   * sessions are kept in. Default: 8 on a Cluster whose prefix has no hash tag (a replicating Cluster's
   * default), the unsharded layout on a single Redis.
   */
  readonly outboxShards?: number;
}

/** The whole state of one session in one region. */
export interface SessionState extends StoredState {
  /** The session id. */
  readonly sid: string;
  /** The metadata parsed, `undefined` when absent or not metadata. */
  readonly meta: SessionMeta | undefined;
}

/** What a copy did, session by session, summed. */
export interface CopyCounts {
  /** Sessions read from the source. */
  read: number;
  /** Sessions whose state changed in the target. */
  changed: number;
  /** Sessions the target had already (or newer). */
  unchanged: number;
  /** Sessions with nothing to copy (expired, or gone from the source). */
  nothing: number;
  /** Sessions a tombstone in the target absorbed (logout is final). */
  absorbed: number;
  /** Sessions refused: a version too far ahead of the target's clock. */
  skewed: number;
  /** Sessions refused: metadata that does not parse, or an id outside the id rule. */
  malformed: number;
}

/** Options of the copy functions. */
export interface SessionStateOptions {
  /** The stores' key `prefix` (every region uses the same). Default `'sess:'`. */
  readonly prefix?: string;
  /** Sessions per script call (of one slot's sessions, on a Cluster). Default 200. */
  readonly scriptBatch?: number;
  /** The stores' `maxClockSkewMs`: versions further ahead of the target's clock are refused. Default 60,000. */
  readonly maxClockSkewMs?: number;
  /** The target's region id: its digests (verify) are kept in step with what is copied. Default none. */
  readonly digestRegion?: string;
  /** The stores' `tombstoneTtl`, seconds (a tombstone's digest window depends on it). Default 86,400. */
  readonly tombstoneTtl?: number;
  /**
   * The stores' `outboxShards`: the key layout of the client's sessions (of both sides for
   * {@link copySessionStates}, unless `targetOutboxShards`). Default: 8 on a Cluster whose prefix has no
   * hash tag, the unsharded layout on a single Redis (see {@link RegionRef.outboxShards}).
   */
  readonly outboxShards?: number;
  /**
   * {@link copySessionStates} only: the target's `outboxShards` when its layout differs from the
   * source's. Default `outboxShards`, or as it defaults for the target's client.
   */
  readonly targetOutboxShards?: number;
}

const DEFAULT_PREFIX = 'sess:';
const DEFAULT_SCRIPT_BATCH = 200;
const DEFAULT_SKEW_MS = 60_000;

/** A zeroed {@link CopyCounts}. */
export function emptyCopyCounts(): CopyCounts {
  return { read: 0, changed: 0, unchanged: 0, nothing: 0, absorbed: 0, skewed: 0, malformed: 0 };
}

/** Adds `more` into `into` (and returns it). */
export function addCopyCounts(into: CopyCounts, more: CopyCounts): CopyCounts {
  for (const key of Object.keys(into) as (keyof CopyCounts)[]) into[key] += more[key];
  return into;
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(option, 'must be a positive integer');
  return value;
}

function checkClient(client: RedisClient, option: string): void {
  if (!client || typeof (client as { evalsha?: unknown }).evalsha !== 'function') {
    throw new ConfigError(option, 'must be an ioredis client (a Redis or a Cluster)');
  }
}

/** The layout of `client`'s sessions under `options`, with `shards` its outboxShards. */
function layoutOf(
  client: RedisClient,
  option: string,
  options: SessionStateOptions,
  shards: number | undefined,
  shardsOption: string,
): RegionLayout {
  checkClient(client, option);
  return regionLayout(client, options.prefix ?? DEFAULT_PREFIX, shards, shardsOption);
}

/** The digest key of `sid`'s group in `layout`, and the horizon, when `options.digestRegion` keeps them. */
function digestOf(layout: RegionLayout, sid: string, options: SessionStateOptions) {
  if (options.digestRegion === undefined) return undefined;
  const key = layout.digestOf(sid, options.digestRegion);
  return { key, horizonMs: Math.round(positive('tombstoneTtl', options.tombstoneTtl, 86_400) * 1000) };
}

/** `items` split into the layout's groups (one slot, one digest key), each cut into `size` at most. */
function calls<T>(
  items: readonly T[],
  layout: RegionLayout,
  sidOf: (item: T) => string,
  size: number,
): T[][] {
  const out: T[][] = [];
  for (const group of groupsOf(items, (item) => layout.groupOf(sidOf(item)))) {
    for (let i = 0; i < group.length; i += size) out.push(group.slice(i, i + size));
  }
  return out;
}

const keysOf = (layout: RegionLayout, sid: string) => ({
  value: layout.keys.session(sid),
  meta: layout.keys.meta(sid),
});

/**
 * Reads the state of `sids` from `client`'s Redis, each session at one moment (one script call per
 * `scriptBatch` sessions of one slot, pipelined). With `bareOnly`, only values without metadata are
 * read (others answer absent). Ids outside the id rule answer absent.
 */
export async function readSessionStates(
  client: RedisClient,
  sids: readonly string[],
  options: SessionStateOptions & { bareOnly?: boolean } = {},
): Promise<SessionState[]> {
  const layout = layoutOf(client, 'client', options, options.outboxShards, 'outboxShards');
  const size = positive('scriptBatch', options.scriptBatch, DEFAULT_SCRIPT_BATCH);
  const valid = sids.filter(isValidSessionId);
  const read = new Map<string, StoredState>();
  await Promise.all(
    calls(valid, layout, (sid) => sid, size).map(async (part) => {
      const states = await readStates(
        client,
        part.map((sid) => keysOf(layout, sid)),
        options.bareOnly ?? false,
      );
      for (const [i, sid] of part.entries()) read.set(sid, states[i] as StoredState);
    }),
  );
  return valid.map((sid) => {
    const s = read.get(sid) as StoredState;
    return { ...s, sid, meta: parseMeta(s.metaText) };
  });
}

/**
 * Merges `states` (read elsewhere by {@link readSessionStates}) into `client`'s Redis by the join rules,
 * and counts what happened. Absent states (nothing read) count as `nothing` without a call.
 */
export async function applySessionStates(
  client: RedisClient,
  states: readonly SessionState[],
  options: SessionStateOptions = {},
): Promise<CopyCounts> {
  const layout = layoutOf(client, 'client', options, options.outboxShards, 'outboxShards');
  const size = positive('scriptBatch', options.scriptBatch, DEFAULT_SCRIPT_BATCH);
  const skew = positive('maxClockSkewMs', options.maxClockSkewMs, DEFAULT_SKEW_MS);
  const counts = emptyCopyCounts();
  const present: SessionState[] = [];
  for (const s of states) {
    if (!isValidSessionId(s.sid)) counts.malformed++;
    else if (s.value === undefined && s.metaText === undefined) counts.nothing++;
    else present.push(s);
  }
  const results = await Promise.all(
    calls(present, layout, (s) => s.sid, size).map((part) =>
      copyStates(
        client,
        part.map((s) => keysOf(layout, s.sid)),
        part,
        skew,
        digestOf(layout, (part[0] as SessionState).sid, options),
      ),
    ),
  );
  tally(counts, results.flat());
  return counts;
}

/** Counts what `copy-state.lua` answered into `counts`. */
function tally(counts: CopyCounts, codes: readonly CopyResult[]): void {
  for (const code of codes) {
    if (code === CopyResult.Changed) counts.changed++;
    else if (code === CopyResult.Unchanged) counts.unchanged++;
    else if (code === CopyResult.Nothing) counts.nothing++;
    else if (code === CopyResult.Absorbed) counts.absorbed++;
    else if (code === CopyResult.Skewed) counts.skewed++;
    else counts.malformed++;
  }
}

/**
 * Copies the state of `sids` from `source` to `target` by the join rules (see the module's comment):
 * read in the source, merged in the target. Safe under live traffic in both regions and against
 * replication racing it; running it twice changes nothing the second time. With `bareOnly`, only
 * values without metadata are copied and counted.
 *
 * Either side may be a Redis Cluster: every script call holds the sessions of one slot (and one digest
 * key), read by the source's layout and written under the target's (`outboxShards`,
 * `targetOutboxShards`): a session's shard is a function of its id alone, the same in every region.
 */
export async function copySessionStates(
  source: RedisClient,
  target: RedisClient,
  sids: readonly string[],
  options: SessionStateOptions & { bareOnly?: boolean } = {},
): Promise<CopyCounts> {
  const from = layoutOf(source, 'source', options, options.outboxShards, 'outboxShards');
  const to =
    options.targetOutboxShards === undefined
      ? layoutOf(target, 'target', options, options.outboxShards, 'outboxShards')
      : layoutOf(target, 'target', options, options.targetOutboxShards, 'targetOutboxShards');
  return copyBetween(from, to, sids, options);
}

/**
 * {@link copySessionStates} between two regions' layouts (src/admin/region-layout.ts), resolved once by
 * the caller (resync).
 */
export async function copyBetween(
  from: RegionLayout,
  to: RegionLayout,
  sids: readonly string[],
  options: SessionStateOptions & { bareOnly?: boolean } = {},
): Promise<CopyCounts> {
  const size = positive('scriptBatch', options.scriptBatch, DEFAULT_SCRIPT_BATCH);
  const skew = positive('maxClockSkewMs', options.maxClockSkewMs, DEFAULT_SKEW_MS);
  const valid = sids.filter(isValidSessionId);
  const counts = emptyCopyCounts();
  counts.malformed = sids.length - valid.length;
  // Each read call is merged on its own, one call per target group: calls go at once, so ioredis
  // pipelines them.
  const chunkCounts = await Promise.all(
    calls(valid, from, (sid) => sid, size).map(async (part) => {
      const read = await readStates(
        from.client,
        part.map((sid) => keysOf(from, sid)),
        options.bareOnly ?? false,
      );
      const present: { sid: string; state: StoredState }[] = [];
      const c = emptyCopyCounts();
      for (let i = 0; i < read.length; i++) {
        const state = read[i] as StoredState;
        if (state.value === undefined && state.metaText === undefined) {
          // A bare-only read answers absent for sessions with metadata: those are not counted at all.
          if (!options.bareOnly) c.nothing++;
          continue;
        }
        present.push({ sid: part[i] as string, state });
      }
      c.read = options.bareOnly ? present.length : read.length;
      const codes = await Promise.all(
        calls(present, to, (p) => p.sid, size).map((group) =>
          copyStates(
            to.client,
            group.map((p) => keysOf(to, p.sid)),
            group.map((p) => p.state),
            skew,
            digestOf(to, (group[0] as { sid: string }).sid, options),
          ),
        ),
      );
      tally(c, codes.flat());
      return c;
    }),
  );
  for (const c of chunkCounts) addCopyCounts(counts, c);
  return counts;
}
