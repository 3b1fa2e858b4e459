/**
 * resyncRegion on real Redis Clusters (src/admin/resync.ts with src/admin/region-layout.ts): two
 * regions, each a cluster of 3 masters, replicating over Redis Streams with sharded outboxes. One
 * region's cluster is emptied (FLUSHALL on every master) while a writer runs in each region, then
 * resynced both ways under those writes: afterwards both hold the same sessions (versions, expiries
 * and the shards' digests), nothing acknowledged is lost, no logged-out session is revived, and the
 * needs for a resync are cleared in the running stores and stay cleared (the handover recorded every
 * shard's numbers). Also a Cluster region and a single Redis region with another layout (one copies
 * into the other's layout), and repair on a Cluster.
 */
import type { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repairRegions } from '../../src/admin/repair.js';
import { resyncRegion } from '../../src/admin/resync.js';
import { verifyRegions } from '../../src/admin/verify.js';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { sequenceKey } from '../../src/wire/internal-keys.js';
import { eventually } from '../helpers/eventually.js';
import {
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  startCluster,
} from '../helpers/redis-cluster.js';
import { type PrivateRedis, startRedis } from '../helpers/servers.js';
import { startWriter } from '../helpers/session-writer.js';

const WAIT = 40_000;
const GAP_GRACE_MS = 8_000;
const SHARDS = 8;
const session = (user: string) => clusterSession(user, 3_600_000);

/** Empties a region's cluster: FLUSHALL on every master (a region whose cluster lost its data). */
async function flushCluster(client: Cluster): Promise<void> {
  await Promise.all(client.nodes('master').map((node) => node.flushall()));
}

const needs = (store: GeoSessionStore) => Object.keys(store.replicationStats()?.needsResync ?? {});

describe.skipIf(!hasClusterBinaries)('resyncRegion on Redis Clusters', { timeout: 240_000 }, () => {
  let hkCluster: LocalCluster;
  let krCluster: LocalCluster;
  let hkClient: Cluster;
  let krClient: Cluster;
  let single: PrivateRedis;
  const opened: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    [hkCluster, krCluster, single] = await Promise.all([
      startCluster(3, 0),
      startCluster(3, 0),
      startRedis(),
    ]);
    hkClient = hkCluster.client();
    krClient = krCluster.client();
  }, 120_000);
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });
  afterAll(async () => {
    await Promise.all([hkCluster?.stop(), krCluster?.stop(), single?.stop()]);
  });

  function store(region: 'hk' | 'kr', client: Cluster | Redis, prefix: string, transport: never) {
    const s = new GeoSessionStore({
      region,
      client,
      prefix,
      transport,
      sealer: 'none',
      replicateTouchAfter: 0,
      heartbeatMs: 300,
      // Longer than the resync takes: the gap an emptied region sees (numbers it never got) would be
      // reported after the resync, had the handover not recorded that the copy holds them.
      gapGraceMs: GAP_GRACE_MS,
    });
    s.on('error', () => {});
    opened.push(s);
    return s;
  }

  it('brings an emptied cluster back under writes in both regions: same sessions, none lost or revived, needs cleared', async () => {
    const prefix = 'crs:';
    const streams = () => {
      const t = createRedisStreamsTransport({
        regions: { hk: hkClient as unknown as Redis, kr: krClient as unknown as Redis },
        blockMs: 200,
        watchdogMs: 2000,
        claimIdleMs: 2000,
      });
      opened.push(t);
      return t as never;
    };
    const hk = store('hk', hkClient, prefix, streams());
    const kr = store('kr', krClient, prefix, streams());
    await Promise.all([hk.ready(), kr.ready()]);
    const admin = [
      { id: 'hk', client: hkClient, prefix, outboxShards: SHARDS },
      { id: 'kr', client: krClient, prefix, outboxShards: SHARDS },
    ];

    const before = { hk: startWriter(hk, 'hk', session), kr: startWriter(kr, 'kr', session) };
    await eventually(() => before.hk.writes() > 200 && before.kr.writes() > 100, WAIT);
    await Promise.all([before.hk.stop(), before.kr.stop()]);
    await eventually(async () => (await verifyRegions(admin, { full: true, settleMs: 0 })).clean, WAIT, 300);

    // kr's cluster loses its data; kr notices, and hk notices kr's numbering started over.
    await flushCluster(krClient);
    await eventually(() => needs(kr).includes('kr'), WAIT, 100);
    await eventually(() => needs(hk).includes('kr'), WAIT, 100);

    const during = { hk: startWriter(hk, 'hk', session), kr: startWriter(kr, 'kr', session) };
    await eventually(() => during.hk.writes() > 50 && during.kr.writes() > 50, WAIT);
    const phases = new Set<string>();
    const result = await resyncRegion({
      target: { id: 'kr', client: krClient },
      source: { id: 'hk', client: hkClient },
      prefix,
      batchSize: 20,
      bothWays: true,
      onProgress: (p) => phases.add(p.phase),
    });
    await eventually(() => during.hk.writes() > 250 && during.kr.writes() > 250, WAIT);
    await Promise.all([during.hk.stop(), during.kr.stop()]);

    expect(result).toMatchObject({ target: 'kr', source: 'hk', phase: 'done', resumed: false });
    expect(result.counts.changed).toBeGreaterThan(150);
    expect(result.counts.malformed + result.counts.skewed).toBe(0);
    expect([...phases]).toEqual(['sessions', 'reverse-sessions', 'done']);
    expect(result.cleared.target).toContain('kr');
    expect(result.cleared.source).toContain('kr');

    // The same sessions key by key, and the same digests (the copy kept kr's shards' digests).
    let last: Awaited<ReturnType<typeof verifyRegions>> | undefined;
    await eventually(
      async () => {
        last = await verifyRegions(admin, { full: true, settleMs: 0 });
        return last.clean;
      },
      WAIT,
      300,
    ).catch(() => expect(last?.differences.slice(0, 5)).toEqual([]));
    expect(last?.compared).toBeGreaterThan(300);
    const byDigests = await verifyRegions(admin, { settleMs: 1000 });
    expect(byDigests).toMatchObject({ mode: 'digests', clean: true });
    // Without the regions' outboxShards, verify would read the unsharded layout and compare nothing.
    const unsaid = admin.map(({ outboxShards: _, ...region }) => region);
    await expect(verifyRegions(unsaid, { full: true, settleMs: 0 })).rejects.toThrow(
      /regions\[0\]\.outboxShards.*sharded layout/,
    );

    // No session lost, none revived, in either region.
    const live = [...before.hk.live, ...before.kr.live, ...during.hk.live, ...during.kr.live];
    const dead = [...before.hk.dead, ...before.kr.dead, ...during.hk.dead, ...during.kr.dead];
    expect(live.length).toBeGreaterThan(300);
    expect(dead.length).toBeGreaterThan(50);
    for (const s of [hk, kr]) {
      const gone = (await Promise.all(live.map((sid) => s.get(sid)))).filter((x) => x === null);
      expect(gone.length).toBe(0);
      const revived = (await Promise.all(dead.map((sid) => s.get(sid)))).filter((x) => x !== null);
      expect(revived.length).toBe(0);
    }

    // Needs cleared in Redis and in the running stores, and they stay cleared: no gap is found later
    // in any shard's numbers for the changes the copy held.
    const keys = createKeySpace(prefix);
    await eventually(() => needs(kr).length === 0 && needs(hk).length === 0, WAIT, 100);
    await new Promise((r) => setTimeout(r, GAP_GRACE_MS + 4000));
    expect(kr.replicationStats()?.needsResync).toEqual({});
    expect(hk.replicationStats()?.needsResync).toEqual({});
    // kr's sequence state holds every one of hk's shards (the handover's cover points, then replication).
    const seen = await krClient.hgetall(keys.seen('kr'));
    expect(Object.keys(seen).filter((s) => s.startsWith('hk#')).length).toBe(SHARDS);
    expect(await krClient.hgetall(keys.resync('kr'))).toMatchObject({ state: 'done', from: 'hk', error: '' });
  });

  it('copies between a Cluster and a single Redis of another layout, both ways', async () => {
    const prefix = 'mix:';
    const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
    opened.push(memory);
    const krSingle = single.client();
    const hk = store('hk', hkClient, prefix, memory as never);
    // kr keeps the unsharded (connect-redis) layout on its single Redis.
    const kr = store('kr', krSingle, prefix, memory as never);
    await Promise.all([hk.ready(), kr.ready()]);
    const sids = Array.from({ length: 60 }, (_, i) => (i % 2 ? hk : kr).genid());
    await Promise.all(sids.map((sid, i) => (i % 2 ? hk : kr).set(sid, session(`u${i}`))));
    await Promise.all(sids.slice(0, 10).map((sid, i) => (i % 2 ? hk : kr).destroy(sid)));
    const admin = [
      { id: 'hk', client: hkClient, prefix, outboxShards: SHARDS },
      { id: 'kr', client: krSingle, prefix },
    ];
    await eventually(async () => (await verifyRegions(admin, { full: true, settleMs: 0 })).clean, WAIT, 300);

    // The single Redis loses its data; kr is brought back from the Cluster, and the other way round.
    await krSingle.flushall();
    expect((await verifyRegions(admin, { full: true, settleMs: 0 })).clean).toBe(false);
    const result = await resyncRegion({
      target: { id: 'kr', client: krSingle },
      source: { id: 'hk', client: hkClient },
      prefix,
      bothWays: true,
    });
    expect(result.counts.changed).toBe(60);
    const after = await verifyRegions(admin, { full: true, settleMs: 0 });
    expect(after).toMatchObject({ clean: true, compared: 60 });
    // Under kr's own names: the unsharded layout.
    const unsharded = createKeySpace(prefix);
    expect(await krSingle.exists(unsharded.session(sids[20] as string))).toBe(1);
    for (const [i, sid] of sids.entries()) {
      expect((await kr.get(sid))?.user).toBe(i < 10 ? undefined : `u${i}`);
    }

    // A session written only in kr (its replication lost) is copied into the Cluster under its shard.
    const sharded = createKeySpace(prefix, '', SHARDS);
    const lone = kr.genid();
    await krSingle.set(unsharded.session(lone), JSON.stringify(session('lone')), 'PX', 600_000);
    const back = await resyncRegion({
      target: { id: 'hk', client: hkClient },
      source: { id: 'kr', client: krSingle },
      prefix,
    });
    expect(back.counts.changed).toBe(1);
    expect(await hkClient.get(sharded.session(lone))).toContain('lone');
  });

  it('resumes an interrupted resync on the master and cursor it stopped at', async () => {
    const prefix = 'res:';
    const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
    opened.push(memory);
    const hk = store('hk', hkClient, prefix, memory as never);
    await hk.ready();
    const sids = Array.from({ length: 80 }, () => hk.genid());
    await Promise.all(sids.map((sid, i) => hk.set(sid, session(`u${i}`))));
    const stop = new AbortController();
    let pages = 0;
    const options = {
      target: { id: 'kr', client: krClient },
      source: { id: 'hk', client: hkClient },
      prefix,
      batchSize: 5,
    };
    await expect(
      resyncRegion({
        ...options,
        signal: stop.signal,
        onProgress: () => {
          if (++pages === 3) stop.abort();
        },
      }),
    ).rejects.toThrow(/aborted/);
    const record = await krClient.hgetall(createKeySpace(prefix).resync('kr'));
    expect(record.state).toBe('failed');
    // A Cluster's position names its master: `host:port cursor`.
    expect(record.cursor).toMatch(/^127\.0\.0\.1:\d+ \d+$/);
    const resumed = await resyncRegion(options);
    expect(resumed).toMatchObject({ resumed: true, phase: 'done' });
    // It went on from there: the keys walked in both runs are the keys of the source once, not more.
    const masters = hkClient.nodes('master');
    const held = (await Promise.all(masters.map((m) => m.dbsize()))).reduce((a, n) => a + n, 0);
    expect(resumed.keys).toBeLessThanOrEqual(held);
    const admin = [
      { id: 'hk', client: hkClient, prefix, outboxShards: SHARDS },
      { id: 'kr', client: krClient, prefix, outboxShards: SHARDS },
    ];
    expect(await verifyRegions(admin, { full: true, settleMs: 0 })).toMatchObject({
      clean: true,
      compared: 80,
    });
  });

  it('repairs on a Cluster, each fix in its shard with its digest; the layouts are checked', async () => {
    const prefix = 'rep:';
    const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
    opened.push(memory);
    const hk = store('hk', hkClient, prefix, memory as never);
    const kr = store('kr', krClient, prefix, memory as never);
    await Promise.all([hk.ready(), kr.ready()]);
    const sids = Array.from({ length: 20 }, () => hk.genid());
    await Promise.all(sids.map((sid, i) => hk.set(sid, session(`u${i}`))));
    const admin = [
      { id: 'hk', client: hkClient, prefix, outboxShards: SHARDS },
      { id: 'kr', client: krClient, prefix, outboxShards: SHARDS },
    ];
    await eventually(async () => (await verifyRegions(admin, { full: true, settleMs: 0 })).clean, WAIT, 300);
    const keys = createKeySpace(prefix, '', SHARDS);
    await krClient.del(keys.session(sids[3] as string), keys.meta(sids[3] as string));
    const repaired = await repairRegions(admin, { full: true, settleMs: 0 });
    expect(repaired.actions.map((a) => [a.sid, a.region, a.op])).toEqual([[sids[3], 'kr', 'set']]);
    // (On a Cluster, a fix naming the region's unsharded digest key would have failed with CROSSSLOT.)
    expect((await verifyRegions(admin, { full: true, settleMs: 0 })).clean).toBe(true);

    await expect(
      repairRegions([admin[0] as never, { id: 'kr', client: krClient, prefix }], { full: true }),
    ).rejects.toThrow(/regions\[1\]\.outboxShards/);
    await expect(
      resyncRegion({
        target: { id: 'kr', client: krClient, outboxShards: 0 },
        source: { id: 'hk', client: hkClient },
        prefix,
      }),
    ).rejects.toThrow(/target\.outboxShards/);
    // The counters are named as the store names them (a shard's beside its outbox).
    expect(await hkClient.exists(sequenceKey(keys.outboxOf(sids[0] as string, 'hk')))).toBe(1);
  });
});
