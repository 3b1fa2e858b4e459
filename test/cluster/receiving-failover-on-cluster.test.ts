/**
 * A master of the RECEIVING region's cluster killed while the other region writes (docs/cluster.md,
 * "Failover"; docs/replication.md, "What a failover loses"). hk writes without pause on its cluster; a
 * master of kr's cluster is SIGKILLed and its replica promoted. Replication into kr must resume by itself,
 * and once kr has handled every number hk gave, the sessions of three groups are compared:
 *
 * - **confirmed**: written before the kill, applied in kr, and known to be on the killed master's
 *   replica (a marker written on that master after the applies, then `WAIT 1`: a replica receives its
 *   master's writes in order, and each master here has one replica, so the promoted one has them). They
 *   must all be in kr exactly as in hk: no allowance.
 * - **straddling**: new sessions, each written once, from before the kill until the promotion. Only
 *   these may differ (a change dropped while kr had no master for its slot would show here), and only
 *   within Redis Cluster's asynchronous-replication window: the session's kr keys were on the killed
 *   master, hk acknowledged its last write before the killed process had exited (a change that reached
 *   kr later went to the promoted replica, or waited and was retried until it could), and kr holds an
 *   older version, never another one. Every change acknowledged after the kill must be there.
 * - **after**: written only after the promotion: all must arrive (replication resumed by itself).
 *
 * A loss is never silent to `verifyRegions`: its full comparison must list exactly the sessions that
 * differ. Nothing re-delivers a lost apply: the transport was acknowledged once the apply succeeded, and
 * the reader's position lives in hk (the relay's consumer group, or kr's group on hk's outboxes with
 * Redis Streams), not on the killed master. A gap shows only when kr's sequence record
 * (`{P|seen}:kr`) lost the numbers too, which needs the record on the killed master and its write in
 * the window as well.
 */
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRegions } from '../../src/admin/verify.js';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace, type KeySpace } from '../../src/keys.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { sequenceKey } from '../../src/wire/internal-keys.js';
import { eventually } from '../helpers/eventually.js';
import { type SessionState, sessionState } from '../helpers/meta.js';
import {
  type ClusterNode,
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  startCluster,
} from '../helpers/redis-cluster.js';

const SHARDS = 8;

/** Whether a master has a replica connected (ROLE). */
async function hasReplica(node: Redis): Promise<boolean> {
  const role = (await node.call('ROLE')) as [string, number, unknown[]];
  return role[0] === 'master' && role[2].length > 0;
}

describe.skipIf(!hasClusterBinaries)(
  'a master of the receiving region killed under writes',
  { timeout: 90_000 },
  () => {
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

    async function regions(prefix: string, kind: 'memory' | 'redis-streams') {
      const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
      const clientsOf = { hk: hkClient as unknown as Redis, kr: krClient as unknown as Redis };
      const errors: Record<'hk' | 'kr', Error[]> = { hk: [], kr: [] };
      const transports = new Set<{ close(): Promise<void> }>();
      const make = (region: 'hk' | 'kr', client: Cluster) => {
        const transport =
          kind === 'memory'
            ? memory
            : createRedisStreamsTransport({
                regions: clientsOf,
                blockMs: 200,
                watchdogMs: 2000,
                claimIdleMs: 2000,
              });
        transports.add(transport);
        const store = new GeoSessionStore({
          region,
          client,
          prefix,
          transport,
          sealer: 'none',
          gapGraceMs: 500,
          heartbeatMs: 300,
        });
        store.on('error', (error: Error) => errors[region].push(error));
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
          for (const t of transports) await t.close();
        },
      };
    }

    /** The shards whose keys (in kr) `node` serves. */
    async function shardsServedBy(keys: KeySpace, node: ClusterNode): Promise<Set<number>> {
      const out = new Set<number>();
      for (const o of keys.sessionOutboxes('kr')) {
        if ((await krCluster.masterOf(o.key)).port === node.port) out.add(o.shard as number);
      }
      return out;
    }

    /** True once kr handled (applied, or gave up as a gap) every number hk gave in every shard. */
    async function handledAll(keys: KeySpace): Promise<boolean> {
      const seen = await krClient.hgetall(keys.seen('kr'));
      for (const o of keys.sessionOutboxes('hk')) {
        const given = Number((await hkClient.hget(sequenceKey(o.key), 'n')) ?? 0);
        const low = Number((seen[o.stream] ?? '').split('|')[1] ?? 0);
        if (low < given) return false;
      }
      return true;
    }

    /** New session ids of `store`, at least `count` and some in every shard. */
    function idsInEveryShard(keys: KeySpace, store: GeoSessionStore, count: number): string[] {
      const sids: string[] = [];
      while (sids.length < count || new Set(sids.map((sid) => keys.shardOf(sid))).size < SHARDS) {
        sids.push(store.genid());
      }
      return sids;
    }

    /**
     * The scenario (see the top of the file): `pick` chooses the kr master to kill (a key it serves).
     * Resolves to the sessions that differ at the end, each checked against the allowance.
     */
    async function killUnderWrites(
      prefix: string,
      kind: 'memory' | 'redis-streams',
      pick: (keys: KeySpace) => Promise<string>,
    ) {
      const keys = createKeySpace(prefix, '', SHARDS);
      const r = await regions(prefix, kind);
      const confirmed = idsInEveryShard(keys, r.hk, 32);
      const straddling: string[] = [];
      const after = idsInEveryShard(keys, r.hk, 32);
      const state = async (client: Cluster, sid: string) =>
        sessionState(client as unknown as Redis, keys, sid);
      const differing = async (sids: readonly string[]) => {
        const out: { sid: string; hk: SessionState; kr: SessionState }[] = [];
        await Promise.all(
          sids.map(async (sid) => {
            const [h, k] = await Promise.all([state(hkClient, sid), state(krClient, sid)]);
            if (JSON.stringify(h) !== JSON.stringify(k)) out.push({ sid, hk: h, kr: k });
          }),
        );
        return out;
      };
      await Promise.all(confirmed.map((sid) => r.hk.set(sid, clusterSession('first'))));

      const victimKey = await pick(keys);
      const victim = await krCluster.masterOf(victimKey);
      const victimShards = await shardsServedBy(keys, victim);
      const seenOnVictim = (await krCluster.masterOf(keys.seen('kr'))).port === victim.port;

      // The last write hk acknowledged per session, and when. Four writers, each on its own sessions.
      const acked = new Map<string, { user: string; at: number }>();
      const writeErrors: unknown[] = [];
      let straddle = true;
      let writing = true;
      let count = 0;
      const writer = async (w: number) => {
        for (let i = 0; writing; i++) {
          const mine = after.filter((_, j) => j % 4 === w);
          const sid = straddle ? r.hk.genid() : (mine[i % mine.length] as string);
          if (straddle) straddling.push(sid);
          const user = `w${w}n${i}`;
          try {
            await r.hk.set(sid, clusterSession(user));
            acked.set(sid, { user, at: Date.now() });
            count++;
          } catch (error) {
            writeErrors.push(error); // hk's cluster is healthy: no write of hk may fail
          }
          await new Promise((res) => setTimeout(res, 2));
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      // The confirmed group: written again under the writers' traffic, applied in kr, then on the replica.
      await Promise.all(
        confirmed.map(async (sid, i) => {
          await r.hk.set(sid, clusterSession(`c${i}`));
          acked.set(sid, { user: `c${i}`, at: Date.now() });
        }),
      );
      await eventually(async () => (await differing(confirmed)).length === 0, 20_000, 50);
      const tag = /\{([^}]*)\}/.exec(victimKey)?.[1] as string;
      const node = krCluster.nodeClient(victim.port);
      await node.set(`{${tag}}:wait-marker`, '1');
      expect(Number(await node.call('WAIT', '1', '5000'))).toBe(1);

      await eventually(() => count >= 200, 20_000);
      const { killed, promoted, killedAt } = await krCluster.failover(victimKey);
      expect(promoted.port).not.toBe(killed.port);
      straddle = false;
      const atPromotion = count;
      await eventually(() => count >= atPromotion + 200, 20_000);
      writing = false;
      await Promise.all(writers);
      expect(writeErrors).toEqual([]);

      // Settled: every number hk gave in every shard is handled in kr (a batch still being retried, or a
      // gap about to be filled late, gets a few more seconds).
      await eventually(() => handledAll(keys), 40_000, 100);
      const all = [...confirmed, ...straddling, ...after];
      let left = await differing(all);
      await eventually(
        async () => {
          left = await differing(all);
          return left.length === 0;
        },
        15_000,
        200,
      ).catch(() => {});

      // hk itself holds every write it acknowledged (its cluster was not touched).
      for (const sid of all) {
        const held = JSON.parse((await hkClient.get(keys.session(sid))) ?? 'null') as {
          user?: string;
        } | null;
        expect(held?.user, sid).toBe(acked.get(sid)?.user ?? 'first');
      }
      // What may differ: exactly the asynchronous-replication window of the killed master.
      for (const { sid, hk, kr } of left) {
        expect(straddling, `${sid}: confirmed on a replica, or written after the promotion`).toContain(sid);
        expect(victimShards.has(keys.shardOf(sid) as number), `${sid}: not on the killed master`).toBe(true);
        expect((acked.get(sid)?.at ?? 0) < killedAt, `${sid}: acknowledged after the kill`).toBe(true);
        expect(hk.meta.v, sid).toBeDefined();
        expect((kr.meta.v ?? '') < (hk.meta.v as string), `${sid}: kr holds another version`).toBe(true);
      }
      // verify lists exactly the sessions that differ.
      const admin = [
        { id: 'hk', client: hkClient, prefix, outboxShards: SHARDS },
        { id: 'kr', client: krClient, prefix, outboxShards: SHARDS },
      ];
      const report = await verifyRegions(admin, { full: true, settleMs: 0 });
      expect(report.differences.map((d) => d.sid).sort()).toEqual(left.map((d) => d.sid).sort());
      if (left.length === 0) expect((await verifyRegions(admin, { settleMs: 0 })).clean).toBe(true);
      const stats = r.kr.replicationStats();
      console.log(
        `[receiving failover, ${kind}] killed ${killed.port} (shards ${[...victimShards].join(',')}, sequence record ${seenOnVictim ? 'on it' : 'elsewhere'}); ${count} writes in hk; ${left.length} lost in the window; kr: ${stats?.transient.count ?? 0} transient failures ${JSON.stringify(stats?.transient.byReason ?? {})}, gap flagged: ${stats?.needsResync.hk?.cause === 'gap'}`,
      );
      return { ...r, victimShards, seenOnVictim };
    }

    it('kills the kr master holding the sequence record and session shards (memory): replication resumes, nothing confirmed is lost', async () => {
      const { victimShards, seenOnVictim, close } = await killUnderWrites('rcv1:', 'memory', async (k) =>
        k.seen('kr'),
      );
      expect(seenOnVictim).toBe(true);
      expect(victimShards.size).toBeGreaterThan(0);
      await close();
    });

    it('kills a kr master of session shards only (Redis Streams): replication resumes, nothing confirmed is lost', async () => {
      const { seenOnVictim, close } = await killUnderWrites('rcv2:', 'redis-streams', async (k) => {
        // A master that still has a replica (the first test's promoted one has none) and not the record's.
        const seenPort = (await krCluster.masterOf(k.seen('kr'))).port;
        for (const o of k.sessionOutboxes('kr')) {
          const master = await krCluster.masterOf(o.key);
          if (master.port !== seenPort && (await hasReplica(krCluster.nodeClient(master.port)))) return o.key;
        }
        throw new Error('no master of a session shard with a replica left');
      });
      expect(seenOnVictim).toBe(false);
      await close();
    });
  },
);
