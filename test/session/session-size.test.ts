/**
 * `maxSessionBytes` (issue 14 item 3): `set()` of a session whose serialized form is larger, counted in
 * UTF-8 bytes, is refused with a coded `SessionTooLargeError` before anything is written, in callback
 * and promise style, and express-session hands it to `next(err)`. The limit holds without a transport
 * too (a several-megabyte value hurts any Redis).
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, SessionTooLargeError } from '../../src/errors.js';
import { DEFAULT_OPTIONS } from '../../src/session/options.js';
import { GeoSessionStore } from '../../src/session/store.js';
import type { SessionData } from '../../src/types.js';
import { dropKeys, eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

/** A session whose `text` is `n` Hangul syllables: n UTF-16 units, 3n bytes. */
function hangulSession(n: number): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    text: '가'.repeat(n),
  } as SessionData;
}

describe('maxSessionBytes: validation', () => {
  const client = new Redis({ lazyConnect: true, port: 6379, host: '127.0.0.1' });
  client.on('error', () => {});
  afterAll(() => client.disconnect());
  const make = (maxSessionBytes: unknown) =>
    new GeoSessionStore({ region: 'hk', client, maxSessionBytes } as never);

  it.each([0, -1, 1.5, '1000', Number.NaN, null])('refuses %s, naming the option', (value) => {
    let caught: unknown;
    try {
      make(value);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe('maxSessionBytes');
    expect((caught as ConfigError).message).toContain('`maxSessionBytes`');
  });

  it('defaults to 128 KiB and takes a positive integer or Infinity', () => {
    expect(DEFAULT_OPTIONS.maxSessionBytes).toBe(131_072);
    make(1);
    make(4 * 1024 * 1024);
    make(Number.POSITIVE_INFINITY);
  });
});

describe.skipIf(!hasRedis)('maxSessionBytes: set() refuses before writing', () => {
  const redis = sharedRedis();
  const prefixes: string[] = [];
  const stores: GeoSessionStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const prefix of prefixes) await dropKeys(redis, prefix);
    redis.disconnect();
  });
  function store(extra: Record<string, unknown> = {}): GeoSessionStore {
    const prefix = uniquePrefix('size');
    prefixes.push(prefix);
    const s = new GeoSessionStore({ region: 'hk', client: redis, prefix, ...extra });
    stores.push(s);
    return s;
  }

  it('a session of 400,000 Hangul syllables (1.2 MB) is refused by default, promise and callback', async () => {
    const s = store();
    const sid = s.genid();
    const big = hangulSession(400_000);
    const error = await s.set(sid, big).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SessionTooLargeError);
    const tooLarge = error as SessionTooLargeError;
    expect(tooLarge.code).toBe('ERR_GEOSESSION_SESSION_TOO_LARGE');
    expect(tooLarge.bytes).toBe(Buffer.byteLength(JSON.stringify(big)));
    expect(tooLarge.limit).toBe(131_072);
    expect(tooLarge.message).toContain('maxSessionBytes');
    expect(tooLarge.message).toContain(String(tooLarge.bytes));
    // Its length in UTF-16 units (about 400,000) is what the old count saw; the bytes are what count.
    const viaCallback = await new Promise((resolve) => s.set(sid, big, (err) => resolve(err)));
    expect(viaCallback).toBeInstanceOf(SessionTooLargeError);
    expect(await redis.get(`${s.prefix}${sid}`)).toBeNull();
    expect(await s.get(sid)).toBeNull();
  });

  it('a refused set leaves the session as it was', async () => {
    const s = store();
    const sid = s.genid();
    await s.set(sid, hangulSession(10));
    await expect(s.set(sid, hangulSession(100_000))).rejects.toBeInstanceOf(SessionTooLargeError);
    expect((await s.get(sid))?.text).toBe('가'.repeat(10));
  });

  it('counts bytes exactly: at the limit is stored, one byte over is refused', async () => {
    const at = hangulSession(1000);
    const bytes = Buffer.byteLength(JSON.stringify(at));
    expect(bytes).toBeGreaterThan(3000); // not the 1,000-odd units
    const exact = store({ maxSessionBytes: bytes });
    await exact.set(exact.genid(), at);
    const under = store({ maxSessionBytes: bytes - 1 });
    await expect(under.set(under.genid(), at)).rejects.toBeInstanceOf(SessionTooLargeError);
    const off = store({ maxSessionBytes: Number.POSITIVE_INFINITY });
    const sid = off.genid();
    await off.set(sid, hangulSession(400_000));
    expect((await off.get(sid))?.text).toHaveLength(400_000);
  });

  it('express-session hands the refusal to next(err), and to an explicit save()', async () => {
    const s = store();
    const app = express();
    app.use(session({ store: s, genid: s.genid, secret: 'x', resave: false, saveUninitialized: false }));
    app.post('/big', (req, res) => {
      (req.session as unknown as { text: string }).text = '가'.repeat(400_000);
      res.json({ sid: req.sessionID });
    });
    app.post('/big-saved', (req, res, next) => {
      (req.session as unknown as { text: string }).text = '가'.repeat(400_000);
      req.session.save((err) => (err ? next(err) : res.json({ sid: req.sessionID })));
    });
    const seen: unknown[] = [];
    app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      seen.push(err);
      // At the end of a request express-session saves while the response is under way: too late to answer.
      if (!res.headersSent) res.status(507).json({ code: (err as { code?: string }).code });
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      await (await fetch(`http://127.0.0.1:${port}/big`, { method: 'POST' })).arrayBuffer();
      await eventually(() => seen.length === 1);
      expect(seen[0]).toBeInstanceOf(SessionTooLargeError);
      const res = await fetch(`http://127.0.0.1:${port}/big-saved`, { method: 'POST' });
      expect(res.status).toBe(507);
      expect(await res.json()).toEqual({ code: 'ERR_GEOSESSION_SESSION_TOO_LARGE' });
      expect(seen).toHaveLength(2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
