/**
 * The one place that names Redis keys.
 *
 * - The session value lives at `prefix + sid`, byte-compatible with connect-redis, so a switch in either
 *   direction keeps every logged-in user.
 * - Its metadata (tombstone flag, version, content fingerprint, expiry, cookie expiry) is one string,
 *   `t|v|f|x|e` (see src/scripts/includes/common.lua), under a name whose hash tag puts it in the value
 *   key's slot: `{sess:abc}:m`. Redis Cluster hashes a key without braces
 *   as a whole and a key with a tag by the tag, so both land in the same slot and one script can
 *   touch both. If the value key already has a tag of its own, the metadata key reuses that tag.
 * - A session id that holds a `}` but no complete `{tag}` cannot get a same-slot metadata key; ids from
 *   `genid`, express-session and @fastify/session never contain braces. This matters only under Cluster.
 * - Every internal key starts with `{`, so a `SCAN MATCH prefix*` over sessions never sees it, and with
 *   an empty prefix the bulk methods skip keys that start with `{`.
 */

/** Key builder bound to one store's prefix. */
export interface KeySpace {
  readonly prefix: string;
  /** The session value key. */
  session(sid: string): string;
  /** The session's metadata key, in the same cluster slot as {@link KeySpace.session}. */
  meta(sid: string): string;
  /** A region's outbox stream of change events. */
  outbox(region: string): string;
  /** The sid of a session value key, or `undefined` for a key this store does not own. */
  sidOf(key: string): string | undefined;
}

/** The hash tag Redis Cluster would use for `key`, or `undefined` when it has none. */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open === -1) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/** A region's outbox stream for the keyspace `prefix`. Starts with `{`, like every internal key. */
export function outboxKey(prefix: string, region: string): string {
  return `{${prefix}outbox}:${region}`;
}

/** True for keys geosession writes for its own bookkeeping (never a session value). */
export function isInternalKey(key: string): boolean {
  return key.startsWith('{');
}

/**
 * Key builder for a store with key prefix `prefix`, on a client whose ioredis `keyPrefix` is
 * `clientKeyPrefix` (ioredis prepends it to every key it sends, so the slot is computed on the key Redis
 * actually sees).
 */
export function createKeySpace(prefix: string, clientKeyPrefix = ''): KeySpace {
  return {
    prefix,
    session: (sid) => prefix + sid,
    meta(sid) {
      const key = prefix + sid;
      const tag = hashTagOf(clientKeyPrefix + key);
      return tag === undefined ? `{${clientKeyPrefix}${key}}:m` : `{${tag}}:m:${key}`;
    },
    outbox: (region) => outboxKey(prefix, region),
    sidOf(key) {
      if (!key.startsWith(prefix) || isInternalKey(key)) return undefined;
      return key.slice(prefix.length);
    },
  };
}
