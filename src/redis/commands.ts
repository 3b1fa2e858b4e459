/**
 * The typed face of the Lua scripts in src/redis/scripts: the one module that knows each script's KEYS
 * and ARGV order and its result codes. Everything else (the store, the applier, bulk tools, tests) goes
 * through these functions.
 */

import type { RedisClient } from '../types.js';
import { sequenceKey } from '../wire/internal-keys.js';
import { runScript } from './run-script.js';

/** What `set.lua` did. */
export enum WriteResult {
  /** Written with a new version. */
  Written = 0,
  /** The content was unchanged: only the expiry moved (a touch's cost). */
  Unchanged = 1,
  /** A logout's tombstone forbids the write. */
  Refused = -1,
  /** The user's "revoked before" mark (logout everywhere) ends the session: the caller destroys it. */
  Revoked = -2,
}

/** What `touch.lua` did. */
export enum TouchResult {
  /** The expiry moved. */
  Moved = 0,
  /** The session already lives that long. */
  Unchanged = 1,
  /** A logout's tombstone forbids the touch. */
  Refused = -1,
  /** The session is not in this region yet: its new expiry was recorded and sent. */
  Recorded = 2,
  /** Nothing done: the session's lifetime rule changed (its cookie's maxAge), so it must be written. */
  RuleChanged = 3,
}

/** What `destroy.lua` did. */
export enum DestroyResult {
  /** A tombstone was written. */
  Destroyed = 0,
  /** It was destroyed already. */
  AlreadyDestroyed = 1,
  /** Never saved (an id born in this region that it holds nothing of): a local tombstone, nothing replicated. */
  NeverSaved = 2,
}

/** What `apply.lua` did with one remote change. */
export enum ApplyResult {
  Applied = 0,
  /** A duplicate, or older data whose expiry was not later. */
  Unchanged = 1,
  /** Already past its expiry on arrival. */
  Expired = 2,
  /** A set or touch of a session destroyed here. */
  Refused = -1,
  /** A set or touch older than the stale-event horizon. */
  Stale = 3,
  /** A version or time too far ahead of this region's clock. */
  Skewed = 4,
  /** A touch that would remove the expiry or reach past the session's lifetime rule. */
  Invalid = 5,
}

/** The keys a session script needs. */
export interface SessionKeys {
  readonly value: string;
  readonly meta: string;
  /** This region's outbox when the store replicates. */
  readonly outbox: string | undefined;
  /** This region's digest key (kept only with an outbox), when the store keeps digests. */
  readonly digest?: string | undefined;
}

/**
 * KEYS of a session script: the value, its metadata, and when replicating the outbox, its counter and
 * the digest key.
 */
function keyList(keys: SessionKeys): string[] {
  const { value, meta, outbox, digest } = keys;
  if (outbox === undefined) return [value, meta];
  return digest === undefined
    ? [value, meta, outbox, sequenceKey(outbox)]
    : [value, meta, outbox, sequenceKey(outbox), digest];
}

/** Arguments of {@link writeSession}. */
export interface WriteArgs {
  readonly data: string;
  readonly fingerprint: string;
  /** Remaining lifetime in ms, 0 for never. */
  readonly lifetimeMs: number;
  /** The session's lifetime rule in ms (its cookie's maxAge, or the ttl), 0 for never. */
  readonly ruleMs: number;
  readonly region: string;
  readonly sid: string;
  /** The host's clock, epoch ms. */
  readonly hostNow: number;
  readonly maxSkewMs: number;
  readonly touchStepMs: number;
  /** The session's user id and that user's index key (`KeySpace.user`), when the store keeps the index. */
  readonly user?: { readonly id: string; readonly key: string } | undefined;
}

/** Runs `set.lua`. */
export function writeSession(
  client: RedisClient,
  keys: SessionKeys,
  a: WriteArgs,
): Promise<{ result: WriteResult; version: string }> {
  const args = [
    a.data,
    a.fingerprint,
    Math.ceil(a.lifetimeMs),
    a.region,
    a.sid,
    Math.floor(a.hostNow),
    a.maxSkewMs,
    a.touchStepMs,
    Math.ceil(a.ruleMs),
  ];
  const list = keyList(keys);
  if (a.user !== undefined) {
    args.push(a.user.id);
    list.push(a.user.key);
  }
  return runScript(client, 'set', list, args).then((reply) => {
    const [result, version] = reply as [number, string];
    return { result: result as WriteResult, version };
  });
}

/** Runs `touch.lua` (replicating stores only). */
export function touchSession(
  client: RedisClient,
  keys: SessionKeys & { outbox: string },
  a: {
    lifetimeMs: number;
    ruleMs: number;
    region: string;
    sid: string;
    touchStepMs: number;
    /** The session's user id and index key (the per-user index follows the touch). */
    user?: { readonly id: string; readonly key: string } | undefined;
  },
): Promise<TouchResult> {
  const args = [Math.ceil(a.lifetimeMs), a.region, a.sid, a.touchStepMs, Math.ceil(a.ruleMs)];
  const list = keyList(keys);
  if (a.user !== undefined) {
    args.push(a.user.id);
    list.push(a.user.key);
  }
  return runScript(client, 'touch', list, args).then((reply) => Number(reply) as TouchResult);
}

/** Arguments of {@link destroySession}. */
export interface DestroyArgs {
  readonly tombstoneMs: number;
  readonly region: string;
  readonly sid: string;
  /** The host's clock, epoch ms. */
  readonly hostNow: number;
  readonly maxSkewMs: number;
  /** Remaining validity in ms of the credential the session came from (a token's exp), 0 for none. */
  readonly credentialMs?: number;
  /** True when the id was born in this region: a never-saved one ends with a local tombstone only. */
  readonly bornHere?: boolean;
  /** Lifetime in ms of that local tombstone. */
  readonly localTombstoneMs?: number;
  /** The store's revocation channel (`KeySpace.revoked`): a session ended is published there. */
  readonly revokedChannel?: string;
  /** The reason published and replicated with it, `logout` when absent. */
  readonly reason?: 'logout' | 'logout-everywhere' | 'revoked-before';
  /** With a reason other than `logout`: the user whose sessions end, published and replicated. */
  readonly userId?: string;
  /** The region published as where the session was ended, when not this one (a remote logout everywhere). */
  readonly endedIn?: string;
}

/** Runs `touch-local.lua` (stores that do not replicate): whether the expiry moved. */
export function touchLocalSession(
  client: RedisClient,
  keys: { value: string; meta: string },
  lifetimeMs: number,
  user?: { readonly sid: string; readonly region: string; readonly key: string },
): Promise<boolean> {
  const list = user === undefined ? [keys.value, keys.meta] : [keys.value, keys.meta, user.key];
  const args = user === undefined ? [Math.ceil(lifetimeMs)] : [Math.ceil(lifetimeMs), user.sid, user.region];
  return runScript(client, 'touch-local', list, args).then((reply) => Number(reply) === 1);
}

/** Runs `destroy.lua`. */
export function destroySession(
  client: RedisClient,
  keys: SessionKeys,
  a: DestroyArgs,
): Promise<{ result: DestroyResult; version: string }> {
  const args = [
    a.tombstoneMs,
    a.region,
    a.sid,
    Math.floor(a.hostNow),
    a.maxSkewMs,
    Math.max(0, Math.ceil(a.credentialMs ?? 0)),
    a.bornHere ? '1' : '0',
    Math.ceil(a.localTombstoneMs ?? 0),
    a.revokedChannel ?? '',
    a.reason ?? '',
    a.userId ?? '',
    a.endedIn ?? '',
  ];
  return runScript(client, 'destroy', keyList(keys), args).then((reply) => {
    const [result, version] = reply as [number, string];
    return { result: result as DestroyResult, version };
  });
}

/** One remote change for {@link applyChanges}. */
export interface RemoteChange {
  readonly value: string;
  readonly meta: string;
  /** "r": a user's "revoked before" mark (value and meta are then both the user's index key). */
  readonly op: 's' | 't' | 'd' | 'r';
  readonly version: string;
  readonly expiresAt: number;
  /** The session's lifetime rule in ms; `undefined` for a destroy. */
  readonly lifetimeMs: number | undefined;
  readonly fingerprint: string;
  readonly data: string;
  /** When the origin made it, epoch ms. */
  readonly time: number;
  /** A set's session id and its user's index key, when the store keeps the per-user index. */
  readonly user?: { readonly sid: string; readonly key: string } | undefined;
}

/**
 * Runs `apply.lua` on a chunk of remote changes: a result per change, and whether each (of any op) was
 * older than the stale-event horizon. With `digestKey` (this region's, see `KeySpace.digest`) the
 * script keeps the region's digests in step; with `revokedChannel` (`KeySpace.revoked`) each destroy
 * that ends a session here is published there.
 */
export async function applyChanges(
  client: RedisClient,
  changes: readonly RemoteChange[],
  horizonMs: number,
  maxSkewMs: number,
  digestKey?: string,
  revokedChannel?: string,
): Promise<{ results: ApplyResult[]; old: boolean[] }> {
  const keys: string[] = [];
  const userKeys: string[] = [];
  const args: (string | number)[] = [horizonMs, maxSkewMs];
  for (const c of changes) {
    keys.push(c.value, c.meta);
    args.push(
      c.op,
      c.version,
      c.expiresAt,
      c.lifetimeMs === undefined ? '' : c.lifetimeMs,
      c.fingerprint,
      c.data,
      c.time,
      c.user?.sid ?? '',
    );
    if (c.user !== undefined) userKeys.push(c.user.key);
  }
  if (digestKey !== undefined) keys.push(digestKey);
  if (revokedChannel !== undefined) args.push(revokedChannel);
  keys.push(...userKeys);
  const reply = (await runScript(client, 'apply', keys, args)) as unknown[];
  if (!Array.isArray(reply) || reply.length !== changes.length + 1) {
    throw new TypeError(
      `apply.lua answered ${JSON.stringify(reply)?.slice(0, 80)} for ${changes.length} changes`,
    );
  }
  const results = reply.slice(0, changes.length).map(Number) as ApplyResult[];
  const flags = String(reply[changes.length]);
  return { results, old: results.map((_, i) => flags[i] === '1') };
}

/** Runs `heartbeat.lua`: announces the outbox's last number unless it appended within `quietMs`. */
export function appendHeartbeat(
  client: RedisClient,
  outbox: string,
  region: string,
  quietMs: number,
): Promise<boolean> {
  return runScript(client, 'heartbeat', [outbox, sequenceKey(outbox)], [region, quietMs]).then(
    (reply) => Number(reply) === 1,
  );
}

/**
 * Runs `append.lua`: appends one envelope of `kind` per body to `outbox`, numbered by its counter, in
 * one atomic call. Resolves with the envelope ids in the order of the bodies.
 */
export function appendEnvelopes(
  client: RedisClient,
  outbox: string,
  a: { region: string; kind: string; bodies: readonly string[] },
): Promise<string[]> {
  return runScript(client, 'append', [outbox, sequenceKey(outbox)], [a.region, a.kind, ...a.bodies]).then(
    (reply) => (reply as unknown[]).map(String),
  );
}

/** What {@link trackSequence} found for one origin. */
export interface TrackResult {
  /** Numbers handled before (by this or another process of the region). */
  readonly duplicates: number;
  /** Numbers that arrived inside a range given up as a gap earlier (they fill it). */
  readonly late: number;
  /** Every number up to this one was handled or given up. */
  readonly low: number;
  /** The range given up as a gap by this call, when any. */
  readonly gap: { readonly from: number; readonly to: number } | undefined;
  /** The last open gap of this origin was filled by late numbers. */
  readonly healed: boolean;
  /** `first` contact, a `new-epoch`, numbers of an `old-epoch` (not tracked), or `ok`. */
  readonly status: 'ok' | 'first' | 'new-epoch' | 'old-epoch';
  /** Ranges given up as gaps and not filled yet. */
  readonly gaps: readonly { readonly from: number; readonly to: number }[];
}

/** Parses `a-b,c-d`. */
export function parseRanges(text: string): { from: number; to: number }[] {
  if (text === '') return [];
  return text.split(',').map((range) => {
    const [from = '0', to = '0'] = range.split('-');
    return { from: Number(from), to: Number(to) };
  });
}

/** Runs `track.lua` for the numbers of one origin and epoch that a batch brought (after it was applied). */
export function trackSequence(
  client: RedisClient,
  keys: { state: string; held: string },
  a: {
    origin: string;
    epoch: string;
    graceMs: number;
    announced: number | undefined;
    numbers: readonly number[];
  },
): Promise<TrackResult> {
  const args: (string | number)[] = [a.origin, a.epoch, a.graceMs, a.announced ?? '', ...a.numbers];
  return runScript(client, 'track', [keys.state, keys.held], args).then((reply) => {
    const [duplicates, late, low, from, to, healed, status, gaps] = reply as [
      number,
      number,
      string | number,
      string,
      string,
      number,
      TrackResult['status'],
      string,
    ];
    const gapFrom = Number(from);
    return {
      duplicates: Number(duplicates),
      late: Number(late),
      low: Number(low),
      gap: gapFrom > 0 ? { from: gapFrom, to: Number(to) } : undefined,
      healed: Number(healed) === 1,
      status,
      gaps: parseRanges(String(gaps ?? '')),
    };
  });
}

/** The keys of a region's dead letters (dead-letter.lua). */
export interface DeadLetterKeys {
  /** The dead-letter stream. */
  readonly stream: string;
  /** The sum of its entries' sizes in bytes (same slot). */
  readonly bytes: string;
}

/**
 * Appends a dead letter (`fields`: field, value, …) and trims the oldest until the stream holds at most
 * `maxEntries` entries and `maxBytes` bytes. Resolves to the number of entries trimmed.
 */
export function addDeadLetter(
  client: RedisClient,
  keys: DeadLetterKeys,
  bounds: { maxEntries: number; maxBytes: number },
  fields: readonly string[],
): Promise<number> {
  return runScript(
    client,
    'dead-letter',
    [keys.stream, keys.bytes],
    [bounds.maxEntries, bounds.maxBytes, ...fields],
  ).then(Number);
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
 * Runs `cover-sequence.lua`: records in `keys.state` that `origin`'s numbers of `epoch` up to `low` are
 * handled (a resync's copy holds them), keeping `gaps` (the copied region's own) as gaps.
 */
export function coverSequence(
  client: RedisClient,
  keys: { state: string; held: string },
  a: { origin: string; epoch: string; low: number; gaps: readonly { from: number; to: number }[] },
): Promise<'set' | 'moved' | 'behind' | 'old-epoch'> {
  const gaps = a.gaps.map((g) => `${g.from}-${g.to}`).join(',');
  return runScript(client, 'cover-sequence', [keys.state, keys.held], [a.origin, a.epoch, a.low, gaps]).then(
    (reply) => String(reply) as 'set' | 'moved' | 'behind' | 'old-epoch',
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
