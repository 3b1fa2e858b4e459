/**
 * The typed face of the scripts that read and copy whole session states, used by the admin tools and
 * the per-user index: reading states at one moment (read-state.lua), merging states read elsewhere
 * (copy-state.lua), forgetting orphaned metadata (forget.lua) and migrating connect-redis sessions
 * (migrate.lua). The one module that knows these scripts' KEYS and ARGV order and their result codes.
 */

import type { RedisClient } from '../types.js';
import { runScript } from './run-script.js';

/** One session's state as `read-state.lua` read it. */
export interface StoredState {
  /** The value, `undefined` when absent. */
  readonly value: string | undefined;
  /** The metadata text, `undefined` when absent. */
  readonly metaText: string | undefined;
  /** The metadata key's PEXPIRETIME: epoch ms, -1 never, -2 absent. */
  readonly metaExpiresAt: number;
  /** The value key's PEXPIRETIME: epoch ms, -1 never, -2 absent. */
  readonly valueExpiresAt: number;
}

/**
 * Runs `read-state.lua`: the state of each session of `keys` (value and metadata keys), read at one
 * moment. With `bareOnly`, sessions with metadata answer as absent (only bare values are read).
 */
export async function readStates(
  client: RedisClient,
  keys: readonly { value: string; meta: string }[],
  bareOnly = false,
): Promise<StoredState[]> {
  if (keys.length === 0) return [];
  const flat = keys.flatMap((k) => [k.value, k.meta]);
  const reply = (await runScript(client, 'read-state', flat, [bareOnly ? 'bare' : 'all'])) as unknown[];
  if (!Array.isArray(reply) || reply.length !== keys.length * 4) {
    throw new TypeError(`read-state.lua answered ${reply?.length} entries for ${keys.length} sessions`);
  }
  const states: StoredState[] = new Array(keys.length);
  for (let i = 0, j = 0; i < keys.length; i++, j += 4) {
    const value = reply[j];
    const meta = reply[j + 1];
    states[i] = {
      value: typeof value === 'string' ? value : undefined,
      metaText: typeof meta === 'string' ? meta : undefined,
      metaExpiresAt: Number(reply[j + 2]),
      valueExpiresAt: Number(reply[j + 3]),
    };
  }
  return states;
}

/** What `copy-state.lua` did with one session. */
export enum CopyResult {
  /** The state here changed. */
  Changed = 0,
  /** Nothing changed: this region had it already, or newer. */
  Unchanged = 1,
  /** Nothing to copy: expired, or absent in the other region. */
  Nothing = 2,
  /** A tombstone here absorbed it (logout is final). */
  Absorbed = -1,
  /** A version too far ahead of this region's clock. */
  Skewed = 4,
  /** Metadata that does not parse. */
  Malformed = 6,
}

/**
 * Runs `copy-state.lua`: merges states read elsewhere into the sessions at `keys`, by the join rules.
 * With `digest` (this region's digest key and the stale-event horizon) the region's digests follow.
 */
export async function copyStates(
  client: RedisClient,
  keys: readonly { value: string; meta: string }[],
  states: readonly StoredState[],
  maxSkewMs: number,
  digest?: { readonly key: string; readonly horizonMs: number },
): Promise<CopyResult[]> {
  if (keys.length !== states.length) throw new RangeError('copyStates: one state per session');
  if (keys.length === 0) return [];
  const flat: string[] = [];
  const args: (string | number)[] = [maxSkewMs];
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as { value: string; meta: string };
    const s = states[i] as StoredState;
    flat.push(k.value, k.meta);
    args.push(
      s.value === undefined ? '0' : '1',
      s.value ?? '',
      s.metaText ?? '',
      s.metaExpiresAt,
      s.valueExpiresAt,
    );
  }
  if (digest !== undefined) {
    flat.push(digest.key);
    args.push(digest.horizonMs);
  }
  const reply = (await runScript(client, 'copy-state', flat, args)) as unknown[];
  if (!Array.isArray(reply) || reply.length !== keys.length) {
    throw new TypeError(`copy-state.lua answered ${reply?.length} codes for ${keys.length} sessions`);
  }
  return reply.map(Number) as CopyResult[];
}

/**
 * Runs `forget.lua` (repair): forgets the metadata of a live session whose value is gone, keeping the
 * region's digests (`digestKey`) in step. Whether it did.
 */
export function forgetMeta(
  client: RedisClient,
  keys: { value: string; meta: string; digest: string },
  horizonMs: number,
): Promise<boolean> {
  return runScript(client, 'forget', [keys.value, keys.meta, keys.digest], [horizonMs]).then(
    (reply) => Number(reply) === 1,
  );
}

/** What `migrate.lua` did with one session. */
export enum MigrateResult {
  /** Metadata written with a new version. */
  Migrated = 0,
  /** The session has metadata already (or a tombstone). */
  HasMetadata = 1,
  /** The value is gone (expired or deleted). */
  Gone = 2,
  /** The value changed since it was read: read it again. */
  Changed = 3,
}

/** One session for {@link migrateSessions}. */
export interface MigrateItem {
  readonly keys: { readonly value: string; readonly meta: string };
  /** SHA-1 (hex) of the value as read. */
  readonly valueSha1: string;
  readonly fingerprint: string;
  /** The lifetime rule in ms (the cookie's originalMaxAge, or the ttl). */
  readonly ruleMs: number;
}

/**
 * Runs `migrate.lua` for `items` in one call (a plain Redis: keys of several slots): gives
 * connect-redis sessions (no metadata) geosession's metadata. One result per item, in order.
 */
export function migrateSessions(
  client: RedisClient,
  items: readonly MigrateItem[],
  a: { region: string; hostNow: number; maxSkewMs: number },
): Promise<MigrateResult[]> {
  const keys = items.flatMap((item) => [item.keys.value, item.keys.meta]);
  const args: (string | number)[] = [a.region, Math.floor(a.hostNow), a.maxSkewMs];
  for (const item of items) args.push(item.valueSha1, item.fingerprint, Math.ceil(item.ruleMs));
  return runScript(client, 'migrate', keys, args).then((reply) => (reply as number[]).map(Number));
}
