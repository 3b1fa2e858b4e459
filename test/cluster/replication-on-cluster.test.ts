import fc from 'fast-check';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRegions } from '../../src/admin/verify.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { sequenceKey } from '../../src/wire/internal-keys.js';
import { createDeployment, transportAvailable } from '../helpers/deployment.js';
import { eventually } from '../helpers/eventually.js';
import { session as data } from '../helpers/forgery.js';
import { type SessionState, sessionState } from '../helpers/meta.js';
import { hasClusterBinaries, type LocalCluster, startCluster } from '../helpers/redis-cluster.js';
import { slotOf } from '../helpers/slots.js';

const session = (user: string, lifeMs = 120_000): SessionData =>
  ({
    cookie: { originalMaxAge: lifeMs, expires: new Date(Date.now() + lifeMs).toISOString() },
    user,
  }) as SessionData;

const SHARDS = 8;
const LAYOUT = createKeySpace('any:', '', SHARDS);

/** At least `count` new session ids of `store`, and at least one in every shard. */
function idsInEveryShard(store: GeoSessionStore, count: number): string[] {
  const sids: string[] = [];
  while (sids.length < count || new Set(sids.map((sid) => LAYOUT.shardOf(sid))).size < SHARDS) {
    sids.push(store.genid());
  }
  return sids;
}

/**
 * Waits until every write this Cluster client made so far is on at least one replica: WAIT on each
 * master connection of the client's own pool (WAIT covers the writes of the connection it is sent on).
 */
async function confirmOnReplicas(client: Cluster): Promise<void> {
  for (const node of client.nodes('master') as Redis[]) {
    // A master promoted by an earlier test has no replica left: it is never killed again.
    if (!(await hasReplica(node))) continue;
    expect(Number(await node.call('WAIT', '1', '5000'))).toBeGreaterThanOrEqual(1);
  }
}

/** Whether a master has a replica connected (ROLE). */
async function hasReplica(node: Redis): Promise<boolean> {
  const role = (await node.call('ROLE')) as [string, number, unknown[]];
  return role[0] === 'master' && role[2].length > 0;
}

// Two regions, each a real Redis Cluster of 3 masters and 3 replicas, replicating through the memory
// transport with sharded outboxes.
describe.skipIf(!hasClusterBinaries)('replication between two Redis Clusters', { timeout: 120_000 }, () => {
  let hkCluster: LocalCluster;
  let krCluster: LocalCluster;
  let hkClient: Cluster;
  let krClient: Cluster;
  beforeAll(async () => {
    [hkCluster, krCluster] = await Promise.all([startCluster(3, 1), startCluster(3, 1)]);
    hkClient = hkCluster.client();
    krClient = krCluster.client();
  }, 120_000);
  afterAll(async () => {
    await Promise.all([hkCluster?.stop(), krCluster?.stop()]);
  });

  /** hk and kr stores under `prefix` on the two clusters, one memory transport between them. */
  async function regions(
    prefix: string,
    extra: Partial<ConstructorParameters<typeof GeoSessionStore>[0]> = {},
    kind: 'memory' | 'redis-streams' = 'memory',
  ) {
    const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
    const clientsOf = { hk: hkClient as unknown as Redis, kr: krClient as unknown as Redis };
    const transportOf = () =>
      kind === 'memory'
        ? memory
        : createRedisStreamsTransport({
            regions: clientsOf,
            blockMs: 200,
            watchdogMs: 2000,
            claimIdleMs: 2000,
          });
    const transports: ReturnType<typeof transportOf>[] = [];
    const errors: Error[] = [];
    const make = (region: 'hk' | 'kr', client: Cluster) => {
      const store = new GeoSessionStore({
        region,
        client,
        prefix,
        transport: transports[transports.push(transportOf()) - 1],
        sealer: 'none',
        gapGraceMs: 500,
        heartbeatMs: 300,
        ...extra,
      });
      store.on('error', (error: Error) => errors.push(error));
      return store;
    };
    const hk = make('hk', hkClient);
    const kr = make('kr', krClient);
    await Promise.all([hk.ready(), kr.ready()]);
    return {
      hk,
      kr,
      errors,
      async close() {
        await hk.close();
        await kr.close();
        for (const t of new Set(transports)) await t.close();
      },
    };
  }

  it('replicates login, update and logout; sessions and shards spread over every master', async () => {
    const prefix = 'rep:';
    const keys = createKeySpace(prefix, '', SHARDS);
    const { hk, kr, errors, close } = await regions(prefix);
    expect(hk.replicationStats()?.transport).toBeDefined();
    const sids = idsInEveryShard(hk, 40);
    await Promise.all(sids.map((sid, i) => hk.set(sid, session(`u${i}`))));
    await eventually(async () => (await Promise.all(sids.map((sid) => kr.get(sid)))).every(Boolean), 20_000);
    for (const [i, sid] of sids.entries()) expect((await kr.get(sid))?.user).toBe(`u${i}`);

    // Each session's keys and its shard's outbox, counter and digest share one slot.
    const shards = new Set<number>();
    const masters = new Set<number>();
    for (const sid of sids) {
      const slot = slotOf(keys.session(sid));
      expect(slotOf(keys.meta(sid))).toBe(slot);
      expect(slotOf(keys.outboxOf(sid, 'hk'))).toBe(slot);
      expect(slotOf(sequenceKey(keys.outboxOf(sid, 'hk')))).toBe(slot);
      expect(slotOf(keys.digestOf(sid, 'hk'))).toBe(slot);
      shards.add(keys.shardOf(sid) as number);
      masters.add((await hkCluster.masterOf(keys.session(sid))).port);
    }
    expect(shards.size).toBe(SHARDS);
    expect(masters.size).toBe(3);
    const outboxMasters = new Set<number>();
    for (const o of keys.sessionOutboxes('hk')) outboxMasters.add((await hkCluster.masterOf(o.key)).port);
    expect(outboxMasters.size).toBe(3);
    // The session's value is in hk's Redis under the sharded name, and kr holds the same key.
    expect(await hkClient.exists(keys.session(sids[0] as string))).toBe(1);
    expect(await krClient.exists(keys.session(sids[0] as string))).toBe(1);

    // Update in kr reaches hk; logout in hk reaches kr.
    const [a, b] = sids as [string, string];
    await kr.set(a, session('updated'));
    await eventually(async () => (await hk.get(a))?.user === 'updated', 20_000);
    await hk.destroy(b);
    await eventually(async () => (await kr.get(b)) === null, 20_000);
    expect(await kr.isDestroyed(b)).toBe(true);

    // Interleaved shards are neither gaps nor new epochs.
    await new Promise((r) => setTimeout(r, 1500));
    expect(kr.replicationStats()?.needsResync).toEqual({});
    expect(hk.replicationStats()?.needsResync).toEqual({});
    const streams = Object.keys(kr.replicationStats()?.sequences ?? {});
    expect(streams.filter((s) => s.startsWith('hk#')).length).toBe(SHARDS);
    expect(errors).toEqual([]);

    // verify knows the sharded layout: by the shards' digests summed, and key by key.
    const admin = [
      { id: 'hk', client: hkClient, prefix, outboxShards: SHARDS },
      { id: 'kr', client: krClient, prefix, outboxShards: SHARDS },
    ];
    const byDigests = await verifyRegions(admin, { settleMs: 0 });
    expect(byDigests.mode).toBe('digests');
    expect(byDigests.windows).toBeGreaterThan(0);
    expect(byDigests.clean).toBe(true);
    const full = await verifyRegions(admin, { full: true, settleMs: 0 });
    expect(full.compared).toBeGreaterThanOrEqual(sids.length);
    expect(full.clean).toBe(true);
    // A session changed behind replication's back in kr (the digests do not see a hand edit) is found
    // key by key.
    await krClient.set(keys.session(sids[2] as string), '{"cookie":{},"user":"forged"}', 'KEEPTTL');
    const meta = (await krClient.get(keys.meta(sids[2] as string))) as string;
    await krClient.set(
      keys.meta(sids[2] as string),
      meta.replace(/^0\|[^|]*/, '0|000000000000001.0000.kr'),
      'KEEPTTL',
    );
    const dirty = await verifyRegions(admin, { full: true, settleMs: 0 });
    expect(dirty.clean).toBe(false);
    expect(dirty.differences.map((d) => d.sid)).toContain(sids[2]);
    await close();
  });

  it('a race of set and destroy ends destroyed in both regions', async () => {
    const { hk, kr, close } = await regions('race:');
    const sids = Array.from({ length: 20 }, () => hk.genid());
    await Promise.all(sids.map((sid) => hk.set(sid, session('first'))));
    await eventually(async () => (await Promise.all(sids.map((sid) => kr.get(sid)))).every(Boolean), 20_000);
    // kr re-saves while hk logs out, at once.
    await Promise.all(sids.flatMap((sid) => [kr.set(sid, session('late save')), hk.destroy(sid)]));
    await eventually(
      async () =>
        (await Promise.all(sids.flatMap((sid) => [hk.isDestroyed(sid), kr.isDestroyed(sid)]))).every(Boolean),
      20_000,
    );
    for (const sid of sids) {
      expect(await hk.get(sid)).toBeNull();
      expect(await kr.get(sid)).toBeNull();
    }
    await close();
  });

  it('a number missing from one shard is a gap of that shard; the other shards stay whole', async () => {
    const prefix = 'gap:';
    const keys = createKeySpace(prefix, '', SHARDS);
    const { hk, kr, close } = await regions(prefix);
    const sids = idsInEveryShard(hk, 32);
    await Promise.all(sids.map((sid) => hk.set(sid, session('x'))));
    await eventually(async () => (await Promise.all(sids.map((sid) => kr.get(sid)))).every(Boolean), 20_000);
    const sid = sids[0] as string;
    const shard = keys.shardOf(sid) as number;
    // An entry of this shard that never reaches kr (a deleted entry): its number is taken and nothing is
    // appended under it.
    await hkClient.hincrby(sequenceKey(keys.outboxOf(sid, 'hk')), 'n', 1);
    await hk.set(sid, session('after the hole'));
    await eventually(async () => (await kr.get(sid))?.user === 'after the hole', 20_000);
    await eventually(() => kr.replicationStats()?.needsResync.hk !== undefined, 20_000);
    const need = kr.replicationStats()?.needsResync.hk;
    expect(need?.reason).toContain(`hk#${shard}`);
    const sequences = kr.replicationStats()?.sequences ?? {};
    expect(sequences[`hk#${shard}`]?.gaps.length).toBe(1);
    for (const [stream, seq] of Object.entries(sequences)) {
      if (stream !== `hk#${shard}`) expect(seq.gaps).toEqual([]);
    }
    await close();
  });

  for (const kind of ['memory', 'redis-streams'] as const) {
    it(`a master killed under writes (${kind}): its replica takes over, replication resumes, nothing WAIT confirmed is lost`, async () => {
      const prefix = `fo${kind.length}:`;
      const keys = createKeySpace(prefix, '', SHARDS);
      const { hk, kr, close } = await regions(prefix, {}, kind);
      // Writes acknowledged and confirmed on a replica before the kill.
      const before = idsInEveryShard(hk, 40);
      await Promise.all(before.map((sid, i) => hk.set(sid, session(`b${i}`))));
      await confirmOnReplicas(hkClient);

      // Writes go on while the master of a shard's outbox is killed (one that still has a replica).
      let victim = '';
      for (const o of keys.sessionOutboxes('hk')) {
        const master = await hkCluster.masterOf(o.key);
        if (await hasReplica(hkCluster.nodeClient(master.port))) {
          victim = o.key;
          break;
        }
      }
      expect(victim).not.toBe('');
      let writing = true;
      const during: string[] = [];
      const writer = (async () => {
        while (writing) {
          const sid = hk.genid();
          try {
            await hk.set(sid, session('during'));
            during.push(sid);
          } catch {
            // a write refused while the slot had no master: the caller saw the failure
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      const { killed, promoted } = await hkCluster.failover(victim);
      expect(promoted.port).not.toBe(killed.port);
      writing = false;
      await writer;

      // After the promotion (the promoted master has no replica left): new writes in every shard, all
      // acknowledged, must all arrive.
      const after = idsInEveryShard(hk, 40);
      await Promise.all(after.map((sid, i) => hk.set(sid, session(`a${i}`))));
      expect(new Set(after.map((sid) => keys.shardOf(sid))).size).toBe(SHARDS);
      await eventually(
        async () => (await Promise.all([...before, ...after].map((sid) => kr.get(sid)))).every(Boolean),
        40_000,
        100,
      );
      for (const [i, sid] of before.entries()) expect((await kr.get(sid))?.user).toBe(`b${i}`);
      for (const [i, sid] of after.entries()) expect((await kr.get(sid))?.user).toBe(`a${i}`);
      // A write acknowledged during the failover is lost only inside Redis Cluster's asynchronous
      // replication window (acknowledged by the dying master, not yet on its replica): every one that
      // hk still holds reached kr.
      const heldByHk: string[] = [];
      for (const sid of during) if (await hk.get(sid)) heldByHk.push(sid);
      await eventually(
        async () => (await Promise.all(heldByHk.map((sid) => kr.get(sid)))).every(Boolean),
        40_000,
        100,
      );
      expect(during.length).toBeGreaterThan(0);
      await close();
    });
  }

  for (const kind of ['amqp', 'nats'] as const) {
    it(`replicates over ${kind} between the clusters, every shard, logout included`, async (ctx) => {
      if (!(await transportAvailable(kind))) return ctx.skip();
      const prefix = `${kind}:`;
      const keys = createKeySpace(prefix, '', SHARDS);
      const d = await createDeployment(kind, ['hk', 'kr'], {
        prefix,
        clients: { hk: hkClient, kr: krClient },
        store: { gapGraceMs: 500, heartbeatMs: 300 },
      });
      try {
        const hk = await d.start('hk');
        const kr = await d.start('kr');
        const sids = idsInEveryShard(hk, 24);
        expect(new Set(sids.map((sid) => keys.shardOf(sid))).size).toBe(SHARDS);
        await Promise.all(sids.map((sid, i) => hk.set(sid, data({ user: `u${i}` }))));
        await eventually(async () => (await Promise.all(sids.map((s) => kr.get(s)))).every(Boolean), 20_000);
        await kr.destroy(sids[0] as string);
        await eventually(async () => (await hk.get(sids[0] as string)) === null, 20_000);
        expect(await krClient.exists(keys.session(sids[1] as string))).toBe(1);
        await new Promise((r) => setTimeout(r, 1000));
        expect(kr.replicationStats()?.needsResync).toEqual({});
        expect(d.errors.hk).toEqual([]);
        expect(d.errors.kr).toEqual([]);
      } finally {
        await d.close();
      }
    });
  }

  it('property: any interleaving of sets, touches and logouts in both regions converges; a logout is final', async () => {
    const prefix = 'prop:';
    const keys = createKeySpace(prefix, '', SHARDS);
    const { hk, kr, errors, close } = await regions(prefix, { replicateTouchAfter: 0 });
    const stores = [hk, kr];
    const clients = [hkClient, krClient] as unknown as Redis[];
    let run = 0;
    const cmd = fc.record({
      region: fc.integer({ min: 0, max: 1 }),
      sid: fc.integer({ min: 0, max: 3 }),
      op: fc.constantFrom('set', 'set', 'touch', 'destroy'),
      life: fc.integer({ min: 5 * 60_000, max: 30 * 60_000 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmd, { minLength: 1, maxLength: 16 }),
        fc.integer({ min: 1, max: 6 }),
        async (cmds, width) => {
          run++;
          const sids = [0, 1, 2, 3].map(() => hk.genid());
          // Every session exists in both regions first (a logout of a session never saved is local).
          await Promise.all(sids.map((sid) => hk.set(sid, session(`first${run}`, 600_000))));
          await eventually(
            async () => (await Promise.all(sids.map((sid) => kr.get(sid)))).every(Boolean),
            20_000,
          );
          for (let i = 0; i < cmds.length; i += width) {
            // A few commands at once: they race, in and between regions.
            await Promise.all(
              cmds.slice(i, i + width).map(({ region, sid, op, life }, j) => {
                const store = stores[region] as GeoSessionStore;
                const id = sids[sid] as string;
                if (op === 'destroy') return store.destroy(id);
                // One lifetime rule (maxAge) for all, so a touch stays a touch; touches reach further.
                const ms = op === 'touch' ? life + 30 * 60_000 : life;
                const s = {
                  cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + ms).toISOString() },
                  user: `r${region}c${i + j}`,
                } as SessionData;
                return op === 'set' ? store.set(id, s) : store.touch(id, s);
              }),
            );
          }
          const states = async () =>
            Promise.all(sids.map(async (sid) => Promise.all(clients.map((c) => sessionState(c, keys, sid)))));
          let last: SessionState[][] = [];
          await eventually(
            async () => {
              last = await states();
              return last.every(([a, b]) => JSON.stringify(a) === JSON.stringify(b));
            },
            20_000,
            50,
          );
          cmds.forEach(({ sid, op }) => {
            if (op !== 'destroy') return;
            for (const state of last[sid] as SessionState[]) {
              expect(state.value).toBeNull();
              expect(state.meta.t).toBe('1');
            }
          });
        },
      ),
      { numRuns: 12 },
    );
    expect(errors).toEqual([]);
    await close();
  });

  for (const prefix of ['{rs}sess:', 'rs:']) {
    it(`replicates over Redis Streams (prefix ${prefix}: ${prefix.startsWith('{') ? 'one outbox in one slot' : 'every shard read from the origin'})`, async () => {
      const regionsOf = { hk: hkClient as unknown as Redis, kr: krClient as unknown as Redis };
      const make = (region: 'hk' | 'kr') =>
        new GeoSessionStore({
          region,
          client: regionsOf[region],
          prefix,
          transport: createRedisStreamsTransport({
            regions: regionsOf,
            blockMs: 200,
            watchdogMs: 2000,
            trimIntervalMs: 300,
          }),
          sealer: 'none',
          gapGraceMs: 500,
          heartbeatMs: 300,
        });
      const hk = make('hk');
      const kr = make('kr');
      const errors: Error[] = [];
      for (const store of [hk, kr]) store.on('error', (e: Error) => errors.push(e));
      await Promise.all([hk.ready(), kr.ready()]);
      expect(hk.replicationStats()?.transportName).toBe('redis-streams');
      const sids = idsInEveryShard(hk, 24);
      await Promise.all(sids.map((sid) => hk.set(sid, session('rs'))));
      await eventually(
        async () => (await Promise.all(sids.map((sid) => kr.get(sid)))).every(Boolean),
        20_000,
      );
      await kr.destroy(sids[0] as string);
      await eventually(async () => (await hk.get(sids[0] as string)) === null, 20_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(kr.replicationStats()?.needsResync).toEqual({});
      const streams = Object.keys(kr.replicationStats()?.sequences ?? {});
      if (prefix === 'rs:') expect(streams.filter((s) => s.startsWith('hk#')).length).toBe(SHARDS);
      // kr reads every outbox of hk with its own consumer group, and hk trims what kr consumed.
      const keys = createKeySpace(prefix, '', prefix === 'rs:' ? SHARDS : 0);
      for (const o of keys.sessionOutboxes('hk')) {
        const groups = (await hkClient.xinfo('GROUPS', o.key)) as unknown[][];
        expect(
          groups.some((g) => g[1] === 'kr'),
          o.key,
        ).toBe(true);
      }
      expect(errors).toEqual([]);
      await hk.close();
      await kr.close();
    });
  }
});
