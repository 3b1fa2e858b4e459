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
 */

import { isValidSessionId } from './validation/ids.js';
import { hashTagOf, type InternalFamily, internalKey, sequenceKey } from './wire/internal-keys.js';

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
  /** The index of user `uid`'s sessions and its "revoked before" mark (src/redis/scripts/includes/user-index.lua). */
  user(uid: string): string;
  /** The sid of a session value key, or `undefined` for any other key. */
  sidOf(key: string): string | undefined;
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
export function createKeySpace(prefix: string, clientKeyPrefix = ''): KeySpace {
  const tagged = hashTagOf(clientKeyPrefix + prefix) !== undefined;
  return {
    prefix,
    session: (sid) => prefix + sid,
    meta(sid) {
      const key = prefix + sid;
      if (!tagged) return `{${clientKeyPrefix}${key}}:m`;
      return `{${hashTagOf(clientKeyPrefix + key)}}:m:${key}`;
    },
    internal: (family, region) => internalKey(prefix, family, region, clientKeyPrefix),
    sequence: (region) => sequenceKey(internalKey(prefix, 'outbox', region, clientKeyPrefix)),
    status: (region) => internalKey(prefix, 'status', region, clientKeyPrefix),
    seen(region, origin) {
      const key = internalKey(prefix, 'seen', region, clientKeyPrefix);
      return origin === undefined ? key : `${key}:${origin}`;
    },
    digest: (region) => internalKey(prefix, 'digest', region, clientKeyPrefix),
    resync(region, part) {
      const key = internalKey(prefix, 'resync', region, clientKeyPrefix);
      return part === undefined ? key : `${key}:${part}`;
    },
    tag: (name) => internalKey(prefix, 'tag', name, clientKeyPrefix),
    user: (uid) => internalKey(prefix, 'user', uid, clientKeyPrefix),
    revoked: (region) =>
      clientKeyPrefix +
      (hashTagOf(clientKeyPrefix + prefix) === undefined
        ? `{${prefix}|revoked}:${region}`
        : `${prefix}|revoked:${region}`),
    sidOf(key) {
      if (!key.startsWith(prefix)) return undefined;
      const sid = key.slice(prefix.length);
      return isValidSessionId(sid) ? sid : undefined;
    },
  };
}
