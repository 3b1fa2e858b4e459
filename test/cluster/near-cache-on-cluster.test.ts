/**
 * The near cache on a real Redis Cluster of 3 masters and 3 replicas (src/redis/cluster-tracking.ts),
 * with ioredis 6 and 5: tracking is armed on every master; a session cached here is forgotten when the
 * other process of the region (a child process on the same cluster) or region kr, replicated here,
 * writes or destroys it, whichever master holds it; a slot moved between masters drops the cache; a
 * master killed and failed over drops the whole
 * cache, nothing old is served afterwards, and tracking re-arms on the new master set and serves hits
 * again; a manual failover (the old master stays up, as a replica) is found by the ROLE check.
 *
 * "Reached the process" as in test/session/near-cache.test.ts: the invalidation is written to this
 * process's subscriber before the writer's reply, so one turn of the event loop after the writer's
 * answer handles it.
 */
import { once } from 'node:events';
import type { Cluster } from 'ioredis';
import { Cluster as Cluster5 } from 'ioredis5';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryTransport, GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace, type KeySpace } from '../../src/keys.js';
import { eventually } from '../helpers/eventually.js';
import { NearCacheChild } from '../helpers/near-cache-child-process.js';
import { cached as cachedWithin, turn } from '../helpers/near-cache-reads.js';
import {
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  startCluster,
  TEST_CLUSTER_OPTIONS,
} from '../helpers/redis-cluster.js';
import { type PrivateRedis, startRedis } from '../helpers/servers.js';
import { slotOf } from '../helpers/slots.js';

const n = (value: SessionData | null) => (value as { n?: number } | null)?.n;
const cached = (store: GeoSessionStore, sid: string) => cachedWithin(store, sid, 10_000);
const session = (value: number): SessionData => ({ ...clusterSession('u'), n: value }) as SessionData;

const armed = (store: GeoSessionStore, timeoutMs = 10_000) =>
  eventually(() => store.nearCacheStats()?.armed === true, timeoutMs);

describe.skipIf(!hasClusterBinaries)('the near cache on a real Redis Cluster', { timeout: 120_000 }, () => {
  let cluster: LocalCluster;
  let kr: PrivateRedis;
  const clients: Cluster[] = [];
  const children: NearCacheChild[] = [];

  beforeAll(async () => {
    [cluster, kr] = await Promise.all([startCluster(3, 1), startRedis()]);
  }, 90_000);
  afterAll(async () => {
    for (const child of children) await child.stop().catch(() => {});
    for (const client of clients) client.disconnect();
    await cluster?.stop();
    await kr?.stop();
  });

  const clientOf = (version: 5 | 6): Cluster => {
    const client =
      version === 6
        ? cluster.client()
        : (new Cluster5(cluster.startupNodes, TEST_CLUSTER_OPTIONS as never) as unknown as Cluster);
    client.on('error', () => {});
    clients.push(client);
    return client;
  };

  const childOn = async (prefix: string, shards?: number): Promise<NearCacheChild> => {
    const child = await NearCacheChild.start({
      GEOSESSION_CLUSTER: JSON.stringify(cluster.startupNodes),
      GEOSESSION_PREFIX: prefix,
      ...(shards === undefined ? {} : { GEOSESSION_SHARDS: String(shards) }),
    });
    children.push(child);
    return child;
  };

  /** New session ids of `store`, at least one on each of the cluster's masters. */
  const idsOnEveryMaster = async (store: GeoSessionStore, keys: KeySpace): Promise<string[]> => {
    const sids: string[] = [];
    const masters = new Set<number>();
    while (masters.size < 3) {
      const sid = store.genid();
      const port = (await cluster.masterOf(keys.session(sid))).port;
      if (masters.has(port)) continue;
      masters.add(port);
      sids.push(sid);
    }
    return sids;
  };

  const nodeClients = new Map<number, ReturnType<LocalCluster['nodeClient']>>();
  /** One plain client per node, for the whole file. */
  const node = (port: number) => {
    let client = nodeClients.get(port);
    if (client === undefined) {
      client = cluster.nodeClient(port);
      nodeClients.set(port, client);
    }
    return client;
  };

  /** The names of the clients connected to node `port`. */
  const clientNames = async (port: number): Promise<string[]> =>
    String(await node(port).client('LIST'))
      .split('\n')
      .map((line) => / name=(\S*)/.exec(line)?.[1] ?? '');

  for (const version of [6, 5] as const) {
    it(`ioredis ${version}: arms on every master; what the other process writes or destroys is never served next`, async () => {
      const prefix = `nc${version}:`;
      const keys = createKeySpace(prefix);
      const store = new GeoSessionStore({
        region: 'hk',
        client: clientOf(version),
        prefix,
        nearCache: { maxStalenessMs: 60_000 },
      });
      store.on('error', () => {});
      const child = await childOn(prefix);
      try {
        await armed(store);
        const sids = await idsOnEveryMaster(store, keys);
        for (const sid of sids) {
          // Tracking connections on the master that holds the session.
          const names = await clientNames((await cluster.masterOf(keys.session(sid))).port);
          expect(names).toContain('geosession-near-sub');
          expect(names).toContain('geosession-near-track');

          await child.call('set', { sid, data: session(1) });
          expect(n(await cached(store, sid))).toBe(1);
          await child.call('set', { sid, data: session(2) });
          await turn();
          expect(n(await store.get(sid))).toBe(2);
          expect(n(await cached(store, sid))).toBe(2);
          await child.call('destroy', { sid });
          await turn();
          expect(await store.get(sid)).toBeNull();
        }
        // A read racing the other process's write never fills the old value (a new id: a destroyed
        // one stays destroyed).
        const sid = store.genid();
        await store.set(sid, session(1));
        for (let round = 2; round < 8; round++) {
          const reading = store.get(sid);
          const writing = child.call('set', { sid, data: session(round) });
          await Promise.all([reading, writing]);
          await turn();
          expect(n(await store.get(sid))).toBe(round);
        }
        // close() releases the tracking connections of every master.
        const masters = await Promise.all(
          sids.map(async (s) => (await cluster.masterOf(keys.session(s))).port),
        );
        await store.close();
        for (const port of masters) {
          await eventually(
            async () => !(await clientNames(port)).some((name) => name.startsWith('geosession-near')),
          );
        }
      } finally {
        await store.close();
      }
    });
  }

  it('sharded layout (replication on a Cluster): what kr or the other process writes is never served next', async () => {
    const prefix = 'ncs:';
    const shards = 8;
    const keys = createKeySpace(prefix, '', shards);
    const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
    const make = (region: 'hk' | 'kr', client: Cluster | ReturnType<PrivateRedis['client']>) =>
      new GeoSessionStore({
        region,
        client,
        prefix,
        transport,
        sealer: 'none',
        outboxShards: shards,
        ...(region === 'hk' ? { nearCache: { maxStalenessMs: 60_000 } } : {}),
      });
    const hk = make('hk', clientOf(6));
    const far = make('kr', kr.client());
    hk.on('error', () => {});
    far.on('error', () => {});
    const child = await childOn(prefix, shards);
    try {
      await Promise.all([hk.ready(), far.ready(), armed(hk)]);
      const applied = () => once(hk, 'replicated').then(turn);
      for (const sid of await idsOnEveryMaster(hk, keys)) {
        let done = applied();
        await far.set(sid, session(1));
        await done;
        expect(await node((await cluster.masterOf(keys.meta(sid))).port).exists(keys.meta(sid))).toBe(1);
        expect(n(await cached(hk, sid))).toBe(1);
        done = applied();
        await far.set(sid, session(2));
        await done;
        expect(n(await hk.get(sid))).toBe(2);

        await child.call('set', { sid, data: session(3) });
        await turn();
        expect(n(await hk.get(sid))).toBe(3);

        await cached(hk, sid);
        done = applied();
        await far.destroy(sid);
        await done;
        expect(await hk.get(sid)).toBeNull();
      }
    } finally {
      await hk.close();
      await far.close();
      await transport.close();
    }
  });

  it('a slot moved to another master drops the whole cache, which re-arms and serves hits again', async () => {
    const prefix = 'ncslot:';
    const store = new GeoSessionStore({
      region: 'hk',
      client: clientOf(6),
      prefix,
      nearCache: { maxStalenessMs: 60_000 },
    });
    store.on('error', () => {});
    try {
      await armed(store);
      const sid = store.genid();
      await store.set(sid, session(1));
      expect(n(await cached(store, sid))).toBe(1);
      // An empty slot, moved from its master to another one.
      let probe = 0;
      let slot = slotOf(`empty-${probe}`);
      let source = await cluster.masterOf(`empty-${probe}`);
      while (Number(await node(source.port).call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))) !== 0) {
        probe++;
        slot = slotOf(`empty-${probe}`);
        source = await cluster.masterOf(`empty-${probe}`);
      }
      // Any other master that is up (an earlier test may have killed one).
      let other: (typeof cluster.nodes)[number] | undefined;
      for (const candidate of cluster.nodes) {
        if (candidate.port === source.port || other !== undefined) continue;
        const role = (await node(candidate.port)
          .call('ROLE')
          .catch(() => ['down'])) as string[];
        if (role[0] === 'master') other = candidate;
      }
      if (other === undefined) throw new Error('no other master');
      const to = other;
      const drops = store.nearCacheStats()?.drops ?? 0;
      // Redis's slot migration steps (no key to MIGRATE): the target bumps its epoch and the others follow.
      await node(to.port).call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
      await node(source.port).call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', to.id);
      for (const port of [to.port, source.port]) {
        await node(port).call('CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id);
      }
      await eventually(async () => (await cluster.masterOf(`empty-${probe}`)).port === to.port, 10_000);
      // The client learns it on its next refresh (a MOVED, its timer, or this call).
      clients[clients.length - 1]?.refreshSlotsCache();
      await eventually(() => (store.nearCacheStats()?.drops ?? 0) > drops, 10_000);
      await armed(store);
      expect(n(await cached(store, sid))).toBe(1);
    } finally {
      await store.close();
    }
  });

  for (const version of [6, 5] as const) {
    it(`ioredis ${version}: a master killed and failed over drops the cache; nothing old is served after; hits again`, async () => {
      const prefix = `ncf${version}:`;
      const keys = createKeySpace(prefix);
      const store = new GeoSessionStore({
        region: 'hk',
        client: clientOf(version),
        prefix,
        nearCache: { maxStalenessMs: 60_000 },
      });
      store.on('error', () => {});
      const child = await childOn(prefix);
      try {
        await armed(store);
        // Sessions on a master that still has a replica (ioredis 6's test killed another one).
        const candidates = await idsOnEveryMaster(store, keys);
        let victim: string | undefined;
        for (const sid of candidates) {
          const master = await cluster.masterOf(keys.session(sid));
          const role = (await node(master.port).call('ROLE')) as [string, number, unknown[]];
          if (role[2].length > 0) victim = sid;
        }
        expect(victim).toBeDefined();
        const sid = victim as string;
        const master = await cluster.masterOf(keys.session(sid));
        const others = candidates.filter((other) => other !== sid);
        for (const other of [sid, ...others]) {
          await child.call('set', { sid: other, data: session(1) });
          expect(n(await cached(store, other))).toBe(1);
        }
        expect(await node(master.port).call('WAIT', '1', '5000')).toBe(1);
        const drops = store.nearCacheStats()?.drops ?? 0;

        const { promoted } = await cluster.failover(keys.session(sid));
        expect(promoted.port).not.toBe(master.port);
        // The killed master's tracking connections closed: everything was dropped.
        expect(store.nearCacheStats()?.drops).toBeGreaterThan(drops);
        expect(store.nearCacheStats()?.entries).toBe(0);

        // Written by the other process on the new master (and the others): never served old.
        for (const other of [sid, ...others]) {
          await child.call('set', { sid: other, data: session(2) });
          await turn();
          expect(n(await store.get(other))).toBe(2);
        }
        // Tracking re-arms on the new master set (the promoted replica among them) and serves hits.
        await armed(store, 20_000);
        await eventually(async () => (await clientNames(promoted.port)).includes('geosession-near-track'));
        for (const other of [sid, ...others]) {
          expect(n(await cached(store, other))).toBe(2);
          await child.call('set', { sid: other, data: session(3) });
          await turn();
          expect(n(await store.get(other))).toBe(3);
        }
      } finally {
        await store.close();
      }
    });
  }

  it('a manual failover (the old master stays up as a replica) drops the cache and re-arms on the new master', async () => {
    const prefix = 'ncm:';
    const keys = createKeySpace(prefix);
    const store = new GeoSessionStore({
      region: 'hk',
      client: clientOf(6),
      prefix,
      nearCache: { maxStalenessMs: 60_000 },
    });
    store.on('error', () => {});
    const child = await childOn(prefix);
    try {
      await armed(store);
      // A master that still has a replica.
      let sid: string | undefined;
      let replicaPort = 0;
      for (const candidate of await idsOnEveryMaster(store, keys)) {
        const master = await cluster.masterOf(keys.session(candidate));
        const role = (await node(master.port).call('ROLE')) as [string, number, [string, string][]];
        if (role[2].length > 0) {
          sid = candidate;
          replicaPort = Number(role[2][0]?.[1]);
        }
      }
      expect(sid).toBeDefined();
      const key = keys.session(sid as string);
      await child.call('set', { sid, data: session(1) });
      expect(n(await cached(store, sid as string))).toBe(1);
      const drops = store.nearCacheStats()?.drops ?? 0;

      await node(replicaPort).call('CLUSTER', 'FAILOVER');
      await eventually(async () => (await cluster.masterOf(key)).port === replicaPort, 20_000);
      // The old master is now a replica: its tracker's ROLE check (or the client's refresh) drops all.
      await eventually(() => (store.nearCacheStats()?.drops ?? 0) > drops, 5000);
      await child.call('set', { sid, data: session(2) });
      await eventually(async () => n(await store.get(sid as string)) === 2, 5000);
      await armed(store, 20_000);
      await eventually(async () => (await clientNames(replicaPort)).includes('geosession-near-track'));
      expect(n(await cached(store, sid as string))).toBe(2);
      await child.call('set', { sid, data: session(3) });
      await turn();
      expect(n(await store.get(sid as string))).toBe(3);
    } finally {
      await store.close();
    }
  });
});
