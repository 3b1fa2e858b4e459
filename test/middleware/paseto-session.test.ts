/**
 * pasetoSession with a real express 5 app on the machine's Redis (a unique prefix per run), and on a
 * private redis-server where the test must count every command.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/index.js';
import { type PasetoSessionOptions, pasetoSession, pasetoSessionOf } from '../../src/paseto.js';
import { AUDIENCE, createIssuer, ISSUER, type Issuer } from '../helpers/paseto-issuer.js';
import {
  dropKeys,
  hasRedis,
  type PrivateRedis,
  sharedRedis,
  startRedis,
  uniquePrefix,
} from '../helpers/servers.js';

const redis: Redis | undefined = hasRedis ? sharedRedis() : undefined;
const cleanups: Array<() => Promise<void>> = [];
const PREFIX = uniquePrefix('paseto-session');

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  if (redis?.status === 'ready') await dropKeys(redis, PREFIX);
  await redis?.quit();
});

interface App {
  store: GeoSessionStore;
  issuer: Issuer;
  base: string;
  errors: unknown[];
  call(
    token: string | undefined,
    method?: string,
    path?: string,
    headers?: Record<string, string>,
  ): Promise<Reply>;
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
  authenticate: string | null;
}

async function startApp(
  options: Partial<PasetoSessionOptions> = {},
  client: Redis | undefined = redis,
  issuer = createIssuer(),
  storeOptions: { tombstoneTtl?: number } = {},
): Promise<App> {
  if (!client) throw new Error('no redis');
  const store = new GeoSessionStore({ region: 'hk', client, prefix: PREFIX, ...storeOptions });
  const errors: unknown[] = [];
  store.on('error', (error) => errors.push(error));
  const app = express();
  app.use(
    pasetoSession({
      store,
      publicKeys: [issuer.publicKey],
      issuer: ISSUER,
      audience: AUDIENCE,
      ...options,
    }),
  );
  app.get('/me', (req, res) => {
    const session = pasetoSessionOf(req);
    res.json({ id: session.id, fields: { ...session } });
  });
  app.post('/count', (req, res) => {
    const session = pasetoSessionOf(req);
    session['count'] = ((session['count'] as number | undefined) ?? 0) + 1;
    res.json({ count: session['count'] });
  });
  app.post('/logout', async (req, res) => {
    await pasetoSessionOf(req).destroy();
    res.json({ ok: true });
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(err);
    res.status(500).json({ error: err.message });
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
  });
  return {
    store,
    issuer,
    base,
    errors,
    async call(token, method = 'GET', path = '/me', headers = {}) {
      const res = await fetch(base + path, {
        method,
        headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
      });
      return {
        status: res.status,
        body: (await res.json()) as Record<string, unknown>,
        authenticate: res.headers.get('www-authenticate'),
      };
    },
  };
}

function expectRefused(reply: Reply, reason: string) {
  expect(reply.status).toBe(401);
  expect(reply.body).toEqual({ error: 'invalid_token', reason });
  expect(reply.authenticate).toBe('Bearer error="invalid_token"');
}

describe.skipIf(!hasRedis)('pasetoSession (express)', () => {
  it('creates the session from the token, holding the mapped claims, expiring at exp', async () => {
    const app = await startApp();
    const { token, jti, exp } = await app.issuer.issue();
    const reply = await app.call(token);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      id: `token-${jti}`,
      fields: { userId: 'alice', scope: ['buyer', 'report'] },
    });
    const stored = await app.store.get(`token-${jti}`);
    expect(stored).toMatchObject({ userId: 'alice', scope: ['buyer', 'report'], cookie: { expires: exp } });
    const pttl = await (redis as Redis).pttl(`${PREFIX}token-${jti}`);
    // The key expires when the token does (give or take the request's own time).
    expect(Math.abs(Date.now() + pttl - Date.parse(exp))).toBeLessThan(2000);
  });

  it('serves the same session for the same token, keeping what handlers store in it', async () => {
    const app = await startApp();
    const { token } = await app.issuer.issue();
    expect((await app.call(token, 'POST', '/count')).body).toEqual({ count: 1 });
    expect((await app.call(token, 'POST', '/count')).body).toEqual({ count: 2 });
    const first = await app.call(token);
    const second = await app.call(token);
    expect(first.body).toEqual(second.body);
    expect(first.body['fields']).toEqual({ userId: 'alice', scope: ['buyer', 'report'], count: 2 });
    // Another token of the same user is another session.
    const other = await app.call((await app.issuer.issue()).token);
    expect(other.body['id']).not.toBe(first.body['id']);
  });

  it('maps claims with the `claims` option, and names sessions by `sessionIdClaim` with `sessionIdPrefix`', async () => {
    const app = await startApp({
      claims: (claims) => ({ uid: claims['sub'], device: claims['device'] ?? 'unknown' }),
      sessionIdClaim: 'sid',
      sessionIdPrefix: 'handle.',
    });
    const first = await app.issuer.issue({ claims: { sid: 'h-42', device: 'Chrome/Mac' } });
    expect((await app.call(first.token)).body).toEqual({
      id: 'handle.h-42',
      fields: { uid: 'alice', device: 'Chrome/Mac' },
    });
    await app.call(first.token, 'POST', '/count');
    // A refreshed token with the same handle and a later exp: same session, lifetime extended.
    const refreshed = await app.issuer.issue({ claims: { sid: 'h-42' }, expiresIn: 1200 });
    expect((await app.call(refreshed.token)).body['fields']).toMatchObject({ count: 1 });
    const expiresOf = async () =>
      ((await app.store.get('handle.h-42'))?.cookie as { expires?: string } | undefined)?.expires;
    expect(await expiresOf()).toBe(refreshed.exp);
    const pttl = await (redis as Redis).pttl(`${PREFIX}handle.h-42`);
    expect(Math.abs(Date.now() + pttl - Date.parse(refreshed.exp))).toBeLessThan(2000);
    // The older token still works until its own exp, and never shortens the session.
    expect((await app.call(first.token)).status).toBe(200);
    expect(await expiresOf()).toBe(refreshed.exp);
  });

  it('refuses every bad token with 401, a reason, and WWW-Authenticate', async () => {
    const app = await startApp();
    const stranger = createIssuer();
    const later = new Date(Date.now() + 60_000).toISOString();
    const issue = app.issuer.issue.bind(app.issuer);
    const { token } = await issue();
    const cases: Array<[string, Promise<Reply>]> = [
      ['missing', app.call(undefined)],
      ['missing', app.call(undefined, 'GET', '/me', { authorization: `Basic ${btoa('a:b')}` })],
      ['malformed', app.call('not-a-token')],
      ['malformed', app.call(undefined, 'GET', '/me', { authorization: 'Bearer' })],
      ['malformed', app.call((await issue({ footer: null })).token)],
      ['malformed', app.call((await issue({ without: ['jti'] })).token)],
      ['malformed', app.call((await issue({ claims: { jti: 'has space/slash' } })).token)],
      ['malformed', app.call((await issue({ claims: { jti: 'x'.repeat(200) } })).token)],
      ['unknown-key', app.call((await stranger.issue()).token)],
      [
        'tampered',
        app.call((await stranger.issue({ footer: JSON.stringify({ kid: app.issuer.pid }) })).token),
      ],
      [
        'tampered',
        app.call(
          token.replace(/\.([^.]{20})/, (_m, s: string) => `.${s.slice(0, 19)}${s[19] === 'A' ? 'B' : 'A'}`),
        ),
      ],
      ['expired', app.call((await issue({ expiresIn: -1 })).token)],
      ['not-yet-valid', app.call((await issue({ claims: { nbf: later } })).token)],
      ['wrong-issuer', app.call((await issue({ claims: { iss: 'https://evil.test' } })).token)],
      ['wrong-audience', app.call((await issue({ claims: { aud: 'billing' } })).token)],
    ];
    for (const [reason, reply] of cases) expectRefused(await reply, reason);
    expect(app.errors).toEqual([]);
  });

  it('ends the session everywhere on logout: the same token is then refused as revoked', async () => {
    const app = await startApp();
    const { token, jti } = await app.issuer.issue();
    expect((await app.call(token, 'POST', '/count')).status).toBe(200);
    expect((await app.call(token, 'POST', '/logout')).body).toEqual({ ok: true });
    expect(await app.store.get(`token-${jti}`)).toBeNull();
    expect(await app.store.isDestroyed(`token-${jti}`)).toBe(true);
    expectRefused(await app.call(token), 'revoked');
    expectRefused(await app.call(token, 'POST', '/count'), 'revoked');
    // Other tokens of the same user are other sessions, untouched.
    expect((await app.call((await app.issuer.issue()).token)).status).toBe(200);
  });

  describe('a logout lasts as long as the token (tombstoneTtl: 1, so a bare tombstone lives 2 s)', () => {
    const outlive = () => new Promise((r) => setTimeout(r, 2600));
    const shortLived = () => startApp({}, redis, createIssuer(), { tombstoneTtl: 1 });

    it('a logout made as the token’s first request', async () => {
      const app = await shortLived();
      const { token, jti } = await app.issuer.issue({ expiresIn: 600 });
      expect((await app.call(token, 'POST', '/logout')).body).toEqual({ ok: true });
      await outlive();
      expect(await app.store.isDestroyed(`token-${jti}`)).toBe(true);
      expectRefused(await app.call(token), 'revoked');
    });

    it('a logout after the session was saved', async () => {
      const app = await shortLived();
      const { token, jti } = await app.issuer.issue({ expiresIn: 600 });
      expect((await app.call(token, 'POST', '/count')).status).toBe(200);
      expect((await app.call(token, 'POST', '/logout')).status).toBe(200);
      await outlive();
      expect(await app.store.isDestroyed(`token-${jti}`)).toBe(true);
      expectRefused(await app.call(token, 'POST', '/count'), 'revoked');
    });

    it('an operator’s destroy before the token’s first use, told the token’s exp', async () => {
      const app = await shortLived();
      const { token, jti, exp } = await app.issuer.issue({ expiresIn: 600 });
      await app.store.destroy(`token-${jti}`, { until: Date.parse(exp) });
      await outlive();
      expectRefused(await app.call(token), 'revoked');
    });

    it('an operator’s bare destroy is lengthened to the exp of the first token that meets it', async () => {
      const app = await shortLived();
      const { token, jti } = await app.issuer.issue({ expiresIn: 600 });
      await app.store.destroy(`token-${jti}`);
      expectRefused(await app.call(token), 'revoked');
      await outlive();
      expectRefused(await app.call(token), 'revoked');
    });
  });

  it('reads the token from the named cookie when there is no Authorization header', async () => {
    const app = await startApp({ cookie: 'access_token' });
    const { token, jti } = await app.issuer.issue();
    const reply = await app.call(undefined, 'GET', '/me', { cookie: `theme=dark; access_token=${token}` });
    expect(reply.body['id']).toBe(`token-${jti}`);
    expectRefused(await app.call(undefined, 'GET', '/me', { cookie: 'access_token=garbage' }), 'malformed');
    expectRefused(await app.call(undefined, 'GET', '/me', { cookie: 'other=1' }), 'missing');
  });

  it('refuses a token over maxTokenBytes as malformed, from the header or the cookie, unread by Redis', async () => {
    const app = await startApp({ cookie: 'access_token', maxTokenBytes: 1024 });
    const { token } = await app.issuer.issue({ claims: { scope: 'read '.repeat(300) } });
    expect(Buffer.byteLength(token)).toBeGreaterThan(1024);
    expectRefused(await app.call(token), 'malformed');
    expectRefused(await app.call(undefined, 'GET', '/me', { cookie: `access_token=${token}` }), 'malformed');
    // Percent-encoded past three times the limit: refused before it is decoded.
    const encoded = '%41'.repeat(1100);
    expectRefused(
      await app.call(undefined, 'GET', '/me', { cookie: `access_token=${encoded}` }),
      'malformed',
    );
    // The same token under the default limit (8 KiB) is served.
    const roomy = await startApp({}, redis, app.issuer);
    expect((await roomy.call(token)).status).toBe(200);
  });

  it('follows issuer key rotation through the footer kid', async () => {
    const next = createIssuer();
    const old = createIssuer();
    const app = await startApp({ publicKeys: [old.publicKey, next.publicKey] }, redis, old);
    expect((await app.call((await old.issue()).token)).status).toBe(200);
    expect((await app.call((await next.issue()).token)).status).toBe(200);
    const retired = await startApp({ publicKeys: [next.publicKey] }, redis, next);
    expectRefused(await retired.call((await old.issue()).token), 'unknown-key');
  });
});

describe.skipIf(!hasRedis)('pasetoSession and Redis', () => {
  let server: PrivateRedis;
  afterAll(async () => {
    await server?.stop();
  });

  /** Calls per command on the private server, INFO itself left out. */
  async function commandCalls(client: Redis): Promise<number> {
    const info = await client.info('commandstats');
    let total = 0;
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (match[1] !== 'info') total += Number(match[2]);
    }
    return total;
  }

  it('never sends a command to Redis for a refused token', async () => {
    server = await startRedis();
    const client = server.client();
    const observer = server.client();
    const app = await startApp({}, client);
    const stranger = createIssuer();
    await app.call((await app.issuer.issue()).token); // warm up: scripts loaded, connection ready
    const before = await commandCalls(observer);
    const bad = [
      undefined,
      'garbage',
      (await app.issuer.issue({ expiresIn: -1 })).token,
      (await app.issuer.issue({ claims: { aud: 'billing' } })).token,
      (await app.issuer.issue({ claims: { iss: 'x' } })).token,
      (await stranger.issue()).token,
      (await stranger.issue({ footer: JSON.stringify({ kid: app.issuer.pid }) })).token,
      (await app.issuer.issue({ claims: { jti: 'a b' } })).token,
    ];
    for (const token of bad) expect((await app.call(token)).status).toBe(401);
    expect(await commandCalls(observer)).toBe(before);
    // The counter does see a good token's commands.
    expect((await app.call((await app.issuer.issue()).token)).status).toBe(200);
    expect(await commandCalls(observer)).toBeGreaterThan(before);
  });

  it('passes a store failure to express’s error handler', async () => {
    const dead = await startRedis();
    const client = dead.client({ maxRetriesPerRequest: 0, enableOfflineQueue: false });
    const app = await startApp({}, client);
    await dead.kill();
    const reply = await app.call((await app.issuer.issue()).token);
    expect(reply.status).toBe(500);
    expect(app.errors.length).toBeGreaterThan(0);
    await dead.stop();
  });
});

describe('pasetoSession options', () => {
  const issuer = createIssuer();
  const store = new GeoSessionStore({ region: 'hk', client: sharedRedis({ lazyConnect: true }) });
  const valid: PasetoSessionOptions = {
    store,
    publicKeys: [issuer.publicKey],
    issuer: ISSUER,
    audience: AUDIENCE,
  };
  const cases: Array<[string, Record<string, unknown>]> = [
    ['store', { store: undefined }],
    ['store', { store: {} }],
    ['publicKeys', { publicKeys: [] }],
    ['publicKeys', { publicKeys: issuer.publicKey }],
    ['publicKeys[0]', { publicKeys: ['k4.public.short'] }],
    ['publicKeys[1]', { publicKeys: [issuer.publicKey, issuer.pid] }],
    ['issuer', { issuer: undefined }],
    ['issuer', { issuer: [] }],
    ['audience', { audience: '' }],
    ['cookie', { cookie: 'bad name' }],
    ['sessionIdClaim', { sessionIdClaim: '' }],
    ['sessionIdPrefix', { sessionIdPrefix: 'has space' }],
    ['sessionIdPrefix', { sessionIdPrefix: 'x'.repeat(101) }],
    ['claims', { claims: { sub: 'userId' } }],
    ['clockTolerance', { clockTolerance: -1 }],
    ['clockTolerance', { clockTolerance: 3600 }],
    ['verifiedTokenCache', { verifiedTokenCache: -1 }],
    ['verifiedTokenCache', { verifiedTokenCache: 1.5 }],
    ['maxTokenBytes', { maxTokenBytes: 100 }],
    ['maxTokenBytes', { maxTokenBytes: 2 * 1024 * 1024 }],
    ['maxTokenBytes', { maxTokenBytes: '8k' }],
    ['secret', { secret: 'x' }],
  ];
  for (const [option, change] of cases) {
    it(`names \`${option}\``, () => {
      let caught: unknown;
      try {
        pasetoSession({ ...valid, ...change } as PasetoSessionOptions);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).option).toBe(option);
    });
  }
  afterAll(async () => {
    await store.close();
    store.client.disconnect();
  });
});
