import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import { RedisCommandError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { ClusterKeyTracking } from '../redis/cluster-tracking.js';
import { expiryShift, parseMeta } from '../redis/meta.js';
import { KeyTracking, type KeyTrackingListener } from '../redis/tracking.js';
import type { RedisClient, SessionData } from '../types.js';
import { isValidSessionId } from '../validation/ids.js';
import { shardTags } from '../wire/outbox-shards.js';
import { shiftCookieExpiry } from './cookie-expiry.js';

/** The near cache's counters ({@link GeoSessionStore.nearCacheStats}). */
export interface NearCacheStats {
  /** Reads served from process memory. */
  readonly hits: number;
  /** Reads that went to Redis (no entry, an entry past its bound, or tracking not armed). */
  readonly misses: number;
  /** Session keys invalidated: heard from Redis (any writer) or written by this process. */
  readonly invalidations: number;
  /** Whole-cache drops: tracking lost or re-armed, a FLUSHALL/FLUSHDB, close. */
  readonly drops: number;
  /** Touches not sent because the cached session already lived nearly that long (`touchAfterMs`). */
  readonly touchesSkipped: number;
  /** Entries held now. */
  readonly entries: number;
  /** True while tracking is on: only then is anything served or kept. */
  readonly armed: boolean;
}

/** A cached session: its stored text, parsed per hit (every get returns a fresh object). */
export interface NearEntry {
  readonly text: string;
  /** How far writes that moved only the expiry moved `cookie.expires` (the metadata's `x - w`). */
  readonly shiftMs: number;
  /** Served until then (performance.now ms): the staleness bound, and never past the key's own expiry. */
  readonly until: number;
  /** The key's expiry, epoch ms by this host's clock, no later than the real one (Infinity: none). */
  readonly expiresAt: number;
  /** The session's lifetime rule from its metadata (ms), when known. */
  readonly ruleMs: number | undefined;
  /** The content fingerprint from its metadata (src/session/fingerprint.ts), when known. */
  readonly fingerprint: string | undefined;
  /** The parsed session, expiry shifted, made on the first hit and never handed out (copies are). */
  template?: SessionData | null;
}

/**
 * One read of a session from Redis that may fill the cache. An invalidation of its session (or a drop)
 * between its start and its fill voids it: a read sent before a write and answered after the write's
 * invalidation would otherwise put the old value back.
 */
export interface NearRead {
  readonly sid: string;
  /** The raw name of the session's value key (a Cluster routes the read by its slot). */
  readonly key: string;
  /** When the read was sent (performance.now ms). */
  readonly sentAt: number;
  /** Date.now() when the read was sent. */
  readonly sentAtEpoch: number;
  void: boolean;
  refs: number;
}

/** Options of {@link NearCache}. */
export interface NearCacheOptions {
  /** A single-node client, or a Cluster (tracking on every master, src/redis/cluster-tracking.ts). */
  readonly client: RedisClient;
  readonly keys: KeySpace;
  /** The client's ioredis keyPrefix (tracking sees raw key names). */
  readonly clientKeyPrefix: string;
  readonly max: number;
  readonly maxStalenessMs: number;
  readonly touchAfterMs: number;
  /** True when the store's serializer is `JSON`: a hit is then a copy of a parsed template. */
  readonly json: boolean;
  onError(error: unknown): void;
}

/**
 * Sessions kept in process memory, served only while Redis server-assisted tracking (src/redis/tracking.ts)
 * is armed, dropped one by one as Redis reports their keys written, and all at once whenever tracking
 * may have missed a write. Every entry also expires `maxStalenessMs` after its read was sent, whatever
 * tracking does, and never outlives its Redis key. docs/near-cache.md has the design.
 */
export class NearCache {
  private readonly entries = new Map<string, NearEntry>();
  private readonly reads = new Map<string, NearRead>();
  private readonly tracking: KeyTracking | ClusterKeyTracking;
  private readonly valuePrefix: string;
  private readonly metaHead: string;
  private readonly metaTail: string;
  private hits = 0;
  private misses = 0;
  private invalidations = 0;
  private drops = 0;
  private touchesSkipped = 0;
  private armed = false;

  constructor(private readonly options: NearCacheOptions) {
    const { keys, clientKeyPrefix, client } = options;
    this.valuePrefix = clientKeyPrefix + keys.prefix;
    const [head, tail] = metaParts(keys);
    this.metaHead = clientKeyPrefix + head;
    this.metaTail = tail;
    const listener: KeyTrackingListener = {
      armed: () => {
        this.dropAll();
        this.armed = true;
      },
      disarmed: () => {
        this.armed = false;
        this.dropAll();
      },
      invalidated: (keys) => (keys === null ? this.dropAll() : this.invalidateKeys(keys)),
      error: (error) => options.onError(new RedisCommandError('near cache tracking', error)),
    };
    const prefixes = trackedPrefixes(keys, clientKeyPrefix);
    const name = 'geosession-near';
    this.tracking = (client as Cluster).isCluster
      ? new ClusterKeyTracking({
          cluster: client as Cluster,
          prefixes,
          name,
          listener,
          roleCheckMs: Math.max(50, Math.min(500, options.maxStalenessMs / 2)),
        })
      : new KeyTracking({ client: client as Redis, prefixes, name, listener });
    this.tracking.start();
  }

  /** The entry to serve for `sid`, if one is fresh; counts a hit or a miss. */
  lookup(sid: string): NearEntry | undefined {
    const entry = this.entries.get(sid);
    if (entry !== undefined) {
      if (this.armed && performance.now() < entry.until) {
        this.hits++;
        return entry;
      }
      this.entries.delete(sid);
    }
    this.misses++;
    return undefined;
  }

  /**
   * Fills the cache from `read`, the MGET of `sid`'s value and metadata sent now, and a PTTL of
   * `valueKey` sent right after it (so that an entry never outlives its key). The read is answered once
   * both replies are in, so the entry is in place for the caller's next read. A failure keeps nothing.
   */
  fillFrom(sid: string, valueKey: string, read: Promise<(string | null)[]>): Promise<(string | null)[]> {
    const ticket = this.begin(sid, valueKey);
    if (ticket === undefined) return read;
    return Promise.all([read, this.options.client.pttl(valueKey)]).then(
      ([found, pttl]) => {
        const [text = null, meta = null] = found;
        this.finish(ticket, text, expiryShift(meta), pttl, parseMeta(meta));
        return found;
      },
      (error: unknown) => {
        this.finish(ticket, null, 0, null);
        throw error;
      },
    );
  }

  /**
   * Starts a read of `sid` (its value key `valueKey`, without the client's keyPrefix) from Redis that may
   * fill the cache; `undefined` while tracking is not armed, or on a Cluster while the master the key is
   * routed to is not armed.
   */
  begin(sid: string, valueKey = this.options.keys.session(sid)): NearRead | undefined {
    if (!this.armed) return undefined;
    const key = this.options.clientKeyPrefix + valueKey;
    if (!this.covers(key)) return undefined;
    let read = this.reads.get(sid);
    if (read === undefined) {
      read = { sid, key, sentAt: performance.now(), sentAtEpoch: Date.now(), void: false, refs: 0 };
      this.reads.set(sid, read);
    }
    read.refs++;
    return read;
  }

  /**
   * Ends `read`: keeps `text` unless the read was voided. `pttlMs` is the key's remaining lifetime as
   * Redis answered it (-1: none), `null` when it is not known (nothing is kept then).
   */
  finish(
    read: NearRead,
    text: string | null,
    shiftMs: number,
    pttlMs: number | null,
    meta?: { lifetimeMs?: number | undefined; fingerprint?: string | undefined },
  ): void {
    read.refs--;
    if (read.refs === 0 && this.reads.get(read.sid) === read) this.reads.delete(read.sid);
    if (read.void || !this.armed || text === null || pttlMs === null || pttlMs === -2) return;
    // A Cluster may have redirected the read to a master not armed (yet): nothing it read is kept.
    if (!this.covers(read.key)) return;
    const lifetime =
      pttlMs === -1 ? this.options.maxStalenessMs : Math.min(pttlMs, this.options.maxStalenessMs);
    if (lifetime <= 0) return;
    if (!this.entries.has(read.sid) && this.entries.size >= this.options.max) {
      // The oldest entry goes (insertion order: the one nearest its staleness bound).
      this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.delete(read.sid);
    this.entries.set(read.sid, {
      text,
      shiftMs,
      until: read.sentAt + lifetime,
      expiresAt: pttlMs === -1 ? Number.POSITIVE_INFINITY : read.sentAtEpoch + pttlMs,
      ruleMs: meta?.lifetimeMs,
      fingerprint: meta?.fingerprint,
    });
  }

  /**
   * A fresh copy of the entry's session for the JSON serializer (a copy of plain JSON data is exact and
   * far cheaper than parsing the text again), or `undefined` for another serializer or a text that is
   * not a JSON object (the caller parses the text as a read from Redis does).
   */
  copyOf(entry: NearEntry): SessionData | undefined {
    if (!this.options.json) return undefined;
    if (entry.template === undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(entry.text);
      } catch {
        parsed = null;
      }
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        if (entry.shiftMs !== 0) shiftCookieExpiry(parsed as SessionData, entry.shiftMs);
        entry.template = parsed as SessionData;
      } else entry.template = null;
    }
    return entry.template === null ? undefined : (copyJson(entry.template) as SessionData);
  }

  /**
   * True when a touch of `sid` to `lifetimeMs` from now can be skipped (`touchAfterMs`): its fresh entry
   * says the session already lives at least until `touchAfterMs` before that, under the same lifetime
   * rule. Its expiry then lags the cookie's by less than `touchAfterMs`. With `fingerprint`, a write of
   * the session: skipped only when its content is the cached one's (the write would be a touch).
   */
  skipsTouch(sid: string, lifetimeMs: number, ruleMs: number, fingerprint?: string): boolean {
    const after = this.options.touchAfterMs;
    if (after <= 0 || !this.armed) return false;
    const entry = this.entries.get(sid);
    if (entry === undefined || entry.ruleMs !== ruleMs || performance.now() >= entry.until) return false;
    if (fingerprint !== undefined && fingerprint !== entry.fingerprint) return false;
    if (Date.now() + lifetimeMs - entry.expiresAt >= after) return false;
    this.touchesSkipped++;
    return true;
  }

  /** Forgets `sid` and voids its reads in flight (a write of this process, before it is sent and after). */
  invalidate(sid: string): void {
    this.invalidations++;
    this.entries.delete(sid);
    const read = this.reads.get(sid);
    if (read !== undefined) {
      read.void = true;
      this.reads.delete(sid);
    }
  }

  /** Drops every entry and voids every read in flight. */
  dropAll(): void {
    this.drops++;
    this.entries.clear();
    for (const read of this.reads.values()) read.void = true;
    this.reads.clear();
  }

  stats(): NearCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      invalidations: this.invalidations,
      drops: this.drops,
      touchesSkipped: this.touchesSkipped,
      entries: this.entries.size,
      armed: this.armed,
    };
  }

  /** True once tracking is on (tests wait for it). */
  get ready(): boolean {
    return this.armed;
  }

  async close(): Promise<void> {
    this.armed = false;
    this.dropAll();
    await this.tracking.close();
  }

  /** The session id of a raw key name, when it is a value or metadata key of this store. */
  sidOfKey(key: string): string | undefined {
    const { keys, clientKeyPrefix } = this.options;
    if (keys.shards !== 0) {
      // Sharded: `P{T}<sid>` and `{T}:m:P{T}<sid>` (src/keys.ts); the shard's outbox, counter and digests
      // share `P{T}` but hold a `|`, which no session id does. The tag must be the sid's shard's.
      if (!key.startsWith(clientKeyPrefix)) return undefined;
      const name = key.slice(clientKeyPrefix.length);
      const value = keys.sidOf(name);
      if (value !== undefined) return value;
      const at = name.indexOf('}:m:');
      if (!name.startsWith('{') || at < 0) return undefined;
      const sid = keys.sidOf(name.slice(at + 4));
      return sid !== undefined && keys.meta(sid) === name ? sid : undefined;
    }
    const { metaHead, metaTail, valuePrefix } = this;
    if (
      key.startsWith(metaHead) &&
      key.endsWith(metaTail) &&
      key.length > metaHead.length + metaTail.length
    ) {
      const sid = key.slice(metaHead.length, key.length - metaTail.length);
      if (isValidSessionId(sid)) return sid;
    }
    if (key.startsWith(valuePrefix)) {
      const sid = key.slice(valuePrefix.length);
      if (isValidSessionId(sid)) return sid;
    }
    return undefined;
  }

  /** The tracking covers a read of raw key `key` (a Cluster: the master the key is routed to is armed). */
  private covers(key: string): boolean {
    return this.tracking instanceof ClusterKeyTracking ? this.tracking.covers(key) : true;
  }

  private invalidateKeys(keys: readonly string[]): void {
    for (const key of keys) {
      const sid = this.sidOfKey(key);
      if (sid !== undefined) this.invalidate(sid);
    }
  }
}

/** The unsharded metadata key of a sid is `<head><sid><tail>` (src/keys.ts): both, found around a marker. */
function metaParts(keys: KeySpace): [string, string] {
  const marker = '\u0000';
  const meta = keys.meta(marker);
  const at = meta.lastIndexOf(marker);
  return [meta.slice(0, at), meta.slice(at + marker.length)];
}

/**
 * The raw key prefixes to track: the value and metadata prefixes, one pair per shard in the sharded
 * layout (`P{T}` and `{T}:m:P{T}`). Tags end at their `}`, so no shard's prefixes start another's;
 * with an empty `P` a shard's value prefix starts its metadata one, and tracking drops the longer
 * (src/redis/tracking.ts `disjointPrefixes`): its keys are still announced under the shorter.
 */
export function trackedPrefixes(keys: KeySpace, clientKeyPrefix: string): string[] {
  if (keys.shards === 0) return [clientKeyPrefix + keys.prefix, clientKeyPrefix + metaParts(keys)[0]];
  return shardTags(keys.shards).flatMap((tag) => [
    `${clientKeyPrefix}${keys.prefix}{${tag}}`,
    `${clientKeyPrefix}{${tag}}:m:${keys.prefix}{${tag}}`,
  ]);
}

/** A deep copy of JSON data (what JSON.parse makes: plain objects, arrays, strings, numbers, booleans, null). */
function copyJson(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyJson(value[i]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const item = copyJson((value as Record<string, unknown>)[key]);
    // An own "__proto__" key (JSON.parse makes one) stays a key, never the copy's prototype.
    if (key === '__proto__')
      Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
    else out[key] = item;
  }
  return out;
}
