/**
 * The replication property test (the conflict rules of DESIGN.md section 3) on two real Redis Clusters
 * of 3 masters and 3 replicas, with sharded outboxes: the model of test/helpers/replication-model.ts,
 * as test/replication/properties.test.ts runs it on one Redis. hk lives on one cluster and kr on the
 * other under the same prefix; a third region, us, when a scenario has one, shares hk's cluster under a
 * prefix of its own. Each region's changes are read from its 8 shard outboxes (every shard's stream
 * holds only its shards' sessions), applied by the real Applier grouping them by shard, with each
 * region's digests kept as its store keeps them; two observers, one on each cluster, apply everything
 * in two independent orders. After the runs, `verifyRegions` finds hk and kr identical by their summed
 * shard digests and key by key.
 *
 * Seed: printed at the start; replay with CLUSTER_PROPS_SEED=<seed> (and CLUSTER_PROPS_PATH=<path>
 * from fast-check's report to go straight to the shrunk case). CLUSTER_PROPS_RUNS sets the number of
 * runs (default 60: the file should take under a minute on 2 vCPUs).
 */
import fc from 'fast-check';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRegions } from '../../src/admin/verify.js';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace, type KeySpace } from '../../src/keys.js';
import { Applier } from '../../src/replication/applier.js';
import { changeOfEntry } from '../helpers/meta.js';
import { hasClusterBinaries, type LocalCluster, startCluster } from '../helpers/redis-cluster.js';
import {
  ManualTransport,
  type ModelCopy,
  type ModelRegion,
  runScenario,
  scenarioArb,
} from '../helpers/replication-model.js';

const SHARDS = 8; // a replicating store's default on a Cluster
const SEED = process.env.CLUSTER_PROPS_SEED
  ? Number(process.env.CLUSTER_PROPS_SEED)
  : Math.floor(Math.random() * 2 ** 31);
const PATH = process.env.CLUSTER_PROPS_PATH;
const RUNS = Number(process.env.CLUSTER_PROPS_RUNS ?? 60);

describe.skipIf(!hasClusterBinaries)('replication invariants on two Redis Clusters (property-based)', () => {
  let clusters: LocalCluster[] = [];
  const stores: GeoSessionStore[] = [];
  const errors: Error[] = [];
  let a: Cluster;
  let b: Cluster;
  beforeAll(async () => {
    clusters = await Promise.all([startCluster(3, 1), startCluster(3, 1)]);
    a = (clusters[0] as LocalCluster).client();
    b = (clusters[1] as LocalCluster).client();
  }, 120_000);
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await Promise.all(clusters.map((c) => c.stop()));
  });

  const applierOf = (client: Cluster, keys: KeySpace, digestRegion?: string) =>
    new Applier({ client, keys, horizonMs: 600_000, maxSkewMs: 60_000, timeoutMs: 5000, digestRegion });

  /** A region on `client` under `prefix`, its changes read from its shard outboxes. */
  function region(name: string, client: Cluster, prefix: string): ModelRegion {
    const keys = createKeySpace(prefix, '', SHARDS);
    const store = new GeoSessionStore({
      region: name,
      client,
      prefix,
      tombstoneTtl: 600,
      replicateTouchAfter: 0,
      heartbeatMs: 0,
      transport: new ManualTransport(),
      sealer: 'none',
    });
    store.on('error', (e: Error) => errors.push(e));
    stores.push(store);
    /** Last entry read per shard outbox (streams outlive runs; each run reads only what is new). */
    const cursors = new Map<string, string>();
    return {
      name,
      store,
      client,
      keys,
      applier: applierOf(client, keys, name),
      async newEvents() {
        const out = [];
        for (const o of keys.sessionOutboxes(name)) {
          const entries = await client.xrange(o.key, `(${cursors.get(o.key) ?? '0-0'}`, '+');
          const last = entries.at(-1);
          if (last) cursors.set(o.key, last[0]);
          for (const [id, fields] of entries) {
            const change = changeOfEntry(name, id, fields);
            expect(keys.shardOf(change.sid), `${change.sid} in ${o.key}`).toBe(o.shard);
            out.push(change);
          }
        }
        return out;
      },
    };
  }

  it('converge, keep logouts final, let the last writer win, let expiry travel with the version, and are idempotent', async () => {
    const regions = [region('hk', a, 'cp:'), region('kr', b, 'cp:'), region('us', a, 'cpu:')];
    const observers: ModelCopy[] = [
      {
        client: a,
        keys: createKeySpace('cpo1:', '', SHARDS),
        applier: applierOf(a, createKeySpace('cpo1:', '', SHARDS)),
      },
      {
        client: b,
        keys: createKeySpace('cpo2:', '', SHARDS),
        applier: applierOf(b, createKeySpace('cpo2:', '', SHARDS)),
      },
    ];
    await Promise.all(regions.map((r) => r.store.ready()));
    console.log(
      `[properties on clusters] seed ${SEED}, ${RUNS} runs (replay: CLUSTER_PROPS_SEED=${SEED} npx vitest run test/cluster/properties-on-cluster.test.ts)`,
    );
    let run = 0;
    const shards = new Set<number>();
    await fc.assert(
      fc.asyncProperty(scenarioArb(), fc.gen(), async (scenario, g) => {
        run++;
        const sids = Array.from({ length: scenario.sids }, (_, i) => `r${run}-s${i}`);
        for (const sid of sids) shards.add(regions[0]?.keys.shardOf(sid) as number);
        await runScenario({ regions, observers }, scenario, g, sids);
      }),
      {
        numRuns: RUNS,
        seed: SEED,
        ...(PATH ? { path: PATH } : {}),
        // Shrinking on clusters is slow: stop it in time for fast-check to report the case it has.
        interruptAfterTimeLimit: 80_000,
        markInterruptAsFailure: true,
      },
    );
    expect(errors).toEqual([]);
    // The runs' sessions fell in many shards, so over every master.
    expect(shards.size).toBeGreaterThan(4);
    // hk and kr (same prefix) are identical by their summed shard digests, and key by key.
    const admin = [
      { id: 'hk', client: a, prefix: 'cp:', outboxShards: SHARDS },
      { id: 'kr', client: b, prefix: 'cp:', outboxShards: SHARDS },
    ];
    const byDigests = await verifyRegions(admin, { settleMs: 0 });
    expect(byDigests.mode).toBe('digests');
    expect(byDigests.clean).toBe(true);
    const full = await verifyRegions(admin, { full: true, settleMs: 0 });
    expect(full.compared).toBeGreaterThan(0);
    expect(full.differences).toEqual([]);
  }, 150_000);
});
