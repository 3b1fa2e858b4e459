/**
 * The per-user index and logout everywhere between two real Redis Clusters (3 masters each), on the
 * sharded layout (8 shards): each shard keeps its own index of the user and its own "revoked before"
 * mark, in the slot of the sessions it lists; `sessionsOf` merges the shards, `logoutEverywhere` marks
 * and ends shard by shard and each shard's mark travels through that shard's outbox; a region receiving
 * a mark merges it into every shard. A session saved in the other region before the mark reached it is
 * ended there and refused here; `except` keeps the caller's session. The resync's copy of the marks
 * walks every master and writes each mark in its shard's slot.
 */
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyUserMarks } from '../../src/admin/resync-marks.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { TransportError } from '../../src/errors.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { eventually } from '../helpers/eventually.js';
import {
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  startCluster,
} from '../helpers/redis-cluster.js';
import { slotOf } from '../helpers/slots.js';

const SHARDS = 8;
const WAIT = 20_000;
const userId = (s: SessionData) => (s as { user?: string }).user;

/**
 * `inner` as one region sees it, with a link that can be cut: while `link.open` is false nothing
 * reaches the region (each batch is refused and the transport delivers it again later) and nothing it
 * publishes leaves it (the relay publishes it again later).
 */
function cuttable(inner: ReplicationTransport, link: { open: boolean }): ReplicationTransport {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'publish') {
        return (channel: string, envelopes: Parameters<ReplicationTransport['publish']>[1]) =>
          link.open ? target.publish(channel, envelopes) : Promise.reject(new TransportError('link cut'));
      }
      if (property === 'subscribe') {
        return (options: Parameters<ReplicationTransport['subscribe']>[0]) =>
          target.subscribe({
            ...options,
            handler: (batch) => (link.open ? options.handler(batch) : Promise.reject(new Error('link cut'))),
          });
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.skipIf(!hasClusterBinaries)(
  'logout everywhere between two Redis Clusters',
  { timeout: 120_000 },
  () => {
    let hkCluster: LocalCluster;
    let krCluster: LocalCluster;
    let hkClient: Cluster;
    let krClient: Cluster;
    beforeAll(async () => {
      [hkCluster, krCluster] = await Promise.all([startCluster(3, 0), startCluster(3, 0)]);
      hkClient = hkCluster.client();
      krClient = krCluster.client();
    }, 120_000);
    afterAll(async () => {
      await Promise.all([hkCluster?.stop(), krCluster?.stop()]);
    });

    it('lists a user’s sessions of every shard, ends them in both regions, and refuses one saved meanwhile', async () => {
      const prefix = 'usr:';
      const keys = createKeySpace(prefix, '', SHARDS);
      const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
      const link = { open: true };
      const make = (region: 'hk' | 'kr', client: Cluster) => {
        const store = new GeoSessionStore({
          region,
          client,
          prefix,
          userId,
          transport: cuttable(memory, link),
          sealer: 'none',
          gapGraceMs: 500,
          heartbeatMs: 300,
        });
        store.on('error', () => {}); // the cut link's refusals are expected
        return store;
      };
      const hk = make('hk', hkClient);
      const kr = make('kr', krClient);
      const sids = async (store: GeoSessionStore) => (await store.sessionsOf('ann')).map((s) => s.sid).sort();
      try {
        await Promise.all([hk.ready(), kr.ready()]);
        expect(hk.replicationStats()?.transport).toBeDefined();
        // Sessions of one user in every shard, most made in hk, some in kr.
        const made: string[] = [];
        while (made.length < 16 || new Set(made.map((sid) => keys.shardOf(sid))).size < SHARDS) {
          made.push((made.length % 4 === 3 ? kr : hk).genid());
        }
        await Promise.all(
          made.map((sid) => (sid.startsWith('kr.') ? kr : hk).set(sid, clusterSession('ann'))),
        );
        const all = [...made].sort();
        await eventually(async () => JSON.stringify(await sids(hk)) === JSON.stringify(all), WAIT);
        await eventually(async () => JSON.stringify(await sids(kr)) === JSON.stringify(all), WAIT);
        expect((await kr.sessionsOf('ann')).find((s) => s.sid.startsWith('hk.'))?.origin).toBe('hk');

        // Each shard's index of the user is in the slot of the sessions it lists, on every master.
        const masters = new Set<number>();
        for (const sid of made) {
          const index = keys.user('ann', keys.shardOf(sid));
          expect(slotOf(index)).toBe(slotOf(keys.session(sid)));
          expect(await hkClient.hexists(index, sid)).toBe(1);
          expect(await krClient.hexists(index, sid)).toBe(1);
          masters.add((await hkCluster.masterOf(index)).port);
        }
        expect(masters.size).toBe(3);

        // The regions are cut off: kr saves a new session of the user and changes an old one.
        const keep = made.find((sid) => sid.startsWith('hk.')) as string;
        link.open = false;
        const late = kr.genid();
        const changed = made.find((sid) => sid.startsWith('kr.')) as string;
        try {
          await kr.set(late, clusterSession('ann'));
          await kr.set(changed, { ...clusterSession('ann'), during: true } as SessionData);
          await new Promise((r) => setTimeout(r, 20));
          // hk ends what it lists, every shard's, but the caller's own session.
          expect(await hk.logoutEverywhere('ann', { except: keep })).toBe(made.length - 1);
          expect(await sids(hk)).toEqual([keep]);
          for (const sid of made) expect(await hk.isDestroyed(sid)).toBe(sid !== keep);
          // kr cannot know yet.
          expect(await kr.get(late)).not.toBeNull();
          expect(await kr.get(made[1] as string)).not.toBeNull();
        } finally {
          link.open = true;
        }

        // Once the link is back, kr ends every one of them, the one it saved meanwhile too.
        await eventually(async () => {
          const left = await Promise.all([...made, late].map((sid) => kr.get(sid)));
          return left.filter((s) => s !== null).length === 1;
        }, WAIT);
        expect(await kr.get(keep)).not.toBeNull();
        expect(await kr.isDestroyed(late)).toBe(true);
        await eventually(async () => JSON.stringify(await sids(kr)) === JSON.stringify([keep]), WAIT);
        // And hk refused (or ended) the session kr saved before the mark reached it.
        await eventually(async () => (await hk.isDestroyed(late)) && (await hk.isDestroyed(changed)), WAIT);
        expect(await hk.get(late)).toBeNull();
        expect(await sids(hk)).toEqual([keep]);
        // Every shard of both regions holds the mark, keeping `keep`.
        for (const { key } of keys.userIndexes('ann')) {
          expect(await hkClient.hget(key, '|before')).toMatch(new RegExp(`\\|${keep}$`));
          expect(await krClient.hget(key, '|before')).toMatch(new RegExp(`\\|${keep}$`));
        }

        // The kept session still saves, and a session made after the call is unaffected, in both regions.
        await kr.set(keep, { ...clusterSession('ann'), kept: true } as SessionData);
        await eventually(
          async () => ((await hk.get(keep)) as { kept?: boolean } | null)?.kept === true,
          WAIT,
        );
        const fresh = kr.genid();
        await kr.set(fresh, clusterSession('ann'));
        await eventually(
          async () => JSON.stringify(await sids(hk)) === JSON.stringify([keep, fresh].sort()),
          WAIT,
        );

        // A resync copies the marks: every master walked, each mark into its shard's index in the target.
        const copy = createKeySpace('usr2:', '', SHARDS);
        expect(await copyUserMarks(hkClient, krClient, keys, copy)).toBe(SHARDS);
        for (const { key } of copy.userIndexes('ann')) {
          expect(await krClient.hget(key, '|before')).toMatch(new RegExp(`\\|${keep}$`));
        }
        expect(await copyUserMarks(hkClient, krClient, keys, copy)).toBe(0);
        // Into the unsharded layout of a single-node region: the user's one index gets the latest.
        const flat = createKeySpace('usr3:');
        expect(await copyUserMarks(hkClient, krClient as unknown as Redis, keys, flat)).toBeGreaterThan(0);
        expect(await krClient.hget(flat.user('ann'), '|before')).toMatch(new RegExp(`\\|${keep}$`));
      } finally {
        await hk.close();
        await kr.close();
        await memory.close();
      }
    });

    it('works without replication too: with outboxShards, or with a prefix holding a hash tag (one slot)', async () => {
      for (const [prefix, outboxShards] of [
        ['solo:', 4],
        ['{app}solo:', undefined],
      ] as const) {
        const keys = createKeySpace(prefix, '', outboxShards ?? 0);
        const store = new GeoSessionStore({ region: 'hk', client: hkClient, prefix, outboxShards, userId });
        try {
          const made = Array.from({ length: 12 }, () => store.genid());
          await Promise.all(made.map((sid) => store.set(sid, clusterSession('bea'))));
          const listed = async () => (await store.sessionsOf('bea')).map((s) => s.sid).sort();
          expect(await listed()).toEqual([...made].sort());
          for (const sid of made) {
            expect(slotOf(keys.user('bea', keys.shardOf(sid)))).toBe(slotOf(keys.session(sid)));
          }
          const keep = made[0] as string;
          expect(await store.logoutEverywhere('bea', { except: keep })).toBe(made.length - 1);
          expect(await listed()).toEqual([keep]);
          const old = made[1] as string;
          await store.set(old, clusterSession('bea'));
          expect(await store.get(old)).toBeNull();
          expect(await store.get(keep)).not.toBeNull();
        } finally {
          await store.close();
        }
      }
    });
  },
);
