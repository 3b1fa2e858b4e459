/**
 * migrateKeyspace into the sharded key layout (`outboxShards: 4` on one Redis): connect-redis values
 * `P<sid>` are moved into their shards' keys with their expiry and metadata, the old keys deleted; a
 * session the shard holds already is never overwritten; keys that are no connect-redis session are never
 * moved; a value that changes while it moves is moved again (its stale copy taken back).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateKeyspace } from '../../src/admin/migrate.js';
import { ConfigError } from '../../src/errors.js';
import { createKeySpace } from '../../src/keys.js';
import { parseMeta } from '../../src/redis/meta.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const SHARDS = 4;

/** A session as express-session saves it, with a cookie of `maxAge` ms. */
function legacy(user: string, maxAge = 600_000): string {
  return JSON.stringify({
    cookie: { originalMaxAge: maxAge, expires: new Date(Date.now() + maxAge).toISOString(), httpOnly: true },
    user,
  });
}

/** Every key of the database with its string value (or its type) and its expiry. */
async function snapshot(redis: Redis): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await redis.keys('*')) {
    const type = await redis.type(key);
    const value = type === 'string' ? await redis.get(key) : type;
    out.set(key, `${value} @${await redis.pexpiretime(key)}`);
  }
  return out;
}

/** `redis`, whose pipelines run `after` once their replies are in (between migrate's read and its move). */
function interfering(redis: Redis, after: () => Promise<void>): Redis {
  return new Proxy(redis, {
    get(target, property) {
      if (property === 'pipeline') {
        return () => {
          const pipeline = target.pipeline();
          const exec = pipeline.exec.bind(pipeline);
          pipeline.exec = (async () => {
            const replies = await exec();
            await after();
            return replies;
          }) as typeof pipeline.exec;
          return pipeline;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.skipIf(!hasRedis)(
  'migrateKeyspace into the sharded layout (outboxShards)',
  { timeout: 60_000 },
  () => {
    let server: PrivateRedis;
    let redis: Redis;
    beforeAll(async () => {
      server = await startRedis();
      redis = server.client();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('moves every connect-redis session into its shard with its value, expiry and metadata', async () => {
      const prefix = 'ms1:';
      const flat = createKeySpace(prefix);
      const sharded = createKeySpace(prefix, '', SHARDS);
      const store = new GeoSessionStore({ region: 'hk', client: redis, prefix, outboxShards: SHARDS });
      await store.ready();
      // geosession's own: a sharded session, and one the old app also holds (its older copy).
      const own = store.genid();
      await store.set(own, { cookie: { originalMaxAge: 600_000 }, user: 'own' } as never);
      const both = store.genid();
      await store.set(both, { cookie: { originalMaxAge: 600_000 }, user: 'new' } as never);
      await redis.set(flat.session(both), legacy('old'), 'PX', 600_000);
      // One logged out in the sharded layout, whose old copy must not bring it back.
      const dead = store.genid();
      await store.set(dead, { cookie: { originalMaxAge: 600_000 }, user: 'dead' } as never);
      await store.destroy(dead);
      await redis.set(flat.session(dead), legacy('dead'), 'PX', 600_000);
      // Not sessions, or not connect-redis': not moved.
      await redis.set(`${prefix}junk`, 'not json', 'PX', 600_000);
      await redis.hset(`${prefix}ahash`, 'a', '1');
      const unshardedStore = new GeoSessionStore({ region: 'hk', client: redis, prefix });
      await unshardedStore.set('flat-own', { cookie: { originalMaxAge: 600_000 }, user: 'flat' } as never);
      await unshardedStore.close();
      // The connect-redis sessions: plain SET PX, one of them without expiry and without maxAge.
      const sids = Array.from({ length: 40 }, (_, i) => `cr-${i}`);
      for (const [i, sid] of sids.entries()) {
        await redis.set(flat.session(sid), legacy(`u${i}`, 600_000 + i), 'PX', 600_000 + i);
      }
      await redis.set(
        flat.session('forever'),
        JSON.stringify({ cookie: { originalMaxAge: null }, user: 'f' }),
      );
      expect(new Set(sids.map((sid) => sharded.shardOf(sid))).size).toBe(SHARDS);
      const before = new Map<string, { value: string; expiry: number }>();
      for (const sid of [...sids, 'forever']) {
        before.set(sid, {
          value: (await redis.get(flat.session(sid))) as string,
          expiry: await redis.pexpiretime(flat.session(sid)),
        });
      }
      const ownBefore = await redis.get(sharded.meta(own));

      const dry = await migrateKeyspace({
        client: redis,
        region: 'hk',
        prefix,
        outboxShards: SHARDS,
        dryRun: true,
      });
      expect(dry).toMatchObject({ migrated: 41, alreadyMigrated: 3, unreadable: 1, dryRun: true });
      expect(await redis.exists(sharded.session('cr-0'), flat.meta('cr-0'))).toBe(0);

      const report = await migrateKeyspace({
        client: redis,
        region: 'hk',
        prefix,
        outboxShards: SHARDS,
        scanCount: 7,
      });
      // 41 moved; `both`, `dead` (in the shard) and flat-own (unsharded metadata) skipped; junk unreadable.
      expect(report).toMatchObject({
        complete: true,
        resumed: false,
        scanned: 45,
        migrated: 41,
        alreadyMigrated: 3,
        gone: 0,
        unreadable: 1,
      });
      for (const [sid, was] of before) {
        expect(await redis.exists(flat.session(sid))).toBe(0);
        expect(await redis.get(sharded.session(sid))).toBe(was.value);
        expect(await redis.pexpiretime(sharded.session(sid))).toBe(was.expiry);
        const meta = parseMeta(await redis.get(sharded.meta(sid)));
        expect(meta?.tombstone).toBe(false);
        expect(meta?.version).toMatch(/^\d{15}\.\d{4}\.hk$/);
        expect(meta?.expiresAt).toBe(was.expiry === -1 ? 0 : was.expiry);
        expect(meta?.writtenExpiry).toBe(was.expiry === -1 ? 0 : was.expiry);
        expect(meta?.lifetimeMs).toBe(sid === 'forever' ? 0 : JSON.parse(was.value).cookie.originalMaxAge);
        // The store reads it, its cookie as stored.
        const session = await store.get(sid);
        expect(session?.user).toBe(JSON.parse(was.value).user);
        const expires = JSON.parse(was.value).cookie.expires;
        if (expires)
          expect(new Date(session?.cookie?.expires as unknown as string).toISOString()).toBe(expires);
      }
      // geosession's own data won; its old copy is gone; what is no connect-redis session is untouched.
      expect((await store.get(both))?.user).toBe('new');
      expect(await redis.exists(flat.session(both))).toBe(0);
      expect(await store.get(dead)).toBeNull();
      expect(parseMeta(await redis.get(sharded.meta(dead)))?.tombstone).toBe(true);
      expect(await redis.exists(flat.session(dead), sharded.session(dead))).toBe(0);
      expect(await redis.get(sharded.meta(own))).toBe(ownBefore);
      expect(await redis.get(`${prefix}junk`)).toBe('not json');
      expect(await redis.hget(`${prefix}ahash`, 'a')).toBe('1');
      expect(JSON.parse((await redis.get(flat.session('flat-own'))) as string).user).toBe('flat');
      expect(await redis.exists(flat.meta('flat-own'))).toBe(1);
      // The fingerprint is the store's: saving the same session again makes no new version.
      const version = parseMeta(await redis.get(sharded.meta('cr-3')))?.version;
      await store.set('cr-3', (await store.get('cr-3')) as never);
      expect(parseMeta(await redis.get(sharded.meta('cr-3')))?.version).toBe(version);

      // Again: nothing moves, nothing changes.
      const keysBefore = await snapshot(redis);
      const again = await migrateKeyspace({ client: redis, region: 'hk', prefix, outboxShards: SHARDS });
      expect(again).toMatchObject({
        complete: true,
        scanned: 2,
        migrated: 0,
        alreadyMigrated: 1,
        unreadable: 1,
      });
      expect(await snapshot(redis)).toEqual(keysBefore);
      await store.close();
    });

    it('finishes a move a crash left with both copies, keeping the sharded one', async () => {
      const prefix = 'ms2:';
      const flat = createKeySpace(prefix);
      const sharded = createKeySpace(prefix, '', SHARDS);
      await redis.set(flat.session('a'), legacy('a'), 'PX', 600_000);
      await migrateKeyspace({ client: redis, region: 'hk', prefix, outboxShards: SHARDS });
      const meta = await redis.get(sharded.meta('a'));
      // As if a crash came between the move and the delete: the old copy is back.
      await redis.set(flat.session('a'), (await redis.get(sharded.session('a'))) as string, 'PX', 600_000);
      const rerun = await migrateKeyspace({ client: redis, region: 'hk', prefix, outboxShards: SHARDS });
      expect(rerun).toMatchObject({ scanned: 1, migrated: 0, alreadyMigrated: 1 });
      expect(await redis.exists(flat.session('a'))).toBe(0);
      expect(await redis.get(sharded.meta('a'))).toBe(meta);
    });

    it('moves a value written while it moved again, and keeps it where it is when it never stops changing', async () => {
      const prefix = 'ms3:';
      const flat = createKeySpace(prefix);
      const sharded = createKeySpace(prefix, '', SHARDS);
      await redis.set(flat.session('once'), legacy('first'), 'PX', 600_000);
      let writes = 0;
      const once = interfering(redis, async () => {
        if (writes++ === 0) await redis.set(flat.session('once'), legacy('second'), 'KEEPTTL');
      });
      const report = await migrateKeyspace({ client: once, region: 'hk', prefix, outboxShards: SHARDS });
      expect(report).toMatchObject({ scanned: 1, migrated: 1, unreadable: 0 });
      expect(JSON.parse((await redis.get(sharded.session('once'))) as string).user).toBe('second');
      expect(await redis.exists(flat.session('once'))).toBe(0);

      await redis.set(flat.session('busy'), legacy('v0'), 'PX', 600_000);
      let n = 0;
      const busy = interfering(redis, async () => {
        await redis.set(flat.session('busy'), legacy(`v${++n}`), 'KEEPTTL');
      });
      const stuck = await migrateKeyspace({ client: busy, region: 'hk', prefix, outboxShards: SHARDS });
      expect(stuck).toMatchObject({ scanned: 1, migrated: 0, unreadable: 1 });
      // No stale copy in the shard: the old key, with its latest value, is the one.
      expect(await redis.exists(sharded.session('busy'), sharded.meta('busy'))).toBe(0);
      expect(JSON.parse((await redis.get(flat.session('busy'))) as string).user).toBe(`v${n}`);
    });

    it('checks outboxShards as the other admin functions do, naming it', async () => {
      for (const outboxShards of [0, 257, 2.5, '4']) {
        await expect(
          migrateKeyspace({ client: redis, region: 'hk', outboxShards: outboxShards as number }),
        ).rejects.toThrow(ConfigError);
      }
      await expect(
        migrateKeyspace({ client: redis, region: 'hk', prefix: '{app}s:', outboxShards: 4 }),
      ).rejects.toThrow(/outboxShards/);
      // One shard on a single Redis is the unsharded layout: metadata in place, as without it.
      const prefix = 'ms4:';
      const flat = createKeySpace(prefix);
      await redis.set(flat.session('x'), legacy('x'), 'PX', 600_000);
      expect(await migrateKeyspace({ client: redis, region: 'hk', prefix, outboxShards: 1 })).toMatchObject({
        migrated: 1,
      });
      expect(await redis.exists(flat.session('x'), flat.meta('x'))).toBe(2);
    });
  },
);
