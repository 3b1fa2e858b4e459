/**
 * The store and replication on ioredis clients made with `enableAutoPipelining: true`, ioredis 6 and 5
 * (issue 18): the store's commands go around the auto-pipeline (src/redis/send-command.ts) and keep
 * their order, scripts load again after a SCRIPT FLUSH, a key prefix applies, and two regions replicate
 * over Redis Streams (the blocking reads on their own connection) and read through. Private servers.
 */
import { Redis } from 'ioredis';
import { Redis as Redis5 } from 'ioredis5';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, type GeoSessionStoreOptions, type SessionData } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import type { RedisClient } from '../../src/types.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const MAX_AGE = 3_600_000;
const WAIT = 20_000;

function session(data: Record<string, unknown>, lifeMs = MAX_AGE): SessionData {
  return {
    cookie: { originalMaxAge: MAX_AGE, expires: new Date(Date.now() + lifeMs).toISOString() },
    ...data,
  };
}

/** `cmdstat_<name>` calls from INFO commandstats. */
async function calls(admin: Redis, name: string): Promise<number> {
  const info = await admin.info('commandstats');
  return Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

type ClientClass = new (options: object) => Redis;
const CLASSES: Array<[string, ClientClass]> = [
  ['ioredis 6', Redis],
  ['ioredis 5', Redis5 as unknown as ClientClass],
];

describe.skipIf(!hasRedis)('auto-pipelining clients (enableAutoPipelining: true)', () => {
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  let admin: Redis;
  const clients: Redis[] = [];
  const closables: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    hk = await startRedis();
    kr = await startRedis();
    admin = hk.client();
  });

  afterAll(async () => {
    for (const c of closables.splice(0).reverse()) await c.close();
    for (const c of clients) c.disconnect();
    await hk?.stop();
    await kr?.stop();
  });

  it('the two client classes really are different packages', () => {
    expect(Redis5).not.toBe(Redis);
  });

  for (const [name, ClientOf] of CLASSES) {
    describe(name, () => {
      const client = (server: PrivateRedis, options: object = {}): Redis => {
        const c = new ClientOf({
          host: '127.0.0.1',
          port: server.port,
          enableAutoPipelining: true,
          ...options,
        });
        c.on('error', () => {});
        clients.push(c);
        return c;
      };
      const store = (options: Partial<GeoSessionStoreOptions> & { client: RedisClient }) => {
        const s = new GeoSessionStore({ region: 'hk', prefix: `ap:${name}:`, sealer: 'none', ...options });
        s.on('error', () => {});
        closables.push(s);
        return s;
      };

      it("sends the store's commands around the auto-pipeline, the client's own through it", async () => {
        const c = client(hk);
        const s = store({ client: c });
        await s.get('queue'); // what the store sends once, when it starts, has gone
        const ours = [s.set('queue', session({ n: 1 })), s.get('queue'), s.destroy('other')];
        expect(c.autoPipelineQueueSize).toBe(0);
        const own = c.set(`ap:${name}:own`, 'x');
        expect(c.autoPipelineQueueSize).toBe(1);
        await Promise.all([...ours, own]);
        expect(await s.get('queue')).toMatchObject({ n: 1 });
        expect(await c.get(`ap:${name}:own`)).toBe('x');
      });

      it('keeps the order of what one tick sends: set then get, destroy then get, touch', async () => {
        const c = client(hk);
        const s = store({ client: c });
        const [, got] = await Promise.all([s.set('one', session({ v: 1 })), s.get('one')]);
        expect(got).toMatchObject({ v: 1 });
        // Overwrite then read, and a user command between them, all in one tick.
        const [, , mid, after] = await Promise.all([
          s.set('one', session({ v: 2 })),
          c.set(`ap:${name}:mark`, '1'),
          c.get(`ap:${name}:mark`),
          s.get('one'),
        ]);
        expect(mid).toBe('1');
        expect(after).toMatchObject({ v: 2 });
        const [, gone] = await Promise.all([s.destroy('one'), s.get('one')]);
        expect(gone).toBeNull();
        // A set then a touch of it in one tick: the touch moves the expiry the set just wrote.
        await Promise.all([s.set('two', session({ v: 1 }, 60_000)), s.touch('two', session({ v: 1 }))]);
        expect(await c.pttl(`ap:${name}:two`)).toBeGreaterThan(120_000);
      });

      it('200 sets and gets sent at once each get their own reply', async () => {
        const c = client(hk);
        const s = store({ client: c, prefix: `bulk:${name}:` });
        await Promise.all(Array.from({ length: 200 }, (_, n) => s.set(`m${n}`, session({ n }))));
        const read = await Promise.all(Array.from({ length: 200 }, (_, n) => s.get(`m${n}`)));
        for (const [n, got] of read.entries()) expect(got).toMatchObject({ n });
        // The bulk calls (SCAN, GET, UNLINK through the auto-pipeline) see the same sessions.
        expect(await s.length()).toBe(200);
        expect(await s.all()).toHaveLength(200);
        await s.clear();
        expect(await s.ids()).toEqual([]);
      });

      it('loads its scripts again after SCRIPT FLUSH (NOSCRIPT, then EVAL)', async () => {
        const c = client(hk);
        const s = store({ client: c });
        await s.set('flushed', session({ v: 1 }));
        for (const step of ['set', 'touch', 'destroy'] as const) {
          await c.script('FLUSH');
          const before = await calls(admin, 'eval');
          if (step === 'set') await s.set('flushed', session({ v: 2 }));
          if (step === 'touch') await s.touch('flushed', session({ v: 2 }, 2 * MAX_AGE));
          if (step === 'destroy') await s.destroy('flushed');
          expect(await calls(admin, 'eval'), step).toBeGreaterThan(before);
          if (step === 'set') expect(await s.get('flushed')).toMatchObject({ v: 2 });
          if (step === 'touch') expect(await c.pttl(`ap:${name}:flushed`)).toBeGreaterThan(MAX_AGE + 60_000);
        }
        expect(await s.get('flushed')).toBeNull();
        expect(await s.isDestroyed('flushed')).toBe(true);
      });

      it("applies the client's keyPrefix to the store's commands", async () => {
        const c = client(hk, { keyPrefix: 'kp:' });
        const s = store({ client: c, prefix: `p:${name}:` });
        await Promise.all([s.set('k', session({ v: 1 })), s.get('k')]);
        expect(await admin.exists(`kp:p:${name}:k`)).toBe(1);
        expect(await s.get('k')).toMatchObject({ v: 1 });
        await s.destroy('k');
        expect(await admin.exists(`kp:p:${name}:k`)).toBe(0);
      });

      it('two regions replicate a set, a touch and a destroy, and read through', async () => {
        const prefix = `rep:${name}:`;
        const regions = { hk: client(hk), kr: client(kr) };
        const open = (region: 'hk' | 'kr') => {
          const transport = createRedisStreamsTransport({ regions, blockMs: 200, watchdogMs: 2000 });
          transport.on('error', () => {});
          closables.push(transport);
          return store({ region, client: regions[region], prefix, transport, replicateTouchAfter: 0 });
        };
        const hkStore = open('hk');
        const krStore = open('kr');
        const sid = hkStore.genid();
        await hkStore.set(sid, session({ user: 'ada' }));
        await eventually(async () => (await krStore.get(sid))?.['user'] === 'ada', WAIT);
        await krStore.touch(sid, session({ user: 'ada' }, 2 * MAX_AGE));
        await eventually(async () => (await regions.hk.pttl(prefix + sid)) > MAX_AGE + 60_000, WAIT);
        await krStore.destroy(sid);
        await eventually(async () => (await hkStore.get(sid)) === null, WAIT);
        expect(await hkStore.isDestroyed(sid)).toBe(true);

        // Read-through: kr asks hk (an auto-pipelining remote) for an id born there that kr lacks.
        const rtPrefix = `rt:${name}:`;
        const origin = store({ region: 'hk', client: regions.hk, prefix: rtPrefix });
        const reader = store({
          region: 'kr',
          client: regions.kr,
          prefix: rtPrefix,
          remotes: { hk: client(hk) },
        });
        const born = origin.genid();
        await origin.set(born, session({ user: 'bo' }));
        expect(await regions.kr.exists(rtPrefix + born)).toBe(0);
        expect(await reader.get(born)).toMatchObject({ user: 'bo' });
      });
    });
  }
});
