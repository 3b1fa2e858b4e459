/**
 * The typed face of the session scripts in src/redis/scripts (set.lua, touch.lua, touch-local.lua,
 * destroy.lua): the one module that knows their KEYS and ARGV order and their result codes.
 *
 * The other scripts' typed functions live beside it, by concern: ./replication-commands.ts (outbox,
 * apply, sequence tracking, dead letters), ./state-commands.ts (reading and copying session states,
 * migration), ./registry-commands.ts and ./invalidation-commands.ts. The first two are re-exported here,
 * so that `redis/commands.js` still names every session and replication script.
 */

import type { RedisClient } from '../types.js';
import { sequenceKey } from '../wire/internal-keys.js';
import { runScript } from './run-script.js';

export {
  ApplyResult,
  addDeadLetter,
  appendEnvelopes,
  appendHeartbeat,
  applyChanges,
  coverSequence,
  type DeadLetterKeys,
  parseRanges,
  type RemoteChange,
  type TrackResult,
  trackSequence,
} from './replication-commands.js';
export {
  CopyResult,
  copyStates,
  forgetMeta,
  type MigrateItem,
  MigrateResult,
  migrateSessions,
  readStates,
  type StoredState,
} from './state-commands.js';

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
