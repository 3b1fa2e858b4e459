/**
 * ops-verify suite: `verify` of two regions holding the same sessions, by digests against key by key
 * (`full`), same servers, same run; and what keeping the digests costs the replicating write path.
 *
 * - Two private redis-servers each get `--sessions` (200,000) sessions, written through the apply script
 *   (as replication writes them) with fixed versions, so both regions hold the same sessions and their
 *   digests exist; pipelined, `--chunk` (100) sessions per script call.
 * - verify by digests and verify `full`, alternated `--rounds` (3) times; medians and their ratio
 *   (target: digests at least 20x faster).
 * - The write path on a third private redis-server: set.lua (new content) and touch.lua of a replicating
 *   store with and without the digest key, alternated, `--duration` (2000) ms each at `--concurrency`
 *   (64): the rate with digests over the rate without.
 */
import type { Redis } from 'ioredis';
import { verifyRegions } from '../src/admin/verify.js';
import { createKeySpace } from '../src/keys.js';
import { applyChanges, type RemoteChange, touchSession, writeSession } from '../src/redis/commands.js';
import { runLoad } from './lib/load.js';
import { type BenchRedis, startBenchRedis } from './lib/redis-server.js';
import { MAX_AGE_MS, makeSession } from './lib/session.js';
import { type Check, numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const PREFIX = 'sess:';
const HORIZON_MS = 86_400_000;

/** Writes `count` sessions with fixed versions into `client` through apply.lua, `chunk` per call. */
async function fill(client: Redis, region: string, count: number, chunk: number, now: number): Promise<void> {
  const keys = createKeySpace(PREFIX);
  const digest = keys.digest(region);
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += chunk) {
    const changes: RemoteChange[] = [];
    for (let j = i; j < Math.min(count, i + chunk); j++) {
      const sid = `bench.${String(j).padStart(10, '0')}`;
      const version = `${String(now - 1000).padStart(15, '0')}.${String(j % 10_000).padStart(4, '0')}.hk`;
      const session = makeSession(j, now);
      changes.push({
        value: keys.session(sid),
        meta: keys.meta(sid),
        op: 's',
        version,
        expiresAt: now + MAX_AGE_MS - (j % 3600) * 1000,
        lifetimeMs: MAX_AGE_MS,
        fingerprint: `fp${j}`,
        data: JSON.stringify({ ...session, csrfSecret: `s${j}` }),
        time: now - 1000,
      });
    }
    inFlight.push(applyChanges(client, changes, HORIZON_MS, 60_000, digest));
    if (inFlight.length >= 64) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const start = performance.now();
  const result = await work();
  return { ms: performance.now() - start, result };
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

/** set.lua and touch.lua of a replicating store, with and without digests, alternated. */
async function writeCost(
  server: BenchRedis,
  o: { durationMs: number; concurrency: number; rounds: number },
  log: (line: string) => void,
) {
  const client = server.client();
  const keys = createKeySpace(PREFIX);
  const outbox = keys.internal('outbox', 'hk');
  const digest = keys.digest('hk');
  const data = JSON.stringify(makeSession(1));
  const rates: Record<string, number[]> = {};
  const record = (name: string, rate: number) => {
    rates[name] ??= [];
    (rates[name] as number[]).push(rate);
  };
  const pool = 8192;
  for (let round = 0; round < o.rounds; round++) {
    for (const withDigest of [true, false]) {
      const sessionKeys = (sid: string) => ({
        value: keys.session(sid),
        meta: keys.meta(sid),
        outbox,
        digest: withDigest ? digest : undefined,
      });
      const tag = withDigest ? 'digests' : 'plain';
      // Redis's own time per script call (INFO commandstats), less exposed to a loaded client host.
      const serverUs = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
        await client.config('RESETSTAT');
        const result = await work();
        const stats = await client.info('commandstats');
        const us = /cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)?.[1];
        record(`us ${name} ${tag}`, Number(us));
        // Commands the script ran per call (deterministic, unlike any time on a shared machine).
        let calls = 0;
        let inner = 0;
        for (const [, cmd, n] of stats.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
          if (cmd === 'evalsha') calls = Number(n);
          else if (cmd !== 'eval' && cmd !== 'config') inner += Number(n);
        }
        record(`calls ${name} ${tag}`, inner / calls);
        return result;
      };
      const set = await serverUs('set', () =>
        runLoad(o.concurrency, o.durationMs, (worker, seq) => {
          const sid = `w.${tag}.${(worker * 997 + seq) % pool}`;
          return writeSession(client, sessionKeys(sid), {
            data,
            fingerprint: `f${seq}`,
            lifetimeMs: MAX_AGE_MS,
            ruleMs: MAX_AGE_MS,
            region: 'hk',
            sid,
            hostNow: Date.now(),
            maxSkewMs: 60_000,
            touchStepMs: 60_000,
          });
        }),
      );
      // A touch step of 0 replicates every touch (r moves); 60 s keeps most of them local.
      const touch = (step: number) =>
        runLoad(o.concurrency, o.durationMs, (worker, seq) => {
          const sid = `w.${tag}.${(worker * 997 + seq) % pool}`;
          return touchSession(
            client,
            { ...sessionKeys(sid), outbox },
            { lifetimeMs: MAX_AGE_MS + seq, ruleMs: MAX_AGE_MS, region: 'hk', sid, touchStepMs: step },
          );
        });
      const replicated = await serverUs('touch', () => touch(0));
      const local = await serverUs('local touch', () => touch(60_000));
      record(`set ${tag}`, set.opsPerSec);
      record(`touch ${tag}`, replicated.opsPerSec);
      record(`local touch ${tag}`, local.opsPerSec);
      // The outbox grows with every write: dropped between runs so both variants start alike.
      await client.del(outbox);
      log(
        `write path round ${round + 1} ${tag}: set ${Math.round(set.opsPerSec)}/s, touch ${Math.round(replicated.opsPerSec)}/s, local touch ${Math.round(local.opsPerSec)}/s`,
      );
    }
  }
  return Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)])) as Record<string, number>;
}

async function run(options: SuiteOptions): Promise<Report> {
  const sessions = numberFlag(options, 'sessions', 200_000);
  const chunk = numberFlag(options, 'chunk', 100);
  const rounds = numberFlag(options, 'rounds', 3);
  const durationMs = numberFlag(options, 'duration', 2000);
  const concurrency = numberFlag(options, 'concurrency', 64);
  const servers = [await startBenchRedis(), await startBenchRedis(), await startBenchRedis()];
  try {
    const [hk, kr, writes] = servers as [BenchRedis, BenchRedis, BenchRedis];
    const clients = { hk: hk.client(), kr: kr.client() };
    const now = Date.now();
    const filled = await timed(() =>
      Promise.all([
        fill(clients.hk, 'hk', sessions, chunk, now),
        fill(clients.kr, 'kr', sessions, chunk, now),
      ]),
    );
    options.log(`filled 2 x ${sessions} sessions in ${Math.round(filled.ms)} ms`);
    const regions = [
      { id: 'hk', client: clients.hk, prefix: PREFIX },
      { id: 'kr', client: clients.kr, prefix: PREFIX },
    ];
    const digestMs: number[] = [];
    const fullMs: number[] = [];
    let windows = 0;
    let compared = 0;
    for (let round = 0; round < rounds; round++) {
      const d = await timed(() => verifyRegions(regions, { settleMs: 0 }));
      const f = await timed(() => verifyRegions(regions, { full: true, settleMs: 0 }));
      if (!d.result.clean || !f.result.clean || d.result.mode !== 'digests') {
        throw new Error(`the regions should agree: digests ${d.result.clean}, full ${f.result.clean}`);
      }
      windows = d.result.windows;
      compared = f.result.compared;
      digestMs.push(d.ms);
      fullMs.push(f.ms);
      options.log(`verify round ${round + 1}: digests ${d.ms.toFixed(1)} ms, full ${f.ms.toFixed(0)} ms`);
    }
    const digest = median(digestMs);
    const full = median(fullMs);
    const write = await writeCost(writes, { durationMs, concurrency, rounds }, options.log);
    const setRatio = (write['set digests'] as number) / (write['set plain'] as number);
    const touchRatio = (write['touch digests'] as number) / (write['touch plain'] as number);
    const localRatio = (write['local touch digests'] as number) / (write['local touch plain'] as number);
    const checks: Check[] = [
      {
        name: 'verify by digests vs full (2 x 200k sessions)',
        actual: full / digest,
        target: 20,
        direction: '>=',
        unit: 'x',
      },
    ];
    return {
      tables: [
        {
          title: `verify of two regions holding ${sessions} sessions each (median of ${rounds})`,
          columns: ['mode', 'ms', 'sessions compared', 'digest windows'],
          rows: [
            ['digests', Number(digest.toFixed(1)), 0, windows],
            ['full', Math.round(full), compared, '-'],
            ['full / digests', Number((full / digest).toFixed(1)), '-', '-'],
          ],
        },
        {
          title: `replicating write path with and without digests (${concurrency} concurrent, ${durationMs} ms, median of ${rounds})`,
          columns: ['op', 'with digests /s', 'without /s', 'ratio'],
          rows: [
            [
              'set (new content)',
              Math.round(write['set digests'] as number),
              Math.round(write['set plain'] as number),
              Number(setRatio.toFixed(3)),
            ],
            [
              'touch (replicated)',
              Math.round(write['touch digests'] as number),
              Math.round(write['touch plain'] as number),
              Number(touchRatio.toFixed(3)),
            ],
            [
              'touch (below the step, local)',
              Math.round(write['local touch digests'] as number),
              Math.round(write['local touch plain'] as number),
              Number(localRatio.toFixed(3)),
            ],
          ],
        },
        {
          title: 'Redis time (µs) and commands per script call (INFO commandstats, median)',
          columns: ['op', 'µs with digests', 'µs without', 'ratio', 'commands with', 'commands without'],
          rows: ['set', 'touch', 'local touch'].map((op) => {
            const a = write[`us ${op} digests`] as number;
            const b = write[`us ${op} plain`] as number;
            return [
              op,
              Number(a.toFixed(2)),
              Number(b.toFixed(2)),
              Number((a / b).toFixed(3)),
              Number((write[`calls ${op} digests`] as number).toFixed(2)),
              Number((write[`calls ${op} plain`] as number).toFixed(2)),
            ];
          }),
        },
      ],
      checks,
      notes: [
        `fill: 2 x ${sessions} sessions of ~500 bytes through apply.lua in ${Math.round(filled.ms)} ms`,
        "digests: SMEMBERS of each region's window set and HGETALL of each window that starts after now + margin",
        'full: SCAN of value and metadata keys, MGET of both in batches of 500, compared session by session',
      ],
      data: { sessions, digestMs, fullMs, write },
    };
  } finally {
    for (const server of servers) await server.stop();
  }
}

/** The ops-verify suite. */
export const opsVerifySuite: Suite = {
  name: 'ops-verify',
  description: 'verify of 2 x 200k sessions by digests vs full; digest cost on set/touch',
  run,
};
