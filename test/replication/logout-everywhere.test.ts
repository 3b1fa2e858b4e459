/**
 * The per-user index and logout everywhere across two regions over Redis Streams (issue 17 parts 1, 2
 * and 7): sessions created in another region are listed, logout everywhere ends them in every region,
 * and a session saved in a region cut off by a partition is refused everywhere once the link heals. On
 * the unsharded layout and on the sharded one (`outboxShards: 4`: one index and mark per user and shard,
 * each shard's mark sent through that shard's outbox).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { sessionFor } from '../helpers/horizon-regions.js';
import { eventually, hasRedis, type PrivateRedis, startRedis, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const WAIT = 20_000;
const userId = (s: SessionData) => (s as { user?: string }).user;

interface Region {
  store: GeoSessionStore;
  close(): Promise<void>;
}

function openRegion(
  region: string,
  client: Redis,
  prefix: string,
  regions: Record<string, Redis>,
  outboxShards: number | undefined,
): Region {
  const transport = createRedisStreamsTransport({
    regions,
    blockMs: 200,
    watchdogMs: 1000,
    trimIntervalMs: 200,
  });
  const store = new GeoSessionStore({
    region,
    client,
    prefix,
    transport,
    sealer: 'none',
    userId,
    outboxShards,
  });
  store.on('error', () => {}); // the cut link's transport errors are expected
  return {
    store,
    async close() {
      await store.close();
      await transport.close();
    },
  };
}

const sids = async (store: GeoSessionStore, user: string) =>
  (await store.sessionsOf(user)).map((s) => s.sid).sort();

const LAYOUTS = [
  { layout: 'unsharded', outboxShards: undefined },
  { layout: 'sharded (outboxShards: 4)', outboxShards: 4 },
];

describe.runIf(hasRedis || process.env.CI === 'true').each(LAYOUTS)(
  'logout everywhere across regions, $layout',
  ({ outboxShards }) => {
    let hkServer: PrivateRedis;
    let krServer: PrivateRedis;
    let krToHk: TcpProxy;
    let hkToKr: TcpProxy;
    const opened: Region[] = [];
    beforeAll(async () => {
      hkServer = await startRedis();
      krServer = await startRedis();
      krToHk = await startTcpProxy(krServer.port);
      hkToKr = await startTcpProxy(hkServer.port);
    });
    afterAll(async () => {
      for (const r of opened.splice(0).reverse()) await r.close();
      await krToHk?.close();
      await hkToKr?.close();
      await hkServer?.stop();
      await krServer?.stop();
    });

    function pair(): { hk: GeoSessionStore; kr: GeoSessionStore } {
      const prefix = uniquePrefix('everywhere');
      const hkClient = hkServer.client();
      const krClient = krServer.client();
      // hk reads kr's outbox through krToHk, kr reads hk's through hkToKr: cutting both cuts the regions.
      const hk = openRegion(
        'hk',
        hkClient,
        prefix,
        { hk: hkClient, kr: krServer.client({ port: krToHk.port }) },
        outboxShards,
      );
      const kr = openRegion(
        'kr',
        krClient,
        prefix,
        { hk: hkServer.client({ port: hkToKr.port }), kr: krClient },
        outboxShards,
      );
      opened.push(hk, kr);
      return { hk: hk.store, kr: kr.store };
    }

    it('lists sessions created in other regions and ends them all', async () => {
      const { hk, kr } = pair();
      await Promise.all([hk.ready(), kr.ready()]);
      await hk.set('h1', sessionFor(60_000, { user: 'u1' }));
      await kr.set('k1', sessionFor(60_000, { user: 'u1' }));
      await kr.set('k2', sessionFor(60_000, { user: 'u1', n: 2 }));
      await eventually(async () => (await sids(hk, 'u1')).length === 3, WAIT);
      await eventually(async () => (await sids(kr, 'u1')).length === 3, WAIT);
      expect((await hk.sessionsOf('u1')).find((s) => s.sid === 'k1')?.origin).toBe('kr');
      expect(await hk.logoutEverywhere('u1', { except: 'h1' })).toBe(2);
      await eventually(async () => (await kr.get('k1')) === null && (await kr.get('k2')) === null, WAIT);
      expect(await sids(hk, 'u1')).toEqual(['h1']);
      await eventually(async () => JSON.stringify(await sids(kr, 'u1')) === '["h1"]', WAIT);
      // The kept session still saves in both regions.
      await kr.set('h1', sessionFor(60_000, { user: 'u1', kept: true }));
      await eventually(async () => ((await hk.get('h1')) as { kept?: boolean } | null)?.kept === true, WAIT);
    });

    it('refuses, after the partition heals, sessions saved in the cut-off region', async () => {
      const { hk, kr } = pair();
      await Promise.all([hk.ready(), kr.ready()]);
      await kr.set('p1', sessionFor(60_000, { user: 'u2' }));
      await eventually(async () => (await sids(hk, 'u2')).length === 1, WAIT);
      krToHk.cut();
      hkToKr.cut();
      try {
        // Saved in kr during the partition: p1 again, and p2 created before the logout.
        await kr.set('p1', sessionFor(60_000, { user: 'u2', during: true }));
        await kr.set('p2', sessionFor(60_000, { user: 'u2' }));
        await new Promise((r) => setTimeout(r, 10));
        expect(await hk.logoutEverywhere('u2')).toBe(1);
        // kr cannot know yet.
        expect(await kr.get('p2')).not.toBeNull();
      } finally {
        krToHk.heal();
        hkToKr.heal();
      }
      await eventually(async () => (await kr.get('p1')) === null && (await kr.get('p2')) === null, WAIT);
      await eventually(async () => (await sids(kr, 'u2')).length === 0, WAIT);
      expect(await hk.get('p1')).toBeNull();
      expect(await hk.get('p2')).toBeNull();
      expect(await sids(hk, 'u2')).toEqual([]);
      // A session created after the call is unaffected in both regions.
      await kr.set('p3', sessionFor(60_000, { user: 'u2' }));
      await eventually(async () => JSON.stringify(await sids(hk, 'u2')) === '["p3"]', WAIT);
    });

    it('indexes a session that arrives late as begun when its version was made, not when it arrived', async () => {
      // A region that learns of a session only after another region's logout everywhere was made (and
      // before that mark arrives) must still see the session as older than the mark.
      const { hk, kr } = pair();
      await Promise.all([hk.ready(), kr.ready()]);
      hkToKr.cut();
      let healedAt = 0;
      try {
        await hk.set('late1', sessionFor(60_000, { user: 'u3' }));
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        healedAt = Date.now();
        hkToKr.heal();
      }
      await eventually(async () => (await sids(kr, 'u3')).length === 1, WAIT);
      const entry = (await kr.sessionsOf('u3'))[0];
      const made = (await hk.sessionsOf('u3'))[0];
      expect(entry?.origin).toBe('hk');
      // Its version's time: hk's clock when hk wrote it (a host clock a millisecond ahead of Redis may
      // move a version by that much), long before the link healed and it arrived.
      expect(Math.abs((entry?.createdAt ?? 0) - (made?.createdAt ?? 0))).toBeLessThanOrEqual(50);
      expect(entry?.createdAt ?? Number.POSITIVE_INFINITY).toBeLessThan(healedAt);
    });
  },
);
