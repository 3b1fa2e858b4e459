import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/session/store.js';
import type { SessionData } from '../../src/types.js';
import { metaField } from '../helpers/meta.js';
import { hasRedis, type PrivateRedis, sharedRedis, startRedis, uniquePrefix } from '../helpers/servers.js';

const N = 5000;

/** Every key under `match` (SCAN, de-duplicated). */
async function keysMatching(client: Redis, match: string): Promise<string[]> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) out.add(k);
  } while (cursor !== '0');
  return [...out];
}

async function dropMatching(client: Redis, match: string): Promise<void> {
  const keys = await keysMatching(client, match);
  for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500));
}

const sessionOf = (i: number): SessionData => ({ i, cookie: { originalMaxAge: null } });
const sidOf = (i: number) => `s${i}`;

/** Writes N sessions, destroys a few others (tombstones) and adds a hand-made outbox stream. */
async function populate(store: GeoSessionStore, client: Redis, outboxKey: string): Promise<void> {
  for (let start = 0; start < N; start += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, N - start) }, (_, j) =>
        store.set(sidOf(start + j), sessionOf(start + j)),
      ),
    );
  }
  for (let i = 0; i < 20; i++) await store.destroy(`gone${i}`);
  await client.xadd(outboxKey, '*', 'o', 's', 's', 'fake');
}

/** The checks every bulk method must pass over the populated store. */
async function expectExactBulk(store: GeoSessionStore): Promise<void> {
  const expected = Array.from({ length: N }, (_, i) => sidOf(i)).sort();
  const ids = await store.ids();
  expect(ids).toHaveLength(N); // no duplicates, nothing internal
  expect(new Set(ids).size).toBe(N);
  expect([...ids].sort()).toEqual(expected);
  expect(await store.length()).toBe(N);
  const all = await store.all();
  expect(all).toHaveLength(N);
  const byId = new Map(all.map((s) => [s.id as string, s]));
  expect(byId.size).toBe(N);
  for (let i = 0; i < N; i++) expect(byId.get(sidOf(i))).toEqual({ ...sessionOf(i), id: sidOf(i) });
}

describe.skipIf(!hasRedis)('bulk methods over 5,000 sessions (shared Redis, unique prefix)', () => {
  const redis = sharedRedis();
  const prefix = uniquePrefix('bulk');
  const store = new GeoSessionStore({ region: 'hk', client: redis, prefix, scanCount: 100 });
  const outboxKey = `{${prefix}outbox}:hk`;

  beforeAll(async () => {
    await populate(store, redis, outboxKey);
  });
  afterAll(async () => {
    await store.close();
    await dropMatching(redis, `${prefix}*`);
    await dropMatching(redis, `{${prefix}*`);
    redis.disconnect();
  });

  it('the internal keys really exist next to the values (so the next tests mean something)', async () => {
    expect(await keysMatching(redis, `${prefix}*`)).toHaveLength(N);
    const internal = await keysMatching(redis, `{${prefix}*`);
    expect(internal).toHaveLength(N + 20 + 1); // meta hashes, tombstones, outbox
    expect(await metaField(redis, `{${prefix}gone3}:m`, 't')).toBe('1');
    expect(await redis.type(outboxKey)).toBe('stream');
  });

  it('ids, length and all are exact, without duplicates or internal keys', async () => {
    await expectExactBulk(store);
  });

  it('callback style gives the same answers', async () => {
    const length = await new Promise<number | undefined>((resolve, reject) =>
      store.length((err, n) => (err ? reject(err) : resolve(n))),
    );
    expect(length).toBe(N);
  });

  it('clear deletes every value and its meta hash, keeps tombstones and the outbox', async () => {
    await store.clear();
    expect(await store.length()).toBe(0);
    expect(await store.ids()).toEqual([]);
    expect(await store.all()).toEqual([]);
    expect(await keysMatching(redis, `${prefix}*`)).toEqual([]);
    const left = (await keysMatching(redis, `{${prefix}*`)).sort();
    const expected = [...Array.from({ length: 20 }, (_, i) => `{${prefix}gone${i}}:m`), outboxKey].sort();
    expect(left).toEqual(expected);
    // A second clear on an empty store is a no-op.
    await store.clear();
    expect(await keysMatching(redis, `{${prefix}*`)).toHaveLength(21);
  });
});

describe.skipIf(!hasRedis)("bulk methods with prefix '' on a private Redis", () => {
  let server: PrivateRedis;
  let client: Redis;
  let store: GeoSessionStore;

  beforeAll(async () => {
    server = await startRedis();
    client = server.client();
    store = new GeoSessionStore({ region: 'hk', client, prefix: '', scanCount: 100 });
    await populate(store, client, '{outbox}:hk');
  });
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('every internal key is in the same keyspace, yet never listed', async () => {
    expect(await client.dbsize()).toBe(N + N + 20 + 1);
    await expectExactBulk(store);
  });

  it("clear refuses prefix '' unless allowClearWithoutPrefix: an app's own keys look like session ids", async () => {
    await client.set('user:42', 'not a session');
    await client.set('cache:home', 'not a session either');
    const before = await client.dbsize();
    const error = await store.clear().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe('allowClearWithoutPrefix');
    await expect(new Promise((resolve) => store.clear(resolve))).resolves.toBeInstanceOf(ConfigError);
    expect(await client.dbsize()).toBe(before);
    expect(await client.get('user:42')).toBe('not a session');
    await client.del('user:42', 'cache:home');
  });

  it('clear with allowClearWithoutPrefix leaves only tombstones and the outbox', async () => {
    const allowed = new GeoSessionStore({ region: 'hk', client, prefix: '', allowClearWithoutPrefix: true });
    await allowed.clear();
    await allowed.close();
    expect(await store.length()).toBe(0);
    const left = await keysMatching(client, '*');
    expect(left).toHaveLength(21);
    for (const key of left) expect(key.startsWith('{')).toBe(true);
  });
});

describe.skipIf(!hasRedis)('bulk methods with an ioredis keyPrefix client', () => {
  const raw = sharedRedis();
  const kp = sharedRedis({ keyPrefix: 'kp:' });
  const prefix = uniquePrefix('bulkkp');
  const store = new GeoSessionStore({ region: 'hk', client: kp, prefix, scanCount: 100 });
  const count = 1500;

  afterAll(async () => {
    await store.close();
    await dropMatching(raw, `kp:${prefix}*`);
    await dropMatching(raw, `kp:{kp:${prefix}*`);
    await dropMatching(raw, `${prefix}*`);
    raw.disconnect();
    kp.disconnect();
  });

  it('stores under kp:<prefix>, and ids/length/all/clear see exactly those sessions', async () => {
    await Promise.all(Array.from({ length: count }, (_, i) => store.set(sidOf(i), sessionOf(i))));
    await store.destroy('gone');
    // A decoy without the client prefix must not be listed.
    await raw.set(`${prefix}decoy`, JSON.stringify(sessionOf(-1)));

    expect(await raw.exists(`kp:${prefix}s0`)).toBe(1);
    expect(await raw.exists(`kp:{kp:${prefix}s0}:m`)).toBe(1);
    expect(await raw.exists(`${prefix}s0`)).toBe(0);

    const ids = await store.ids();
    expect(ids).toHaveLength(count);
    expect([...ids].sort()).toEqual(Array.from({ length: count }, (_, i) => sidOf(i)).sort());
    expect(await store.length()).toBe(count);
    const all = await store.all();
    expect(all).toHaveLength(count);
    expect(all.find((s) => s.id === 's7')).toEqual({ ...sessionOf(7), id: 's7' });

    await store.clear();
    expect(await store.length()).toBe(0);
    expect(await keysMatching(raw, `kp:${prefix}*`)).toEqual([]);
    // Only the tombstone of 'gone' is left among the internal keys; the decoy is untouched.
    expect(await keysMatching(raw, `kp:{kp:${prefix}*`)).toEqual([`kp:{kp:${prefix}gone}:m`]);
    expect(await raw.exists(`${prefix}decoy`)).toBe(1);
  });
});

describe.skipIf(!hasRedis)('all() details', () => {
  const redis = sharedRedis();
  const prefix = uniquePrefix('bulkall');
  afterAll(async () => {
    await dropMatching(redis, `${prefix}*`);
    await dropMatching(redis, `{${prefix}*`);
    redis.disconnect();
  });

  it('returns [] when empty', async () => {
    const store = new GeoSessionStore({ region: 'hk', client: redis, prefix: `${prefix}empty:` });
    expect(await store.all()).toEqual([]);
    expect(await store.ids()).toEqual([]);
    expect(await store.length()).toBe(0);
    await store.clear();
    await store.close();
  });

  it('awaits an async serializer.parse (connect-redis does not)', async () => {
    let parsed = 0;
    const serializer = {
      stringify: (s: SessionData) => JSON.stringify(s),
      parse: async (text: string) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        parsed++;
        return JSON.parse(text) as SessionData;
      },
    };
    const store = new GeoSessionStore({ region: 'hk', client: redis, prefix: `${prefix}async:`, serializer });
    for (let i = 0; i < 5; i++) await store.set(sidOf(i), sessionOf(i));
    const all = await store.all();
    expect(all).toHaveLength(5);
    for (const s of all) {
      expect(s).not.toBeInstanceOf(Promise);
      expect(s).toEqual({ ...sessionOf(Number(s.i)), id: sidOf(Number(s.i)) });
    }
    expect(parsed).toBe(5);
    expect(await store.get('s2')).toEqual(sessionOf(2));
    await store.close();
  });
});
