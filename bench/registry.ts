/**
 * Registry suite (issue 17 part 9): the connection registry's `podsOf` for users with 5 connections on
 * 3 pods, and register + unregister, against the raw client doing the same reads and writes on a plain
 * hash (the seed's `userId -> [{ sessionId, podId }]`, without leases or pruning), interleaved in the
 * same run on the same Redis.
 *
 * Flags: `--duration=<ms>` per round (2000), `--rounds=<n>` (2), `--concurrency=<n>` (64),
 * `--users=<n>` (2000).
 */
import { Redis } from 'ioredis';
import { createConnectionRegistry } from '../src/registry/registry.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { median, runLoad } from './lib/load.js';
import { type Check, numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

/** Pods of each user's 5 connections: 2 on pod-0, 2 on pod-1, 1 on pod-2. */
const LAYOUT = [0, 0, 1, 1, 2];

async function dropPrefix(admin: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await admin.del(...keys);
  } while (cursor !== '0');
}

async function run(options: SuiteOptions): Promise<Report> {
  const durationMs = numberFlag(options, 'duration', 2000);
  const rounds = numberFlag(options, 'rounds', 2);
  const concurrency = numberFlag(options, 'concurrency', 64);
  const users = numberFlag(options, 'users', 2000);
  const prefix = `rbench:${process.pid}.${Date.now().toString(36)}:`;
  const rawPrefix = `${prefix}raw:`;
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const rawClient = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const pods = [0, 1, 2].map((i) =>
    createConnectionRegistry({ client, region: 'hk', pod: `pod-${i}`, prefix, leaseMs: 60_000 }),
  );
  const results: Record<string, number[]> = {
    podsOf: [],
    'raw read': [],
    'register+unregister': [],
    'raw write': [],
  };
  try {
    options.log(`registry: ${users} users x 5 connections on 3 pods`);
    for (let u = 0; u < users; u++) {
      await Promise.all(
        LAYOUT.map((p, c) => {
          const registry = pods[p];
          if (registry === undefined) throw new Error('no pod');
          return registry.register(`user${u}`, `u${u}-c${c}`, { sid: `hk.session-${u}-${c}` });
        }),
      );
      const fields = LAYOUT.flatMap((p, c) => [`u${u}-c${c}`, `pod-${p}|hk.session-${u}-${c}`]);
      await rawClient.hset(`${rawPrefix}${u}`, ...fields);
    }
    const pick = () => Math.floor(Math.random() * users);
    const reader = pods[2];
    const writer = pods[0];
    if (reader === undefined || writer === undefined) throw new Error('no pod');
    let found = 0;
    for (let round = 0; round < rounds; round++) {
      options.log(`registry: round ${round + 1}/${rounds}`);
      const a = await runLoad(concurrency, durationMs, async () => {
        const groups = await reader.podsOf(`user${pick()}`);
        found += groups.length;
      });
      results.podsOf?.push(a.opsPerSec);
      const b = await runLoad(concurrency, durationMs, async () => {
        const all = await rawClient.hgetall(`${rawPrefix}${pick()}`);
        // The same grouping the registry does, on the raw reply.
        const byPod = new Map<string, string[]>();
        for (const [conn, value] of Object.entries(all)) {
          const podId = value.slice(0, value.indexOf('|'));
          byPod.set(podId, [...(byPod.get(podId) ?? []), conn]);
        }
        found += byPod.size;
      });
      results['raw read']?.push(b.opsPerSec);
      // One op = one register and one unregister (so the ops/s of each is twice this).
      const c = await runLoad(concurrency, durationMs, async (worker, seq) => {
        const conn = `w${worker}-${seq}`;
        await writer.register(`user${pick()}`, conn);
        await writer.unregister(conn);
      });
      results['register+unregister']?.push(c.opsPerSec);
      const d = await runLoad(concurrency, durationMs, async (worker, seq) => {
        const key = `${rawPrefix}${pick()}`;
        const conn = `w${worker}-${seq}`;
        await rawClient.hset(key, conn, 'pod-0|');
        await rawClient.hdel(key, conn);
      });
      results['raw write']?.push(d.opsPerSec);
      for (const r of [a, b, c, d]) if (r.errors > 0) throw r.firstError;
    }
    if (found === 0) throw new Error('podsOf found nothing');
  } finally {
    for (const registry of pods) await registry.close().catch(() => {});
    await dropPrefix(rawClient, `{${prefix}*`);
    await dropPrefix(rawClient, `${prefix}*`);
    client.disconnect();
    rawClient.disconnect();
  }
  const m = (name: string) => median(results[name] ?? []);
  const podsOf = m('podsOf');
  const pairs = m('register+unregister');
  const checks: Check[] = [
    {
      name: 'podsOf lookups/s (5 connections, 3 pods)',
      actual: podsOf,
      target: 20_000,
      direction: '>=',
      unit: '/s',
    },
    { name: 'register/unregister ops/s', actual: pairs * 2, target: 20_000, direction: '>=', unit: '/s' },
  ];
  return {
    tables: [
      {
        title: `connection registry vs raw client (median of ${rounds} rounds of ${durationMs} ms, concurrency ${concurrency})`,
        columns: ['operation', 'registry ops/s', 'raw ops/s', 'registry / raw'],
        rows: [
          [
            'podsOf vs HGETALL + grouping',
            Math.round(podsOf),
            Math.round(m('raw read')),
            (podsOf / m('raw read')).toFixed(2),
          ],
          [
            'register+unregister vs HSET+HDEL (pairs/s)',
            Math.round(pairs),
            Math.round(m('raw write')),
            (pairs / m('raw write')).toFixed(2),
          ],
        ],
      },
    ],
    checks,
    notes: [
      'The raw client reads and writes a plain hash per user (no leases, no pruning, no incarnations): the floor a registry on one Redis round trip can reach.',
      'register+unregister counts pairs: register/unregister ops/s is twice that.',
    ],
    data: results,
  };
}

/** The registry suite. */
export const registrySuite: Suite = {
  name: 'users-registry',
  description:
    'connection registry: podsOf (5 connections on 3 pods) and register/unregister vs the raw client',
  run,
};
