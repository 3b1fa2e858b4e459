/**
 * The near cache under express-session and @fastify/session, as they call the store: a logged-in user's
 * reads are served from memory (touches within `touchAfterMs` not sent), a logout made by another
 * process of the region ends the session at the next request, and a logout through the app at once.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/index.js';
import { CookieJar } from '../helpers/http.js';
import { dropKeys, eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';
import { type SessionApp, startExpressApp, startFastifyApp } from '../helpers/session-apps.js';

const SECRET = 'near cache framework test secret, long enough for fastify';
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe.skipIf(!hasRedis).each([
  ['express', startExpressApp],
  ['fastify', startFastifyApp],
])('near cache under %s', (_name, start) => {
  const prefix = uniquePrefix('near-fw');
  let client: Redis;
  let otherClient: Redis;
  let store: GeoSessionStore;
  let other: GeoSessionStore;
  let app: SessionApp;

  beforeAll(async () => {
    client = new Redis({ port: 6379, host: '127.0.0.1' });
    otherClient = new Redis({ port: 6379, host: '127.0.0.1' });
    store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix,
      nearCache: { maxStalenessMs: 60_000, touchAfterMs: 30_000 },
    });
    other = new GeoSessionStore({ region: 'hk', client: otherClient, prefix });
    await eventually(() => store.nearCacheStats()?.armed === true);
    app = await start({ store, secret: SECRET });
  });

  afterAll(async () => {
    await app?.close();
    await store?.close();
    await other?.close();
    await dropKeys(client, prefix);
    client?.disconnect();
    otherClient?.disconnect();
  });

  it('serves reads from memory and ends the session at a logout made elsewhere', async () => {
    const jar = new CookieJar();
    const sid = await app.login(jar, 'ann', 'n1');
    for (let i = 0; i < 5; i++) expect((await app.me(jar.header())).user).toBe('ann');
    const stats = store.nearCacheStats();
    expect(stats?.hits).toBeGreaterThan(0);
    expect(stats?.touchesSkipped).toBeGreaterThan(0);

    await other.destroy(sid);
    await turn();
    expect((await app.me(jar.header())).user).toBeNull();
  });

  it('a logout through the app ends the session at once', async () => {
    const jar = new CookieJar();
    await app.login(jar, 'bob', 'n2');
    expect((await app.me(jar.header())).user).toBe('bob');
    expect((await app.me(jar.header())).user).toBe('bob');
    const cookie = jar.header();
    await app.logout(jar);
    expect((await app.me(cookie)).user).toBeNull();
  });
});
