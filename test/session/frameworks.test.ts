/**
 * The store suite: what every app sees, run unchanged under express-session and @fastify/session over
 * HTTP (test/helpers/framework-apps.ts). Framework-specific behaviour (express-session's rolling and
 * resave options, its connect/disconnect handling, fastify's expiry-only saves) is in express.test.ts
 * and fastify.test.ts.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/session/store.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { type AppOptions, type Framework, type FrameworkApp, startApp } from '../helpers/framework-apps.js';
import { CookieJar } from '../helpers/http.js';
import { metaField } from '../helpers/meta.js';
import { dropKeys, eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await redis?.quit();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const framework of ['express', 'fastify'] as Framework[]) {
  describe.skipIf(!hasRedis)(`the store under ${framework}`, () => {
    const r = () => redis as Redis;

    async function app(options: AppOptions = {}): Promise<FrameworkApp & { prefix: string }> {
      const prefix = uniquePrefix(framework);
      const store = new GeoSessionStore({ region: 'hk', client: r(), prefix });
      const started = await startApp(framework, store, options);
      cleanups.push(async () => {
        await started.close();
        await dropKeys(r(), prefix);
        await store.close();
      });
      return Object.assign(started, { prefix });
    }

    it('logs in, reads back, and logs out; the old cookie no longer works', async () => {
      const h = await app();
      const jar = new CookieJar();
      const login = await h.request(jar, 'POST', '/login?user=alice');
      expect(login.status).toBe(200);
      const sid = login.body.sid as string;
      expect(sid.startsWith('hk.')).toBe(true);
      expect(h.store.regionOf(sid)).toBe('hk');
      expect(h.sidOfCookie(jar)).toBe(sid);
      const stored = JSON.parse((await r().get(h.prefix + sid)) ?? 'null');
      expect(stored.user).toBe('alice');
      // express-session takes originalMaxAge from expires - now, which a millisecond's tick can shave.
      expect(stored.cookie.originalMaxAge).toBeGreaterThan(59_000);
      expect(stored.cookie.originalMaxAge).toBeLessThanOrEqual(60_000);
      expect((await h.request(jar, 'GET', '/me')).body).toEqual({ user: 'alice', sid });

      const oldJar = jar.clone();
      expect((await h.request(jar, 'POST', '/logout')).status).toBe(200);
      expect(await r().exists(h.prefix + sid)).toBe(0);
      expect(await metaField(r(), h.metaKey(sid), 't')).toBe('1');
      const after = await h.request(oldJar, 'GET', '/me');
      expect(after.body.user).toBeNull();
      expect(after.body.sid).not.toBe(sid);
      expect(h.errors).toEqual([]);
    });

    it('regenerate destroys and tombstones the old id; a slow request cannot save it again (connect-redis#328)', async () => {
      const h = await app();
      const jar = new CookieJar();
      const oldSid = (await h.request(jar, 'POST', '/login?user=lee')).body.sid as string;
      const oldJar = jar.clone();
      const regen = await h.request(jar, 'POST', '/regenerate');
      const newSid = regen.body.sid as string;
      expect(regen.body.user).toBe('lee');
      expect(newSid).not.toBe(oldSid);
      expect(h.sidOfCookie(jar)).toBe(newSid);
      expect(await r().exists(h.prefix + oldSid)).toBe(0);
      expect(await metaField(r(), h.metaKey(oldSid), 't')).toBe('1');
      expect((await h.request(jar, 'GET', '/me')).body).toEqual({ user: 'lee', sid: newSid });
      expect((await h.request(oldJar, 'GET', '/me')).body.user).toBeNull();

      const refused: unknown[] = [];
      h.store.on('refused', (info) => refused.push(info));
      await h.store.set(oldSid, { user: 'lee', cookie: { originalMaxAge: 60_000 } });
      expect(await r().exists(h.prefix + oldSid)).toBe(0);
      expect(refused).toEqual([{ op: 'set', sid: oldSid, reason: 'destroyed' }]);
    });

    it('a real content change rewrites the value with a higher version', async () => {
      const h = await app();
      const jar = new CookieJar();
      const sid = (await h.request(jar, 'POST', '/login')).body.sid as string;
      const key = h.prefix + sid;
      const before = await r().get(key);
      const v1 = (await metaField(r(), h.metaKey(sid), 'v')) as string;
      expect((await h.request(jar, 'POST', '/count')).body.count).toBe(1);
      const v2 = (await metaField(r(), h.metaKey(sid), 'v')) as string;
      expect(await r().get(key)).not.toBe(before);
      expect(JSON.parse((await r().get(key)) ?? '{}').count).toBe(1);
      expect((await h.request(jar, 'POST', '/count')).body.count).toBe(2);
      const v3 = (await metaField(r(), h.metaKey(sid), 'v')) as string;
      // Versions are HLC strings of fixed width: later ones sort after earlier ones.
      expect([v3, v1, v2].sort()).toEqual([v1, v2, v3]);
    });

    it('a request that changes nothing costs an expiry update: same stored bytes, same version, later expiry', async () => {
      // express-session touches an unmodified session; @fastify/session (rolling) saves it again.
      const h = await app({ rolling: true });
      const jar = new CookieJar();
      const sid = (await h.request(jar, 'POST', '/login')).body.sid as string;
      const key = h.prefix + sid;
      const before = await r().get(key);
      const version = await metaField(r(), h.metaKey(sid), 'v');
      const expireBefore = await r().pexpiretime(key);
      await pause(30);
      h.calls.length = 0;
      expect((await h.request(jar, 'GET', '/me')).body.user).toBe('alice');
      expect(h.calls).toEqual(framework === 'express' ? ['get', 'touch'] : ['get', 'set']);
      expect(jar.lastSetCookie.some((c) => c.startsWith(`${h.cookieName}=`))).toBe(true);
      expect(await r().get(key)).toBe(before);
      expect(await metaField(r(), h.metaKey(sid), 'v')).toBe(version);
      expect(await r().pexpiretime(key)).toBeGreaterThan(expireBefore);
    });

    it('saveUninitialized: false writes nothing for a visitor who does not use the session', async () => {
      const h = await app({ saveUninitialized: false });
      const jar = new CookieJar();
      await h.request(jar, 'GET', '/me');
      expect(jar.lastSetCookie).toEqual([]);
      expect(await h.store.length()).toBe(0);
    });

    it('a cookie with a tampered signature is not honoured', async () => {
      const h = await app();
      const jar = new CookieJar();
      await h.request(jar, 'POST', '/login');
      const forged = new CookieJar();
      const value = jar.cookies.get(h.cookieName) as string;
      forged.cookies.set(h.cookieName, `${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`);
      expect((await h.request(forged, 'GET', '/me')).body.user).toBeNull();
    });

    it('two regions: a login in hk is served by kr, and a logout in kr is final in hk', async () => {
      const prefix = uniquePrefix(`${framework}-regions`);
      const hkClient = sharedRedis({ db: 5 });
      const krClient = sharedRedis({ db: 6 });
      const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
      const stores = [
        new GeoSessionStore({ region: 'hk', client: hkClient, prefix, transport, sealer: 'none' }),
        new GeoSessionStore({ region: 'kr', client: krClient, prefix, transport, sealer: 'none' }),
      ] as const;
      const [hk, kr] = await Promise.all(stores.map((store) => startApp(framework, store)));
      cleanups.push(async () => {
        await Promise.all([hk?.close(), kr?.close()]);
        for (const store of stores) await store.close();
        await transport.close();
        for (const client of [hkClient, krClient]) {
          await dropKeys(client, prefix);
          client.disconnect();
        }
      });
      const jar = new CookieJar();
      const sid = (await hk?.request(jar, 'POST', '/login?user=yuna'))?.body.sid as string;
      await eventually(async () => (await kr?.request(jar.clone(), 'GET', '/me'))?.body.user === 'yuna');
      const oldJar = jar.clone();
      await kr?.request(jar, 'POST', '/logout');
      await eventually(async () => (await stores[0].isDestroyed(sid)) === true);
      expect((await hk?.request(oldJar, 'GET', '/me'))?.body.user).toBeNull();
      expect((await kr?.request(oldJar.clone(), 'GET', '/me'))?.body.user).toBeNull();
    });
  });
}
