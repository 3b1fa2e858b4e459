/**
 * HTTP suite: express 5 + express-session under autocannon, one app process per store setup
 * (bench/http/app.ts), the load generator in this process, interleaved rounds.
 *
 * Each of `--connections` virtual users logs in, then makes authenticated requests: one in five changes
 * the session (`POST /cart`, so express-session calls `set`), the others only read it (`GET /me`, so
 * express-session calls `touch`). After `--requests-per-login` requests a user logs in again with a new
 * session (autocannon's request sequence starts over).
 *
 * Setups: connect-redis 8 (ioredis), connect-redis 9 (node-redis), geosession on one region, and
 * geosession replicating over Redis Streams to a second region whose store applies in another process,
 * and the same with the near cache (`nearCache: { touchAfterMs: 60_000 }`, issue 18), and the near cache on
 * one region (`geosession-near`: as many processes on the machine as connect-redis's setups).
 * hk and kr are private redis-servers.
 *
 * Flags: `--duration=<s>` per round (10), `--rounds=<n>` (as many as setups, so that
 * each setup runs once in each position of the rotated order), `--warmup=<s>` per setup before the first
 * round (3), `--connections=<n>` (64), `--requests-per-login=<n>` (500), `--setups=` (all of
 * connect-redis-8, connect-redis-9, geosession, geosession-replicating, geosession-replicating-near,
 * geosession-near).
 */
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { Redis } from 'ioredis';
import type { GeoInit } from './e2e/region.js';
import { listFlag, loadAverage } from './e2e/support.js';
import type { AppInit, Setup } from './http/app.js';
import { type Child, forkChild } from './lib/child.js';
import { median } from './lib/load.js';
import { startBenchRedis } from './lib/redis-server.js';
import { type Check, numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const APP = fileURLToPath(new URL('./http/app.ts', import.meta.url));
const REGION = fileURLToPath(new URL('./e2e/region.ts', import.meta.url));
const ALL: readonly Setup[] = [
  'connect-redis-8',
  'connect-redis-9',
  'geosession',
  'geosession-replicating',
  'geosession-replicating-near',
  'geosession-near',
];
/** Setups whose store replicates to kr (an applier process runs kr's store). */
const REPLICATING: readonly Setup[] = ['geosession-replicating', 'geosession-replicating-near'];

/** One autocannon round against one setup. */
interface Round {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  bad: number;
  appCpuUsPerReq: number;
  redisCpuUsPerReq: number;
  krCpuUsPerReq: number;
}

/** Login first, then `perLogin` requests of which every fifth changes the session. */
function requestsOf(perLogin: number): autocannon.Request[] {
  const withCookie = (path: string, method: 'GET' | 'POST'): autocannon.Request => ({
    method,
    path,
    setupRequest: (req, context) => ({
      ...req,
      headers: { ...req.headers, cookie: (context as { cookie?: string }).cookie ?? '' },
    }),
  });
  const login: autocannon.Request = {
    method: 'POST',
    path: '/login',
    onResponse: (_status, _body, context, headers) => {
      // Header names arrive as the server wrote them (express: `Set-Cookie`).
      const all = (headers ?? {}) as Record<string, string | string[]>;
      const name = Object.keys(all).find((key) => key.toLowerCase() === 'set-cookie');
      const set = name === undefined ? undefined : all[name];
      const first = Array.isArray(set) ? set[0] : set;
      if (first) (context as { cookie?: string }).cookie = first.split(';')[0];
    },
  };
  const rest = Array.from({ length: perLogin }, (_, i) =>
    (i + 1) % 5 === 0 ? withCookie('/cart', 'POST') : withCookie('/me', 'GET'),
  );
  return [login, ...rest];
}

async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function load(
  port: number,
  seconds: number,
  connections: number,
  requests: autocannon.Request[],
): Promise<autocannon.Result> {
  return autocannon({ url: `http://127.0.0.1:${port}`, connections, duration: seconds, requests });
}

export const httpSuite: Suite = {
  name: 'http',
  description:
    'express + express-session under autocannon: connect-redis 8/9 vs geosession, one region and replicating',
  async run(options: SuiteOptions): Promise<Report> {
    const duration = numberFlag(options, 'duration', 10);
    const setups = listFlag(options, 'setups', ALL);
    const rounds = Math.floor(numberFlag(options, 'rounds', setups.length));
    const warmup = numberFlag(options, 'warmup', 3);
    const connections = Math.floor(numberFlag(options, 'connections', 64));
    const perLogin = Math.floor(numberFlag(options, 'requests-per-login', 500));
    const loadBefore = loadAverage();
    const requests = requestsOf(perLogin);

    const [hk, kr] = await Promise.all([startBenchRedis(), startBenchRedis()]);
    const admin = hk.client();
    const krAdmin = kr.client();
    const apps = new Map<Setup, { child: Child; port: number }>();
    /** The kr applier process of each replicating setup (each has its own prefix, so its own channel). */
    const appliers = new Map<Setup, Child>();
    const results = new Map<Setup, Round[]>(setups.map((s) => [s, []]));
    try {
      const tag = `${process.pid}x${Date.now().toString(36)}`;
      for (const setup of setups) {
        const prefix = `http:${setup}:${tag}:`;
        const child = await forkChild(APP, `app ${setup}`);
        const init: AppInit = { setup, prefix, redisPorts: { hk: hk.port, kr: kr.port } };
        apps.set(setup, { child, port: await child.call<number>('start', init) });
        if (REPLICATING.includes(setup)) {
          const applier = await forkChild(REGION, `kr applier ${setup}`);
          appliers.set(setup, applier);
          const geo: GeoInit = {
            region: 'kr',
            kind: 'redis-streams',
            prefix,
            redisPorts: { hk: hk.port, kr: kr.port },
            amqpUrl: '',
            natsUrl: '',
            brokerPrefix: tag,
          };
          await applier.call('geo', geo);
        }
      }
      for (const setup of setups) {
        options.log(`  warm-up ${setup} (${warmup} s)...`);
        await load((apps.get(setup) as { port: number }).port, warmup, connections, requests);
      }
      for (let round = 0; round < rounds; round++) {
        // Rotate the order each round, so slow phases of a shared machine hit every setup.
        const order = setups.map((_, i) => setups[(i + round) % setups.length] as Setup);
        for (const setup of order) {
          const app = apps.get(setup) as { child: Child; port: number };
          const side = appliers.get(setup);
          await Promise.all([app.child.call('cpu-mark'), side?.call('cpu-mark')]);
          const [redisBefore, krBefore] = await Promise.all([
            redisCpuSeconds(admin),
            redisCpuSeconds(krAdmin),
          ]);
          const result = await load(app.port, duration, connections, requests);
          const [redisAfter, krAfter] = await Promise.all([redisCpuSeconds(admin), redisCpuSeconds(krAdmin)]);
          const appCpu = await app.child.call<{
            cpuUs: number;
            errors: number;
            near?: { hits: number; misses: number; touchesSkipped: number };
          }>('cpu-read');
          const sideCpu = side ? await side.call<{ cpuUs: number }>('cpu-read') : { cpuUs: 0 };
          const total = Math.max(1, result.requests.total);
          const row: Round = {
            rps: result.requests.total / duration,
            p50Ms: result.latency.p50,
            p99Ms: result.latency.p99,
            requests: result.requests.total,
            bad: result.non2xx + result.errors + result.timeouts + appCpu.errors,
            appCpuUsPerReq: appCpu.cpuUs / total,
            redisCpuUsPerReq: ((redisAfter - redisBefore) * 1e6) / total,
            krCpuUsPerReq: (sideCpu.cpuUs + (krAfter - krBefore) * 1e6) / total,
          };
          results.get(setup)?.push(row);
          options.log(
            `  round ${round + 1} ${setup}: ${Math.round(row.rps)} req/s, p99 ${row.p99Ms} ms, app ${row.appCpuUsPerReq.toFixed(1)} µs/req${row.bad > 0 ? `, ${row.bad} bad` : ''}`,
          );
          if (appCpu.near) {
            // Near cache counters since the app started (warm-up included).
            const { hits, misses, touchesSkipped } = appCpu.near;
            options.log(`    near cache: ${hits} hits, ${misses} misses, ${touchesSkipped} touches skipped`);
          }
        }
      }
    } finally {
      for (const applier of appliers.values()) await applier.stop();
      for (const { child } of apps.values()) await child.stop();
      await Promise.all([hk.stop(), kr.stop()]);
    }

    const summary = setups.map((setup) => {
      const runs = results.get(setup) ?? [];
      return {
        setup,
        rps: median(runs.map((r) => r.rps)),
        runs,
        p99: median(runs.map((r) => r.p99Ms)),
        app: median(runs.map((r) => r.appCpuUsPerReq)),
        redis: median(runs.map((r) => r.redisCpuUsPerReq)),
        kr: median(runs.map((r) => r.krCpuUsPerReq)),
        bad: runs.reduce((n, r) => n + r.bad, 0),
      };
    });
    const base = summary.find((s) => s.setup === 'connect-redis-8');
    const repl = summary.find((s) => s.setup === 'geosession-replicating');
    const checks: Check[] = [];
    if (base && repl) {
      checks.push({
        name: 'geosession replicating vs connect-redis 8 (requests/s)',
        actual: Number((repl.rps / base.rps).toFixed(2)),
        target: 1,
        direction: '>=',
        unit: 'x',
      });
    }
    // Near cache (issue 18): express with replication and the near cache against connect-redis 9.
    const near = summary.find((s) => s.setup === 'geosession-replicating-near');
    const cr9 = summary.find((s) => s.setup === 'connect-redis-9');
    if (near && cr9) {
      checks.push({
        name: 'geosession replicating + near cache vs connect-redis 9 (requests/s)',
        actual: Number((near.rps / cr9.rps).toFixed(2)),
        target: 1,
        direction: '>=',
        unit: 'x',
      });
    }
    const nearOne = summary.find((s) => s.setup === 'geosession-near');
    if (nearOne && cr9) {
      checks.push({
        name: 'geosession + near cache, one region, vs connect-redis 9 (requests/s)',
        actual: Number((nearOne.rps / cr9.rps).toFixed(2)),
        target: 1,
        direction: '>=',
        unit: 'x',
      });
    }
    return {
      tables: [
        {
          title: `express + express-session, ${connections} connections, ${duration} s rounds (median of ${rounds})`,
          columns: [
            'setup',
            'req/s',
            'rounds',
            'vs cr8',
            'vs cr9',
            'p99 ms',
            'app µs/req',
            'hk redis µs/req',
            'hk µs/req',
            'kr µs/req',
            'bad',
          ],
          rows: summary.map((s) => [
            s.setup,
            Math.round(s.rps),
            s.runs.map((r) => Math.round(r.rps)).join(' / '),
            base ? Number((s.rps / base.rps).toFixed(2)) : 'n/a',
            cr9 ? Number((s.rps / cr9.rps).toFixed(2)) : 'n/a',
            s.p99,
            Number(s.app.toFixed(1)),
            Number(s.redis.toFixed(1)),
            Number((s.app + s.redis).toFixed(1)),
            Number(s.kr.toFixed(1)),
            String(s.bad),
          ]),
        },
      ],
      checks,
      notes: [
        `Each user: POST /login, then ${perLogin} requests, every fifth POST /cart (session changed: set), the others GET /me (read: touch).`,
        'App (express 5, express-session, resave false, saveUninitialized false, 1-day cookie) in its own process per setup; autocannon in this one.',
        'hk µs/req: app process + hk Redis, the CPU one region spends per request (autocannon, the same for every setup, not included).',
        'kr µs/req: the kr applier process plus kr Redis (geosession replicating only). CPU columns are medians over rounds.',
        `bad: non-2xx responses, socket errors, timeouts and store errors over all rounds. Load average before: ${loadBefore}; after: ${loadAverage()}.`,
      ],
      data: { summary },
    };
  },
};
