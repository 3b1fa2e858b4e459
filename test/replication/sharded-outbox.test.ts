/**
 * Sharded outboxes on single-node Redis (`outboxShards` above 1), over every durable transport: the
 * same code a Redis Cluster runs (src/keys.ts sharded layout, a relay and a heartbeat per shard,
 * numbers tracked per shard, the applier grouped by shard), here where the brokers run. The real
 * clusters are in test/cluster/replication-on-cluster.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { sequenceKey } from '../../src/wire/internal-keys.js';
import { createDeployment, type Deployment, transportAvailable } from '../helpers/deployment.js';
import { session } from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const WAIT = 20_000;
const SHARDS = 4;
const STORE = { gapGraceMs: 300, heartbeatMs: 200, outboxShards: SHARDS };

for (const kind of ['redis-streams', 'amqp', 'nats'] as const) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`sharded outboxes over ${kind}`, () => {
    let d: Deployment | undefined;
    afterEach(async () => {
      await d?.close();
      d = undefined;
    });

    it('replicates sets and logouts from every shard, keeps digests per shard, and finds a gap in one shard', async () => {
      d = await createDeployment(kind, ['hk', 'kr'], { store: STORE });
      const hk = await d.start('hk');
      const kr = await d.start('kr');
      const keys = createKeySpace(d.keys.prefix, '', SHARDS);
      const sids = Array.from({ length: 24 }, (_, i) => `s${Date.now()}x${i}`);
      for (let i = 24; new Set(sids.map((sid) => keys.shardOf(sid))).size < SHARDS; i++)
        sids.push(`s${Date.now()}x${i}`);
      expect(new Set(sids.map((sid) => keys.shardOf(sid))).size).toBe(SHARDS);
      await Promise.all(sids.map((sid, i) => hk.set(sid, session({ user: `u${i}` }))));
      await eventually(async () => (await Promise.all(sids.map((s) => kr.get(s)))).every(Boolean), WAIT);
      const krClient = d.clients.kr as NonNullable<typeof d.clients.kr>;
      const hkClient = d.clients.hk as NonNullable<typeof d.clients.hk>;
      // The sharded names hold the sessions in both regions, and each shard's digest counts its own.
      for (const sid of sids) expect(await krClient.exists(keys.session(sid), keys.meta(sid))).toBe(2);
      for (let shard = 0; shard < SHARDS; shard++) {
        expect((await krClient.smembers(keys.shardDigest(shard, 'kr'))).length).toBeGreaterThan(0);
        expect((await hkClient.smembers(keys.shardDigest(shard, 'hk'))).length).toBeGreaterThan(0);
      }
      await kr.destroy(sids[0] as string);
      await eventually(async () => (await hk.get(sids[0] as string)) === null, WAIT);
      await new Promise((r) => setTimeout(r, 800));
      expect(kr.replicationStats()?.needsResync).toEqual({});

      // A number of one shard that never travels: a gap of that shard alone.
      const sid = sids[1] as string;
      const shard = keys.shardOf(sid) as number;
      await hkClient.hincrby(sequenceKey(keys.outboxOf(sid, 'hk')), 'n', 1);
      await hk.set(sid, session({ user: 'after' }));
      await eventually(async () => kr.replicationStats()?.needsResync.hk !== undefined, WAIT);
      expect(kr.replicationStats()?.needsResync.hk?.reason).toContain(`hk#${shard}`);
      const sequences = kr.replicationStats()?.sequences ?? {};
      for (const [stream, seq] of Object.entries(sequences)) {
        expect(seq.gaps.length, stream).toBe(stream === `hk#${shard}` ? 1 : 0);
      }
    });
  });
}
