/**
 * The near cache with the sharded key layout (`outboxShards: 4`: values `P{T}<sid>`, metadata
 * `{T}:m:P{T}<sid>`) on the machine's Redis, with ioredis 6 and 5: two processes of region hk (this one
 * with the cache, a child without) and region kr on a private Redis, replicating through the memory
 * transport. A write or destroy by the other process of the region, or by kr and applied here, is never
 * served once it is done here and its invalidation has been handled (test/session/near-cache.test.ts
 * says why one turn of the event loop is enough); writes to a shard's outbox, under the same `P{T}`
 * prefix, forget nothing.
 */
import { Redis } from 'ioredis';
import { Redis as Redis5 } from 'ioredis5';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryTransport, GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { NearCacheChild } from '../helpers/near-cache-child-process.js';
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
const SHARDS = 4;

const session = (fields: Record<string, unknown>): SessionData => ({
  cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000).toISOString() },
  ...fields,
});

/** Deletes the sharded metadata keys of `prefix` (`{T}:m:P{T}<sid>`), which dropKeys does not match. */
async function dropShardedMeta(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `{s*}:m:${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

describe.skipIf(!hasRedis).each([
  ['ioredis 6', Redis],
  ['ioredis 5', Redis5 as unknown as typeof Redis],
])('near cache with the sharded key layout, %s', (_name, Client) => {
  const prefix = uniquePrefix('near-shard');
  const keys = createKeySpace(prefix, '', SHARDS);
  let kr: PrivateRedis;
  let hkClient: Redis;
  let admin: Redis;
  let hk: GeoSessionStore;
  let far: GeoSessionStore;
  let child: NearCacheChild;
  let transport: ReturnType<typeof createMemoryTransport>;

  beforeAll(async () => {
    kr = await startRedis();
    transport = createMemoryTransport({ regions: ['hk', 'kr'] });
    hkClient = new Client({ port: 6379, host: '127.0.0.1', db: DB });
    hkClient.on('error', () => {});
    admin = new Redis({ port: 6379, host: '127.0.0.1', db: DB });
    const make = (region: 'hk' | 'kr', client: Redis, nearCache: boolean) =>
      new GeoSessionStore({
        region,
        client,
        prefix,
        transport,
        sealer: 'none',
        outboxShards: SHARDS,
        userId: (s) => s.user as string | undefined,
        ...(nearCache ? { nearCache: { maxStalenessMs: 60_000 } } : {}),
      });
    hk = make('hk', hkClient, true);
    far = make('kr', kr.client(), false);
    hk.on('error', () => {});
    far.on('error', () => {});
    child = await NearCacheChild.start({
      GEOSESSION_REDIS_PORT: '6379',
      GEOSESSION_DB: String(DB),
      GEOSESSION_PREFIX: prefix,
      GEOSESSION_SHARDS: String(SHARDS),
    });
    await Promise.all([hk.ready(), far.ready()]);
    await eventually(() => hk.nearCacheStats()?.armed === true);
  });

  afterAll(async () => {
    await child?.stop();
    await hk?.close();
    await far?.close();
    await transport?.close();
    await dropKeys(admin, prefix);
    await dropShardedMeta(admin, prefix);
    hkClient?.disconnect();
    admin?.disconnect();
    await kr?.stop();
  });

  /** Sessions of every shard. */
  const sidsOfEveryShard = (): string[] => {
    const sids: string[] = [];
    const seen = new Set<number>();
    while (seen.size < SHARDS) {
      const sid = hk.genid();
      const shard = keys.shardOf(sid) as number;
      if (seen.has(shard)) continue;
      seen.add(shard);
      sids.push(sid);
    }
    return sids;
  };

  it('what the other process of the region writes or destroys is never served next, in every shard', async () => {
    for (const sid of sidsOfEveryShard()) {
      await child.call('set', { sid, data: session({ n: 1 }) });
      // The sharded layout is what is stored: `P{T}<sid>` and `{T}:m:P{T}<sid>`.
      expect(await admin.exists(keys.session(sid), keys.meta(sid))).toBe(2);
      expect(keys.session(sid)).toMatch(/\{s\d\.\d+\}/);
      expect((await cached(hk, sid))?.n).toBe(1);

      await child.call('set', { sid, data: session({ n: 2 }) });
      await turn();
      expect((await hk.get(sid))?.n).toBe(2);
      expect((await cached(hk, sid))?.n).toBe(2);

      await child.call('destroy', { sid });
      await turn();
      expect(await hk.get(sid)).toBeNull();
    }
    expect(hk.nearCacheStats()?.armed).toBe(true);
  });

  it("a read racing the other process's write never fills the old value", async () => {
    const sid = hk.genid();
    await hk.set(sid, session({ n: 1 }));
    for (let round = 2; round < 10; round++) {
      const reading = hk.get(sid);
      const writing = child.call('set', { sid, data: session({ n: round }) });
      await Promise.all([reading, writing]);
      await turn();
      expect((await hk.get(sid))?.n).toBe(round);
    }
  });

  it('what region kr writes or destroys is never served once applied here, in every shard', async () => {
    for (const sid of sidsOfEveryShard()) {
      await expectFarChangesServed(hk, far, sid, (n) => session({ n, user: 'kim' }));
    }
  });

  it("this region's writes (its shards' outboxes, under the same prefixes) forget only their session", async () => {
    const [a, b] = sidsOfEveryShard() as [string, string];
    let c = hk.genid();
    while (keys.shardOf(c) !== keys.shardOf(a)) c = hk.genid();
    await hk.set(a, session({ n: 1 }));
    await hk.set(b, session({ n: 1 }));
    await cached(hk, a);
    await cached(hk, b);
    const hits = hk.nearCacheStats()?.hits ?? 0;
    // c's write appends to a's shard's outbox (`P{T}|outbox:hk`) and bumps its counter: a stays cached.
    await hk.set(c, session({ n: 1 }));
    await hk.set(b, session({ n: 2 }));
    await turn();
    expect((await hk.get(a))?.n).toBe(1);
    expect((await hk.get(b))?.n).toBe(2);
    expect(hk.nearCacheStats()?.hits).toBe(hits + 1);
    expect(await admin.xlen(keys.outboxOf(c, 'hk'))).toBeGreaterThan(0);
    expect(keys.outboxOf(c, 'hk').startsWith(keys.session(a).slice(0, -a.length))).toBe(true);
  });
});
