/**
 * verifySessionCookie / loadSessionFromCookie against cookies written by real apps (express-session and
 * @fastify/session over GeoSessionStore on the machine's Redis), plus option checks and fuzzing.
 */
import { sign } from 'cookie-signature';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  GeoSessionError,
  GeoSessionStore,
  loadSessionFromCookie,
  type SessionCookieOptions,
  verifySessionCookie,
} from '../../src/index.js';
import { CookieJar, recordCalls } from '../helpers/http.js';
import { dropKeys, hasRedis, sharedRedis, startRedis, uniquePrefix } from '../helpers/servers.js';
import {
  type AppOptions,
  cookieValue,
  type SessionApp,
  startExpressApp,
  startFastifyApp,
} from '../helpers/session-apps.js';

const OLD = 'the-old-secret-at-least-32-characters-long';
const NEW = 'the-new-secret-at-least-32-characters-long';
const EXPRESS = { secrets: OLD, format: 'express' } as const;
const FASTIFY = { secrets: OLD, format: 'fastify' } as const;

/** The same signed value with the first character of its signature changed, re-encoded for the wire. */
function tamperSignature(wire: string): string {
  const value = decodeURIComponent(wire);
  const dot = value.lastIndexOf('.');
  const first = value[dot + 1] === 'A' ? 'B' : 'A';
  return encodeURIComponent(value.slice(0, dot + 1) + first + value.slice(dot + 2));
}

/** The same signature over a different id (one character of the id changed). */
function tamperId(wire: string): string {
  const value = decodeURIComponent(wire);
  const dot = value.lastIndexOf('.');
  const last = value[dot - 1] === 'x' ? 'y' : 'x';
  return encodeURIComponent(value.slice(0, dot - 1) + last + value.slice(dot));
}

interface Flavour {
  title: string;
  start(options: AppOptions): Promise<SessionApp>;
  verifyOptions(secrets: string | string[]): SessionCookieOptions;
}

const FLAVOURS: Flavour[] = [
  {
    title: 'express + express-session',
    start: startExpressApp,
    verifyOptions: (secrets) => ({ secrets, format: 'express' }),
  },
  {
    title: 'fastify + @fastify/session',
    start: startFastifyApp,
    verifyOptions: (secrets) => ({ secrets, format: 'fastify' }),
  },
  {
    title: "fastify + @fastify/session with cookiePrefix 's:'",
    start: (options) => startFastifyApp({ ...options, cookiePrefix: 's:' }),
    verifyOptions: (secrets) => ({ secrets, format: 'fastify', cookiePrefix: 's:' }),
  },
];

describe.skipIf(!hasRedis)('cookies written by real apps', () => {
  let redis: Redis;
  let store: GeoSessionStore;
  const prefix = uniquePrefix('session-cookie');
  const apps: SessionApp[] = [];
  const start = async (flavour: Flavour, options: Omit<AppOptions, 'store'>) => {
    const app = await flavour.start({ store, ...options });
    apps.push(app);
    return app;
  };

  beforeAll(() => {
    redis = sharedRedis();
    store = new GeoSessionStore({ region: 'hk', client: redis, prefix });
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(async () => {
    await dropKeys(redis, prefix);
    await store.close();
    await redis.quit();
  });

  describe.each(FLAVOURS)('$title', (flavour) => {
    it('verifies the cookie the app set and loads the session the app stored', async () => {
      const app = await start(flavour, { secret: OLD });
      const jar = new CookieJar();
      const sid = await app.login(jar, 'alice', 'n-1');
      const header = jar.header();

      expect(await app.me(header)).toEqual({ sid, user: 'alice' });
      expect(verifySessionCookie(header, flavour.verifyOptions(OLD))).toEqual({
        sid,
        secretIndex: 0,
        renew: false,
      });
      const loaded = await loadSessionFromCookie(store, header, flavour.verifyOptions([OLD]));
      expect(loaded).toMatchObject({ sid, renew: false, session: { user: 'alice', nonce: 'n-1' } });
      expect(loaded?.session).toEqual(await store.get(sid));
    });

    it('verifies cookies of a rotated-out secret with renew: true, as the app still accepts them', async () => {
      const before = await start(flavour, { secret: OLD });
      const oldJar = new CookieJar();
      const oldSid = await before.login(oldJar, 'alice', 'n-2');
      // The app restarts with a new first secret and keeps the old one for verification.
      const after = await start(flavour, { secret: [NEW, OLD] });
      expect(await after.me(oldJar.header())).toEqual({ sid: oldSid, user: 'alice' });
      const rotated = flavour.verifyOptions([NEW, OLD]);
      expect(verifySessionCookie(oldJar.header(), rotated)).toEqual({
        sid: oldSid,
        secretIndex: 1,
        renew: true,
      });
      expect(await loadSessionFromCookie(store, oldJar.header(), rotated)).toMatchObject({
        sid: oldSid,
        renew: true,
        session: { user: 'alice' },
      });

      const newJar = new CookieJar();
      const newSid = await after.login(newJar, 'bob', 'n-3');
      expect(verifySessionCookie(newJar.header(), rotated)).toEqual({
        sid: newSid,
        secretIndex: 0,
        renew: false,
      });
      // A service still on the old secret alone refuses cookies the app now signs: roll secrets there first.
      expect(verifySessionCookie(newJar.header(), flavour.verifyOptions(OLD))).toBeNull();
    });

    it('refuses a tampered signature or id, as the app does', async () => {
      const app = await start(flavour, { secret: OLD });
      const jar = new CookieJar();
      await app.login(jar, 'alice', 'n-4');
      const value = cookieValue(jar, app.cookieName);
      for (const forged of [tamperSignature(value), tamperId(value)]) {
        const header = `${app.cookieName}=${forged}`;
        expect(await app.me(header)).toEqual({ sid: null, user: null });
        expect(verifySessionCookie(header, flavour.verifyOptions(OLD))).toBeNull();
        expect(await loadSessionFromCookie(store, header, flavour.verifyOptions(OLD))).toBeNull();
      }
      expect(verifySessionCookie(jar.header(), flavour.verifyOptions('some-other-secret'))).toBeNull();
    });

    it('returns null for a logged-out session although the cookie still verifies', async () => {
      const app = await start(flavour, { secret: OLD });
      const jar = new CookieJar();
      const sid = await app.login(jar, 'alice', 'n-5');
      const header = jar.header();
      await app.logout(jar);
      expect(await app.me(header)).toEqual({ sid: null, user: null });
      expect(verifySessionCookie(header, flavour.verifyOptions(OLD))?.sid).toBe(sid);
      expect(await loadSessionFromCookie(store, header, flavour.verifyOptions(OLD))).toBeNull();
    });

    it('finds the cookie among others, with spaces, tabs and quotes, and takes the first of duplicates', async () => {
      const app = await start(flavour, { secret: OLD });
      const jar = new CookieJar();
      const sid = await app.login(jar, 'alice', 'n-6');
      const name = app.cookieName;
      const value = cookieValue(jar, name);
      const options = flavour.verifyOptions(OLD);
      const good = `${name}=${value}`;
      const forged = `${name}=${tamperSignature(value)}`;

      const crowded = `theme=dark;\t${good} ;  csrf="a=b"; ${forged}`;
      expect(await app.me(crowded)).toEqual({ sid, user: 'alice' });
      expect(verifySessionCookie(crowded, options)?.sid).toBe(sid);

      const forgedFirst = `${forged}; ${good}`;
      expect(await app.me(forgedFirst)).toEqual({ sid: null, user: null });
      expect(verifySessionCookie(forgedFirst, options)).toBeNull();

      // HTTP/2 sends cookies as separate crumbs; Node hands them over as an array.
      expect(verifySessionCookie(['theme=dark', good], options)?.sid).toBe(sid);
      // RFC 6265 allows a quoted value (the `cookie` package of express-session strips the quotes).
      expect(verifySessionCookie(`${name}="${value}"`, options)?.sid).toBe(sid);
    });
  });

  it('honours a custom cookie name', async () => {
    const app = await start(FLAVOURS[0] as Flavour, { secret: OLD, name: 'app.sid' });
    const jar = new CookieJar();
    const sid = await app.login(jar, 'alice', 'n-7');
    expect(verifySessionCookie(jar.header(), { secrets: OLD, format: 'express', name: 'app.sid' })?.sid).toBe(
      sid,
    );
    expect(verifySessionCookie(jar.header(), { secrets: OLD, format: 'express' })).toBeNull();
  });

  it('does not take a cookie of one format for the other', async () => {
    const [expressFlavour, fastifyFlavour] = FLAVOURS as [Flavour, Flavour];
    const expressJar = new CookieJar();
    const fastifyJar = new CookieJar();
    const expressSid = await (await start(expressFlavour, { secret: OLD })).login(expressJar, 'e', 'n-8');
    await (await start(fastifyFlavour, { secret: OLD })).login(fastifyJar, 'f', 'n-9');
    const expressValue = cookieValue(expressJar, 'connect.sid');
    const fastifyValue = cookieValue(fastifyJar, 'sessionId');

    expect(verifySessionCookie(`sessionId=${expressValue}`, { secrets: OLD, format: 'fastify' })).toBeNull();
    expect(
      verifySessionCookie(`connect.sid=${fastifyValue}`, { secrets: OLD, format: 'express' }),
    ).toBeNull();
    expect(verifySessionCookie(expressJar.header(), { secrets: OLD, format: 'fastify' })).toBeNull();
    expect(verifySessionCookie(fastifyJar.header(), { secrets: OLD, format: 'express' })).toBeNull();
    // Same HMAC underneath: fastify with cookiePrefix 's:' reads express-session's cookie.
    const bridged = { secrets: OLD, format: 'fastify', name: 'connect.sid', cookiePrefix: 's:' } as const;
    expect(verifySessionCookie(expressJar.header(), bridged)?.sid).toBe(expressSid);
    // With a cookiePrefix, a value that lacks it is absent (as in @fastify/session), whatever follows.
    const prefixed = { secrets: OLD, format: 'fastify', cookiePrefix: 's:' } as const;
    expect(verifySessionCookie(`sessionId=zz${fastifyValue}`, prefixed)).toBeNull();
    expect(verifySessionCookie(`sessionId=s%3a${fastifyValue}`, prefixed)).not.toBeNull();
  });

  it('refuses signed values no framework writes: an empty id, an undecodable one, no s: for express', () => {
    expect(
      verifySessionCookie(`connect.sid=${encodeURIComponent(`s:${sign('', OLD)}`)}`, EXPRESS),
    ).toBeNull();
    expect(verifySessionCookie(`sessionId=${sign('', OLD)}`, FASTIFY)).toBeNull();
    // The `cookie` package would pass `a%zz` on undecoded; a value that does not decode is refused here.
    expect(verifySessionCookie(`sessionId=${sign('a%zz', OLD)}`, FASTIFY)).toBeNull();
    expect(verifySessionCookie(`sessionId=${encodeURIComponent(sign('a%zz', OLD))}`, FASTIFY)?.sid).toBe(
      'a%zz',
    );
    // express-session only unsigns values that start with s: (it reads others as unsigned and ignores them).
    expect(verifySessionCookie(`connect.sid=${sign('hk.abc', OLD)}`, EXPRESS)).toBeNull();
  });

  it('reads no cookie value over maxCookieBytes (on the wire, in bytes): null, whatever its signature', () => {
    // A validly signed value of 5,000 bytes: over the default 4,096, within a limit of 8,192.
    const long = sign(`hk.${'a'.repeat(5000)}`, OLD);
    expect(verifySessionCookie(`sessionId=${long}`, FASTIFY)).toBeNull();
    expect(verifySessionCookie(`sessionId=${long}`, { ...FASTIFY, maxCookieBytes: 8192 })?.sid).toBe(
      `hk.${'a'.repeat(5000)}`,
    );
    // Counted as sent, percent-encoding included: 1,400 encoded bytes are 4,200 on the wire.
    const encoded = encodeURIComponent(sign('\u20ac'.repeat(466), OLD));
    expect(encoded.length).toBeGreaterThan(4096);
    expect(verifySessionCookie(`sessionId=${encoded}`, FASTIFY)).toBeNull();
    expect(verifySessionCookie(`sessionId=${encoded}`, { ...FASTIFY, maxCookieBytes: 8192 })).not.toBeNull();
  });

  it('returns null without asking the store when there is no cookie', async () => {
    const calls: string[] = [];
    const watched = new GeoSessionStore({ region: 'hk', client: redis, prefix });
    recordCalls(watched, calls);
    const options = { secrets: OLD, format: 'express' } as const;
    for (const header of [
      undefined,
      null,
      '',
      'theme=dark',
      'connect.sid=',
      'connect.sid',
      'connect.sid=""',
    ]) {
      expect(verifySessionCookie(header, options)).toBeNull();
      expect(await loadSessionFromCookie(watched, header, options)).toBeNull();
    }
    expect(calls).toEqual([]);
    await watched.close();
  });

  it("rejects with the store's error when Redis fails", async () => {
    const app = await start(FLAVOURS[0] as Flavour, { secret: OLD });
    const jar = new CookieJar();
    await app.login(jar, 'alice', 'n-10');
    const dead = await startRedis();
    const broken = new GeoSessionStore({
      region: 'hk',
      client: dead.client(),
      prefix,
      operationTimeoutMs: 300,
    });
    await broken.ready();
    await dead.kill();
    try {
      const loading = loadSessionFromCookie(broken, jar.header(), { secrets: OLD, format: 'express' });
      await expect(loading).rejects.toBeInstanceOf(GeoSessionError);
    } finally {
      await broken.close();
      await dead.stop();
    }
  });
});

describe('options', () => {
  const header = 'connect.sid=s%3Aabc.def';
  const refused: Array<[string, unknown]> = [
    ['secrets', { format: 'express' }],
    ['secrets', { secrets: '', format: 'express' }],
    ['secrets', { secrets: [], format: 'express' }],
    ['secrets[1]', { secrets: ['a', ''], format: 'express' }],
    ['secrets[0]', { secrets: [42], format: 'fastify' }],
    ['format', { secrets: 'a' }],
    ['format', { secrets: 'a', format: 'koa' }],
    ['name', { secrets: 'a', format: 'express', name: '' }],
    ['name', { secrets: 'a', format: 'express', name: 'a b' }],
    ['name', { secrets: 'a', format: 'fastify', name: 'a;b' }],
    ['cookiePrefix', { secrets: 'a', format: 'express', cookiePrefix: 's:' }],
    ['cookiePrefix', { secrets: 'a', format: 'fastify', cookiePrefix: 1 }],
    ['maxCookieBytes', { secrets: 'a', format: 'fastify', maxCookieBytes: 10 }],
    ['maxCookieBytes', { secrets: 'a', format: 'fastify', maxCookieBytes: 4096.5 }],
    ['options', null],
  ];

  it.each(refused)('refuses a bad `%s` with a ConfigError naming it', async (option, options) => {
    const bad = options as SessionCookieOptions;
    const thrown = (() => {
      try {
        verifySessionCookie(header, bad);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).option).toBe(option);
    await expect(loadSessionFromCookie({ get: async () => null }, header, bad)).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('accepts a short secret: the 32-character minimum is @fastify/session’s rule, not ours', () => {
    expect(verifySessionCookie(header, { secrets: 'x', format: 'fastify' })).toBeNull();
  });
});

describe('garbage headers', () => {
  const optionSets: SessionCookieOptions[] = [
    { secrets: [NEW, OLD], format: 'express' },
    { secrets: OLD, format: 'fastify' },
    { secrets: OLD, format: 'fastify', cookiePrefix: 's:' },
  ];
  const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }));

  it('never throws and never verifies a random header', () => {
    fc.assert(
      fc.property(anyText, (header) => {
        for (const options of optionSets) expect(verifySessionCookie(header, options)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('never verifies a random value under the right name and shape', () => {
    const shaped = fc.tuple(
      fc.constantFrom('connect.sid=', 'connect.sid=s%3A', 'connect.sid=s:', 'sessionId=', 'sessionId=s:'),
      anyText,
      fc.constantFrom('', '; connect.sid=x', '; sessionId=s%3A'),
    );
    fc.assert(
      fc.property(shaped, ([head, value, tail]) => {
        for (const options of optionSets)
          expect(verifySessionCookie(head + value + tail, options)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('returns null for malformed percent-encoding instead of throwing', () => {
    for (const value of ['s%3Aabc%.sig', 's%3A%E0%A4%A.sig', '%', '%ZZ', 's%3A%uD800.x']) {
      expect(verifySessionCookie(`connect.sid=${value}`, optionSets[0] as SessionCookieOptions)).toBeNull();
    }
  });

  it('rejects headers that are not text without throwing', () => {
    for (const header of [42, {}, [1, 2], [undefined], Symbol('x')]) {
      expect(verifySessionCookie(header as never, optionSets[0] as SessionCookieOptions)).toBeNull();
    }
  });
});
