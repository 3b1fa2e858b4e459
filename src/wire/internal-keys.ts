/**
 * Names of geosession's internal keys (streams and bookkeeping), shared by the key space (src/keys.ts)
 * and the Redis Streams transport, which must agree on them.
 *
 * Every internal key holds a `|`, which no session id and no valid prefix holds, so no session's value
 * or metadata key can ever be an internal key (see src/keys.ts for the whole argument). Without a hash
 * tag in the prefix the family is the tag, `{<prefix>|outbox}:hk`; a prefix with its own tag keeps it,
 * `<prefix>|outbox:hk`, so every key of the store shares the prefix's slot.
 */

/** The families of internal keys. */
export type InternalFamily =
  | 'outbox'
  | 'relay'
  | 'dead'
  | 'state'
  | 'seen'
  // per-bucket digests of the sessions a region holds (verify, repair)
  | 'digest'
  // what each store process of a region reports about replication (status without the app)
  | 'status'
  // a resync of the region in progress, and its progress
  | 'resync'
  // cache invalidation: the keys of one tag (src/invalidation/), `<name>` in place of a region
  | 'tag'
  // the per-user index of sessions and the "revoked before" mark (keyed by user id, not region)
  | 'user';

/** The hash tag Redis Cluster would use for `key`, or `undefined` when it has none. */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open === -1) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/**
 * The internal key of `family` for `region` under the key prefix `prefix`, on a client whose ioredis
 * `keyPrefix` is `clientKeyPrefix` (ioredis prepends it to every key it sends).
 */
export function internalKey(
  prefix: string,
  family: InternalFamily,
  region: string,
  clientKeyPrefix = '',
): string {
  return hashTagOf(clientKeyPrefix + prefix) === undefined
    ? `{${prefix}|${family}}:${region}`
    : `${prefix}|${family}:${region}`;
}

/**
 * The sequence counter of the outbox `outboxKey`: the outbox's key and `:seq`, so both share a slot (no
 * region id holds a `:`, so it is no other region's outbox).
 */
export function sequenceKey(outboxKey: string): string {
  return `${outboxKey}:seq`;
}

/** The ioredis `keyPrefix` of a client, `''` when it has none. */
export function keyPrefixOf(client: { options?: unknown }): string {
  return (client.options as { keyPrefix?: string } | undefined)?.keyPrefix ?? '';
}

/** Escapes SCAN glob characters so that `text` matches literally (ioredis applies no keyPrefix to MATCH). */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
