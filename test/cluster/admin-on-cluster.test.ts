/**
 * The admin functions that scan or read sessions, given a Redis Cluster client, on a real cluster of 3
 * masters and 3 replicas: migrate (every master scanned, resumable across masters, one script per
 * slot; in place, or moved into the sharded layout of a store that replicates), inspect, verify --full (every master scanned, a session's keys read together), and the layout
 * checks of the copies (resync and repair on a Cluster: test/cluster/resync-on-cluster.test.ts).
 */
import { RedisStore } from 'connect-redis-8';
import type { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  copySessionStates,
  inspectSession,
  MIGRATE_STATE_FIELD,
  migrateKeyspace,
  resyncRegion,
  verifyRegions,
} from '../../src/admin.js';
import { ConfigError, createMemoryTransport, GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { runCli } from '../cli/run-cli.js';
import {
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  useCluster,
} from '../helpers/redis-cluster.js';

const session = (user: string) => clusterSession(user, 600_000);

describe.skipIf(!hasClusterBinaries)(
  'the admin functions on a real Redis Cluster',
  { timeout: 120_000 },
  () => {
    let cluster: LocalCluster;
    let client: Cluster;
    useCluster((started, its) => {
      cluster = started;
      client = its;
    });

    it('migrates a connect-redis keyspace on every master, resuming where it stopped', async () => {
      const prefix = 'cr:';
      const keys = createKeySpace(prefix);
      const legacy = new RedisStore({ client, prefix });
      const sids = Array.from({ length: 60 }, (_, i) => `legacy-${i}`);
      await Promise.all(sids.map((sid, i) => legacy.set(sid, session(`u${i}`) as never)));
      const masters = new Set<number>();
      for (const sid of sids) masters.add((await cluster.masterOf(keys.session(sid))).port);
      expect(masters.size).toBe(3);

      // Stopped after a few small batches: the state names the master and its cursor.
      const stop = new AbortController();
      let batches = 0;
      const first = await migrateKeyspace({
        client,
        region: 'hk',
        prefix,
        scanCount: 5,
        signal: stop.signal,
        onProgress: () => {
          if (++batches === 3) stop.abort();
        },
      });
      expect(first.complete).toBe(false);
      const saved = JSON.parse(
        (await client.hget(keys.internal('state', 'hk'), MIGRATE_STATE_FIELD)) as string,
      ) as {
        node: string;
        cursor: string;
      };
      expect(saved.node).toMatch(/^127\.0\.0\.1:\d+$/);
      const second = await migrateKeyspace({ client, region: 'hk', prefix, scanCount: 5 });
      expect(second).toMatchObject({ resumed: true, complete: true });
      expect(second.migrated).toBe(60);
      expect(second.unreadable + second.gone).toBe(0);
      expect(await client.hget(keys.internal('state', 'hk'), MIGRATE_STATE_FIELD)).toBeNull();
      // Nothing left: a new run finds every session migrated.
      const third = await migrateKeyspace({ client, region: 'hk', prefix });
      expect(third).toMatchObject({ migrated: 0, alreadyMigrated: 60, resumed: false });

      const store = new GeoSessionStore({ region: 'hk', client, prefix });
      await store.ready();
      for (const [i, sid] of sids.entries()) {
        expect(await client.exists(keys.meta(sid))).toBe(1);
        expect((await store.get(sid))?.user).toBe(`u${i}`);
      }
      const seen = await inspectSession([{ id: 'hk', client }], sids[7] as string, { prefix });
      expect(seen.found).toBe(true);
      expect(seen.regions[0]?.state).toBe('live');
      expect(seen.regions[0]?.meta).toBeDefined();
      await store.close();
    });

    it('moves a connect-redis keyspace into the sharded layout of a replicating store, resumably', async () => {
      const prefix = 'crs:';
      const flat = createKeySpace(prefix);
      const sharded = createKeySpace(prefix, '', 8);
      const transport = createMemoryTransport({ regions: ['hk'] });
      // A replicating store on a Cluster keeps the sharded layout (8 shards by default).
      const store = new GeoSessionStore({ region: 'hk', client, prefix, transport, sealer: 'none' });
      await store.ready();
      // geosession's own session, with an older connect-redis copy: the store's wins.
      await store.set('both', session('new'));
      const legacy = new RedisStore({ client, prefix });
      await legacy.set('both', session('old') as never);
      const sids = Array.from({ length: 60 }, (_, i) => `legacy-${i}`);
      await Promise.all(sids.map((sid, i) => legacy.set(sid, session(`u${i}`) as never)));
      const masters = new Set<number>();
      for (const sid of sids) masters.add((await cluster.masterOf(flat.session(sid))).port);
      expect(masters.size).toBe(3);
      const expiries = new Map<string, number>();
      for (const sid of sids) expiries.set(sid, await client.pexpiretime(flat.session(sid)));

      const stop = new AbortController();
      let batches = 0;
      const first = await migrateKeyspace({
        client,
        region: 'hk',
        prefix,
        outboxShards: 8,
        scanCount: 5,
        signal: stop.signal,
        onProgress: () => {
          if (++batches === 3) stop.abort();
        },
      });
      expect(first.complete).toBe(false);
      const second = await migrateKeyspace({ client, region: 'hk', prefix, outboxShards: 8, scanCount: 5 });
      expect(second).toMatchObject({ resumed: true, complete: true, migrated: 60, alreadyMigrated: 1 });
      expect(second.unreadable + second.gone).toBe(0);
      expect(await client.hget(flat.internal('state', 'hk'), MIGRATE_STATE_FIELD)).toBeNull();
      // Nothing left where connect-redis wrote: a new run finds nothing to move.
      const third = await migrateKeyspace({ client, region: 'hk', prefix, outboxShards: 8 });
      expect(third).toMatchObject({ scanned: 0, migrated: 0, resumed: false });

      expect((await store.get('both'))?.user).toBe('new');
      expect(await client.exists(flat.session('both'))).toBe(0);
      for (const [i, sid] of sids.entries()) {
        expect(await client.exists(flat.session(sid))).toBe(0);
        expect(await client.pexpiretime(sharded.session(sid))).toBe(expiries.get(sid));
        expect((await store.get(sid))?.user).toBe(`u${i}`);
      }
      const seen = await inspectSession([{ id: 'hk', client }], sids[7] as string, {
        prefix,
        outboxShards: 8,
      });
      expect(seen.regions[0]?.state).toBe('live');
      await store.close();
      await transport.close();
    });

    it('verifies in full mode every session of every master', async () => {
      // Two "regions" on one cluster under two prefixes: b: a key-for-key copy of a:.
      const a = createKeySpace('va:');
      const b = createKeySpace('vb:');
      const store = new GeoSessionStore({ region: 'hk', client, prefix: 'va:' });
      await store.ready();
      const sids = Array.from({ length: 40 }, () => store.genid());
      await Promise.all(sids.map((sid, i) => store.set(sid, session(`u${i}`))));
      for (const sid of sids) {
        for (const [from, to] of [
          [a.session(sid), b.session(sid)],
          [a.meta(sid), b.meta(sid)],
        ] as const) {
          const [value, ttl] = [await client.get(from), await client.pttl(from)];
          await client.set(to, value as string, 'PX', ttl);
        }
      }
      const regions = [
        { id: 'hk', client, prefix: 'va:' },
        { id: 'kr', client, prefix: 'vb:' },
      ];
      const clean = await verifyRegions(regions, { full: true, settleMs: 0, scanCount: 7 });
      expect(clean).toMatchObject({ clean: true, mode: 'full', compared: 40 });
      await client.del(b.session(sids[3] as string));
      const dirty = await verifyRegions(regions, { full: true, settleMs: 0 });
      expect(dirty.compared).toBe(40);
      expect(dirty.differences.map((d) => d.sid)).toEqual([sids[3]]);
      await store.close();
    });

    it('the geosession command refuses a Cluster node as a region, pointing to the admin functions', async () => {
      const port = cluster.nodes[0]?.port as number;
      const run = await runCli(['--region', `hk=redis://127.0.0.1:${port}`, 'inspect', 'some-session-id']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/region hk: .* is a Redis Cluster node/);
      expect(run.stderr).toMatch(/geosession\/admin/);
    });

    it('checks the layout the copies (resync) are given for a Cluster, naming the option', async () => {
      const single = cluster.nodeClient(cluster.nodes[0]?.port as number);
      await expect(copySessionStates(client, single, ['x'], { outboxShards: 0 })).rejects.toThrow(
        ConfigError,
      );
      await expect(
        resyncRegion({
          source: { id: 'hk', client, outboxShards: 300 },
          target: { id: 'kr', client: single },
        }),
      ).rejects.toThrow(/source\.outboxShards/);
    });
  },
);
