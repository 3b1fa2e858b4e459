/**
 * Cluster suite: what Redis Cluster costs the store, in ONE interleaved run on this machine:
 *
 * - geosession's get/set/touch/destroy on a private single redis-server against the same on a local
 *   Redis Cluster of 3 masters (no replicas: the cost of the cluster, not of its replication);
 * - geosession against connect-redis 8 (ioredis `Cluster`) on the same cluster.
 *
 * Rounds rotate the order of the three contenders, and the report gives ratios of medians: on a machine
 * of few shared cores the absolute rates say little (every node of the cluster and the benchmark share
 * them).
 *
 * Replication on Redis Cluster: when the store accepts a `Cluster` client with a transport, a two-region
 * row runs on two local clusters with the memory transport (a set in region A until the value is readable
 * in region B's cluster: p50/p99), and, when the store has an `outboxShards` option, `set` with
 * replication on, 1 shard against 8, interleaved. When it does not, the report says the rows were
 * skipped and why (the store's own ConfigError).
 *
 * Flags: `--duration=<ms>` per round (2000), `--warmup=<ms>` (500), `--rounds=<n>` (3),
 * `--concurrency=<n>` (64), `--pool=<n>` sessions per store (4096), `--samples=<n>` replicated sets
 * timed end to end (300).
 */
import { RedisStore as ConnectRedis8 } from 'connect-redis-8';
import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../src/errors.js';
import { createKeySpace } from '../src/keys.js';
import { DEFAULT_CLUSTER_OUTBOX_SHARDS } from '../src/session/outbox-shards-option.js';
import { GeoSessionStore } from '../src/session/store.js';
import { createMemoryTransport } from '../src/transports/memory.js';
import { type LocalCluster, startCluster } from '../test/helpers/redis-cluster.js';
import { EXHAUSTED, forEachConcurrent, median, runLoad } from './lib/load.js';
import { type BenchRedis, startBenchRedis } from './lib/redis-server.js';
import {
  type BenchSession,
  type CallbackStore,
  type Done,
  MAX_AGE_MS,
  makeSession,
  sessionBytes,
} from './lib/session.js';
import { type Cell, numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const IDS = ['single', 'cluster', 'cr8'] as const;
type Id = (typeof IDS)[number];
const LABELS: Record<Id, string> = {
  single: 'geosession, 1 Redis',
  cluster: 'geosession, cluster',
  cr8: 'connect-redis 8, cluster',
};

const OPS = ['get', 'set', 'touch', 'destroy'] as const;
type OpName = (typeof OPS)[number];

function call(run: (cb: Done) => unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    run((err, value) => (err ? reject(err) : resolve(value)));
  });
}

interface Settings {
  durationMs: number;
  warmupMs: number;
  rounds: number;
  concurrency: number;
  pool: number;
  samples: number;
}

function settingsFrom(options: SuiteOptions): Settings {
  const concurrency = Math.floor(numberFlag(options, 'concurrency', 64));
  return {
    durationMs: numberFlag(options, 'duration', 2000),
    warmupMs: numberFlag(options, 'warmup', 500),
    rounds: Math.floor(numberFlag(options, 'rounds', 3)),
    concurrency,
    pool: Math.ceil(numberFlag(options, 'pool', 4096) / concurrency) * concurrency,
    samples: Math.floor(numberFlag(options, 'samples', 300)),
  };
}

/** The timed operation `op` on `store`; worker `w` uses slots `w, w + c, ...` only. */
function operation(op: OpName, store: CallbackStore, s: Settings, pools: Pools, destroyIds: string[]) {
  const slot = (w: number, seq: number) => (w + seq * s.concurrency) % s.pool;
  switch (op) {
    case 'get':
      return (w: number, seq: number) => call((cb) => store.get(`r${slot(w, seq)}`, cb));
    case 'set':
      return (w: number, seq: number) => {
        const i = slot(w, seq);
        const session = pools.write[i] as BenchSession;
        session.views++;
        session.lastSeen = Date.now();
        session.cookie.expires = new Date(Date.now() + MAX_AGE_MS);
        return call((cb) => store.set(`w${i}`, session, cb));
      };
    case 'touch':
      return (w: number, seq: number) => {
        const i = slot(w, seq);
        const session = pools.read[i] as BenchSession;
        session.cookie.expires = new Date(Date.now() + MAX_AGE_MS);
        return call((cb) => store.touch(`r${i}`, session, cb));
      };
    case 'destroy':
      return async (w: number, seq: number) => {
        const sid = destroyIds[w + seq * s.concurrency];
        if (sid === undefined) return EXHAUSTED;
        return call((cb) => store.destroy(sid, cb));
      };
  }
}

class Pools {
  readonly read: BenchSession[];
  readonly write: BenchSession[];
  private batch = 0;
  constructor(s: Settings) {
    this.read = Array.from({ length: s.pool }, (_, i) => makeSession(i));
    this.write = Array.from({ length: s.pool }, (_, i) => makeSession(s.pool + i));
  }
  async populate(store: CallbackStore): Promise<void> {
    await forEachConcurrent(
      this.read.map((_, i) => i),
      256,
      (i) => call((cb) => store.set(`r${i}`, this.read[i], cb)),
    );
  }
  async destroyIds(store: CallbackStore, count: number): Promise<string[]> {
    const batch = this.batch++;
    const ids = Array.from({ length: count }, (_, i) => `d${batch}-${i}`);
    const session = makeSession(0);
    await forEachConcurrent(ids, 256, (sid) => call((cb) => store.set(sid, session, cb)));
    return ids;
  }
}

async function measure(
  op: OpName,
  store: CallbackStore,
  s: Settings,
  pools: Pools,
  durationMs: number,
  expected: number,
): Promise<{ opsPerSec: number; errors: number; firstError?: unknown }> {
  const ids =
    op === 'destroy'
      ? await pools.destroyIds(
          store,
          Math.max(100, Math.ceil((expected * durationMs * 1.5) / 1000 / s.concurrency)) * s.concurrency,
        )
      : [];
  return runLoad(s.concurrency, durationMs, operation(op, store, s, pools, ids));
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const n = by % items.length;
  return [...items.slice(n), ...items.slice(0, n)];
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Whether the store takes a Cluster client with a transport (and outbox shards): the error if not. */
function replicationSupport(client: Cluster): { ok: boolean; why: string; shards: boolean } {
  const attempt = (extra: Record<string, unknown>): unknown => {
    try {
      const store = new GeoSessionStore({
        region: 'probe',
        client,
        transport: createMemoryTransport(),
        sealer: 'none',
        ...extra,
      } as never);
      void store.close();
      return undefined;
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
  };
  const plain = attempt({});
  if (plain) return { ok: false, why: (plain as Error).message, shards: false };
  return { ok: true, why: '', shards: attempt({ outboxShards: 8 }) === undefined };
}

/** Two regions on two clusters: a set in `a` until its value is readable in `b`'s cluster, `samples` times. */
async function replicatedLatency(
  clusters: [LocalCluster, LocalCluster],
  s: Settings,
  prefix: string,
): Promise<number[]> {
  const transport = createMemoryTransport({ regions: ['ra', 'rb'] });
  const [ca, cb] = [clusters[0].client(), clusters[1].client()];
  const base = { prefix, transport, sealer: 'none' } as const;
  const a = new GeoSessionStore({ ...base, region: 'ra', client: ca } as never);
  const b = new GeoSessionStore({ ...base, region: 'rb', client: cb } as never);
  a.on('error', () => {});
  b.on('error', () => {});
  await Promise.all([a.ready(), b.ready()]);
  // A store that replicates on a Cluster keeps the sharded layout (outboxShards 8 by default).
  const keys = createKeySpace(prefix, '', DEFAULT_CLUSTER_OUTBOX_SHARDS);
  const latencies: number[] = [];
  try {
    for (let i = 0; i < s.samples; i++) {
      const sid = `e2e${i}`;
      const started = performance.now();
      await a.set(sid, makeSession(i) as never);
      const deadline = started + 10_000;
      while ((await cb.exists(keys.session(sid))) === 0) {
        if (performance.now() > deadline) throw new Error(`session ${sid} never reached region rb`);
      }
      latencies.push(performance.now() - started);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return latencies;
}

/** `set` ops/s with replication on, outboxShards 1 against 8, interleaved. */
async function shardScaling(
  cluster: LocalCluster,
  s: Settings,
  prefix: string,
): Promise<Record<string, number[]>> {
  const rates: Record<string, number[]> = { '1': [], '8': [] };
  const stores = new Map<string, GeoSessionStore>();
  for (const shards of ['1', '8']) {
    const store = new GeoSessionStore({
      region: 'ra',
      client: cluster.client(),
      prefix: `${prefix}s${shards}:`,
      transport: createMemoryTransport({ regions: ['rb'] }),
      sealer: 'none',
      outboxShards: Number(shards),
    } as never);
    store.on('error', () => {});
    await store.ready();
    stores.set(shards, store);
  }
  const pools = new Pools(s);
  try {
    for (let round = 0; round < s.rounds; round++) {
      for (const shards of rotate(['1', '8'], round)) {
        const store = stores.get(shards) as unknown as CallbackStore;
        const r = await measure('set', store, s, pools, s.durationMs, 0);
        rates[shards]?.push(r.opsPerSec);
      }
    }
  } finally {
    for (const store of stores.values()) await store.close();
  }
  return rates;
}

async function runSuite(options: SuiteOptions): Promise<Report> {
  const s = settingsFrom(options);
  const prefix = `gsbench:${process.pid}:`;
  let single: BenchRedis | undefined;
  const clusters: LocalCluster[] = [];
  const stores: GeoSessionStore[] = [];
  const clients: Redis[] = [];
  try {
    options.log('starting a private redis-server and a 3-master Redis Cluster...');
    single = await startBenchRedis();
    clusters.push(await startCluster(3, 0));
    const cluster = clusters[0] as LocalCluster;
    const singleClient = single.client();
    clients.push(singleClient);
    const geoSingle = new GeoSessionStore({ region: 'bench', client: singleClient, prefix });
    const geoCluster = new GeoSessionStore({ region: 'bench', client: cluster.client(), prefix });
    stores.push(geoSingle, geoCluster);
    await Promise.all(stores.map((store) => store.ready()));
    const contenders: Record<Id, CallbackStore> = {
      single: geoSingle as unknown as CallbackStore,
      cluster: geoCluster as unknown as CallbackStore,
      cr8: new ConnectRedis8({ client: cluster.client(), prefix: `${prefix}cr8:` }) as CallbackStore,
    };
    const pools = new Pools(s);
    for (const id of IDS) await pools.populate(contenders[id]);

    const rounds = {} as Record<OpName, Record<Id, number[]>>;
    for (const op of OPS) {
      const expected = {} as Record<Id, number>;
      for (const id of IDS) {
        const warm = await measure(op, contenders[id], s, pools, s.warmupMs, 20_000);
        if (warm.errors > 0) throw new Error(`${LABELS[id]} ${op}: ${String(warm.firstError)}`);
        expected[id] = warm.opsPerSec;
      }
      rounds[op] = { single: [], cluster: [], cr8: [] };
      for (let round = 0; round < s.rounds; round++) {
        for (const id of rotate(IDS, round)) {
          const r = await measure(op, contenders[id], s, pools, s.durationMs, expected[id]);
          if (r.errors > 0)
            options.log(`  ${LABELS[id]} ${op}: ${r.errors} errors, first: ${String(r.firstError)}`);
          rounds[op][id].push(r.opsPerSec);
          options.log(
            `  ${op.padEnd(8)} round ${round + 1} ${LABELS[id].padEnd(25)} ${Math.round(r.opsPerSec)} ops/s`,
          );
        }
      }
    }

    const rows: Cell[][] = OPS.map((op) => {
      const m = Object.fromEntries(IDS.map((id) => [id, median(rounds[op][id])])) as Record<Id, number>;
      return [
        op,
        m.single,
        m.cluster,
        m.cr8,
        `${(m.cluster / m.single).toFixed(2)}x`,
        `${(m.cluster / m.cr8).toFixed(2)}x`,
      ];
    });
    const roundRows: Cell[][] = OPS.flatMap((op) =>
      IDS.map((id) => [
        op,
        LABELS[id],
        rounds[op][id].map((v) => Math.round(v).toLocaleString('en-US')).join(' / '),
      ]),
    );

    // Replication on Redis Cluster, when the store takes it.
    const support = replicationSupport(cluster.client());
    const notes: string[] = [];
    const tables: Report['tables'] = [
      {
        title: `Median ops/s over ${s.rounds} interleaved rounds of ${s.durationMs / 1000} s, concurrency ${s.concurrency}`,
        columns: ['op', LABELS.single, LABELS.cluster, LABELS.cr8, 'cluster/single', 'geo/cr8 (cluster)'],
        rows,
      },
      { title: 'Per-round ops/s', columns: ['op', 'store', 'rounds'], rows: roundRows },
    ];
    let replicated: unknown;
    if (!support.ok) {
      notes.push(
        `Replicated rows SKIPPED: the store refuses a Cluster client with a transport (${support.why}).`,
      );
    } else {
      options.log('starting a second 3-master cluster for region rb...');
      clusters.push(await startCluster(3, 0));
      const latencies = await replicatedLatency([cluster, clusters[1] as LocalCluster], s, `${prefix}e2e:`);
      const replicatedRows: Cell[][] = [
        [
          'set in ra → readable in rb',
          latencies.length,
          percentile(latencies, 50),
          percentile(latencies, 99),
        ],
      ];
      tables.push({
        title: 'Two regions, each a 3-master cluster, memory transport: end-to-end ms',
        columns: ['what', 'samples', 'p50 ms', 'p99 ms'],
        rows: replicatedRows,
      });
      let shards: Record<string, number[]> | undefined;
      if (support.shards) {
        shards = await shardScaling(cluster, s, `${prefix}sh:`);
        const one = median(shards['1'] ?? []);
        const eight = median(shards['8'] ?? []);
        tables.push({
          title: `set with replication on, by outboxShards (median of ${s.rounds} interleaved rounds)`,
          columns: ['outboxShards 1', 'outboxShards 8', '8/1'],
          rows: [[one, eight, `${(eight / one).toFixed(2)}x`]],
        });
      } else {
        notes.push('Per-shard row SKIPPED: the store has no `outboxShards` option.');
      }
      replicated = { latencies, shards };
    }
    notes.push(
      `Sessions: ${sessionBytes()} bytes of JSON; ${s.pool} stored sessions per store for get/touch/set.`,
      'The cluster: 3 masters, no replicas, every node a redis-server on this machine (ioredis 6 Cluster client, the harness options of test/helpers/redis-cluster.ts); the single Redis: a private redis-server.',
      'Every process (benchmark, single Redis, 3 cluster nodes) shares the same cores: compare the ratios, not the rates.',
    );
    return { tables, checks: [], notes, data: { settings: s, rounds, support, replicated } };
  } finally {
    for (const store of stores) await store.close().catch(() => undefined);
    for (const client of clients) client.disconnect();
    for (const cluster of clusters) await cluster.stop();
    await single?.stop();
  }
}

/** The cluster suite. */
export const clusterSuite: Suite = {
  name: 'cluster',
  description:
    'geosession on a local 3-master Redis Cluster vs one Redis, and vs connect-redis 8 on the cluster',
  run: runSuite,
};
