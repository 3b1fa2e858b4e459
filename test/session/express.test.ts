/**
 * End-to-end: express 5 + express-session + GeoSessionStore on the real Redis, over HTTP with fetch and a
 * tiny cookie jar. Every test builds its own app, store and key prefix.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import session, { type SessionOptions } from 'express-session';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { CookieJar, recordCalls } from '../helpers/http.js';
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

declare module 'express-session' {
  interface SessionData {
    user?: string;
    count?: number;
  }
}

const SECRET = 'express-e2e-secret';

/** The session id inside express-session's signed cookie value (`s:<sid>.<signature>`, URL-encoded). */
function sidOfCookie(value: string | undefined): string {
  const decoded = decodeURIComponent(value ?? '');
  expect(decoded.startsWith('s:')).toBe(true);
  return decoded.slice(2, decoded.lastIndexOf('.'));
}

interface Harness {
  store: GeoSessionStore;
  prefix: string;
  base: string;
  /** Names of store methods called, in order. */
  calls: string[];
  /** Errors that reached express's error handler. */
  errors: Error[];
  request(jar: CookieJar, method: string, path: string): Promise<{ status: number; body: Body }>;
  metaKey(sid: string): string;
}

interface Body {
  user?: string | null;
  sid?: string;
  session?: boolean;
  error?: string;
  count?: number;
}

const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await redis?.quit();
});

async function harness(
  options: Partial<SessionOptions> = {},
  client: Redis | undefined = redis,
): Promise<Harness> {
  if (!client) throw new Error('no redis');
  const prefix = uniquePrefix('express');
  const store = new GeoSessionStore({ region: 'hk', client, prefix });
  const calls: string[] = [];
  recordCalls(store, calls);
  const errors: Error[] = [];

  const app = express();
  app.use(
    session({
      secret: SECRET,
      store,
      genid: store.genid,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 60_000 },
      ...options,
    }),
  );
  app.post('/login', (req, res) => {
    req.session.user = String(req.query.user ?? 'alice');
    res.json({ sid: req.sessionID });
  });
  app.get('/me', (req, res) => {
    if (!req.session) {
      res.json({ session: false });
      return;
    }
    res.json({ session: true, user: req.session.user ?? null, sid: req.sessionID });
  });
  app.post('/count', (req, res) => {
    req.session.count = (req.session.count ?? 0) + 1;
    res.json({ count: req.session.count });
  });
  app.post('/regenerate', (req, res, next) => {
    const user = req.session.user;
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = user;
      res.json({ sid: req.sessionID });
    });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.json({ session: false });
    });
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(err);
    res.status(500).json({ error: err.name });
  });

  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const keys = createKeySpace(prefix);

  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (client.status === 'ready') await dropKeys(client, prefix);
    await store.close();
  });

  return {
    store,
    prefix,
    base,
    calls,
    errors,
    metaKey: (sid) => keys.meta(sid),
    async request(jar, method, path) {
      const res = await fetch(base + path, { method, headers: { cookie: jar.header() } });
      jar.absorb(res);
      return { status: res.status, body: (await res.json()) as Body };
    },
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasRedis)('express-session + GeoSessionStore over HTTP', () => {
  const r = () => redis as Redis;

  it('logs in, reads back, and logs out', async () => {
    const h = await harness();
    const jar = new CookieJar();

    const login = await h.request(jar, 'POST', '/login?user=alice');
    expect(login.status).toBe(200);
    expect(jar.cookies.has('connect.sid')).toBe(true);
    const sid = sidOfCookie(jar.cookies.get('connect.sid'));
    expect(sid).toBe(login.body.sid);
    const stored = JSON.parse((await r().get(h.prefix + sid)) ?? 'null');
    expect(stored.user).toBe('alice');
    expect(stored.cookie.originalMaxAge).toBe(60_000);

    const me = await h.request(jar, 'GET', '/me');
    expect(me.body).toMatchObject({ session: true, user: 'alice', sid });

    const oldJar = jar.clone();
    expect((await h.request(jar, 'POST', '/logout')).status).toBe(200);
    expect(await r().exists(h.prefix + sid)).toBe(0);
    expect(await metaField(r(), h.metaKey(sid), 't')).toBe('1');
    const after = await h.request(oldJar, 'GET', '/me');
    expect(after.body.user).toBeNull();
    expect(after.body.sid).not.toBe(sid);
    expect(h.errors).toEqual([]);
  });

  it('regenerate destroys and tombstones the old id; the new id works, the old cookie does not', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login?user=bob');
    const oldSid = body.sid as string;
    const oldJar = jar.clone();

    const regen = await h.request(jar, 'POST', '/regenerate');
    const newSid = regen.body.sid as string;
    expect(newSid).not.toBe(oldSid);
    expect(sidOfCookie(jar.cookies.get('connect.sid'))).toBe(newSid);
    expect(await r().exists(h.prefix + oldSid)).toBe(0);
    expect(await metaField(r(), h.metaKey(oldSid), 't')).toBe('1');

    expect((await h.request(jar, 'GET', '/me')).body).toMatchObject({ user: 'bob', sid: newSid });
    expect((await h.request(oldJar, 'GET', '/me')).body.user).toBeNull();
    // A stale save of the old id (a slow request) cannot bring it back.
    const refused: unknown[] = [];
    h.store.on('refused', (info) => refused.push(info));
    await h.store.set(oldSid, { user: 'bob', cookie: { originalMaxAge: 60_000 } });
    expect(await r().exists(h.prefix + oldSid)).toBe(0);
    expect(refused).toEqual([{ op: 'set', sid: oldSid, reason: 'destroyed' }]);
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

  it('resave: false touches an unmodified session: same stored string, later expiry', async () => {
    const h = await harness({ resave: false });
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login');
    const key = h.prefix + body.sid;
    const before = await r().get(key);
    const expireBefore = await r().pexpiretime(key);
    await pause(30);

    h.calls.length = 0;
    expect((await h.request(jar, 'GET', '/me')).body.user).toBe('alice');
    expect(h.calls).toEqual(['get', 'touch']);
    expect(await r().get(key)).toBe(before);
    expect(await r().pexpiretime(key)).toBeGreaterThan(expireBefore);
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

  it('saveUninitialized: false writes nothing for a visitor who does not touch the session', async () => {
    const h = await harness({ saveUninitialized: false });
    const jar = new CookieJar();
    const me = await h.request(jar, 'GET', '/me');
    expect(me.body.session).toBe(true);
    expect(jar.lastSetCookie).toEqual([]);
    expect(await h.store.length()).toBe(0);
    expect(await r().exists(h.prefix + (me.body.sid as string))).toBe(0);
  });

  it('saveUninitialized: true stores the new, empty session and issues a cookie', async () => {
    const h = await harness({ saveUninitialized: true });
    const jar = new CookieJar();
    const me = await h.request(jar, 'GET', '/me');
    expect(jar.cookies.has('connect.sid')).toBe(true);
    expect(await h.store.ids()).toEqual([me.body.sid]);
    expect((await h.request(jar, 'GET', '/me')).body).toMatchObject({ user: null, sid: me.body.sid });
  });

  it('genid: store.genid makes region-tagged ids and the signed cookie round-trips', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login');
    const sid = sidOfCookie(jar.cookies.get('connect.sid'));
    expect(sid).toBe(body.sid);
    expect(sid.startsWith('hk.')).toBe(true);
    expect(h.store.regionOf(sid)).toBe('hk');
    expect((await h.request(jar, 'GET', '/me')).body).toMatchObject({ user: 'alice', sid });

    // A tampered signature is rejected: the cookie is only honoured because it is correctly signed.
    const forged = new CookieJar();
    const value = jar.cookies.get('connect.sid') as string;
    forged.cookies.set('connect.sid', `${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`);
    expect((await h.request(forged, 'GET', '/me')).body.user).toBeNull();
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

  it('a Redis error on get becomes a 500, and the server keeps serving', async () => {
    const h = await harness();
    const jar = new CookieJar();
    const { body } = await h.request(jar, 'POST', '/login');
    const key = h.prefix + body.sid;

    await r().del(key);
    await r().hset(key, 'not', 'a string'); // GET now fails with WRONGTYPE
    const wrongType = await h.request(jar, 'GET', '/me');
    expect(wrongType.status).toBe(500);
    expect(h.errors.map((e) => e.name)).toEqual(['RedisCommandError']);

    await r().del(key);
    await r().set(key, '{not json', 'PX', 60_000);
    expect((await h.request(jar, 'GET', '/me')).status).toBe(500);
    expect(h.errors.map((e) => e.name)).toEqual(['RedisCommandError', 'CorruptSessionError']);

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

    expect((await h.request(jar, 'GET', '/me')).body).toMatchObject({ session: true, user: 'dora', sid });
    const fresh = new CookieJar();
    await h.request(fresh, 'POST', '/login?user=erin');
    expect((await h.request(fresh, 'GET', '/me')).body.user).toBe('erin');
    expect(events).toEqual(['disconnect', 'connect']);
  });
});
