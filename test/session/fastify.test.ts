/**
 * @fastify/session specifics over HTTP (saves that only move the expiry, expiry without requests,
 * saveUninitialized). What both frameworks share is in frameworks.test.ts.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { GeoSessionError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { type AppOptions, type FrameworkApp, startApp } from '../helpers/framework-apps.js';
import { CookieJar } from '../helpers/http.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const COOKIE = 'sessionId';
const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await redis?.quit();
});

async function harness(options: AppOptions = {}): Promise<FrameworkApp & { prefix: string }> {
  const client = redis as Redis;
  const prefix = uniquePrefix('fastify');
  const store = new GeoSessionStore({ region: 'hk', client, prefix });
  const app = await startApp('fastify', store, options);
  cleanups.push(async () => {
    await app.close();
    await dropKeys(client, prefix);
    await store.close();
  });
  return Object.assign(app, { prefix });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasRedis)('@fastify/session + GeoSessionStore over HTTP', () => {
  const r = () => redis as Redis;

  it('a session kept alive only by expiry-only writes outlives its original cookie.expires', async () => {
    const maxAge = 2000;
    const h = await harness({ maxAge });
    const jar = new CookieJar();
    const sid = (await h.request(jar, 'POST', '/login?user=kim')).body.sid as string;
    const key = h.prefix + sid;
    const original = (await r().get(key)) as string;
    const originalExpires = Date.parse(JSON.parse(original).cookie.expires);

    // Keep going until the stored value's own cookie.expires is well in the past.
    let requests = 0;
    while (Date.now() < originalExpires + 1200) {
      await pause(400);
      const me = await h.request(jar, 'GET', '/me');
      expect(me.body).toEqual({ user: 'kim', sid });
      requests++;
    }
    expect(requests).toBeGreaterThanOrEqual(5);
    // The value was never rewritten (so fastify saw the stale expiry unless the store freshened it) ...
    expect(await r().get(key)).toBe(original);
    // ... and the session is still live in Redis and in the app.
    // The store knows the later expiry: the key's own (the metadata is not rewritten by such writes).
    expect(Number(await r().pexpiretime(h.prefix + sid))).toBeGreaterThan(originalExpires);
    const fetched = await h.store.get(sid);
    expect(Date.parse(String(fetched?.cookie?.expires))).toBeGreaterThan(originalExpires);
  });

  it('without requests the session does expire', async () => {
    const h = await harness({ maxAge: 1000 });
    const jar = new CookieJar();
    const sid = (await h.request(jar, 'POST', '/login')).body.sid as string;
    await pause(1300);
    const me = await h.request(jar, 'GET', '/me');
    expect(me.body.user).toBeNull();
    expect(me.body.sid).not.toBe(sid);
  });

  it('saveUninitialized: false writes nothing for an untouched visitor; the default true does', async () => {
    const off = await harness({ saveUninitialized: false });
    const jar = new CookieJar();
    await off.request(jar, 'GET', '/me');
    expect(jar.lastSetCookie).toEqual([]);
    expect(await off.store.length()).toBe(0);

    const on = await harness();
    const jar2 = new CookieJar();
    const me = await on.request(jar2, 'GET', '/me');
    expect(jar2.cookies.has(COOKIE)).toBe(true);
    expect(await on.store.ids()).toEqual([me.body.sid]);
  });

  it('a handler that forgets `return reply` gets its answer, and the process lives on', async () => {
    // fastify only logs this mistake; the session's save then runs after the reply went out, and the
    // continuation fastify gives the store throws. It used to be rethrown on the next tick: a crash.
    const client = r();
    const prefix = uniquePrefix('fastify-forgot');
    const store = new GeoSessionStore({ region: 'hk', client, prefix });
    const reported: GeoSessionError[] = [];
    store.on('error', (error) => reported.push(error));
    const app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      secret: 'fastify-e2e-secret-of-at-least-32-characters',
      store,
      idGenerator: store.genid,
      cookie: { secure: false, maxAge: 60_000 },
    });
    app.post('/forgot', async (request, reply) => {
      request.session.set('user' as never, 'kim' as never);
      reply.send({ ok: true }); // no `return reply`
    });
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const uncaught: unknown[] = [];
    process.on('uncaughtException', (error) => uncaught.push(error));
    try {
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      const res = await fetch(`${base}/forgot`, { method: 'POST' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
      await pause(100); // a rethrow on the next tick would land here
      const again = await fetch(`${base}/forgot`, { method: 'POST' });
      expect(again.status).toBe(200);
      await pause(100);
      expect(uncaught).toEqual([]);
      // What fastify's continuation threw came out as coded error events, not as a crash.
      expect(reported.length).toBeGreaterThan(0);
      for (const error of reported) expect(error.code).toBe('ERR_GEOSESSION_CALLBACK');
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
      await app.close();
      await dropKeys(client, prefix);
      await store.close();
    }
  });
});
