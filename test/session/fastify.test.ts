/**
 * End-to-end: fastify 5 + @fastify/cookie + @fastify/session + GeoSessionStore on the real Redis, over HTTP
 * with fetch and a tiny cookie jar. Every test builds its own app, store and key prefix.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { CookieJar, recordCalls } from '../helpers/http.js';
import { metaField } from '../helpers/meta.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

declare module 'fastify' {
  interface Session {
    user?: string;
    count?: number;
  }
}

const SECRET = 'fastify-e2e-secret-of-at-least-32-characters';
const COOKIE = 'sessionId';

interface Body {
  user?: string | null;
  sid?: string;
  count?: number;
}

interface Harness {
  store: GeoSessionStore;
  prefix: string;
  /** Store methods called, in order. */
  calls: string[];
  request(jar: CookieJar, method: string, path: string): Promise<{ status: number; body: Body }>;
  metaKey(sid: string): string;
}

interface HarnessOptions {
  maxAge?: number;
  saveUninitialized?: boolean;
  rolling?: boolean;
}

const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await redis?.quit();
});

async function harness(options: HarnessOptions = {}): Promise<Harness> {
  const client = redis as Redis;
  const prefix = uniquePrefix('fastify');
  const store = new GeoSessionStore({ region: 'hk', client, prefix });
  const calls: string[] = [];
  recordCalls(store, calls);

  const app: FastifyInstance = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: SECRET,
    store,
    idGenerator: store.genid,
    cookie: { secure: false, maxAge: options.maxAge ?? 60_000 },
    ...(options.saveUninitialized === undefined ? {} : { saveUninitialized: options.saveUninitialized }),
    ...(options.rolling === undefined ? {} : { rolling: options.rolling }),
  });
  app.post('/login', async (request) => {
    request.session.user = String((request.query as { user?: string }).user ?? 'alice');
    return { sid: request.session.sessionId };
  });
  app.get('/me', async (request) => ({
    user: request.session.user ?? null,
    sid: request.session.sessionId,
  }));
  app.post('/count', async (request) => {
    request.session.count = (request.session.count ?? 0) + 1;
    return { count: request.session.count };
  });
  app.post('/regenerate', async (request) => {
    await request.session.regenerate(['user']);
    return { sid: request.session.sessionId, user: request.session.user ?? null };
  });
  app.post('/logout', async (request) => {
    await request.session.destroy();
    return {};
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const keys = createKeySpace(prefix);

  cleanups.push(async () => {
    await app.close();
    await dropKeys(client, prefix);
    await store.close();
  });

  return {
    store,
    prefix,
    calls,
    metaKey: (sid) => keys.meta(sid),
    async request(jar, method, path) {
      const res = await fetch(base + path, { method, headers: { cookie: jar.header() } });
      jar.absorb(res);
      return { status: res.status, body: (await res.json()) as Body };
    },
  };
}

/** The session id inside @fastify/session's signed cookie value (`<sid>.<signature>`, URL-encoded). */
function sidOfCookie(value: string | undefined): string {
  const decoded = decodeURIComponent(value ?? '');
  return decoded.slice(0, decoded.lastIndexOf('.'));
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasRedis)('@fastify/session + GeoSessionStore over HTTP', () => {
  const r = () => redis as Redis;

  it('logs in, reads back, and logs out', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const login = await h.request(jar, 'POST', '/login?user=alice');
    expect(login.status).toBe(200);
    const sid = login.body.sid as string;
    expect(sid.startsWith('hk.')).toBe(true);
    expect(sidOfCookie(jar.cookies.get(COOKIE))).toBe(sid);
    const stored = JSON.parse((await r().get(h.prefix + sid)) ?? 'null');
    expect(stored.user).toBe('alice');
    expect(stored.cookie.originalMaxAge).toBe(60_000);

    expect((await h.request(jar, 'GET', '/me')).body).toEqual({ user: 'alice', sid });

    const oldJar = jar.clone();
    expect((await h.request(jar, 'POST', '/logout')).status).toBe(200);
    expect(await r().exists(h.prefix + sid)).toBe(0);
    expect(await metaField(r(), h.metaKey(sid), 't')).toBe('1');
    const after = await h.request(oldJar, 'GET', '/me');
    expect(after.body.user).toBeNull();
    expect(after.body.sid).not.toBe(sid);
  });

  it('default rolling: every request calls set, but only the expiry moves when nothing changed', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const sid = (await h.request(jar, 'POST', '/login')).body.sid as string;
    const key = h.prefix + sid;
    const before = await r().get(key);
    const versionBefore = await metaField(r(), h.metaKey(sid), 'v');
    const expireBefore = await r().pexpiretime(key);
    await pause(30);

    h.calls.length = 0;
    expect((await h.request(jar, 'GET', '/me')).body.user).toBe('alice');
    expect(h.calls).toEqual(['get', 'set']);
    expect(jar.lastSetCookie.some((c) => c.startsWith(`${COOKIE}=`))).toBe(true);
    expect(await r().get(key)).toBe(before);
    expect(await metaField(r(), h.metaKey(sid), 'v')).toBe(versionBefore);
    expect(await r().pexpiretime(key)).toBeGreaterThan(expireBefore);
  });

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

  it('regenerate destroys the old id; the new id works, the old cookie does not', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const oldSid = (await h.request(jar, 'POST', '/login?user=lee')).body.sid as string;
    const oldJar = jar.clone();

    const regen = await h.request(jar, 'POST', '/regenerate');
    const newSid = regen.body.sid as string;
    expect(regen.body.user).toBe('lee');
    expect(newSid).not.toBe(oldSid);
    expect(newSid.startsWith('hk.')).toBe(true);
    expect(sidOfCookie(jar.cookies.get(COOKIE))).toBe(newSid);
    expect(await r().exists(h.prefix + oldSid)).toBe(0);
    expect(await metaField(r(), h.metaKey(oldSid), 't')).toBe('1');
    expect(JSON.parse((await r().get(h.prefix + newSid)) ?? '{}').user).toBe('lee');

    expect((await h.request(jar, 'GET', '/me')).body).toEqual({ user: 'lee', sid: newSid });
    const stale = await h.request(oldJar, 'GET', '/me');
    expect(stale.body.user).toBeNull();
    expect(await r().exists(h.prefix + oldSid)).toBe(0);
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

  it('a real content change rewrites the value and bumps the version', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const sid = (await h.request(jar, 'POST', '/login')).body.sid as string;
    const key = h.prefix + sid;
    const before = await r().get(key);
    const version1 = (await metaField(r(), h.metaKey(sid), 'v')) as string;

    expect((await h.request(jar, 'POST', '/count')).body.count).toBe(1);
    const after1 = await r().get(key);
    const version2 = (await metaField(r(), h.metaKey(sid), 'v')) as string;
    expect(after1).not.toBe(before);
    expect(JSON.parse(after1 ?? '{}').count).toBe(1);
    expect(version2).not.toBe(version1);

    expect((await h.request(jar, 'POST', '/count')).body.count).toBe(2);
    const version3 = (await metaField(r(), h.metaKey(sid), 'v')) as string;
    expect(JSON.parse((await r().get(key)) ?? '{}').count).toBe(2);
    expect(version3).not.toBe(version2);
    // Versions are HLC strings of fixed width: later ones sort after earlier ones.
    expect([version3, version1, version2].sort()).toEqual([version1, version2, version3]);
  });
});
