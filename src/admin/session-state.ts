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
 */
import type { Cluster } from 'ioredis';
import { ConfigError } from '../errors.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import { CopyResult, copyStates, readStates, type StoredState } from '../redis/commands.js';
import { parseMeta, type SessionMeta } from '../redis/meta.js';
import type { RedisClient } from '../types.js';
import { isValidSessionId } from '../validation/ids.js';
import { keyPrefixOf } from '../wire/internal-keys.js';

/** One region as the admin tools see it: its id and its Redis. */
export interface RegionRef {
  /** The region id (`hk`, `ap-seoul-1`). */
  readonly id: string;
  /** An ioredis client of the region's Redis (not a Cluster). It stays yours: nothing here quits it. */
  readonly client: RedisClient;
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
  /** Sessions per script call. Default 200. */
  readonly scriptBatch?: number;
  /** The stores' `maxClockSkewMs`: versions further ahead of the target's clock are refused. Default 60,000. */
  readonly maxClockSkewMs?: number;
  /** The target's region id: its digests (verify) are kept in step with what is copied. Default none. */
  readonly digestRegion?: string;
  /** The stores' `tombstoneTtl`, seconds (a tombstone's digest window depends on it). Default 86,400. */
  readonly tombstoneTtl?: number;
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

function checkClient(client: RedisClient, option: string): void {
  if ((client as Cluster).isCluster) {
    throw new ConfigError(option, 'must be a Redis client, not a Cluster (copies run one Redis at a time)');
  }
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(option, 'must be a positive integer');
  return value;
}

function keySpaceOf(client: RedisClient, prefix: string | undefined): KeySpace {
  return createKeySpace(prefix ?? DEFAULT_PREFIX, keyPrefixOf(client));
}

/** The digest key and horizon of `options.digestRegion` in `keys`, when digests are kept. */
function digestOf(keys: KeySpace, options: SessionStateOptions) {
  if (options.digestRegion === undefined) return undefined;
  return {
    key: keys.internal('digest', options.digestRegion),
    horizonMs: Math.round(positive('tombstoneTtl', options.tombstoneTtl, 86_400) * 1000),
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Reads the state of `sids` from `client`'s Redis, each session at one moment (one script call per
 * `scriptBatch`, pipelined). With `bareOnly`, only values without metadata are read (others answer
 * absent). Ids outside the id rule answer absent.
 */
export async function readSessionStates(
  client: RedisClient,
  sids: readonly string[],
  options: SessionStateOptions & { bareOnly?: boolean } = {},
): Promise<SessionState[]> {
  checkClient(client, 'client');
  const keys = keySpaceOf(client, options.prefix);
  const size = positive('scriptBatch', options.scriptBatch, DEFAULT_SCRIPT_BATCH);
  const valid = sids.filter(isValidSessionId);
  const read = await Promise.all(
    chunks(valid, size).map((part) =>
      readStates(
        client,
        part.map((sid) => ({ value: keys.session(sid), meta: keys.meta(sid) })),
        options.bareOnly ?? false,
      ),
    ),
  );
  const states = read.flat();
  return valid.map((sid, i) => {
    const s = states[i] as StoredState;
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
  checkClient(client, 'client');
  const keys = keySpaceOf(client, options.prefix);
  const size = positive('scriptBatch', options.scriptBatch, DEFAULT_SCRIPT_BATCH);
  const skew = positive('maxClockSkewMs', options.maxClockSkewMs, DEFAULT_SKEW_MS);
  const digest = digestOf(keys, options);
  const counts = emptyCopyCounts();
  const present: SessionState[] = [];
  for (const s of states) {
    if (!isValidSessionId(s.sid)) counts.malformed++;
    else if (s.value === undefined && s.metaText === undefined) counts.nothing++;
    else present.push(s);
  }
  const results = await Promise.all(
    chunks(present, size).map((part) =>
      copyStates(
        client,
        part.map((s) => ({ value: keys.session(s.sid), meta: keys.meta(s.sid) })),
        part,
        skew,
        digest,
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
 */
export async function copySessionStates(
  source: RedisClient,
  target: RedisClient,
  sids: readonly string[],
  options: SessionStateOptions & { bareOnly?: boolean } = {},
): Promise<CopyCounts> {
  checkClient(source, 'source');
  checkClient(target, 'target');
  const size = positive('scriptBatch', options.scriptBatch, DEFAULT_SCRIPT_BATCH);
  const skew = positive('maxClockSkewMs', options.maxClockSkewMs, DEFAULT_SKEW_MS);
  const from = keySpaceOf(source, options.prefix);
  const to = keySpaceOf(target, options.prefix);
  const digest = digestOf(to, options);
  const same = keyPrefixOf(source) === keyPrefixOf(target);
  const valid = sids.filter(isValidSessionId);
  const counts = emptyCopyCounts();
  counts.malformed = sids.length - valid.length;
  // Each chunk is read, then merged, on its own: chunks go at once, so ioredis pipelines them.
  const chunkCounts = await Promise.all(
    chunks(valid, size).map(async (part) => {
      const fromKeys = part.map((sid) => ({ value: from.session(sid), meta: from.meta(sid) }));
      const toKeys = same ? fromKeys : part.map((sid) => ({ value: to.session(sid), meta: to.meta(sid) }));
      const read = await readStates(source, fromKeys, options.bareOnly ?? false);
      const keys: { value: string; meta: string }[] = [];
      const states: StoredState[] = [];
      const c = emptyCopyCounts();
      for (let i = 0; i < read.length; i++) {
        const state = read[i] as StoredState;
        if (state.value === undefined && state.metaText === undefined) {
          // A bare-only read answers absent for sessions with metadata: those are not counted at all.
          if (!options.bareOnly) c.nothing++;
          continue;
        }
        keys.push(toKeys[i] as { value: string; meta: string });
        states.push(state);
      }
      c.read = options.bareOnly ? states.length : read.length;
      tally(c, await copyStates(target, keys, states, skew, digest));
      return c;
    }),
  );
  for (const c of chunkCounts) addCopyCounts(counts, c);
  return counts;
}
