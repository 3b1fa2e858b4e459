import session from 'express-session';
import { Redis } from 'ioredis';
import { Redis as Redis5 } from 'ioredis5';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CallbackError, CorruptSessionError, RedisCommandError } from '../../src/errors.js';
import type { GeoSessionStoreOptions } from '../../src/session/options.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import type { RedisClient, SessionData } from '../../src/types.js';
import { metaField, readMeta } from '../helpers/meta.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const redis = sharedRedis();
// Many short-lived stores share this client; each follows its ready/close events until closed.
redis.setMaxListeners(100);
const prefixes: string[] = [];
const stores: GeoSessionStore[] = [];

/** A store on a fresh unique prefix (cleaned up in afterAll). */
function makeStore(
  extra: Partial<GeoSessionStoreOptions> = {},
  client: RedisClient = redis,
): GeoSessionStore {
  const prefix = uniquePrefix('store');
  prefixes.push(prefix);
  const store = new GeoSessionStore({ region: 'hk', client, prefix, ...extra });
  stores.push(store);
  return store;
}

const metaKey = (store: GeoSessionStore, sid: string) => `{${store.prefix}${sid}}:m`;
const inSeconds = (s: number) => new Date(Date.now() + s * 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  for (const store of stores) await store.close();
  for (const prefix of prefixes) await dropKeys(redis, prefix);
  redis.disconnect();
});

describe.skipIf(!hasRedis)('connect-redis lifecycle (parity with its index_test.ts)', () => {
  it('runs the connect-redis lifecycle step by step', async () => {
    const store = makeStore();
    const key = (sid: string) => store.prefix + sid;

    // 1. clear with no callback returns a promise (and is a no-op on an empty store).
    const cleared = store.clear();
    expect(cleared).toBeInstanceOf(Promise);
    await cleared;

    // 2. no expiry in the cookie: the default ttl applies.
    await store.set('123', { foo: 'bar', cookie: { originalMaxAge: null } });
    expect(await store.get('123')).toEqual({ foo: 'bar', cookie: { originalMaxAge: null } });
    expect(await redis.ttl(key('123'))).toBeGreaterThanOrEqual(86399);

    // 3. cookie expiring in 60 s.
    const expires456 = inSeconds(60).toISOString();
    await store.set('456', { cookie: { originalMaxAge: null, expires: expires456 } });
    const ttl456 = await redis.ttl(key('456'));
    expect(ttl456).toBeGreaterThan(0);
    expect(ttl456).toBeLessThanOrEqual(60);

    // 4. touch with a cookie expiring in 90 s.
    await store.touch('456', { cookie: { originalMaxAge: null, expires: inSeconds(90).toISOString() } });
    expect(await redis.ttl(key('456'))).toBeGreaterThan(60);

    // 5. length and ids.
    expect(await store.length()).toBe(2);
    expect((await store.ids()).sort()).toEqual(['123', '456']);

    // 6. all: touch did not rewrite the value, so 456 still carries the ORIGINAL expires.
    const all = (await store.all()).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    expect(all).toEqual([
      { id: '123', foo: 'bar', cookie: { originalMaxAge: null } },
      { id: '456', cookie: { originalMaxAge: null, expires: expires456 } },
    ]);

    // 7. destroy, then clear.
    await store.destroy('456');
    expect(await store.length()).toBe(1);
    await store.clear();
    expect(await store.length()).toBe(0);

    // 8. 1000 sessions, each with an express-session Cookie expiring 1 s ahead. They are written
    // concurrently (auto-pipelined) so that none expires before `length` counts them on a slow machine.
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const cookie = new session.Cookie();
        cookie.maxAge = 1000;
        return store.set(`i${i}`, { cookie } as unknown as SessionData);
      }),
    );
    expect(await store.length()).toBe(1000);
    await store.clear();
    expect(await store.length()).toBe(0);

    // 9. a future expiry stores; the same id with a past expiry deletes.
    await store.set('789', { cookie: { originalMaxAge: null, expires: inSeconds(60).toISOString() } });
    expect(await store.length()).toBe(1);
    await store.set('789', { cookie: { originalMaxAge: null, expires: inSeconds(-10).toISOString() } });
    expect(await store.length()).toBe(0);
    expect(await redis.exists(key('789'))).toBe(0);
  });

  it("works with the default prefix 'sess:' (and cleans up its own keys)", async () => {
    const store = new GeoSessionStore({ region: 'hk', client: redis });
    stores.push(store);
    const sid = `geosession-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await store.set(sid, { foo: 'bar', cookie: { originalMaxAge: null } });
      expect(await redis.get(`sess:${sid}`)).toBe(
        JSON.stringify({ foo: 'bar', cookie: { originalMaxAge: null } }),
      );
      expect(await redis.ttl(`sess:${sid}`)).toBeGreaterThanOrEqual(86399);
      expect(await store.get(sid)).toEqual({ foo: 'bar', cookie: { originalMaxAge: null } });
      await store.destroy(sid);
      expect(await store.get(sid)).toBeNull();
      expect(await redis.exists(`sess:${sid}`)).toBe(0);
    } finally {
      await redis.del(`sess:${sid}`, `{sess:${sid}}:m`);
    }
  });
});

describe.skipIf(!hasRedis)('TTL rules', () => {
  it('a ttl function wins over the cookie expiry', async () => {
    const seen: unknown[] = [];
    const store = makeStore({
      ttl: (sess) => {
        seen.push(sess.n);
        return 10;
      },
    });
    await store.set('s', {
      n: 1,
      cookie: { originalMaxAge: 3_600_000, expires: inSeconds(3600).toISOString() },
    });
    const pttl = await redis.pttl(`${store.prefix}s`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(10_000);
    expect(seen).toEqual([1]);
  });

  it('a ttl function returning 0 destroys the session', async () => {
    let ttl = 60;
    const store = makeStore({ ttl: () => ttl });
    await store.set('s', { cookie: {} });
    expect(await store.get('s')).not.toBeNull();
    ttl = 0;
    await store.set('s', { cookie: {} });
    expect(await store.get('s')).toBeNull();
  });

  it('cookie.expires gives the remaining lifetime; Redis makes the absolute expiry from its own clock', async () => {
    const store = makeStore();
    const expires = new Date(Date.now() + 123_456);
    await store.set('s', { cookie: { originalMaxAge: 123_456, expires: expires.toISOString() } });
    // Redis's clock runs on from when the host read its own: the expiry lands at most a call later.
    const at = Number(await redis.call('PEXPIRETIME', `${store.prefix}s`));
    expect(at).toBeGreaterThanOrEqual(expires.getTime());
    expect(at).toBeLessThan(expires.getTime() + 1000);
    expect(await redis.call('PEXPIRETIME', metaKey(store, 's'))).toBe(at);
    // A Date object (express-session's Cookie before toJSON) works the same.
    const later = new Date(Date.now() + 234_567);
    await store.set('d', { cookie: { originalMaxAge: 1, expires: later } });
    const atD = Number(await redis.call('PEXPIRETIME', `${store.prefix}d`));
    expect(atD - later.getTime()).toBeGreaterThanOrEqual(0);
    expect(atD - later.getTime()).toBeLessThan(1000);
  });

  it('without a cookie expiry the ttl option (seconds) applies', async () => {
    const store = makeStore({ ttl: 77 });
    await store.set('s', { cookie: { originalMaxAge: null } });
    const ttl = await redis.ttl(`${store.prefix}s`);
    expect(ttl).toBeGreaterThan(70);
    expect(ttl).toBeLessThanOrEqual(77);
  });

  it('disableTTL stores without expiry and makes touch a no-op', async () => {
    const store = makeStore({ disableTTL: true });
    await store.set('s', { n: 1, cookie: { expires: inSeconds(60).toISOString() } });
    expect(await redis.ttl(`${store.prefix}s`)).toBe(-1);
    expect(await redis.ttl(metaKey(store, 's'))).toBe(-1);
    const before = await readMeta(redis, metaKey(store, 's'));
    await store.touch('s', { n: 1, cookie: { expires: inSeconds(600).toISOString() } });
    expect(await redis.ttl(`${store.prefix}s`)).toBe(-1);
    expect(await readMeta(redis, metaKey(store, 's'))).toEqual(before);
    // Under disableTTL a past expiry still destroys (connect-redis#322).
    await store.set('s', { n: 1, cookie: { expires: inSeconds(-1).toISOString() } });
    expect(await store.get('s')).toBeNull();
  });

  it('disableTouch makes touch a no-op', async () => {
    const store = makeStore({ disableTouch: true });
    await store.set('s', { cookie: { expires: inSeconds(60).toISOString() } });
    await store.touch('s', { cookie: { expires: inSeconds(600).toISOString() } });
    expect(await redis.pttl(`${store.prefix}s`)).toBeLessThanOrEqual(60_000);
  });

  /** Session `n` with a cookie of maxAge `maxAgeS` that expires in `expiresInS` seconds. */
  const saved = (n: number, maxAgeS: number, expiresInS = maxAgeS) => ({
    n,
    cookie: { originalMaxAge: maxAgeS * 1000, expires: inSeconds(expiresInS).toISOString() },
  });

  for (const replicating of [false, true]) {
    it(`a newer write's lifetime wins, shorter or longer; a touch never shortens (${replicating ? 'replicating' : 'local'})`, async () => {
      const store = makeStore(replicating ? { transport: createMemoryTransport(), sealer: 'none' } : {});
      const key = `${store.prefix}s`;
      await store.set('s', saved(1, 600));
      expect(await redis.pttl(key)).toBeGreaterThan(590_000);
      // "Remember me" turned off: re-saved with a shorter maxAge, the session is shortened.
      await store.set('s', saved(2, 60));
      expect(await redis.pttl(key)).toBeLessThanOrEqual(60_000);
      expect(JSON.parse((await redis.get(key)) as string).n).toBe(2);
      // The same content with only a shorter maxAge is a new write too.
      await store.set('s', saved(2, 30));
      expect(await redis.pttl(key)).toBeLessThanOrEqual(30_000);
      // A touch with an earlier expiry never shortens it.
      await store.touch('s', saved(2, 30, 10));
      expect(await redis.pttl(key)).toBeGreaterThan(20_000);
      // And a longer one is a longer lifetime.
      await store.set('s', saved(3, 600));
      expect(await redis.pttl(key)).toBeGreaterThan(590_000);
    });
  }

  it('touch never creates a missing session', async () => {
    const store = makeStore();
    await store.touch('ghost', { cookie: { expires: inSeconds(60).toISOString() } });
    expect(await redis.exists(`${store.prefix}ghost`, metaKey(store, 'ghost'))).toBe(0);
    expect(await store.get('ghost')).toBeNull();
  });

  it('touch with a null, undefined or cookie-less session does not crash', async () => {
    const store = makeStore({ ttl: 120 });
    await store.set('s', { cookie: { expires: inSeconds(30).toISOString() } });
    for (const sess of [null, undefined, {}, { cookie: null }, { cookie: { expires: 'not a date' } }]) {
      await expect(store.touch('s', sess as unknown as SessionData)).resolves.toBeUndefined();
    }
    // With no usable cookie expiry touch falls back to the ttl option (120 s).
    const pttl = await redis.pttl(`${store.prefix}s`);
    expect(pttl).toBeGreaterThan(30_000);
    expect(pttl).toBeLessThanOrEqual(120_000);
    await expect(store.touch('missing', null as unknown as SessionData)).resolves.toBeUndefined();
  });
});

describe.skipIf(!hasRedis)('a set that only changes cookie.expires', () => {
  it('does not rewrite the value, moves the expiry forward and keeps the version', async () => {
    const store = makeStore();
    const key = `${store.prefix}s`;
    // Set 60 s ago with a 120 s maxAge; the rolling save below renews it to now + maxAge.
    const first = { user: 'ann', cookie: { originalMaxAge: 120_000, expires: inSeconds(60).toISOString() } };
    await store.set('s', first);
    const text1 = await redis.get(key);
    const v1 = await metaField(redis, metaKey(store, 's'), 'v');
    expect(v1).toMatch(/^\d{15}\.\d{4}\.hk$/);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(60_000);

    await store.set('s', { ...first, cookie: { ...first.cookie, expires: inSeconds(120).toISOString() } });
    expect(await redis.get(key)).toBe(text1);
    expect(await redis.pttl(key)).toBeGreaterThan(60_000);
    expect(await metaField(redis, metaKey(store, 's'), 'v')).toBe(v1);

    // A real content change rewrites the value with a higher version.
    await store.set('s', { ...first, user: 'bob' });
    expect(JSON.parse((await redis.get(key)) as string).user).toBe('bob');
    const v2 = (await metaField(redis, metaKey(store, 's'), 'v')) as string;
    expect(v2 > (v1 as string)).toBe(true);
    // ...whose expiry is its own (its cookie's, 60 s away), even though shorter than the last one.
    expect(await redis.pttl(key)).toBeLessThanOrEqual(60_000);
  });

  for (const replicating of [false, true]) {
    it(`get returns the cookie.expires of the last write, even one that only moved the expiry (${replicating ? 'replicating' : 'local'})`, async () => {
      // express-session's "should have saved session with updated cookie expiration" (resave: true).
      const store = makeStore(replicating ? { transport: createMemoryTransport(), sealer: 'none' } : {});
      const key = `${store.prefix}s`;
      const first = {
        user: 'ann',
        cookie: { originalMaxAge: 120_000, expires: inSeconds(60).toISOString() },
      };
      await store.set('s', first);
      expect(await store.get('s')).toEqual(first);
      const text = await redis.get(key);
      const later = inSeconds(120).toISOString();
      await store.set('s', { ...first, cookie: { ...first.cookie, expires: later } });
      expect(await redis.get(key)).toBe(text); // the fast path: the value was not rewritten
      const got = await store.get('s');
      const reported = Date.parse(got?.cookie?.expires as string);
      // Within the time the two calls took of the date written (Redis-clock deltas, no host clock).
      expect(Math.abs(reported - Date.parse(later))).toBeLessThan(250);
      expect(got).toMatchObject({ user: 'ann' });
      // A full write reports its own date exactly.
      const third = {
        user: 'bob',
        cookie: { originalMaxAge: 120_000, expires: inSeconds(90).toISOString() },
      };
      await store.set('s', third);
      expect(await store.get('s')).toEqual(third);
    });
  }

  it('get after the stored cookie.expires passed (the key lives on after a touch) returns the fresh expiry', async () => {
    const store = makeStore();
    const firstExpiry = Date.now() + 1000;
    await store.set('s', {
      a: 1,
      cookie: { originalMaxAge: 1000, expires: new Date(firstExpiry).toISOString() },
    });
    const touchedTo = inSeconds(60);
    await store.touch('s', { a: 1, cookie: { originalMaxAge: 1000, expires: touchedTo.toISOString() } });
    while (Date.now() <= firstExpiry + 5) await sleep(50);
    const stored = JSON.parse((await redis.get(`${store.prefix}s`)) as string);
    expect(stored.cookie.expires).toBe(new Date(firstExpiry).toISOString()); // value untouched
    // The touched expiry: the stored date moved by how far the touch moved the key's expiry in Redis
    // time, so within the time the calls took of touchedTo (either side: host and Redis clocks are read
    // at different moments), and far from the stale first expiry.
    const fetched = await store.get('s');
    expect(fetched).toMatchObject({ a: 1, cookie: { originalMaxAge: 1000 } });
    const fresh = Date.parse(String(fetched?.cookie?.expires));
    expect(fresh).toBeGreaterThan(touchedTo.getTime() - 250);
    expect(fresh).toBeLessThan(touchedTo.getTime() + 1000);
  });
});

describe.skipIf(!hasRedis)('callback and promise styles', () => {
  let store: GeoSessionStore;
  beforeEach(() => {
    store = makeStore();
  });

  const call = <T>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => unknown) =>
    new Promise<{ err: Error | null | undefined; value: T | undefined; returned: unknown }>((resolve) => {
      let returned: unknown;
      returned = fn((err, value) => queueMicrotask(() => resolve({ err, value, returned })));
    });

  it('every method takes a callback (returning undefined) and gives the same result as its promise', async () => {
    const sess = { n: 1, cookie: { originalMaxAge: null } };
    const set = await call<void>((cb) => store.set('a', sess, cb));
    expect(set).toEqual({ err: null, value: undefined, returned: undefined });
    const got = await call<SessionData | null>((cb) => store.get('a', cb));
    expect(got.err).toBeNull();
    expect(got.value).toEqual(sess);
    expect(got.returned).toBeUndefined();
    expect(await store.get('a')).toEqual(sess);
    expect((await call<void>((cb) => store.touch('a', sess, cb))).err).toBeNull();
    expect((await call<string[]>((cb) => store.ids(cb))).value).toEqual(['a']);
    expect(await store.ids()).toEqual(['a']);
    expect((await call<number>((cb) => store.length(cb))).value).toBe(1);
    expect(await store.length()).toBe(1);
    expect((await call<SessionData[]>((cb) => store.all(cb))).value).toEqual([{ ...sess, id: 'a' }]);
    expect(await store.all()).toEqual([{ ...sess, id: 'a' }]);
    expect((await call<void>((cb) => store.destroy('a', cb))).err).toBeNull();
    expect((await call<SessionData | null>((cb) => store.get('a', cb))).value).toBeNull();
    await store.set('b', sess);
    expect((await call<void>((cb) => store.clear(cb))).err).toBeNull();
    expect(await store.length()).toBe(0);
  });

  it('without a callback every method returns a Promise; a missing session is null', async () => {
    const sess = { cookie: { originalMaxAge: null } };
    const results = [
      store.set('p', sess),
      store.touch('p', sess),
      store.get('missing'),
      store.ids(),
      store.length(),
      store.all(),
    ];
    for (const r of results) expect(r).toBeInstanceOf(Promise);
    await Promise.all(results);
    expect(await store.get('missing')).toBeNull();
    const destroyed = store.destroy('p');
    expect(destroyed).toBeInstanceOf(Promise);
    await expect(destroyed).resolves.toBeUndefined();
    const cleared = store.clear();
    expect(cleared).toBeInstanceOf(Promise);
    await cleared;
  });

  it('errors go to the callback or reject the promise (corrupt value); a key of another type is no session', async () => {
    // get reads the value and its metadata in one MGET, which answers a key of another type as missing.
    await redis.hset(`${store.prefix}wrongtype`, 'a', '1');
    const viaCb = await call<SessionData | null>((cb) => store.get('wrongtype', cb));
    expect(viaCb.err).toBeNull();
    expect(viaCb.value).toBeNull();
    // Errors from Redis itself still reach the caller.
    await redis.hset(metaKey(store, 'broken'), 'not', 'a string');
    await expect(store.set('broken', { cookie: {} })).rejects.toBeInstanceOf(RedisCommandError);

    await redis.set(`${store.prefix}corrupt`, '{not json');
    const corrupt = await call<SessionData | null>((cb) => store.get('corrupt', cb));
    expect(corrupt.err).toBeInstanceOf(CorruptSessionError);
    expect((corrupt.err as CorruptSessionError).sid).toBe('corrupt');
    await expect(store.get('corrupt')).rejects.toMatchObject({ code: 'ERR_GEOSESSION_CORRUPT' });
    // Only that call fails.
    await store.set('fine', { cookie: {} });
    expect(await store.get('fine')).toEqual({ cookie: {} });
  });

  it('destroy with no callback and a failing Redis does not cause an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await redis.hset(metaKey(store, 'x'), 'not', 'a string'); // destroy.lua's GET fails with WRONGTYPE
      const p = store.destroy('x');
      await expect(p).rejects.toBeInstanceOf(RedisCommandError);
      store.destroy('x'); // dropped on the floor, as `req.session.destroy()` does
      await sleep(100);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  /**
   * Runs `start`, whose callback throws, and checks the callback ran exactly once, nothing reached
   * `uncaughtException` (vitest's own listeners are detached meanwhile, so one would be counted here, not
   * fail the run), and the exception came out as one coded `error` event on the store.
   */
  async function throwingCallbackRunsOnce(
    start: (cb: (err?: Error | null) => void) => void,
    operation: string,
  ) {
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    let calls = 0;
    const uncaught: unknown[] = [];
    const reported: CallbackError[] = [];
    const onError = (error: Error) => {
      reported.push(error as CallbackError);
    };
    store.on('error', onError);
    const thrown = new Error('boom from the app');
    try {
      // `on`, not `once`: a second call (connect-redis calls a throwing callback again with its own error)
      // must be counted, not crash the worker.
      process.on('uncaughtException', (error) => uncaught.push(error));
      start(() => {
        calls++;
        throw thrown;
      });
      const deadline = Date.now() + 5000;
      while (reported.length === 0 && uncaught.length === 0 && Date.now() < deadline) await sleep(5);
      await sleep(50); // a second call, or a rethrow on the next tick, would land here
      expect(uncaught).toEqual([]);
      expect(calls).toBe(1);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toBeInstanceOf(CallbackError);
      expect(reported[0]?.code).toBe('ERR_GEOSESSION_CALLBACK');
      expect(reported[0]?.operation).toBe(operation);
      expect(reported[0]?.cause).toBe(thrown);
    } finally {
      store.off('error', onError);
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
    }
  }

  it('a callback that throws is called exactly once (success path)', async () => {
    await throwingCallbackRunsOnce((cb) => store.get('nope', cb), 'get');
    await throwingCallbackRunsOnce((cb) => store.set('t', { cookie: {} }, cb), 'set');
    await throwingCallbackRunsOnce((cb) => store.touch('t', { cookie: {} }, cb), 'touch');
    await throwingCallbackRunsOnce((cb) => store.destroy('t', cb), 'destroy');
    await throwingCallbackRunsOnce((cb) => store.length(cb), 'length');
  });

  it('a callback that throws, with nobody listening for errors, is written to stderr once', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const uncaught: unknown[] = [];
    process.on('uncaughtException', (error) => uncaught.push(error));
    try {
      expect(store.listenerCount('error')).toBe(0);
      let calls = 0;
      store.get('nope', () => {
        calls++;
        throw new Error('thrown with nobody listening');
      });
      const deadline = Date.now() + 5000;
      while (printed.mock.calls.length === 0 && Date.now() < deadline) await sleep(5);
      await sleep(50);
      expect(uncaught).toEqual([]);
      expect(calls).toBe(1);
      expect(printed).toHaveBeenCalledTimes(1);
      expect(printed.mock.calls[0]?.[1]).toBeInstanceOf(CallbackError);
    } finally {
      printed.mockRestore();
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
    }
  });

  it('a callback that throws is called exactly once (error path)', async () => {
    await redis.set(`${store.prefix}bad`, '{');
    await throwingCallbackRunsOnce((cb) => store.get('bad', cb), 'get');
  });
});

describe.skipIf(!hasRedis)('ioredis 5 and ioredis 6 clients', () => {
  it('the two client classes really are different packages', () => {
    expect(Redis5).not.toBe(Redis);
  });

  const clients: Array<[string, () => RedisClient]> = [
    ['ioredis 6', () => new Redis({ port: 6379, host: '127.0.0.1' })],
    ['ioredis 5', () => new Redis5({ port: 6379, host: '127.0.0.1' }) as unknown as RedisClient],
  ];
  for (const [name, factory] of clients) {
    it(`set/get/touch/destroy/ids with ${name}`, async () => {
      const client = factory();
      try {
        const store = makeStore({}, client);
        const sess = { who: name, cookie: { originalMaxAge: 60_000, expires: inSeconds(60).toISOString() } };
        await store.set('v', sess);
        expect(await store.get('v')).toEqual(sess);
        await store.touch('v', {
          ...sess,
          cookie: { ...sess.cookie, expires: inSeconds(300).toISOString() },
        });
        expect(await redis.ttl(`${store.prefix}v`)).toBeGreaterThan(60);
        expect(await store.ids()).toEqual(['v']);
        await store.destroy('v');
        expect(await store.get('v')).toBeNull();
        expect(await store.ids()).toEqual([]);
        expect(store.connected).toBe(true);
      } finally {
        (client as Redis).disconnect();
      }
    });
  }
});
