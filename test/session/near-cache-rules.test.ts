/**
 * The near cache's rules, on the NearCache itself with a real Redis behind its tracking: a read voided
 * by an invalidation or a drop between its start and its end fills nothing; nothing is served or kept
 * while tracking is not armed; an entry lasts at most maxStalenessMs from its read and never past its
 * key's remaining lifetime; `max` bounds the entries; raw key names map to session ids (value and
 * metadata keys, the client's keyPrefix, a tagged prefix) and nothing else does.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createKeySpace } from '../../src/keys.js';
import { disjointPrefixes } from '../../src/redis/tracking.js';
import { NearCache, trackedPrefixes } from '../../src/session/near-cache.js';
import { resolveOptions } from '../../src/session/options.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { generateSessionId } from '../../src/validation/ids.js';
import { eventually, hasRedis } from '../helpers/servers.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('disjointPrefixes', () => {
  it('keeps only prefixes no other one starts', () => {
    expect(disjointPrefixes(['sess:', '{sess:', 'sess:x'])).toEqual(['sess:', '{sess:']);
    expect(disjointPrefixes(['', '{'])).toEqual(['']);
    expect(disjointPrefixes(['a', 'a'])).toEqual(['a']);
  });
});

describe.skipIf(!hasRedis)('NearCache rules', () => {
  let client: Redis;
  const caches: NearCache[] = [];
  const open = (max = 100, maxStalenessMs = 60_000, prefix = 'rules:', keyPrefix = '', shards = 0) => {
    const cache = new NearCache({
      client,
      keys: createKeySpace(prefix, keyPrefix, shards),
      clientKeyPrefix: keyPrefix,
      max,
      maxStalenessMs,
      touchAfterMs: 5000,
      json: true,
      onError: (error) => {
        throw error;
      },
    });
    caches.push(cache);
    return cache;
  };
  const armedCache = async (...args: Parameters<typeof open>) => {
    const cache = open(...args);
    await eventually(() => cache.ready);
    return cache;
  };
  /** Fills `sid` through a read started now. */
  const fill = (cache: NearCache, sid: string, text: string, pttl = -1) => {
    const read = cache.begin(sid);
    if (read === undefined) throw new Error('not armed');
    cache.finish(read, text, 0, pttl);
  };

  beforeAll(() => {
    client = new Redis({ port: 6379, host: '127.0.0.1' });
  });
  afterAll(async () => {
    for (const cache of caches) await cache.close();
    client.disconnect();
  });

  it('serves nothing and keeps nothing until tracking is armed', async () => {
    const cache = open();
    expect(cache.begin(generateSessionId('hk'))).toBeUndefined();
    await eventually(() => cache.ready);
    const sid = generateSessionId('hk');
    fill(cache, sid, '{"a":1}');
    expect(cache.lookup(sid)?.text).toBe('{"a":1}');
  });

  it('a read voided by an invalidation or a drop before it ends fills nothing', async () => {
    const cache = await armedCache();
    const sid = generateSessionId('hk');
    const read = cache.begin(sid);
    cache.invalidate(sid);
    cache.finish(read as NonNullable<typeof read>, 'old', 0, -1);
    expect(cache.lookup(sid)).toBeUndefined();

    const second = cache.begin(sid);
    const shared = cache.begin(sid); // concurrent reads of one id share the voiding
    cache.dropAll();
    cache.finish(second as NonNullable<typeof second>, 'old', 0, -1);
    cache.finish(shared as NonNullable<typeof shared>, 'old', 0, -1);
    expect(cache.lookup(sid)).toBeUndefined();

    // A read started after the invalidation fills.
    fill(cache, sid, 'new');
    expect(cache.lookup(sid)?.text).toBe('new');
    const stats = cache.stats();
    expect(stats.hits).toBe(1);
    expect(stats.invalidations).toBeGreaterThanOrEqual(1);
  });

  it('an entry lasts at most maxStalenessMs from its read, and never past its key', async () => {
    const cache = await armedCache(100, 150);
    const stale = generateSessionId('hk');
    const short = generateSessionId('hk');
    fill(cache, stale, 'x');
    fill(cache, short, 'y', 20);
    expect(cache.lookup(stale)).toBeDefined();
    await wait(60);
    expect(cache.lookup(short)).toBeUndefined();
    await wait(150);
    expect(cache.lookup(stale)).toBeUndefined();
    // A key already gone (PTTL -2) or unknown is not kept.
    const gone = generateSessionId('hk');
    fill(cache, gone, 'z', -2);
    expect(cache.lookup(gone)).toBeUndefined();
  });

  it('skips a touch only for a fresh entry with the same rule whose expiry is within touchAfterMs', async () => {
    const cache = await armedCache();
    const sid = generateSessionId('hk');
    expect(cache.skipsTouch(sid, 60_000, 60_000)).toBe(false); // not cached
    const read = cache.begin(sid) as NonNullable<ReturnType<NearCache['begin']>>;
    cache.finish(read, 'v', 0, 60_000, { lifetimeMs: 60_000, fingerprint: 'fp1' });
    expect(cache.skipsTouch(sid, 60_000, 60_000)).toBe(true); // moves it by less than 5 s
    expect(cache.skipsTouch(sid, 70_000, 60_000)).toBe(false); // by 10 s
    expect(cache.skipsTouch(sid, 60_000, 90_000)).toBe(false); // another rule ("remember me")
    expect(cache.skipsTouch(sid, 60_000, 60_000, 'fp2')).toBe(false); // a save of changed content
    expect(cache.skipsTouch(sid, 60_000, 60_000, 'fp1')).toBe(true); // a save of the same content
    cache.invalidate(sid);
    expect(cache.skipsTouch(sid, 60_000, 60_000)).toBe(false);
    expect(cache.stats().touchesSkipped).toBe(2);
  });

  /** The shape of the session copied in the next test. */
  interface Copied {
    cookie: { expires: string };
    cart: { qty: number }[];
    admin?: boolean;
  }

  it('hands out deep copies of the parsed session, its expiry shifted, and keeps "__proto__" a key', async () => {
    const cache = await armedCache();
    const sid = generateSessionId('hk');
    const text =
      '{"cookie":{"expires":"2030-01-01T00:00:00.000Z"},"cart":[{"qty":1}],"__proto__":{"admin":true}}';
    const read = cache.begin(sid) as NonNullable<ReturnType<NearCache['begin']>>;
    cache.finish(read, text, 60_000, -1);
    const entry = cache.lookup(sid) as NonNullable<ReturnType<NearCache['lookup']>>;
    const first = cache.copyOf(entry) as unknown as Copied;
    expect(first.cookie.expires).toBe('2030-01-01T00:01:00.000Z');
    expect(Object.getPrototypeOf(first)).toBe(Object.prototype);
    expect(first.admin).toBeUndefined();
    expect(Object.keys(first)).toContain('__proto__');
    (first.cart[0] as { qty: number }).qty = 9;
    first.cookie.expires = 'x';
    const second = cache.copyOf(entry) as unknown as Copied;
    expect(second.cart[0]?.qty).toBe(1);
    expect(second.cookie.expires).toBe('2030-01-01T00:01:00.000Z');
    // Text that is not a JSON object: no copy (the store parses it and reports it as corrupt).
    const bad = generateSessionId('hk');
    fill(cache, bad, 'not json');
    expect(cache.copyOf(cache.lookup(bad) as NonNullable<ReturnType<NearCache['lookup']>>)).toBeUndefined();
  });

  it('keeps at most `max` entries, dropping the oldest', async () => {
    const cache = await armedCache(2);
    const [a, b, c] = [0, 1, 2].map(() => generateSessionId('hk')) as [string, string, string];
    fill(cache, a, 'a');
    fill(cache, b, 'b');
    fill(cache, c, 'c');
    expect(cache.stats().entries).toBe(2);
    expect(cache.lookup(a)).toBeUndefined();
    expect(cache.lookup(c)?.text).toBe('c');
  });

  it('maps value and metadata keys to their session, with a keyPrefix and a tagged prefix', async () => {
    const sid = generateSessionId('hk');
    for (const [prefix, keyPrefix] of [
      ['sess:', ''],
      ['sess:', 'app:'],
      ['{app}sess:', ''],
      ['{app}sess:', 'kp:'],
      ['', ''],
    ] as const) {
      const cache = open(10, 1000, prefix, keyPrefix);
      const keys = createKeySpace(prefix, keyPrefix);
      expect(cache.sidOfKey(keyPrefix + keys.session(sid))).toBe(sid);
      expect(cache.sidOfKey(keyPrefix + keys.meta(sid))).toBe(sid);
      expect(cache.sidOfKey(keyPrefix + keys.internal('outbox', 'hk'))).toBeUndefined();
      expect(cache.sidOfKey(keyPrefix + keys.sequence('hk'))).toBeUndefined();
      await cache.close();
    }
  });

  it("maps the sharded layout's value and metadata keys to their session, and its shard keys to none", async () => {
    for (const [prefix, keyPrefix] of [
      ['sess:', ''],
      ['sess:', 'app:'],
      ['', ''],
      ['', 'kp:'],
    ] as const) {
      const cache = open(10, 1000, prefix, keyPrefix, 4);
      const keys = createKeySpace(prefix, keyPrefix, 4);
      const other = createKeySpace(prefix, keyPrefix, 8);
      for (let i = 0; i < 20; i++) {
        const sid = generateSessionId('hk');
        expect(cache.sidOfKey(keyPrefix + keys.session(sid))).toBe(sid);
        expect(cache.sidOfKey(keyPrefix + keys.meta(sid))).toBe(sid);
        // Another shard count's tags, or a tag that is not the sid's shard's: not this store's session.
        if (other.session(sid) !== keys.session(sid))
          expect(cache.sidOfKey(keyPrefix + other.session(sid))).toBeUndefined();
        const wrong = keys.meta(sid).replace(/^\{[^}]*\}/, '{s9.0}');
        expect(cache.sidOfKey(keyPrefix + wrong)).toBeUndefined();
        expect(cache.sidOfKey(keys.session(sid).replace(prefix, 'zz'))).toBeUndefined();
      }
      for (const outbox of keys.sessionOutboxes('hk')) {
        // Under the shard's value prefix `P{T}`, but no session's.
        expect(cache.sidOfKey(keyPrefix + outbox.key)).toBeUndefined();
        expect(cache.sidOfKey(`${keyPrefix + outbox.key}:seq`)).toBeUndefined();
      }
      for (const digest of keys.digests('hk')) {
        expect(cache.sidOfKey(keyPrefix + digest)).toBeUndefined();
        expect(cache.sidOfKey(`${keyPrefix + digest}:123`)).toBeUndefined();
      }
      expect(cache.sidOfKey(keyPrefix + keys.internal('outbox', 'hk'))).toBeUndefined();
      await cache.close();
    }
  });

  it("tracks every shard's prefixes (Redis accepts them) and hears their writes, with an empty prefix too", async () => {
    for (const prefix of ['shard:', '']) {
      const keys = createKeySpace(prefix, 'kp:', 4);
      const prefixes = trackedPrefixes(keys, 'kp:');
      expect(prefixes).toHaveLength(8);
      // An empty prefix makes each shard's value prefix start its metadata one; Redis refuses such a
      // pair in one CLIENT TRACKING, so the longer goes.
      expect(disjointPrefixes(prefixes)).toHaveLength(prefix === '' ? 4 : 8);
      const cache = await armedCache(100, 60_000, prefix, 'kp:', 4);
      const sids = Array.from({ length: 12 }, () => generateSessionId('hk'));
      for (const sid of sids) fill(cache, sid, 'v');
      expect(new Set(sids.map((sid) => keys.shardOf(sid))).size).toBeGreaterThan(1);
      for (const [i, sid] of sids.entries()) {
        const key = `kp:${i % 2 === 0 ? keys.meta(sid) : keys.session(sid)}`;
        await client.set(key, 'x', 'PX', 5000);
        await eventually(() => cache.lookup(sid) === undefined);
        await client.del(key);
      }
      // The loop's last DELs are announced too: a marker written after them is heard after them (one
      // subscriber connection, in order), so once it is, nothing of the loop is left to count below.
      const marker = generateSessionId('hk');
      const markerKey = `kp:${keys.session(marker)}`;
      fill(cache, marker, 'v');
      await client.set(markerKey, 'x', 'PX', 5000);
      await eventually(() => cache.lookup(marker) === undefined);
      // A shard's outbox write is heard, and forgets nothing.
      const kept = generateSessionId('hk');
      fill(cache, kept, 'v');
      const before = cache.stats().invalidations;
      const outbox = `kp:${keys.outboxOf(kept, 'hk')}`;
      await client.set(outbox, 'x', 'PX', 5000);
      await client.set(`kp:${keys.session(kept)}:x`, 'x', 'PX', 5000);
      await client.del(outbox, `kp:${keys.session(kept)}:x`);
      await wait(50);
      expect(cache.lookup(kept)?.text).toBe('v');
      expect(cache.stats().invalidations).toBe(before);
      expect(cache.stats().armed).toBe(true);
      await client.del(markerKey);
      await cache.close();
    }
  });

  it('a tracking-redir-broken notice on the channel drops everything, and tracking re-arms', async () => {
    const cache = await armedCache(100, 60_000, 'broken:');
    const sid = generateSessionId('hk');
    fill(cache, sid, 'v');
    const drops = cache.stats().drops;
    await client.publish('__redis__:invalidate', 'tracking-redir-broken');
    await eventually(() => cache.stats().drops > drops);
    expect(cache.lookup(sid)).toBeUndefined();
    await eventually(() => cache.ready);
    fill(cache, sid, 'w');
    expect(cache.lookup(sid)?.text).toBe('w');
  });

  it('an invalidation heard from Redis forgets the entry', async () => {
    const cache = await armedCache(100, 60_000, 'heard:');
    const sid = generateSessionId('hk');
    fill(cache, sid, 'v');
    const keys = createKeySpace('heard:');
    await client.set(keys.meta(sid), 'x', 'PX', 5000);
    await eventually(() => cache.stats().entries === 0);
    expect(cache.lookup(sid)).toBeUndefined();
    await client.del(keys.meta(sid));

    // With an ioredis keyPrefix: tracking sees raw names, the prefix included.
    const prefixed = await armedCache(100, 60_000, 'heard:', 'kp:');
    fill(prefixed, sid, 'v');
    await client.set(`kp:${keys.session(sid)}`, 'x', 'PX', 5000);
    await eventually(() => prefixed.stats().entries === 0);
    await client.del(`kp:${keys.session(sid)}`);
  });
});

describe('the nearCache option', () => {
  const client = new Redis({ lazyConnect: true });
  const make = (nearCache: unknown, c: unknown = client) =>
    resolveOptions({ region: 'hk', client: c as Redis, nearCache: nearCache as false });

  it('is off by default and with false; {} takes the defaults', () => {
    expect(make(undefined).nearCache).toBeUndefined();
    expect(make(false).nearCache).toBeUndefined();
    expect(make({}).nearCache).toEqual({ max: 10_000, maxStalenessMs: 1000, touchAfterMs: 0 });
    expect(make({ max: 5, maxStalenessMs: 50, touchAfterMs: 0 }).nearCache).toEqual({
      max: 5,
      maxStalenessMs: 50,
      touchAfterMs: 0,
    });
  });

  it('refuses bad values with a ConfigError naming the option', () => {
    expect(() => make(true)).toThrow(/option `nearCache` must be false or an object/);
    expect(() => make({ max: 0 })).toThrow(/option `nearCache.max`/);
    expect(() => make({ max: 1.5 })).toThrow(/option `nearCache.max`/);
    expect(() => make({ maxStalenessMs: -1 })).toThrow(/option `nearCache.maxStalenessMs`/);
    expect(() => make({ maxStalenessMs: 120_000 })).toThrow(/option `nearCache.maxStalenessMs`/);
    expect(() => make({ touchAfterMs: -5 })).toThrow(/option `nearCache.touchAfterMs`/);
    expect(() => make({ ttl: 5 })).toThrow(/option `nearCache.ttl` is not an option/);
    expect(() => make({ max: 0 })).toThrow(ConfigError);
  });

  it('takes the sharded key layout (outboxShards above 1)', () => {
    const transport = createMemoryTransport();
    for (const outboxShards of [1, 4]) {
      const resolved = resolveOptions({
        region: 'hk',
        client,
        nearCache: {},
        transport,
        outboxShards,
        sealer: 'none',
      });
      expect(resolved.nearCache).toEqual({ max: 10_000, maxStalenessMs: 1000, touchAfterMs: 0 });
    }
  });

  it('takes a Cluster client that reads from masters', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    expect(make({}, cluster).nearCache).toEqual({ max: 10_000, maxStalenessMs: 1000, touchAfterMs: 0 });
    // Replicas are not tracked: a read from one may predate a write already announced.
    const fromReplicas = new Cluster([{ host: '127.0.0.1', port: 1 }], {
      lazyConnect: true,
      scaleReads: 'slave',
    });
    expect(() => make({}, fromReplicas)).toThrow(
      /option `nearCache` needs a Cluster client reading from masters/,
    );
  });
});
