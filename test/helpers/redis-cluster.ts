import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import type { SessionData } from '../../src/types.js';
import { freePort, type ServerProcess, startServerProcess } from './servers.js';
import { slotOf } from './slots.js';

const run = promisify(execFile);

/** A node of a {@link LocalCluster}: its port, cluster id and process. */
export interface ClusterNode {
  readonly port: number;
  /** The node's cluster id (40 hex digits). */
  readonly id: string;
  readonly server: ServerProcess;
}

/**
 * A real Redis Cluster on this machine: `masters` masters with `replicas` replicas each, every node a
 * private `redis-server --cluster-enabled yes` process on a free port, joined by `redis-cli --cluster
 * create`. A test may kill a master and wait for its replica to take over.
 */
export interface LocalCluster {
  readonly nodes: readonly ClusterNode[];
  /** The seed list for an ioredis `Cluster`. */
  readonly startupNodes: { host: string; port: number }[];
  /**
   * A new ioredis `Cluster` client (quit by `stop`), with the settings docs/replication.md recommends for
   * failover: slots refreshed quickly, and commands retried while a slot has no master.
   */
  client(options?: ClusterOptions): Cluster;
  /** A plain client of one node (quit by `stop`). */
  nodeClient(port: number): Redis;
  /** The node currently serving `key`'s slot as master. */
  masterOf(key: string): Promise<ClusterNode>;
  /**
   * SIGKILLs the master serving `key`'s slot and resolves once one of its replicas serves the slot
   * (cluster state ok again). Resolves to the killed node, the promoted one, and `killedAt`: `Date.now()`
   * once the killed process had exited (nothing that happened after it can have reached that node).
   */
  failover(
    key: string,
    timeoutMs?: number,
  ): Promise<{ killed: ClusterNode; promoted: ClusterNode; killedAt: number }>;
  /** Resolves once every node that runs reports `cluster_state:ok` and every slot has a master. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every node, quits every client and removes the nodes' files. */
  stop(): Promise<void>;
}

/** Node timeout of the test clusters: a dead master is failed over about 2-3 s after it dies. */
export const CLUSTER_NODE_TIMEOUT_MS = 1000;

/** Options every test cluster client uses (see {@link LocalCluster.client}). */
export const TEST_CLUSTER_OPTIONS: ClusterOptions = {
  slotsRefreshTimeout: 2000,
  retryDelayOnClusterDown: 200,
  retryDelayOnFailover: 200,
  retryDelayOnTryAgain: 100,
  maxRedirections: 32,
  redisOptions: { connectTimeout: 2000, maxRetriesPerRequest: 20 },
};

/**
 * Whether `redis-server` and `redis-cli` are installed (the clusters need both). Under CI a missing
 * binary is a failure (this throws); elsewhere the cluster tests skip with a loud notice.
 */
export async function clusterBinariesAvailable(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-cli', ['--version']);
    return true;
  } catch {
    const message =
      'redis-server and redis-cli are needed for the Redis Cluster tests: apt install redis-server';
    if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI=true and ${message}`);
    console.warn(`\n!!! SKIPPING Redis Cluster tests: ${message}\n`);
    return false;
  }
}

/** Are the binaries there? Evaluated once per test file, at import. */
export const hasClusterBinaries = await clusterBinariesAvailable();

function parseNodes(
  text: string,
): { id: string; port: number; master: boolean; failed: boolean; slots: string[] }[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.split(' ');
      const port = Number((parts[1] ?? '').split('@')[0]?.split(':')[1]);
      const flags = parts[2] ?? '';
      return {
        id: parts[0] ?? '',
        port,
        master: flags.includes('master'),
        failed: flags.includes('fail') && !flags.includes('pfail'),
        slots: parts.slice(8),
      };
    });
}

function slotIn(ranges: string[], slot: number): boolean {
  return ranges.some((r) => {
    if (r.startsWith('[')) return false; // a slot being migrated
    const [a, b] = r.split('-').map(Number);
    return slot >= (a ?? -1) && slot <= (b ?? a ?? -1);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a cluster of `masters` masters with `replicas` replicas each and waits until it is healthy. */
export async function startCluster(masters = 3, replicas = 1): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'geosession-cluster-'));
  const count = masters * (1 + replicas);
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const servers = await Promise.all(
    ports.map((port) =>
      startServerProcess(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          String(CLUSTER_NODE_TIMEOUT_MS),
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--loglevel',
          'warning',
        ],
        port,
      ),
    ),
  );
  const plain: Redis[] = [];
  const clusters: Cluster[] = [];
  const nodeClient = (port: number) => {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    plain.push(c);
    return c;
  };
  const stopAll = async () => {
    for (const c of clusters) c.disconnect();
    for (const c of plain) c.disconnect();
    await Promise.all(servers.map((s) => s.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
  } catch (error) {
    await stopAll();
    throw error;
  }
  const ids = await Promise.all(
    ports.map(async (port) => String(await nodeClient(port).call('CLUSTER', 'MYID'))),
  );
  const nodes: ClusterNode[] = ports.map((port, i) => ({
    port,
    id: ids[i] ?? '',
    server: servers[i] as ServerProcess,
  }));
  const dead = new Set<number>();

  const topology = async () => {
    for (const node of nodes) {
      if (dead.has(node.port)) continue;
      try {
        return parseNodes(String(await nodeClient(node.port).call('CLUSTER', 'NODES')));
      } catch {
        // ask the next node
      }
    }
    throw new Error('no node of the cluster answers');
  };
  const waitHealthy = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        let ok = true;
        for (const node of nodes) {
          if (dead.has(node.port)) continue;
          const info = String(await nodeClient(node.port).call('CLUSTER', 'INFO'));
          last = info;
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) ok = false;
        }
        const live = (await topology()).filter((n) => n.master && !n.failed && !dead.has(n.port));
        const covered = live.reduce((sum, n) => sum + n.slots.length, 0);
        if (ok && covered >= masters) return;
      } catch (error) {
        last = String(error);
      }
      await sleep(100);
    }
    throw new Error(`the cluster did not become healthy within ${timeoutMs} ms: ${last}`);
  };
  const masterOf = async (key: string) => {
    const slot = slotOf(key);
    const owner = (await topology()).find((n) => n.master && !n.failed && slotIn(n.slots, slot));
    const node = nodes.find((n) => n.port === owner?.port);
    if (!node) throw new Error(`no master serves slot ${slot}`);
    return node;
  };
  try {
    await waitHealthy();
    // Replicas that have not finished their first sync would lose the writes of a failover test.
    for (const node of nodes) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const info = String(await nodeClient(node.port).info('replication'));
        if (info.includes('role:master') || info.includes('master_link_status:up')) break;
        if (Date.now() > deadline) throw new Error(`replica ${node.port} never synced`);
        await sleep(100);
      }
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    nodes,
    startupNodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    client(options = {}) {
      const c = new Cluster(
        ports.map((port) => ({ host: '127.0.0.1', port })),
        { ...TEST_CLUSTER_OPTIONS, ...options },
      );
      c.on('error', () => {});
      clusters.push(c);
      return c;
    },
    nodeClient,
    masterOf,
    async failover(key, timeoutMs = 30_000) {
      const killed = await masterOf(key);
      dead.add(killed.port);
      await killed.server.kill();
      const killedAt = Date.now();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          const promoted = await masterOf(key);
          if (promoted.port !== killed.port) {
            await waitHealthy(Math.max(1000, deadline - Date.now()));
            return { killed, promoted, killedAt };
          }
        } catch {
          // no master for the slot yet
        }
        if (Date.now() > deadline)
          throw new Error(`no replica took over from ${killed.port} in ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    waitHealthy,
    stop: stopAll,
  };
}

/**
 * One cluster of 3 masters and 3 replicas for the tests of the calling `describe`: started before them,
 * stopped after them. `use` receives it and a Cluster client of it (quit with it).
 */
export function useCluster(use: (cluster: LocalCluster, client: Cluster) => void): void {
  let started: LocalCluster | undefined;
  beforeAll(async () => {
    started = await startCluster(3, 1);
    use(started, started.client());
  }, 90_000);
  afterAll(async () => {
    await started?.stop();
  });
}

/** A session of `user` whose cookie lives `lifeMs`, as the cluster tests store it. */
export function clusterSession(user: string, lifeMs = 60_000): SessionData {
  return {
    cookie: { originalMaxAge: lifeMs, expires: new Date(Date.now() + lifeMs).toISOString() },
    user,
  } as SessionData;
}
