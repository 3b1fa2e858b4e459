/**
 * Metrics overhead suite (issue 16 part 7): the store's get, set and touch throughput with metrics on
 * (`registerMetrics` on a prom-client registry, scraped once per round) against metrics off (nobody
 * subscribed to geosession's diagnostics channels), the same store on the same Redis, rounds interleaved
 * and their order alternated. Target: on >= 0.95x of off.
 *
 * Flags: `--duration=<ms>` per round (1000), `--warmup=<ms>` per mode and op (500), `--rounds=<n>` (7),
 * `--concurrency=<n>` (64), `--pool=<n>` sessions (4096), `--ops=get,set,touch`.
 */
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { registerMetrics } from '../src/prometheus.js';
import { GeoSessionStore } from '../src/session/store.js';
import { measureCpu } from './lib/cpu.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { forEachConcurrent, median, runLoad } from './lib/load.js';
import { type BenchSession, MAX_AGE_MS, makeSession } from './lib/session.js';
import {
  type Cell,
  type Check,
  numberFlag,
  type Report,
  type Suite,
  type SuiteOptions,
} from './lib/suite.js';

const OPS = ['get', 'set', 'touch'] as const;
type OpName = (typeof OPS)[number];
type Mode = 'off' | 'on';

/** Metrics on must keep at least this share of the throughput with metrics off. */
const TARGET = 0.95;

function call(run: (cb: (err?: unknown) => void) => unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    run((err) => (err ? reject(err) : resolve()));
  });
}

async function runSuite(options: SuiteOptions): Promise<Report> {
  const durationMs = numberFlag(options, 'duration', 1000);
  const warmupMs = numberFlag(options, 'warmup', 500);
  const rounds = Math.floor(numberFlag(options, 'rounds', 7));
  const concurrency = Math.floor(numberFlag(options, 'concurrency', 64));
  const pool = Math.ceil(numberFlag(options, 'pool', 4096) / concurrency) * concurrency;
  const ops = (options.flags['ops'] ? options.flags['ops'].split(',') : [...OPS]) as OpName[];
  for (const op of ops) if (!OPS.includes(op)) throw new Error(`--ops: unknown op ${op}`);

  const prefix = `gsbench:metrics:${process.pid}.${Date.now().toString(36)}:`;
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const admin = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const store = new GeoSessionStore({ region: 'bench', client, prefix });
  const registry = new Registry();
  const read = Array.from({ length: pool }, (_, i) => makeSession(i));
  const write = Array.from({ length: pool }, (_, i) => makeSession(pool + i));
  const slot = (w: number, seq: number) => (w + seq * concurrency) % pool;
  const operation = (op: OpName) => (w: number, seq: number) => {
    const i = slot(w, seq);
    if (op === 'get') return call((cb) => store.get(`r${i}`, cb));
    if (op === 'touch') {
      const session = read[i] as BenchSession;
      session.cookie.expires = new Date(Date.now() + MAX_AGE_MS);
      return call((cb) => store.touch(`r${i}`, session, cb));
    }
    const session = write[i] as BenchSession;
    session.views++;
    session.lastSeen = Date.now();
    session.cookie.expires = new Date(Date.now() + MAX_AGE_MS);
    return call((cb) => store.set(`w${i}`, session, cb));
  };
  /** One timed run in `mode`; metrics on means registered for the run and scraped at its end. */
  const measure = async (op: OpName, mode: Mode, ms: number) => {
    const unregister = mode === 'on' ? registerMetrics(store, { registry }) : undefined;
    try {
      const result = await measureCpu({ redis: admin }, () => runLoad(concurrency, ms, operation(op)));
      if (result.errors > 0) throw new Error(`${op} (${mode}): ${String(result.firstError)}`);
      if (unregister) await registry.metrics();
      return { rate: result.opsPerSec, nodeUs: result.cpu.perOpUs['node'] ?? 0, totalUs: result.cpu.totalUs };
    } finally {
      unregister?.();
    }
  };

  try {
    await forEachConcurrent(
      read.map((_, i) => i),
      256,
      (i) => call((cb) => store.set(`r${i}`, read[i] as BenchSession, cb)),
    );
    const rows: Cell[][] = [];
    const checks: Check[] = [];
    const data: Record<string, Record<string, number[]>> = {};
    for (const op of ops) {
      await measure(op, 'off', warmupMs);
      await measure(op, 'on', warmupMs);
      const seen: Record<Mode, number[]> = { off: [], on: [] };
      const nodeUs: Record<Mode, number[]> = { off: [], on: [] };
      const totalUs: Record<Mode, number[]> = { off: [], on: [] };
      for (let round = 0; round < rounds; round++) {
        const order: Mode[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
        for (const mode of order) {
          const { rate, nodeUs: node, totalUs: total } = await measure(op, mode, durationMs);
          seen[mode].push(rate);
          nodeUs[mode].push(node);
          totalUs[mode].push(total);
          options.log(
            `  ${op.padEnd(6)} round ${round + 1} metrics ${mode.padEnd(3)} ${Math.round(rate)} ops/s, node ${node.toFixed(1)} µs/op`,
          );
        }
      }
      data[op] = {
        ...seen,
        nodeUsOff: nodeUs.off,
        nodeUsOn: nodeUs.on,
        totalUsOff: totalUs.off,
        totalUsOn: totalUs.on,
      };
      const off = median(seen.off);
      const on = median(seen.on);
      // Each round's on/off pair ran back to back: the median of their ratios resists the machine's drift.
      const ratio = median(seen.on.map((rate, i) => rate / (seen.off[i] ?? rate)));
      const cpuRatio = median(totalUs.off.map((us, i) => us / (totalUs.on[i] ?? us)));
      rows.push([
        op,
        off,
        on,
        `${ratio.toFixed(3)}x`,
        `${median(nodeUs.off).toFixed(1)} / ${median(nodeUs.on).toFixed(1)}`,
        `${cpuRatio.toFixed(3)}x`,
        `>= ${TARGET.toFixed(2)}x`,
      ]);
      checks.push({
        name: `${op} with metrics on vs off`,
        actual: ratio,
        target: TARGET,
        direction: '>=',
        unit: 'x',
      });
    }
    return {
      tables: [
        {
          title: `Store throughput with metrics off and on (ops/s, median of ${rounds} interleaved rounds of ${durationMs} ms, concurrency ${concurrency})`,
          columns: [
            'op',
            'metrics off',
            'metrics on',
            'on / off (median of rounds)',
            'node µs/op off / on',
            'CPU/op off / on',
            'target',
          ],
          rows,
        },
      ],
      checks,
      notes: [
        'metrics on: registerMetrics(store, { registry }) for the round (every operation counted and its latency observed, the diagnostics channels of replication subscribed), the registry scraped at its end; off: no metrics registered, nobody subscribed.',
        'CPU/op off / on: (node + redis CPU µs per op) with metrics off over the same with metrics on: the throughput ratio a CPU-bound machine would see, steadier than ops/s on a shared machine.',
      ],
      data,
    };
  } finally {
    await store.close();
    let cursor = '0';
    for (const match of [`${prefix}*`, `{${prefix}*`]) {
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await admin.unlink(...keys);
      } while (cursor !== '0');
    }
    await Promise.allSettled([client.quit(), admin.quit()]);
  }
}

/** The metrics overhead suite. */
export const opsMetricsSuite: Suite = {
  name: 'ops-metrics',
  description: 'store get/set/touch with metrics on vs off (registerMetrics), same run, interleaved',
  run: runSuite,
};
