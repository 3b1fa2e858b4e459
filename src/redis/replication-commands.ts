/**
 * The typed face of the replication scripts in src/redis/scripts: appending envelopes and heartbeats to
 * an outbox (append.lua, heartbeat.lua), applying remote changes (apply.lua), tracking the numbered
 * envelopes of each origin (track.lua, cover-sequence.lua) and the dead-letter stream (dead-letter.lua).
 * The one module that knows these scripts' KEYS and ARGV order and their result codes.
 */

import type { RedisClient } from '../types.js';
import { sequenceKey } from '../wire/internal-keys.js';
import { runScript } from './run-script.js';

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
