/**
 * The one place that names Redis keys. Given the store's key prefix `P` (and the client's ioredis
 * `keyPrefix`, which ioredis prepends to every key and so changes nothing below):
 *
 * | key | name |
 * |---|---|
 * | session value | `P<sid>`, byte-compatible with connect-redis |
 * | session metadata or tombstone | `{P<sid>}:m`, or `{tag}:m:P<sid>` when `P` holds a `{tag}` |
 * | outbox, relay stream, dead letters, state | `{P\|outbox}:<region>` …, or `P\|outbox:<region>` … with a tag |
 * | the outbox's sequence counter | the outbox's key and `:seq` (same slot) |
 * | each store process's status record | `{P\|status}:<region>` (a hash, one field per process) |
 * | numbers received per origin | `{P\|seen}:<region>`, and `:<origin>` for those held out of order |
 * | per-bucket digests (verify) | `{P\|digest}:<region>` (the set of windows), and `:<window>` for each window's hash |
 * | a resync of the region | `{P\|resync}:<region>`, and `:lock` while one runs |
 * | a cache invalidation tag (`P` is the invalidator's channel) | `{P\|tag}:<tag>` |
 * | a user's index of sessions and "revoked before" mark | `{P\|user}:<uid>` (a user id is checked as a session id) |
 * | revocation channel (pub/sub, no key) | the client's keyPrefix and `{P\|revoked}:<region>` |
 *
 * Why no session id can reach another key, whatever `P`:
 * - a session id has no `{`, `}` or `|` (src/validation/ids.ts) and a prefix has no `|` and at most one
 *   complete `{tag}` (checked by the store's options);
 * - so only internal keys hold a `|`: no value or metadata key is ever an internal key;
 * - a value key holds at most the prefix's braces, a metadata key always one more `{`: they never meet;
 * - each family is injective in the id, so two ids never share a key.
 *
 * Metadata sits in its value's Redis Cluster slot: its hash tag is the value key itself (Cluster hashes a
 * key without braces whole), or the prefix's own tag.
 *
 * The sharded layout (docs/replication.md, "Sharded outboxes"): with `shards` given (a Redis Cluster
 * that replicates, or `outboxShards` above 1), a session belongs to shard `i = shardOfSession(sid, N)`
 * whose hash tag is `T = shardTags(N)[i]` (`s<i>.<k>`, src/wire/outbox-shards.ts), and its keys and its
 * shard's keys all hash to `T`'s slot:
 *
 * | key | name |
 * |---|---|
 * | session value | `P{T}<sid>` |
 * | session metadata or tombstone | `{T}:m:P{T}<sid>` |
 * | the shard's outbox and its counter | `P{T}\|outbox:<region>` and `:seq` |
 * | the shard's digests | `P{T}\|digest:<region>`, and `:<window>` for each window's hash |
 * | the shard's index of user `uid`'s sessions and its "revoked before" mark | `P{T}\|user:<uid>` |
 * | everything else (the unsharded outbox for other kinds, seen, state, status…) | as above |
 *
 * The argument still holds: `T` holds no `{`, `}` or `|` and the prefix no brace (a prefix with its own
 * tag is never sharded), so a value key holds one `{` and no `|`, a metadata key two `{` and no `|`, a
 * shard's key a `|` after its one `}`, and the unsharded internal keys a `|` inside their first braces.
 * A value key's sid is what follows the first `}`; shards are told apart by their tags.
 */

import { isValidSessionId } from './validation/ids.js';
import { hashTagOf, type InternalFamily, internalKey, sequenceKey } from './wire/internal-keys.js';
import { shardOfSession, shardTags, streamName } from './wire/outbox-shards.js';

/** One outbox that session changes go to: its stream key and the name its numbers travel under. */
export interface SessionOutbox {
  /** The stream key (its counter is `sequenceKey(key)`). */
  readonly key: string;
  /** The shard, `undefined` for the one outbox of the unsharded layout. */
  readonly shard: number | undefined;
  /** The name its envelopes' ids carry (src/wire/outbox-shards.ts `streamName`). */
  readonly stream: string;
}

/** Key builder bound to one store's prefix. */
export interface KeySpace {
  readonly prefix: string;
  /** The session value key. */
  session(sid: string): string;
  /** The session's metadata key (its tombstone after a logout), in the same cluster slot. */
  meta(sid: string): string;
  /** An internal key of `family` for `region`. */
  internal(family: InternalFamily, region: string): string;
  /** The sequence counter of `region`'s outbox (same slot as the outbox). */
  sequence(region: string): string;
  /** The status hash of `region`: one JSON record per store process (src/session/status-redis.ts). */
  status(region: string): string;
  /**
   * What `region` received of `origin`'s numbered envelopes: the state hash, or with `origin` the
   * numbers held out of order (same slot).
   */
  seen(region: string, origin?: string): string;
  /** `region`'s digest key: the set of its digest windows, each a hash at this key and `:<window>`. */
  digest(region: string): string;
  /**
   * The state of a resync of `region` (a hash: state, from, startedAt, finishedAt, copied, total,
   * error…; src/admin/resync.ts), or with `part` a key beside it in the same slot (`lock`).
   */
  resync(region: string, part?: 'lock'): string;
  /** The set of key names of a cache invalidation tag (src/invalidation/; the prefix is its channel). */
  tag(name: string): string;
  /**
   * The index of user `uid`'s sessions and its "revoked before" mark (src/redis/scripts/includes/
   * user-index.lua): the one, or in the sharded layout shard `shard`'s, which lists the user's sessions
   * of that shard and sits in their slot (a `RangeError` without `shard` there).
   */
  user(uid: string, shard?: number): string;
  /** Every index key of user `uid` ({@link KeySpace.user}): one per shard, or the one. */
  userIndexes(uid: string): { readonly key: string; readonly shard: number | undefined }[];
  /** The sid of a session value key, or `undefined` for any other key. */
  sidOf(key: string): string | undefined;
  /** The user and shard of a user index key ({@link KeySpace.user}), or `undefined` for any other key. */
  userIndexOf(key: string): { readonly uid: string; readonly shard: number | undefined } | undefined;
  /** The number of outbox shards: 0 for the unsharded layout (one outbox per region). */
  readonly shards: number;
  /** The shard of session `sid` (`undefined` for the unsharded layout). */
  shardOf(sid: string): number | undefined;
  /**
   * The outbox session `sid`'s changes go to in `region`: its shard's, or the region's one outbox
   * (`internal('outbox', region)`) when unsharded.
   */
  outboxOf(sid: string, region: string): string;
  /** The digest key session `sid` counts in, in `region`: its shard's, or `digest(region)` when unsharded. */
  digestOf(sid: string, region: string): string;
  /** The digest key of `shard` (`undefined`: the unsharded one, {@link KeySpace.digest}). */
  shardDigest(shard: number | undefined, region: string): string;
  /** Every outbox session changes go to in `region`: one per shard, or the one outbox. */
  sessionOutboxes(region: string): SessionOutbox[];
  /** Every digest key of `region`: one per shard, or the one. */
  digests(region: string): string[];
  /**
   * The pub/sub channel on which `region`'s scripts publish the sessions they end (revocation events,
   * src/session/revocations.ts). A channel is no key: ioredis does not prefix it, so it holds the
   * client's `keyPrefix` itself.
   */
  revoked(region: string): string;
}

/** Why `prefix` cannot be a key prefix, or `undefined` when it can. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix.includes('|')) return 'must not contain "|" (geosession reserves it for internal keys)';
  const braces = prefix.replace(/[^{}]/g, '');
  if (braces === '') return undefined;
  if (braces !== '{}' || hashTagOf(prefix) === undefined) {
    return 'may hold braces only as one complete, non-empty Redis Cluster hash tag such as "{app}sess:"';
  }
  return undefined;
}

/**
 * Key builder for a store with key prefix `prefix` (see {@link prefixProblem}), on a client whose
 * ioredis `keyPrefix` is `clientKeyPrefix`.
 */
export function createKeySpace(prefix: string, clientKeyPrefix = '', shards = 0): KeySpace {
  const tagged = hashTagOf(clientKeyPrefix + prefix) !== undefined;
  if (shards !== 0 && (tagged || !Number.isSafeInteger(shards) || shards < 0)) {
    throw new RangeError(`a key space with prefix ${JSON.stringify(prefix)} cannot have ${shards} shards`);
  }
  const tags = shardTags(shards);
  const tagIndex = new Map(tags.map((tag, i) => [tag, i]));
  const shardOf = (sid: string) => (shards === 0 ? undefined : shardOfSession(sid, shards));
  const shardKey = (shard: number, family: 'outbox' | 'digest' | 'user', name: string) =>
    `${prefix}{${tags[shard]}}|${family}:${name}`;
  const session = (sid: string) => {
    const shard = shardOf(sid);
    return shard === undefined ? prefix + sid : `${prefix}{${tags[shard]}}${sid}`;
  };
  const digest = (region: string) => internalKey(prefix, 'digest', region, clientKeyPrefix);
  const user = (uid: string, shard?: number) => {
    if (shards === 0) return internalKey(prefix, 'user', uid, clientKeyPrefix);
    if (shard === undefined || tags[shard] === undefined) {
      throw new RangeError(`the sharded key space has no user index of shard ${shard}`);
    }
    return shardKey(shard, 'user', uid);
  };
  const shardDigest = (shard: number | undefined, region: string) =>
    shard === undefined ? digest(region) : shardKey(shard, 'digest', region);
  return {
    prefix,
    shards,
    shardOf,
    session,
    meta(sid) {
      const key = session(sid);
      const shard = shardOf(sid);
      if (shard !== undefined) return `{${tags[shard]}}:m:${key}`;
      if (!tagged) return `{${clientKeyPrefix}${key}}:m`;
      return `{${hashTagOf(clientKeyPrefix + key)}}:m:${key}`;
    },
    outboxOf(sid, region) {
      const shard = shardOf(sid);
      return shard === undefined
        ? internalKey(prefix, 'outbox', region, clientKeyPrefix)
        : shardKey(shard, 'outbox', region);
    },
    digestOf: (sid, region) => shardDigest(shardOf(sid), region),
    shardDigest,
    sessionOutboxes(region) {
      if (shards === 0) {
        const key = internalKey(prefix, 'outbox', region, clientKeyPrefix);
        return [{ key, shard: undefined, stream: streamName(region, undefined) }];
      }
      return tags.map((_, shard) => ({
        key: shardKey(shard, 'outbox', region),
        shard,
        stream: streamName(region, shard),
      }));
    },
    digests: (region) =>
      shards === 0 ? [digest(region)] : tags.map((_, shard) => shardKey(shard, 'digest', region)),
    internal: (family, region) => internalKey(prefix, family, region, clientKeyPrefix),
    sequence: (region) => sequenceKey(internalKey(prefix, 'outbox', region, clientKeyPrefix)),
    status: (region) => internalKey(prefix, 'status', region, clientKeyPrefix),
    seen(region, origin) {
      const key = internalKey(prefix, 'seen', region, clientKeyPrefix);
      return origin === undefined ? key : `${key}:${origin}`;
    },
    digest,
    resync(region, part) {
      const key = internalKey(prefix, 'resync', region, clientKeyPrefix);
      return part === undefined ? key : `${key}:${part}`;
    },
    tag: (name) => internalKey(prefix, 'tag', name, clientKeyPrefix),
    user,
    userIndexes: (uid) =>
      shards === 0
        ? [{ key: user(uid), shard: undefined }]
        : tags.map((_, shard) => ({ key: shardKey(shard, 'user', uid), shard })),
    revoked: (region) =>
      clientKeyPrefix +
      (hashTagOf(clientKeyPrefix + prefix) === undefined
        ? `{${prefix}|revoked}:${region}`
        : `${prefix}|revoked:${region}`),
    userIndexOf(key) {
      let uid: string;
      let shard: number | undefined;
      if (shards === 0) {
        const base = user('');
        if (!key.startsWith(base)) return undefined;
        uid = key.slice(base.length);
      } else {
        const match = /^\{([^{}|]*)\}\|user:(.*)$/s.exec(
          key.startsWith(prefix) ? key.slice(prefix.length) : '',
        );
        shard = match ? tagIndex.get(match[1] as string) : undefined;
        if (shard === undefined) return undefined;
        uid = (match as RegExpExecArray)[2] as string;
      }
      return isValidSessionId(uid) ? { uid, shard } : undefined;
    },
    sidOf(key) {
      if (!key.startsWith(prefix)) return undefined;
      let sid = key.slice(prefix.length);
      if (shards !== 0) {
        const close = sid.indexOf('}');
        if (!sid.startsWith('{') || close < 0) return undefined;
        const shard = tagIndex.get(sid.slice(1, close));
        sid = sid.slice(close + 1);
        if (shard === undefined || shardOfSession(sid, shards) !== shard) return undefined;
      }
      return isValidSessionId(sid) ? sid : undefined;
    },
  };
}
