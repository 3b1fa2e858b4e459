/**
 * The per-user index and logout everywhere in one region (part 1 and 2 of issue 17): the scripts keep
 * the index with every write, `sessionsOf` lists live sessions only and prunes ended ones, and
 * `logoutEverywhere` ends them and refuses any later save of a session created before it. On the
 * unsharded layout and on the sharded one (`outboxShards: 4`: one index and mark per user and shard).
 */
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { versionTime } from '../../src/redis/meta.js';
import { resolveOptions } from '../../src/session/options.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { readMeta } from '../helpers/meta.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const client = sharedRedis({ lazyConnect: true });
const prefixes: string[] = [];

afterAll(async () => {
  for (const prefix of hasRedis ? prefixes : []) {
    const keys = [...(await client.keys(`${prefix}*`)), ...(await client.keys(`{${prefix}*`))];
    if (keys.length > 0) await client.del(...keys);
  }
  client.disconnect();
});

const LAYOUTS = [
  { layout: 'unsharded', outboxShards: undefined },
  { layout: 'sharded (outboxShards: 4)', outboxShards: 4 },
];

function sess(user: string | undefined, extra: Record<string, unknown> = {}): SessionData {
  return {
    cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) },
    user,
    ...extra,
  } as never;
}

describe.runIf(hasRedis || process.env.CI === 'true').each(LAYOUTS)(
  'per-user index, $layout',
  ({ outboxShards }) => {
    const keysOf = (prefix: string) => createKeySpace(prefix, '', outboxShards ?? 0);
    function newStore(extra: Record<string, unknown> = {}): { store: GeoSessionStore; prefix: string } {
      const prefix = uniquePrefix('users');
      prefixes.push(prefix);
      const store = new GeoSessionStore({
        region: 'aa',
        client,
        prefix,
        outboxShards,
        userId: (s: SessionData) => (s as { user?: string }).user,
        ...extra,
      });
      return { store, prefix };
    }

    it('validates the userId option', () => {
      expect(() => new GeoSessionStore({ region: 'aa', client, userId: 3 as never })).toThrow(ConfigError);
      expect(() => new GeoSessionStore({ region: 'aa', client, userId: 3 as never })).toThrow(/userId/);
    });

    it('lists the live sessions of a user and drops ended ones', async () => {
      const { store } = newStore();
      await store.set('s1', sess('alice'));
      await store.set('s2', sess('alice', { n: 1 }));
      await store.set('s3', sess('bob'));
      await store.set('s4', sess(undefined));
      expect((await store.sessionsOf('alice')).map((s) => s.sid).sort()).toEqual(['s1', 's2']);
      const [first] = await store.sessionsOf('alice');
      expect(first?.origin).toBe('aa');
      expect(first?.expiresAt).toBeGreaterThan(Date.now());
      await store.destroy('s1');
      expect((await store.sessionsOf('alice')).map((s) => s.sid)).toEqual(['s2']);
      expect((await store.sessionsOf('bob')).map((s) => s.sid)).toEqual(['s3']);
      expect(await store.sessionsOf('nobody')).toEqual([]);
      await store.close();
    });

    it('a session saved again with another user moves to that user', async () => {
      const { store } = newStore();
      await store.set('m1', sess('ann'));
      await store.set('m1', sess('ben', { n: 1 }));
      expect((await store.sessionsOf('ann')).map((s) => s.sid)).toEqual([]);
      expect((await store.sessionsOf('ben')).map((s) => s.sid)).toEqual(['m1']);
      await store.close();
    });

    it('refuses an invalid user id with a clear error', async () => {
      const { store } = newStore();
      await expect(store.sessionsOf('a|b')).rejects.toThrow(/user id/);
      await expect(store.set('s1', sess('a{b'))).rejects.toThrow(/userId/);
      await store.close();
    });

    it('prunes entries whose session expired, and the index key expires with its last entry', async () => {
      const { store, prefix } = newStore();
      const short = { cookie: { originalMaxAge: 50, expires: new Date(Date.now() + 50) }, user: 'carol' };
      await store.set('e1', short as never);
      const keys = keysOf(prefix);
      const key = keys.user('carol', keys.shardOf('e1'));
      const pttl = await client.pttl(key);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1000);
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.sessionsOf('carol')).toEqual([]);
      expect(await client.exists(key)).toBe(0);
      await store.close();
    });

    it('a touch keeps the index entry alive past the expiry of the last write', async () => {
      const { store } = newStore();
      const life = (ms: number) => ({
        cookie: { originalMaxAge: ms, expires: new Date(Date.now() + ms) },
        user: 'tom',
      });
      await store.set('t1', life(300) as never);
      await store.touch('t1', life(60_000) as never);
      await new Promise((r) => setTimeout(r, 400));
      // Another write of the user prunes expired entries: the touched one must stay.
      await store.set('t2', life(60_000) as never);
      expect((await store.sessionsOf('tom')).map((s) => s.sid)).toEqual(['t1', 't2']);
      await store.close();
    });

    it('logoutEverywhere ends every session but the kept one, and refuses later saves of older sessions', async () => {
      const { store } = newStore();
      await store.set('a1', sess('dave'));
      await store.set('a2', sess('dave', { x: 1 }));
      await store.set('a3', sess('dave', { x: 2 }));
      expect(await store.logoutEverywhere('dave', { except: 'a3' })).toBe(2);
      expect((await store.sessionsOf('dave')).map((s) => s.sid)).toEqual(['a3']);
      expect(await store.get('a1')).toBeNull();
      expect(await store.isDestroyed('a2')).toBe(true);
      // The kept session still saves.
      await store.set('a3', sess('dave', { x: 3 }));
      expect(await store.get('a3')).toMatchObject({ x: 3 });
      // A session created after the call is unaffected.
      await new Promise((r) => setTimeout(r, 5));
      await store.set('a4', sess('dave'));
      expect((await store.sessionsOf('dave')).map((s) => s.sid).sort()).toEqual(['a3', 'a4']);
      await store.close();
    });

    it('a session created before the mark but unknown to the index is refused on save and ended', async () => {
      const { store } = newStore();
      const plain = new GeoSessionStore({ region: 'aa', client, prefix: store.prefix, outboxShards });
      // Written without the index (as a store without the option did): its version predates the mark.
      await plain.set('old', sess('erin'));
      await new Promise((r) => setTimeout(r, 5));
      expect(await store.logoutEverywhere('erin')).toBe(0);
      const refused: unknown[] = [];
      store.on('refused', (e) => refused.push(e));
      await store.set('old', sess('erin', { y: 1 }));
      expect(refused).toHaveLength(1);
      expect(await store.get('old')).toBeNull();
      expect(await store.isDestroyed('old')).toBe(true);
      await plain.close();
      await store.close();
    });

    it('places a new session after a mark made by a clock running ahead, in every region alike', async () => {
      // A logout everywhere made in a region whose host clock runs ahead (by at most maxClockSkewMs / 2)
      // carries a mark a little in this region's future. A login here right after it is a new session:
      // its first version is placed at the mark, so it is kept here and by every region comparing it.
      const { store, prefix } = newStore();
      const keys = keysOf(prefix);
      const ahead = Date.now() + 5_000;
      await client.hset(keys.user('ann', keys.shardOf('fresh')), '|before', `${ahead}|${ahead + 600_000}|`);
      await store.set('fresh', sess('ann'));
      expect((await store.get('fresh'))?.user).toBe('ann');
      const meta = await readMeta(client, keys.meta('fresh'));
      expect(versionTime(meta.v ?? '')).toBeGreaterThanOrEqual(ahead);
      expect((await store.sessionsOf('ann')).map((s) => s.sid)).toEqual(['fresh']);
      expect((await store.sessionsOf('ann'))[0]?.createdAt).toBeGreaterThanOrEqual(ahead);
      await store.close();
    });
  },
);

describe.runIf(hasRedis || process.env.CI === 'true')('per-user index, one per shard', () => {
  const SHARDS = 4;
  function shardedStore(): { store: GeoSessionStore; keys: ReturnType<typeof createKeySpace> } {
    const prefix = uniquePrefix('ushards');
    prefixes.push(prefix);
    const store = new GeoSessionStore({
      region: 'aa',
      client,
      prefix,
      outboxShards: SHARDS,
      userId: (s: SessionData) => (s as { user?: string }).user,
    });
    return { store, keys: createKeySpace(prefix, '', SHARDS) };
  }
  /** Ids `<stem><n>`, one in each shard. */
  function oneIdPerShard(keys: ReturnType<typeof createKeySpace>, stem: string): string[] {
    const byShard = new Map<number, string>();
    for (let n = 0; byShard.size < SHARDS; n++) {
      const sid = `${stem}${n}`;
      const shard = keys.shardOf(sid) as number;
      if (!byShard.has(shard)) byShard.set(shard, sid);
    }
    return [...byShard.entries()].sort(([a], [b]) => a - b).map(([, sid]) => sid);
  }

  it("keeps each session in its shard's index, beside it, and lists and ends them all", async () => {
    const { store, keys } = shardedStore();
    const sids = oneIdPerShard(keys, 'x');
    for (const sid of sids) await store.set(sid, sess('fay'));
    for (const sid of sids) {
      const shard = keys.shardOf(sid);
      const index = keys.user('fay', shard);
      expect(index.startsWith(`${store.prefix}{`)).toBe(true);
      // The index of the session's shard shares its hash tag (so its slot) and lists it, and only it.
      expect(index.slice(0, index.indexOf('}') + 1)).toBe(
        keys.session(sid).slice(0, keys.session(sid).indexOf('}') + 1),
      );
      expect(await client.hkeys(index)).toEqual([sid]);
    }
    expect(await client.exists(createKeySpace(store.prefix).user('fay'))).toBe(0);
    expect((await store.sessionsOf('fay')).map((s) => s.sid).sort()).toEqual([...sids].sort());
    const kept = sids[1] as string;
    expect(await store.logoutEverywhere('fay', { except: kept })).toBe(SHARDS - 1);
    expect((await store.sessionsOf('fay')).map((s) => s.sid)).toEqual([kept]);
    for (const sid of sids) expect(await store.isDestroyed(sid)).toBe(sid !== kept);
    // Every shard holds the mark, keeping the same session.
    for (const { key } of keys.userIndexes('fay')) {
      expect(await client.hget(key, '|before')).toMatch(new RegExp(`^\\d+\\|\\d+\\|${kept}$`));
    }
    await store.close();
  });

  it("refuses a session created before the mark in any shard, the index's or not", async () => {
    const { store, keys } = shardedStore();
    const plain = new GeoSessionStore({ region: 'aa', client, prefix: store.prefix, outboxShards: SHARDS });
    const sids = oneIdPerShard(keys, 'y');
    // Written without the index: only the marks can refuse them.
    for (const sid of sids) await plain.set(sid, sess('gil'));
    await new Promise((r) => setTimeout(r, 5));
    expect(await store.logoutEverywhere('gil')).toBe(0);
    for (const sid of sids) {
      await store.set(sid, sess('gil', { again: true }));
      expect(await store.get(sid)).toBeNull();
      expect(await store.isDestroyed(sid)).toBe(true);
    }
    await plain.close();
    await store.close();
  });

  it('rejects when a shard fails, after ending what the other shards list; called again, it finishes', async () => {
    const { store, keys } = shardedStore();
    const sids = oneIdPerShard(keys, 'z');
    const broken = sids[2] as string;
    for (const sid of sids) if (sid !== broken) await store.set(sid, sess('hal'));
    // One shard's index is unusable (a key of another type): every call on it fails, and not transiently.
    const bad = keys.user('hal', keys.shardOf(broken));
    await client.set(bad, 'not a hash');
    await expect(store.logoutEverywhere('hal')).rejects.toThrow(/WRONGTYPE/);
    await expect(store.sessionsOf('hal')).rejects.toThrow(/WRONGTYPE/);
    // The other shards were marked and their sessions ended all the same.
    for (const sid of sids) if (sid !== broken) expect(await store.isDestroyed(sid)).toBe(true);
    await client.del(bad);
    expect(await store.logoutEverywhere('hal')).toBe(0);
    for (const { key } of keys.userIndexes('hal')) expect(await client.hexists(key, '|before')).toBe(1);
    await store.close();
  });

  it('tries a shard again after a transient failure, not after a deterministic one', async () => {
    const prefix = uniquePrefix('uretry');
    prefixes.push(prefix);
    const keys = createKeySpace(prefix, '', SHARDS);
    const sids = oneIdPerShard(keys, 'r');
    const target = keys.user('ida', keys.shardOf(sids[1] as string));
    // The store's client, whose scripts on one shard's index of the user fail as told.
    const fail = { left: 0, error: () => new Error('Connection is closed.') as Error, seen: 0 };
    const flaky = new Proxy(client, {
      get(real, property) {
        const value = Reflect.get(real, property, real);
        if (property !== 'evalsha' && property !== 'eval') {
          return typeof value === 'function' ? value.bind(real) : value;
        }
        return (...args: unknown[]) => {
          if (args.includes(target) && args.includes('ida')) {
            fail.seen++;
            if (fail.left > 0) {
              fail.left--;
              return Promise.reject(fail.error());
            }
          }
          return (value as (...a: unknown[]) => Promise<unknown>).apply(real, args);
        };
      },
    });
    const store = new GeoSessionStore({
      region: 'aa',
      client: flaky,
      prefix,
      outboxShards: SHARDS,
      userId: (s: SessionData) => (s as { user?: string }).user,
    });
    for (const sid of sids) await store.set(sid, sess('ida'));
    // A lost connection, twice: the third attempt goes through, and every session ends.
    fail.left = 2;
    fail.seen = 0;
    expect(await store.logoutEverywhere('ida')).toBe(SHARDS);
    expect(fail.seen).toBe(3);
    for (const { key } of keys.userIndexes('ida')) expect(await client.hexists(key, '|before')).toBe(1);
    // Three times: the call rejects, after the other shards were done.
    await client.del(...keys.userIndexes('ida').map((i) => i.key));
    fail.left = 3;
    fail.seen = 0;
    await expect(store.logoutEverywhere('ida')).rejects.toThrow(/Connection is closed/);
    expect(fail.seen).toBe(3);
    expect(await client.hexists(target, '|before')).toBe(0);
    expect(await client.hexists(keys.user('ida', keys.shardOf(sids[0] as string)), '|before')).toBe(1);
    // An error that the same call would meet again is not tried again.
    fail.left = 1;
    fail.seen = 0;
    fail.error = () => new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    await expect(store.logoutEverywhere('ida')).rejects.toThrow(/WRONGTYPE/);
    expect(fail.seen).toBe(1);
    expect(await store.logoutEverywhere('ida')).toBe(0);
    expect(await client.hexists(target, '|before')).toBe(1);
    await store.close();
  });

  it('is refused on a Redis Cluster without the sharded layout, accepted with it or a tagged prefix', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 6379 }], { lazyConnect: true });
    const userId = () => 'u';
    expect(() => new GeoSessionStore({ region: 'aa', client: cluster, userId })).toThrow(/userId/);
    expect(() => new GeoSessionStore({ region: 'aa', client: cluster, userId, outboxShards: 1 })).toThrow(
      ConfigError,
    );
    // Accepted (resolved without making a store, which would connect).
    for (const more of [{ outboxShards: 4 }, { prefix: '{app}sess:' }]) {
      expect(resolveOptions({ region: 'aa', client: cluster, userId, ...more }).userId).toBe(userId);
    }
    const transport = createMemoryTransport({ regions: ['aa', 'bb'] });
    expect(
      resolveOptions({ region: 'aa', client: cluster, userId, transport, sealer: 'none' }).outboxShards,
    ).toBe(8);
    cluster.disconnect();
  });
});
