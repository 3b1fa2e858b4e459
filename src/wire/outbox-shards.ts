/**
 * Outbox shards (docs/replication.md, "Sharded outboxes"): on a Redis Cluster, or with `outboxShards`
 * above 1, a region's session changes go to several outbox streams instead of one. Every change of one
 * session goes to the same shard ({@link shardOfSession}), so per-session order holds, and each shard has
 * a hash tag of its own ({@link shardTags}) that the session's keys carry too, so one script writes the
 * session, its metadata, its shard's outbox and counter and its shard's digest in one slot.
 */

/** Redis Cluster's number of hash slots. */
export const CLUSTER_SLOTS = 16384;

/** The most outbox shards a store may have. */
export const MAX_OUTBOX_SHARDS = 256;

/** CRC16-XMODEM of the UTF-8 bytes of `text`: the checksum Redis Cluster hashes a key's tag with. */
export function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of a hash tag (or of a key without one). */
export function slotOfTag(tag: string): number {
  return crc16(tag) % CLUSTER_SLOTS;
}

/**
 * The hash tags of `count` shards: shard `i`'s tag is `s<i>.<k>` with `k` the smallest non-negative
 * integer whose tag's slot lies in `[floor(i * 16384 / count), floor((i + 1) * 16384 / count))`. The
 * shards' slots are thus spread evenly over 0..16383, and so over the masters of a cluster whose slots
 * were split evenly (what `redis-cli --cluster create` does). A tag holds no `{`, `}` or `|`.
 */
export function shardTags(count: number): string[] {
  const tags: string[] = [];
  for (let i = 0; i < count; i++) {
    const low = Math.floor((i * CLUSTER_SLOTS) / count);
    const high = Math.floor(((i + 1) * CLUSTER_SLOTS) / count);
    for (let k = 0; ; k++) {
      const tag = `s${i}.${k}`;
      const slot = slotOfTag(tag);
      if (slot >= low && slot < high) {
        tags.push(tag);
        break;
      }
    }
  }
  return tags;
}

/**
 * The shard of session `sid` among `count`: FNV-1a (32 bits) of its characters, modulo `count`. Stable
 * across processes and regions (a session id is printable ASCII).
 */
export function shardOfSession(sid: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < sid.length; i++) {
    hash ^= sid.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/**
 * The name a shard's numbered envelopes carry in their ids (`<stream>:<epoch>.<n>`) and the receiving
 * side tracks their numbers under: the region itself for its one outbox (no shard), `<region>#<shard>`
 * for a shard's outbox. A region id holds no `#`.
 */
export function streamName(region: string, shard: number | undefined): string {
  return shard === undefined ? region : `${region}#${shard}`;
}
