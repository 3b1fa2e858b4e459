import type { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import {
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  useCluster,
} from '../helpers/redis-cluster.js';
import { slotOf } from '../helpers/slots.js';

const session = clusterSession;

// The store without replication on a real Redis Cluster of 3 masters and 3 replicas.
describe.skipIf(!hasClusterBinaries)('the store on a real Redis Cluster', { timeout: 90_000 }, () => {
  let cluster: LocalCluster;
  let client: Cluster;
  useCluster((started, its) => {
    cluster = started;
    client = its;
  });

  it('keeps sessions spread over every master, with metadata in each value slot', async () => {
    const prefix = 'sess:';
    const keys = createKeySpace(prefix);
    const store = new GeoSessionStore({ region: 'hk', client, prefix });
    await store.ready();
    const sids = Array.from({ length: 60 }, () => store.genid());
    await Promise.all(sids.map((sid, i) => store.set(sid, session(`u${i}`))));
    const masters = new Set<number>();
    for (const [i, sid] of sids.entries()) {
      expect((await store.get(sid))?.user).toBe(`u${i}`);
      expect(slotOf(keys.meta(sid))).toBe(slotOf(keys.session(sid)));
      masters.add((await cluster.masterOf(keys.session(sid))).port);
    }
    expect(masters.size).toBe(3);
    await store.touch(sids[0] as string, session('u0', 120_000));
    await store.destroy(sids[1] as string);
    expect(await store.get(sids[1] as string)).toBeNull();
    expect(await store.isDestroyed(sids[1] as string)).toBe(true);
    await store.close();
  });

  it('goes on after a master is killed and its replica promoted; what WAIT confirmed is kept', async () => {
    const prefix = 'fo:';
    const keys = createKeySpace(prefix);
    const store = new GeoSessionStore({ region: 'hk', client, prefix });
    store.on('error', () => {});
    await store.ready();
    const sid = store.genid();
    await store.set(sid, session('before'));
    // Redis Cluster replicates asynchronously: WAIT is how a test knows the replica has the write.
    const master = await cluster.masterOf(keys.session(sid));
    expect(await cluster.nodeClient(master.port).call('WAIT', '1', '5000')).toBe(1);
    const { killed, promoted } = await cluster.failover(keys.session(sid));
    expect(promoted.port).not.toBe(killed.port);
    expect((await store.get(sid))?.user).toBe('before');
    const after = store.genid();
    await store.set(after, session('after'));
    expect((await store.get(after))?.user).toBe('after');
    await store.close();
  });
});
