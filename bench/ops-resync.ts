/**
 * `npm run bench -- ops-resync`: the rate of a resync (src/admin/resync.ts) between two private
 * redis-servers on loopback: the source holds `--sessions` sessions (default 200,000; 5% of them
 * logged out, tombstones only) and the target is empty. Compared in the same run with a raw copy of the
 * same keys by the client alone (SCAN, pipelined DUMP + PTTL, RESTORE … REPLACE into a third
 * redis-server), which knows nothing of versions, tombstones or the join.
 *
 * Options: `--sessions=N`, `--batch=N` (keys per SCAN page, default 1000).
 */
import { resyncRegion } from '../src/admin/resync.js';
import { createKeySpace } from '../src/keys.js';
import { formatMeta } from '../src/redis/meta.js';
import { type BenchRedis, startBenchRedis } from './lib/redis-server.js';
import { numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const PREFIX = 'sess:';
const TARGET_RATE = 30_000;

function sessionValue(i: number, expires: number): string {
  return JSON.stringify({
    cookie: {
      originalMaxAge: 1_800_000,
      expires: new Date(expires).toISOString(),
      httpOnly: true,
      path: '/',
    },
    user: { id: `user-${i}`, name: `User number ${i}`, roles: ['reader', 'writer'] },
    cart: [i % 7, i % 11, i % 13],
    csrf: `csrf-${(i * 2654435761) % 4294967296}`,
  });
}

/** Writes `count` sessions (every 20th a tombstone) straight into `client`, as the scripts leave them. */
export async function fillForProfile(server: BenchRedis, count: number): Promise<void> {
  return fill(server, count, () => {});
}

async function fill(server: BenchRedis, count: number, log: (line: string) => void): Promise<void> {
  const client = server.client();
  const keys = createKeySpace(PREFIX);
  const now = Date.now();
  const chunk = 2000;
  for (let start = 0; start < count; start += chunk) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(count, start + chunk); i++) {
      const sid = `hk.bench${i.toString(36).padStart(8, '0')}`;
      const x = now + 1_800_000 + (i % 1000) * 1000;
      const version = `${String(now - (i % 5000)).padStart(15, '0')}.0000.hk`;
      if (i % 20 === 19) {
        const until = now + 2 * 86_400_000;
        pipeline.set(
          keys.meta(sid),
          formatMeta({
            tombstone: true,
            version,
            expiresAt: until,
            replicatedExpiry: undefined,
            lifetimeMs: undefined,
            fingerprint: undefined,
          }),
          'PXAT',
          until,
        );
        continue;
      }
      pipeline.set(keys.session(sid), sessionValue(i, x), 'PXAT', x);
      pipeline.set(
        keys.meta(sid),
        formatMeta({
          tombstone: false,
          version,
          expiresAt: x,
          replicatedExpiry: x,
          lifetimeMs: 1_800_000,
          fingerprint: `fp${i}`,
          writtenExpiry: x,
        }),
        'PXAT',
        x,
      );
    }
    await pipeline.exec();
    if (start % 50_000 === 0) log(`  filled ${start}/${count}`);
  }
}

/** CPU seconds a redis-server has used so far (INFO cpu). */
async function redisCpu(server: BenchRedis): Promise<number> {
  const info = await server.client().info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Copies every key of `from` into `to` with the client alone: SCAN, DUMP + PTTL, RESTORE REPLACE. */
async function rawCopy(from: BenchRedis, to: BenchRedis, batch: number): Promise<number> {
  const source = from.client();
  const target = to.client();
  let cursor = '0';
  let copied = 0;
  do {
    const [next, keys] = await source.scan(cursor, 'COUNT', batch);
    cursor = next;
    if (keys.length === 0) continue;
    const read = source.pipeline();
    for (const key of keys) read.dumpBuffer(key).pttl(key);
    const replies = (await read.exec()) ?? [];
    const write = target.pipeline();
    for (let i = 0; i < keys.length; i++) {
      const dump = replies[2 * i]?.[1] as Buffer | null;
      const ttl = Number(replies[2 * i + 1]?.[1]);
      if (!dump || ttl === -2) continue;
      write.restore(keys[i] as string, ttl > 0 ? ttl : 0, dump, 'REPLACE');
      copied++;
    }
    await write.exec();
  } while (cursor !== '0');
  return copied;
}

async function run(options: SuiteOptions): Promise<Report> {
  const sessions = numberFlag(options, 'sessions', 200_000);
  const batch = numberFlag(options, 'batch', 1000);
  const servers = [await startBenchRedis(), await startBenchRedis(), await startBenchRedis()];
  const [source, target, raw] = servers as [BenchRedis, BenchRedis, BenchRedis];
  try {
    options.log(`ops-resync: filling the source with ${sessions} sessions`);
    await fill(source, sessions, options.log);
    const keysInSource = await source.client().dbsize();

    options.log('ops-resync: raw copy (SCAN, DUMP + PTTL, RESTORE)');
    const rawStart = performance.now();
    const rawKeys = await rawCopy(source, raw, batch);
    const rawSeconds = (performance.now() - rawStart) / 1000;

    options.log('ops-resync: resync');
    const cpuBefore = await Promise.all([redisCpu(source), redisCpu(target)]);
    const nodeBefore = process.cpuUsage();
    const start = performance.now();
    const result = await resyncRegion({
      target: { id: 'kr', client: target.client() },
      source: { id: 'hk', client: source.client() },
      prefix: PREFIX,
      batchSize: batch,
    });
    const seconds = (performance.now() - start) / 1000;
    const node = process.cpuUsage(nodeBefore);
    const cpuAfter = await Promise.all([redisCpu(source), redisCpu(target)]);
    const cpu = {
      node: (node.user + node.system) / 1e6,
      source: cpuAfter[0] - cpuBefore[0],
      target: cpuAfter[1] - cpuBefore[1],
    };
    const busiest = Math.max(cpu.node, cpu.source, cpu.target);
    const copiedKeys = await target.client().dbsize();

    const rate = sessions / seconds;
    const rawRate = sessions / rawSeconds;
    return {
      tables: [
        {
          title: `resync of an empty region from one holding ${sessions} sessions (5% tombstones), loopback`,
          columns: ['copy', 'seconds', 'sessions/s', 'keys/s', 'keys copied', 'vs raw copy'],
          rows: [
            [
              'raw client (DUMP/RESTORE)',
              rawSeconds,
              Math.round(rawRate),
              Math.round(rawKeys / rawSeconds),
              rawKeys,
              1,
            ],
            [
              'resyncRegion (join rules)',
              seconds,
              Math.round(rate),
              Math.round(result.keys / seconds),
              copiedKeys,
              rate / rawRate,
            ],
          ],
        },
        {
          title:
            'CPU seconds the resync used, per process (the machine is shared: wall time includes waiting for a CPU)',
          columns: ['process', 'CPU s', 'sessions per CPU s'],
          rows: [
            ['node (resyncRegion)', cpu.node, Math.round(sessions / cpu.node)],
            ['source redis-server (SCAN, read-state.lua)', cpu.source, Math.round(sessions / cpu.source)],
            ['target redis-server (copy-state.lua)', cpu.target, Math.round(sessions / cpu.target)],
          ],
        },
      ],
      checks: [
        { name: 'resync rate (sessions/s)', actual: Math.round(rate), target: TARGET_RATE, direction: '>=' },
      ],
      notes: [
        `source keys ${keysInSource}; resync counts ${JSON.stringify(result.counts)}`,
        `batch ${batch} keys per SCAN page, 4 pages in flight; reads and merges are Lua scripts of 200 sessions each`,
        `the three processes work in parallel: with a core each, the busiest bounds the rate (${Math.round(sessions / busiest)} sessions/s from the CPU used here)`,
      ],
      data: { sessions, seconds, rate, rawSeconds, rawRate, cpu, counts: result.counts },
    };
  } finally {
    for (const server of servers) await server.stop();
  }
}

/** The `ops-resync` suite. */
export const opsResyncSuite: Suite = {
  name: 'ops-resync',
  description: 'resync rate (sessions/s) of an empty region from one holding 200,000 sessions, vs a raw copy',
  run,
};
