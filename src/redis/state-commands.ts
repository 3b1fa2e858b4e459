/**
 * The typed face of the scripts that read and copy whole session states, used by the admin tools and
 * the per-user index: reading states at one moment (read-state.lua), merging states read elsewhere
 * (copy-state.lua), forgetting orphaned metadata (forget.lua) and migrating connect-redis sessions
 * (migrate.lua; migrate-move, -drop and -undo.lua into the sharded layout). The one module that knows
 * these scripts' KEYS and ARGV order and their result codes.
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

/** One session for {@link moveSessions}: a connect-redis value read from its unsharded key. */
export interface MoveItem {
  /** Its keys in its shard (one slot for every item of a call). */
  readonly keys: { readonly value: string; readonly meta: string };
  /** The value as read. */
  readonly value: string;
  /** The old key's absolute expiry, epoch ms; 0 never. */
  readonly expiresAt: number;
  readonly fingerprint: string;
  /** The lifetime rule in ms (the cookie's originalMaxAge, or the ttl). */
  readonly ruleMs: number;
}

/** What `migrate-move.lua` did with one session: the version it wrote (moved), or why it did not. */
export type MoveResult = { readonly version: string } | 'exists' | 'expired';

/**
 * Runs `migrate-move.lua` for `items` in one call (keys of one slot): writes each session into its
 * shard's keys with geosession's metadata, unless the shard holds the session already. One result per
 * item, in order.
 */
export async function moveSessions(
  client: RedisClient,
  items: readonly MoveItem[],
  a: { region: string; hostNow: number; maxSkewMs: number },
): Promise<MoveResult[]> {
  const keys = items.flatMap((item) => [item.keys.value, item.keys.meta]);
  const args: (string | number)[] = [a.region, Math.floor(a.hostNow), a.maxSkewMs];
  for (const item of items) {
    args.push(item.value, Math.max(0, Math.floor(item.expiresAt)), item.fingerprint, Math.ceil(item.ruleMs));
  }
  const reply = (await runScript(client, 'migrate-move', keys, args)) as unknown[];
  return reply.map((answer) =>
    typeof answer === 'string' ? { version: answer } : Number(answer) === 1 ? 'exists' : 'expired',
  );
}

/**
 * Runs `migrate-drop.lua`: deletes each key of `items` (one slot) that still holds the value whose
 * SHA-1 is given. One result per item: true when the key is gone, false when it holds another value.
 */
export async function dropUnchanged(
  client: RedisClient,
  items: readonly { readonly key: string; readonly sha1: string }[],
): Promise<boolean[]> {
  const reply = (await runScript(
    client,
    'migrate-drop',
    items.map((item) => item.key),
    items.map((item) => item.sha1),
  )) as unknown[];
  return reply.map((code) => Number(code) === 0);
}

/**
 * Runs `migrate-undo.lua`: deletes the sessions {@link moveSessions} wrote (keys of one slot), each only
 * while its value and version are still those of the move. One result per item: true when taken back.
 */
export async function undoMoves(
  client: RedisClient,
  items: readonly { readonly keys: MoveItem['keys']; readonly sha1: string; readonly version: string }[],
): Promise<boolean[]> {
  const keys = items.flatMap((item) => [item.keys.value, item.keys.meta]);
  const args = items.flatMap((item) => [item.sha1, item.version]);
  const reply = (await runScript(client, 'migrate-undo', keys, args)) as unknown[];
  return reply.map((code) => Number(code) === 0);
}
