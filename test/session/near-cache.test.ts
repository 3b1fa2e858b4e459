/**
 * The near cache (src/session/near-cache.ts, src/redis/tracking.ts) against real Redis, with ioredis 6
 * and ioredis 5: a write, destroy or logout everywhere made by another process of the region (a child
 * process), or by another region and applied here by replication, is never served once the write's
 * invalidation has reached the process; a killed tracking connection or a Redis restart drops the
 * cache and tracking re-arms; entries are never served past `maxStalenessMs` when invalidations are lost.
 *
 * "Reached the process": Redis writes the invalidation to the subscriber's socket before it replies to
 * the write, so by the time the writer's reply (or its IPC message, sent after it) is handled here, the
 * invalidation is in this process's socket buffer; one turn of the event loop (setImmediate) handles it.
 */
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { Redis as Redis5 } from 'ioredis5';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryTransport, GeoSessionStore, type SessionData } from '../../src/index.js';
import { NearCacheChild as Child } from '../helpers/near-cache-child-process.js';
import { cached, expectFarChangesServed, turn } from '../helpers/near-cache-reads.js';
import {
  dropKeys,
  eventually,
  hasRedis,
  type PrivateRedis,
  startRedis,
  uniquePrefix,
} from '../helpers/servers.js';

const DB = 5;

const session = (fields: Record<string, unknown>): SessionData => ({
  cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000).toISOString() },
  ...fields,
});

/** One turn of the event loop: socket data already received is handled. */

const armed = (store: GeoSessionStore) => eventually(() => store.nearCacheStats()?.armed === true);

/** The client ids of the store's tracking connections (named geosession-near-sub / -track). */
async function trackingIds(admin: Redis): Promise<{ sub: string; track: string }> {
  const list = (await admin.client('LIST')) as string;
  const idOf = (name: string) =>
    list
      .split('\n')
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /id=(\d+)/.exec(line)?.[1] as string);
  const [sub = '', track = ''] = [idOf('geosession-near-sub'), idOf('geosession-near-track')].map((ids) => {
    expect(ids).toHaveLength(1);
    return ids[0];
  });
  return { sub, track };
}

describe.skipIf(!hasRedis).each([
  ['ioredis 6', Redis],
  ['ioredis 5', Redis5 as unknown as typeof Redis],
])('near cache, %s', (_name, Client) => {
  const prefix = uniquePrefix('near');
  let client: Redis;
  let admin: Redis;
  let store: GeoSessionStore;
  let child: Child;

  beforeAll(async () => {
    client = new Client({ port: 6379, host: '127.0.0.1', db: DB });
    client.on('error', () => {});
    admin = new Redis({ port: 6379, host: '127.0.0.1', db: DB });
    store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix,
      userId: (s) => s.user as string | undefined,
      nearCache: { maxStalenessMs: 60_000 },
    });
    store.on('error', () => {});
    child = await Child.start({
      GEOSESSION_REDIS_PORT: '6379',
      GEOSESSION_DB: String(DB),
      GEOSESSION_PREFIX: prefix,
    });
    await armed(store);
  });

  afterAll(async () => {
    await child?.stop();
    await store?.close();
    await dropKeys(admin, prefix);
    client?.disconnect();
    admin?.disconnect();
  });

  it('serves a fresh copy per read, and what another process writes, destroys or logs out next', async () => {
    const sid = store.genid();
    await store.set(sid, session({ n: 1, user: 'ann' }));
    const first = await cached(store, sid);
    expect(first?.n).toBe(1);
    (first as SessionData).n = 99; // express-session mutates the session it gets
    ((first as SessionData).cookie as { expires: string }).expires = 'changed';
    const again = await store.get(sid);
    expect(again?.n).toBe(1);
    expect(again?.cookie?.expires).not.toBe('changed');

    await child.call('set', { sid, data: session({ n: 2, user: 'ann' }) });
    await turn();
    expect((await store.get(sid))?.n).toBe(2);
    expect((await cached(store, sid))?.n).toBe(2);

    await child.call('destroy', { sid });
    await turn();
    expect(await store.get(sid)).toBeNull();

    const other = store.genid();
    await child.call('set', { sid: other, data: session({ n: 3, user: 'bob' }) });
    expect((await cached(store, other))?.n).toBe(3);
    await child.call('logout', { user: 'bob' });
    await turn();
    expect(await store.get(other)).toBeNull();
    const stats = store.nearCacheStats();
    expect(stats?.invalidations).toBeGreaterThan(0);
    expect(stats?.misses).toBeGreaterThan(0);
  });

  it("this process's own writes are read back at once", async () => {
    const sid = store.genid();
    await store.set(sid, session({ n: 1 }));
    expect((await cached(store, sid))?.n).toBe(1);
    await store.set(sid, session({ n: 2 }));
    expect((await store.get(sid))?.n).toBe(2);
    await cached(store, sid);
    await store.destroy(sid);
    expect(await store.get(sid)).toBeNull();
  });

  it('a read sent before a write and answered after its invalidation fills nothing', async () => {
    const sid = store.genid();
    await store.set(sid, session({ n: 1 }));
    // The read and the other process's write race; whatever the order, once the write is done and
    // its invalidation handled, no read serves n = 1.
    for (let round = 2; round < 12; round++) {
      const reading = store.get(sid);
      const writing = child.call('set', { sid, data: session({ n: round }) });
      await Promise.all([reading, writing]);
      await turn();
      expect((await store.get(sid))?.n).toBe(round);
    }
  });

  it('a killed tracking connection drops the cache, and tracking re-arms', async () => {
    for (const which of ['sub', 'track'] as const) {
      const sid = store.genid();
      await store.set(sid, session({ n: 1 }));
      await cached(store, sid);
      const drops = store.nearCacheStats()?.drops ?? 0;
      const ids = await trackingIds(admin);
      await admin.client('KILL', 'ID', ids[which]);
      await eventually(() => (store.nearCacheStats()?.drops ?? 0) > drops);
      expect(store.nearCacheStats()?.entries).toBe(0);
      await armed(store);
      expect(await trackingIds(admin)).not.toEqual(ids);
      // Re-armed: invalidations flow again.
      await cached(store, sid);
      await child.call('set', { sid, data: session({ n: 2 }) });
      await turn();
      expect((await store.get(sid))?.n).toBe(2);
    }
  });
});

describe.skipIf(!hasRedis)('near cache: staleness bound and restarts', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('an entry is never served past maxStalenessMs when invalidations are lost', async () => {
    const client = redis.client();
    const writer = redis.client();
    const admin = redis.client();
    const store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix: 'st:',
      nearCache: { maxStalenessMs: 300 },
    });
    const other = new GeoSessionStore({ region: 'hk', client: writer, prefix: 'st:' });
    try {
      await armed(store);
      const sid = store.genid();
      await store.set(sid, session({ n: 1 }));
      await cached(store, sid);
      // Tracking turned off behind the cache's back: Redis sends no more invalidations.
      const { track } = await trackingIds(admin);
      const tracker = (store as unknown as { nearCache: { tracking: { tracker: Redis } } }).nearCache.tracking
        .tracker;
      expect(String(await tracker.client('ID'))).toBe(track);
      await tracker.client('TRACKING', 'OFF');
      await other.set(sid, session({ n: 2 }));
      await new Promise((r) => setTimeout(r, 350));
      expect((await store.get(sid))?.n).toBe(2);
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('a Redis restart drops the cache: nothing of the old server is served, and tracking re-arms', async () => {
    const client = redis.client();
    const store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix: 'rs:',
      nearCache: { maxStalenessMs: 60_000 },
    });
    store.on('error', () => {});
    try {
      await armed(store);
      const sid = store.genid();
      await store.set(sid, session({ n: 1 }));
      await cached(store, sid);
      await redis.restart(); // data is not kept
      await eventually(() => client.status === 'ready');
      await armed(store);
      expect(await store.get(sid)).toBeNull();
      await store.set(sid, session({ n: 2 }));
      expect((await cached(store, sid))?.n).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('touchAfterMs: a touch of a cached session moving it by less is not sent; others are', async () => {
    const client = redis.client();
    const store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix: 'ta:',
      nearCache: { maxStalenessMs: 60_000, touchAfterMs: 30_000 },
    });
    try {
      await armed(store);
      const sid = store.genid();
      const data = session({ n: 1 });
      await store.set(sid, data);
      const expiry = await client.pexpiretime(`ta:${sid}`);
      await cached(store, sid);
      await store.touch(sid, data); // same cookie: the expiry would not move
      expect(store.nearCacheStats()?.touchesSkipped).toBe(1);
      expect(await client.pexpiretime(`ta:${sid}`)).toBe(expiry);
      const later = {
        ...data,
        cookie: { ...data.cookie, expires: new Date(Date.now() + 700_000).toISOString() },
      };
      await store.touch(sid, later); // 100 s further: sent
      expect(store.nearCacheStats()?.touchesSkipped).toBe(1);
      expect(await client.pexpiretime(`ta:${sid}`)).toBeGreaterThan(expiry + 60_000);
      const uncached = store.genid();
      await store.set(uncached, data);
      await store.touch(uncached, later); // no entry: sent
      expect(await client.pexpiretime(`ta:${uncached}`)).toBeGreaterThan(expiry + 60_000);
    } finally {
      await store.close();
    }
  });

  it('FLUSHDB (a nil invalidation) drops the whole cache', async () => {
    const client = redis.client();
    const flusher = redis.client({ db: 3 });
    const store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix: 'fl:',
      nearCache: { maxStalenessMs: 60_000 },
    });
    try {
      await armed(store);
      const sid = store.genid();
      await store.set(sid, session({ n: 1 }));
      await cached(store, sid);
      const drops = store.nearCacheStats()?.drops ?? 0;
      await flusher.flushdb(); // another database: tracking is not per database, so the drop is safe
      await eventually(() => (store.nearCacheStats()?.drops ?? 0) > drops);
      expect(store.nearCacheStats()?.entries).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('close() releases the tracking connections', async () => {
    const client = redis.client();
    const admin = redis.client();
    const store = new GeoSessionStore({ region: 'hk', client, prefix: 'cl:', nearCache: {} });
    await armed(store);
    await trackingIds(admin);
    await store.close();
    await eventually(async () => !((await admin.client('LIST')) as string).includes('geosession-near'));
    expect(store.nearCacheStats()?.armed).toBe(false);
  });
});

describe.skipIf(!hasRedis)('near cache across regions (memory transport)', () => {
  let kr: PrivateRedis;
  beforeAll(async () => {
    kr = await startRedis();
  });
  afterAll(async () => {
    await kr?.stop();
  });

  it('a set, destroy or logout everywhere made in another region is never served once applied here', async () => {
    const prefix = uniquePrefix('near-regions');
    const clients = { hk: new Redis({ port: 6379, host: '127.0.0.1', db: DB }), kr: kr.client() };
    const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
    const make = (region: 'hk' | 'kr') =>
      new GeoSessionStore({
        region,
        client: clients[region],
        prefix,
        transport,
        sealer: 'none',
        userId: (s) => s.user as string | undefined,
        nearCache: { maxStalenessMs: 60_000 },
      });
    const hk = make('hk');
    const far = make('kr');
    try {
      await Promise.all([hk.ready(), far.ready(), armed(hk)]);
      const applied = () => once(hk, 'replicated').then(turn);
      const sid = far.genid();
      await expectFarChangesServed(hk, far, sid, (n) => session({ n, user: 'cy' }));

      const other = far.genid();
      const done = applied();
      await far.set(other, session({ n: 3, user: 'dee' }));
      await done;
      await cached(hk, other);
      await far.logoutEverywhere('dee');
      await eventually(async () => (await clients.hk.exists(prefix + other)) === 0);
      await turn();
      expect(await hk.get(other)).toBeNull();
    } finally {
      await hk.close();
      await far.close();
      await transport.close();
      await dropKeys(clients.hk, prefix);
      clients.hk.disconnect();
    }
  });
});
