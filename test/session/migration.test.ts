import { RedisStore } from 'connect-redis-8';
import session from 'express-session';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { RefusedWrite } from '../../src/session/events.js';
import { GeoSessionStore } from '../../src/session/store.js';
import type { SessionData } from '../../src/types.js';
import { metaField, readMeta } from '../helpers/meta.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

/**
 * Switching from connect-redis 8 (on ioredis) to geosession and back: the value format is the same, so
 * sessions written by either are read by the other, and geosession adds its metadata on first write.
 */

const redis = sharedRedis();
const prefixes: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const fn of cleanups) await fn();
  for (const prefix of prefixes) await dropKeys(redis, prefix);
  redis.disconnect();
});

function pair(client: Redis = redis) {
  const prefix = uniquePrefix('migrate');
  prefixes.push(prefix);
  const legacy = new RedisStore({ client, prefix });
  const geo = new GeoSessionStore({ region: 'hk', client, prefix });
  cleanups.push(() => geo.close());
  return { prefix, legacy, geo };
}

/** What a store hands back after a JSON round trip (Dates become ISO strings). */
const roundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const metaKey = (prefix: string, sid: string) => `{${prefix}${sid}}:m`;

/** An express-session-like session with a real `Cookie`, expiring in `seconds`. */
function expressSession(fields: Record<string, unknown>, seconds: number): SessionData {
  const cookie = new session.Cookie();
  cookie.maxAge = seconds * 1000;
  cookie.httpOnly = true;
  cookie.path = '/';
  return { ...fields, cookie } as unknown as SessionData;
}

describe.skipIf(!hasRedis)('migrating from connect-redis 8 (same client, same prefix)', () => {
  it('reads, lists, touches, upgrades and destroys sessions that connect-redis wrote', async () => {
    const { prefix, legacy, geo } = pair();
    const a = expressSession({ user: 'ann', cart: [1, 2, 3] }, 60);
    const b = { user: 'bob', cookie: { originalMaxAge: null } };
    const c = expressSession({ user: 'cat' }, 60);
    await legacy.set('a', a as never);
    await legacy.set('b', b as never);
    await legacy.set('c', c as never);
    const rawA = (await redis.get(`${prefix}a`)) as string;
    expect(await redis.exists(metaKey(prefix, 'a'))).toBe(0); // nothing of ours yet

    // Reads: deep-equal to what connect-redis itself returns.
    expect(await geo.get('a')).toEqual(roundTrip(a));
    expect(await geo.get('a')).toEqual(await legacy.get('a'));
    expect(await geo.get('b')).toEqual(b);
    expect(await geo.get('missing')).toBeNull();

    // Bulk methods see them.
    expect((await geo.ids()).sort()).toEqual(['a', 'b', 'c']);
    expect(await geo.length()).toBe(3);
    const all = (await geo.all()).sort((x, y) => String(x.id).localeCompare(String(y.id)));
    expect(all).toEqual([
      { ...roundTrip(a), id: 'a' },
      { ...b, id: 'b' },
      { ...roundTrip(c), id: 'c' },
    ]);

    // touch extends a legacy session without rewriting it.
    expect(await redis.ttl(`${prefix}a`)).toBeLessThanOrEqual(60);
    await geo.touch('a', expressSession({ user: 'ann', cart: [1, 2, 3] }, 300));
    expect(await redis.ttl(`${prefix}a`)).toBeGreaterThan(60);
    expect(await redis.get(`${prefix}a`)).toBe(rawA);

    // A set upgrades it: a meta hash with a version appears and the value is the new one.
    const a2 = expressSession({ user: 'ann', cart: [1, 2, 3, 4] }, 300);
    await geo.set('a', a2);
    expect(await redis.get(`${prefix}a`)).toBe(JSON.stringify(a2));
    const meta = await readMeta(redis, metaKey(prefix, 'a'));
    expect(meta.v).toMatch(/^\d{15}\.\d{4}\.hk$/);
    expect(meta.f).toBeTruthy();
    expect(meta.t).toBeUndefined();
    expect(await redis.ttl(metaKey(prefix, 'a'))).toBeGreaterThan(60);
    // Rolling back to connect-redis still works on an upgraded session.
    expect(await legacy.get('a')).toEqual(roundTrip(a2));

    // Even a content-identical set of a legacy session upgrades it (no fingerprint to compare yet).
    await geo.set('b', b);
    expect(await metaField(redis, metaKey(prefix, 'b'), 'v')).toMatch(/^\d{15}\.\d{4}\.hk$/);
    expect(await geo.get('b')).toEqual(b);

    // destroy removes a legacy session and leaves a tombstone that refuses a late re-save.
    await geo.destroy('c');
    expect(await redis.exists(`${prefix}c`)).toBe(0);
    expect(await metaField(redis, metaKey(prefix, 'c'), 't')).toBe('1');
    expect(await geo.get('c')).toBeNull();
    const refused: RefusedWrite[] = [];
    geo.on('refused', (info: RefusedWrite) => refused.push(info));
    await geo.set('c', c);
    expect(refused).toEqual([{ op: 'set', sid: 'c', reason: 'destroyed' }]);
    expect(await redis.exists(`${prefix}c`)).toBe(0);
    expect((await geo.ids()).sort()).toEqual(['a', 'b']);
  });

  it('a legacy session without a cookie expiry keeps connect-redis ttl semantics after the switch', async () => {
    const { prefix, legacy, geo } = pair();
    await legacy.set('x', { cookie: { originalMaxAge: null } } as never);
    expect(await redis.ttl(`${prefix}x`)).toBeGreaterThanOrEqual(86399);
    await geo.touch('x', { cookie: { originalMaxAge: null } });
    expect(await redis.ttl(`${prefix}x`)).toBeGreaterThanOrEqual(86399);
  });
});

describe.skipIf(!hasRedis)('mixed fleet during a rolling deploy', () => {
  // KNOWN LIMITATION (src/scripts/set.lua): the "content unchanged" shortcut compares the new session's
  // fingerprint with the one geosession stored last, not with the value in Redis. If connect-redis (or
  // any other writer) replaced the value in between, a geosession write of the earlier content is taken
  // for an expiry-only change and silently dropped. Remove `.fails` once set.lua detects foreign writes.
  it.fails('a geosession write after a connect-redis write of other content is applied', async () => {
    const { prefix, legacy, geo } = pair();
    // express-session's cookie: a fixed maxAge, and an expiry of now + maxAge when it was last set.
    const at = (s: number) => ({
      originalMaxAge: 120_000,
      expires: new Date(Date.now() + s * 1000).toISOString(),
    });
    await geo.set('m', { n: 1, cookie: at(60) });
    await legacy.set('m', { n: 2, cookie: at(60) } as never);
    expect(JSON.parse((await redis.get(`${prefix}m`)) as string).n).toBe(2);
    await geo.set('m', { n: 1, cookie: at(120) });
    expect(JSON.parse((await redis.get(`${prefix}m`)) as string).n).toBe(1);
  });
});

describe.skipIf(!hasRedis)('rolling back: connect-redis 8 reads what geosession wrote', () => {
  it('the stored value is byte-identical and connect-redis reads and lists it', async () => {
    const { prefix, legacy, geo } = pair();
    const sess = expressSession({ user: 'dan', roles: ['admin'], nested: { deep: true } }, 120);
    await geo.set('g', sess);
    await legacy.set('l', sess as never);
    // Same serializer, same key, same bytes.
    expect(await redis.get(`${prefix}g`)).toBe(await redis.get(`${prefix}l`));
    expect(await legacy.get('g')).toEqual(roundTrip(sess));
    expect(await legacy.get('g')).toEqual(await geo.get('g'));

    // connect-redis's own bulk methods do not see geosession's meta keys.
    await geo.destroy('gone');
    expect((await legacy.ids()).sort()).toEqual(['g', 'l']);
    expect(await legacy.length()).toBe(2);
    const all = await legacy.all();
    expect(all).toHaveLength(2);

    // connect-redis's TTL logic works on our key; its destroy deletes it.
    await legacy.touch('g', expressSession({}, 600) as never);
    expect(await redis.ttl(`${prefix}g`)).toBeGreaterThan(120);
    await legacy.destroy('g');
    expect(await geo.get('g')).toBeNull();
  });
});
