/**
 * Cheap logouts of sessions that never existed (issue 15): express-session's `regenerate` (every login)
 * and anonymous `/logout` requests destroy ids that were never saved. Such a destroy of an id born in this
 * region that this region holds nothing of leaves one short-lived local tombstone and no replicated
 * event; it still refuses a slow save after it (connect-redis#328). Ids born elsewhere, or known here,
 * keep the full path: a replicated tombstone living two horizons.
 * Before: every destroy wrote a 48 h tombstone and an outbox event.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, generateSessionId, type RefusedWrite, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { LOCAL_TOMBSTONE_MS } from '../../src/session/operations.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { startApp } from '../helpers/framework-apps.js';
import { CookieJar } from '../helpers/http.js';
import { changeOfEntry, readMeta } from '../helpers/meta.js';
import { dropKeys, eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const TOMBSTONE_TTL_S = 3600;

describe.skipIf(!hasRedis)('a logout of a session never saved', () => {
  const client = sharedRedis() as Redis;
  const prefix = uniquePrefix('never-saved');
  const keys = createKeySpace(prefix);
  const store = new GeoSessionStore({
    region: 'hk',
    client,
    prefix,
    tombstoneTtl: TOMBSTONE_TTL_S,
    transport: createMemoryTransport(),
    sealer: 'none',
  });
  const refused: RefusedWrite[] = [];
  store.on('refused', (r) => refused.push(r));
  const outbox = keys.internal('outbox', 'hk');

  beforeAll(async () => {
    await store.ready();
  });
  afterAll(async () => {
    await store.close();
    await dropKeys(client, prefix);
    await client.del(outbox);
    client.disconnect();
  });

  const session = (user: string): SessionData =>
    ({
      cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000).toISOString() },
      user,
    }) as SessionData;
  const events = async () => (await client.xrange(outbox, '-', '+')).length;
  const destroys = async () =>
    (await client.xrange(outbox, '-', '+')).filter(([id, f]) => changeOfEntry('hk', id, f).op === 'destroy')
      .length;
  const keysOf = async (sid: string) =>
    (await client.exists(keys.session(sid))) + (await client.exists(keys.meta(sid)));

  it('born here, never saved: one local key living minutes, no event; a slow save after it is refused', async () => {
    const sid = store.genid();
    const before = await events();
    await store.destroy(sid);
    expect(await events()).toBe(before);
    expect(await keysOf(sid)).toBe(1);
    const ttl = await client.pttl(keys.meta(sid));
    expect(ttl).toBeGreaterThan(LOCAL_TOMBSTONE_MS - 5_000);
    expect(ttl).toBeLessThanOrEqual(LOCAL_TOMBSTONE_MS);
    expect(await store.isDestroyed(sid)).toBe(true);
    // connect-redis#328: a request that was in flight saves after the logout.
    await store.set(sid, session('slow'));
    expect(await store.get(sid)).toBeNull();
    expect(refused).toContainEqual({ op: 'set', sid, reason: 'destroyed' });
    expect(await events()).toBe(before);
    // A second logout of it costs nothing more.
    await store.destroy(sid);
    expect(await events()).toBe(before);
    expect(await client.pttl(keys.meta(sid))).toBeLessThanOrEqual(LOCAL_TOMBSTONE_MS);
  });

  it('10,000 regenerates of never-saved sessions leave at most one short-lived key each and no event', async () => {
    const before = await events();
    const sids = Array.from({ length: 10_000 }, () => store.genid());
    for (let i = 0; i < sids.length; i += 500) {
      await Promise.all(sids.slice(i, i + 500).map((sid) => store.destroy(sid)));
    }
    expect(await events()).toBe(before);
    const ttls = await Promise.all(sids.slice(0, 200).map((sid) => client.pttl(keys.meta(sid))));
    for (const ttl of ttls) expect(ttl).toBeLessThanOrEqual(LOCAL_TOMBSTONE_MS);
  }, 60_000);

  for (const framework of ['express', 'fastify'] as const) {
    it(`${framework}: an anonymous regenerate and logout leave no replicated event`, async () => {
      const app = await startApp(framework, store);
      try {
        const before = await destroys();
        const jar = new CookieJar();
        expect((await app.request(jar, 'POST', '/regenerate')).status).toBe(200);
        expect((await app.request(new CookieJar(), 'POST', '/logout')).status).toBe(200);
        expect(app.calls.filter((c) => c === 'destroy').length).toBeGreaterThan(0);
        // (express saves the regenerated session: a set, not a logout)
        expect(await destroys()).toBe(before);
      } finally {
        await app.close();
      }
    });
  }

  it('born in another region: the destroy replicates (its session may live there, not arrived yet)', async () => {
    const sid = generateSessionId('kr');
    const before = await events();
    await store.destroy(sid);
    expect(await events()).toBe(before + 1);
    expect(await client.pttl(keys.meta(sid))).toBeGreaterThan(2 * TOMBSTONE_TTL_S * 1000 - 5_000);
  });

  it('an id not made by genid, or one saved here: the full, replicated tombstone', async () => {
    for (const sid of ['plain-express-id', store.genid()]) {
      if (sid !== 'plain-express-id') await store.set(sid, session('ann'));
      const before = await events();
      await store.destroy(sid);
      expect(await events(), sid).toBe(before + 1);
      expect((await readMeta(client, keys.meta(sid))).t).toBe('1');
      expect(await client.pttl(keys.meta(sid)), sid).toBeGreaterThan(2 * TOMBSTONE_TTL_S * 1000 - 5_000);
    }
  });

  it('a region whose Redis lost its data replicates even logouts of ids born here', async () => {
    // It may have lost sessions born here that other regions still hold.
    const lostPrefix = uniquePrefix('never-saved-lost');
    const lostKeys = createKeySpace(lostPrefix);
    const lost = new GeoSessionStore({
      region: 'hk',
      client,
      prefix: lostPrefix,
      transport: createMemoryTransport(),
      sealer: 'none',
    });
    lost.on('error', () => {});
    try {
      await lost.ready();
      await client.del(lostKeys.internal('state', 'hk')); // as a flush or an empty restart leaves it
      await eventually(() => lost.replicationStats()?.needsResync.hk !== undefined, 15_000);
      const lostOutbox = lostKeys.internal('outbox', 'hk');
      const before = (await client.xrange(lostOutbox, '-', '+')).length;
      const sid = lost.genid();
      await lost.destroy(sid);
      expect((await client.xrange(lostOutbox, '-', '+')).length).toBe(before + 1);
      expect(await client.pttl(lostKeys.meta(sid))).toBeGreaterThan(LOCAL_TOMBSTONE_MS);
    } finally {
      await lost.close();
      await dropKeys(client, lostPrefix);
      await client.del(lostKeys.internal('outbox', 'hk'), lostKeys.internal('state', 'hk'));
    }
  }, 30_000);

  it('a cookie session’s tombstone lives at least until the cookie’s expiry, beyond two horizons', async () => {
    const short = new GeoSessionStore({
      region: 'hk',
      client,
      prefix,
      tombstoneTtl: 1,
      transport: createMemoryTransport(),
      sealer: 'none',
    });
    try {
      const sid = short.genid();
      const expires = Date.now() + 600_000;
      await short.set(sid, {
        cookie: { originalMaxAge: 600_000, expires: new Date(expires).toISOString() },
      } as SessionData);
      await short.destroy(sid);
      const until = Number((await readMeta(client, keys.meta(sid))).x);
      expect(until).toBeGreaterThanOrEqual(expires - 1_000);
      expect(await client.pexpiretime(keys.meta(sid))).toBe(until);
    } finally {
      await short.close();
    }
  });
});
