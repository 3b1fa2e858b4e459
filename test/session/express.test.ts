/**
 * express-session specifics over HTTP (rolling, resave, saveUninitialized: true, load/createSession,
 * errors, connect/disconnect). What both frameworks share is in frameworks.test.ts.
 */
import type session from 'express-session';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/session/store.js';
import { type AppOptions, type FrameworkApp, startApp } from '../helpers/framework-apps.js';
import { CookieJar } from '../helpers/http.js';
import { metaField, readMeta, writeMeta } from '../helpers/meta.js';
import {
  dropKeys,
  eventually,
  hasRedis,
  type PrivateRedis,
  sharedRedis,
  startRedis,
  uniquePrefix,
} from '../helpers/servers.js';

const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await redis?.quit();
});

async function harness(
  options: AppOptions = {},
  client: Redis | undefined = redis,
): Promise<FrameworkApp & { prefix: string }> {
  if (!client) throw new Error('no redis');
  const prefix = uniquePrefix('express');
  const store = new GeoSessionStore({ region: 'hk', client, prefix });
  const app = await startApp('express', store, options);
  cleanups.push(async () => {
    await app.close();
    if (client.status === 'ready') await dropKeys(client, prefix);
    await store.close();
  });
  return Object.assign(app, { prefix });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasRedis)('express-session + GeoSessionStore over HTTP', () => {
  const r = () => redis as Redis;

  /** The cookie.expires that `get` reports for `sid`, in ms. */
  const expiresOf = async (h: FrameworkApp, sid: string) =>
    Date.parse((await h.store.get(sid))?.cookie?.expires as string);

  /** An app with `options` and a user logged in: its jar, session id, reported expiry and stored value. */
  async function loggedIn(options: AppOptions) {
    const h = await harness(options);
    const jar = new CookieJar();
    const sid = (await h.request(jar, 'POST', '/login')).body.sid as string;
    return { h, jar, sid, first: await expiresOf(h, sid), value: await r().get(h.prefix + sid) };
  }

  it('resave: true saves the session with its updated cookie expiration, without rewriting the value', async () => {
    // express-session's own "should have saved session with updated cookie expiration" (MemoryStore and
    // connect-redis 8 rewrite the value; geosession keeps the touch-cost path and reports the new date).
    const { h, jar, sid, first, value } = await loggedIn({ resave: true });
    await pause(50);
    expect((await h.request(jar, 'GET', '/me')).body.user).toBe('alice');
    expect(await expiresOf(h, sid)).toBeGreaterThan(first);
    expect(await r().get(h.prefix + sid)).toBe(value);
  });

  it('a touch of an unchanged session moves the cookie.expires that get reports, without rewriting the value', async () => {
    // express-session's own "req.session .touch() should reset session expiration": express calls the
    // store's touch for an unmodified session, then reads it back.
    const { h, jar, sid, first, value } = await loggedIn({ rolling: true });
    await pause(50);
    h.calls.length = 0;
    await h.request(jar, 'GET', '/me');
    expect(h.calls).toEqual(['get', 'touch']);
    const second = await expiresOf(h, sid);
    expect(second).toBeGreaterThan(first);
    expect(await r().get(h.prefix + sid)).toBe(value);
    // What get reports is what the key lives to, by the Redis clock.
    expect(Math.abs(second - (await r().pexpiretime(h.prefix + sid)))).toBeLessThan(1000);
  });

  it('rolling: true re-sends the cookie each time and extends the TTL without rewriting the value', async () => {
    const h = await harness({ rolling: true });
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login');
    const key = h.prefix + body.sid;
    const before = await r().get(key);
    const expireBefore = await r().pexpiretime(key);
    const versionBefore = await metaField(r(), h.metaKey(body.sid as string), 'v');
    await pause(30);

    h.calls.length = 0;
    await h.request(jar, 'GET', '/me');
    expect(jar.lastSetCookie.some((c) => c.startsWith('connect.sid='))).toBe(true);
    expect(h.calls).toEqual(['get', 'touch']);
    expect(await r().get(key)).toBe(before);
    expect(await r().pexpiretime(key)).toBeGreaterThan(expireBefore);
    expect(await metaField(r(), h.metaKey(body.sid as string), 'v')).toBe(versionBefore);
  });

  it('rolling: false does not re-send the cookie for an unmodified session', async () => {
    const h = await harness({ rolling: false });
    const jar = new CookieJar();
    await h.request(jar, 'POST', '/login');
    await h.request(jar, 'GET', '/me');
    expect(jar.lastSetCookie).toEqual([]);
  });

  it('resave: true calls set on every request, yet only the expiry moves when nothing else changed', async () => {
    const h = await harness({ resave: true });
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login');
    const sid = body.sid as string;
    const key = h.prefix + sid;
    const before = await r().get(key);
    const versionBefore = await metaField(r(), h.metaKey(sid), 'v');
    const expireBefore = await r().pexpiretime(key);
    await pause(30);

    h.calls.length = 0;
    await h.request(jar, 'GET', '/me');
    expect(h.calls).toEqual(['get', 'set']);
    expect(await r().get(key)).toBe(before);
    expect(await metaField(r(), h.metaKey(sid), 'v')).toBe(versionBefore);
    expect(await r().pexpiretime(key)).toBeGreaterThan(expireBefore);

    // A real change is written with a new version.
    await h.request(jar, 'POST', '/count');
    expect(JSON.parse((await r().get(key)) ?? '{}').count).toBe(1);
    expect(await metaField(r(), h.metaKey(sid), 'v')).not.toBe(versionBefore);
  });

  it('saveUninitialized: true stores the new, empty session and issues a cookie', async () => {
    const h = await harness({ saveUninitialized: true });
    const jar = new CookieJar();
    const me = await h.request(jar, 'GET', '/me');
    expect(jar.cookies.has('connect.sid')).toBe(true);
    expect(await h.store.ids()).toEqual([me.body.sid]);
    expect((await h.request(jar, 'GET', '/me')).body).toMatchObject({ user: null, sid: me.body.sid });
  });

  it('store.load and store.createSession build express-session Session objects', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login?user=carol');
    const sid = body.sid as string;

    const loaded = await new Promise<session.Session & Partial<session.SessionData>>((resolve, reject) =>
      h.store.load(sid, (err, sess) =>
        err ? reject(err) : resolve(sess as session.Session & Partial<session.SessionData>),
      ),
    );
    expect(loaded.user).toBe('carol');
    expect(loaded.id).toBe(sid);
    expect(loaded.cookie.expires).toBeInstanceOf(Date);
    expect(typeof loaded.save).toBe('function');

    const missing = await new Promise<unknown>((resolve, reject) =>
      h.store.load('hk.nothing-here', (err, sess) => (err ? reject(err) : resolve(sess))),
    );
    expect(missing).toBeUndefined();

    const data = await h.store.get(sid);
    const req: { sessionID: string; sessionStore: GeoSessionStore; session?: unknown } = {
      sessionID: sid,
      sessionStore: h.store,
    };
    const created = h.store.createSession(req, data ?? {}) as session.Session & Partial<session.SessionData>;
    expect(req.session).toBe(created);
    expect(created.user).toBe('carol');
    expect(created.cookie.originalMaxAge).toBe(60_000);
  });

  it('a corrupt session becomes a 500, and the server keeps serving', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login');
    const key = h.prefix + body.sid;

    await r().del(key);
    await r().set(key, '{not json', 'PX', 60_000);
    expect((await h.request(jar, 'GET', '/me')).status).toBe(500);
    expect(h.errors.map((e) => e.name)).toEqual(['CorruptSessionError']);

    expect((await h.request(new CookieJar(), 'GET', '/me')).status).toBe(200);
  });
});

describe.skipIf(!hasRedis)('express-session follows connect / disconnect', () => {
  let priv: PrivateRedis | undefined;
  afterAll(async () => {
    await priv?.stop();
  });

  it('skips the store while Redis is down and uses it again after connect', async () => {
    priv = await startRedis();
    const client = priv.client();
    const h = await harness({}, client);
    await eventually(() => h.store.connected);
    const events: string[] = [];
    h.store.on('connect', () => events.push('connect'));
    h.store.on('disconnect', () => events.push('disconnect'));

    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login?user=dora');
    const sid = body.sid as string;
    const key = h.prefix + sid;
    const value = (await client.get(key)) as string;
    const meta = await readMeta(client, h.metaKey(sid));

    await priv.kill();
    await eventually(() => events.includes('disconnect'));
    expect(h.store.connected).toBe(false);

    // express-session fails open: no req.session, no cookie, no hang, no store call.
    h.calls.length = 0;
    const down = await h.request(jar, 'GET', '/me');
    expect(down).toEqual({ status: 200, body: { session: false } });
    expect(jar.lastSetCookie).toEqual([]);
    expect(h.calls).toEqual([]);

    await priv.restart();
    await eventually(() => events.includes('connect'), 20_000);
    expect(h.store.connected).toBe(true);
    // The restarted server is empty; put the session back as a persisted Redis would have it.
    await client.set(key, value, 'PX', 60_000);
    await writeMeta(client, h.metaKey(sid), meta);

    expect((await h.request(jar, 'GET', '/me')).body).toEqual({ user: 'dora', sid });
    const fresh = new CookieJar();
    await h.request(fresh, 'POST', '/login?user=erin');
    expect((await h.request(fresh, 'GET', '/me')).body.user).toBe('erin');
    expect(events).toEqual(['disconnect', 'connect']);
  });
});
