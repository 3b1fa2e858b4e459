/**
 * Store suite: throughput of get, set, set-unchanged, touch and destroy for GeoSessionStore against
 * connect-redis 8 (ioredis) and connect-redis 9 (node-redis), all on the same Redis, interleaved.
 *
 * Flags: `--duration=<ms>` per round (3000), `--warmup=<ms>` per store and op (1000), `--rounds=<n>` (3),
 * `--concurrency=<n>` (64), `--pool=<n>` sessions per store for get/touch/set (8192),
 * `--ops=get,touch` to run a subset; `--ops=regenerate` only counts what 10,000 logouts of never-saved
 * sessions leave behind (./regenerate-footprint.ts); `--auto-pipelining=off` leaves out the contenders
 * on auto-pipelining ioredis clients (./store-auto-pipelining.ts).
 */
import { RedisStore as ConnectRedis8 } from 'connect-redis-8';
import { RedisStore as ConnectRedis9 } from 'connect-redis-9';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { GeoSessionStore } from '../src/session/store.js';
import { measureCpu } from './lib/cpu.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { EXHAUSTED, forEachConcurrent, type LoadResult, median, runLoad } from './lib/load.js';
import {
  type BenchSession,
  type CallbackStore,
  type Done,
  MAX_AGE_MS,
  makeSession,
  sessionBytes,
} from './lib/session.js';
import {
  type Cell,
  type Check,
  numberFlag,
  type Report,
  type Suite,
  type SuiteOptions,
} from './lib/suite.js';
import { regenerateFootprint } from './regenerate-footprint.js';
import {
  type AutoPipeliningId,
  autoPipeliningReport,
  autoPipeliningWanted,
  openAutoPipelining,
} from './store-auto-pipelining.js';

/** A store under test. */
interface Contender {
  /** Short key used in the data. */
  id: 'geosession' | 'cr8' | 'cr9' | 'geonc' | AutoPipeliningId;
  /** Column heading. */
  label: string;
  store: CallbackStore;
  prefix: string;
}

const OPS = ['get', 'set', 'set-unchanged', 'touch', 'destroy'] as const;
type OpName = (typeof OPS)[number];
/** Not timed: what logouts of never-saved sessions leave behind (./regenerate-footprint.ts). */
const REGENERATE = 'regenerate';

/** Targets: GeoSessionStore / connect-redis 8 on ioredis. */
const TARGETS: Partial<Record<OpName, number>> = { get: 1.0, touch: 1.0, set: 0.8 };

const OP_NOTES: Record<OpName, string> = {
  get: 'read a stored session',
  set: 'write a session whose content changed (views, lastSeen)',
  'set-unchanged': 'write a session equal to the stored one but for cookie.expires (resave / rolling)',
  touch: 'extend the lifetime (cookie.expires moved forward)',
  destroy: 'delete a stored session (each id once)',
};

function call(run: (cb: Done) => unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    run((err, value) => (err ? reject(err) : resolve(value)));
  });
}

/** Everything one run creates, so that it can all be removed. */
class Fixture {
  readonly runId = `gsbench:${process.pid}.${Date.now().toString(36)}`;
  readonly geoClient = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  readonly cr8Client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  readonly cr9Client = createClient({ socket: { host: REDIS_HOST, port: REDIS_PORT } });
  readonly admin = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  geo: GeoSessionStore | undefined;
  contenders: Contender[] = [];
  private closeAutoPipelining: (() => Promise<void>) | undefined;

  constructor(private readonly autoPipelining: boolean) {}
  // --- Near cache contender (issue 18): its own client and store, same interleaved run. ---
  readonly nearClient = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  near: GeoSessionStore | undefined;
  // --- end near cache contender ---

  async open(): Promise<void> {
    await this.cr9Client.connect();
    this.geo = new GeoSessionStore({ region: 'bench', client: this.geoClient, prefix: this.prefixOf('geo') });
    this.contenders = [
      {
        id: 'geosession',
        label: 'geosession',
        store: this.geo as CallbackStore,
        prefix: this.prefixOf('geo'),
      },
      {
        id: 'cr8',
        label: 'connect-redis 8',
        store: new ConnectRedis8({ client: this.cr8Client, prefix: this.prefixOf('cr8') }) as CallbackStore,
        prefix: this.prefixOf('cr8'),
      },
      {
        id: 'cr9',
        label: 'connect-redis 9',
        store: new ConnectRedis9({ client: this.cr9Client, prefix: this.prefixOf('cr9') }) as CallbackStore,
        prefix: this.prefixOf('cr9'),
      },
    ];
    // Issue 18: the same stores on ioredis clients with enableAutoPipelining (./store-auto-pipelining.ts).
    if (this.autoPipelining) {
      const ap = openAutoPipelining((name) => this.prefixOf(name));
      this.closeAutoPipelining = ap.close;
      this.contenders.push(...(ap.contenders as Contender[]));
    }
    // --- Near cache contender (issue 18): geosession with `nearCache` (defaults: 10,000 entries, 1 s). ---
    this.near = new GeoSessionStore({
      region: 'bench',
      client: this.nearClient,
      prefix: this.prefixOf('geonc'),
      nearCache: {},
    });
    const near = this.near;
    await waitUntil(() => near.nearCacheStats()?.armed === true, 5000);
    this.contenders.push({
      id: 'geonc',
      label: 'geo + near cache',
      store: near as CallbackStore,
      prefix: this.prefixOf('geonc'),
    });
    // --- end near cache contender ---
  }

  prefixOf(name: string): string {
    return `${this.runId}:${name}:`;
  }

  /** Deletes every key of this run: session values and geosession's `{...}` metadata and tombstones. */
  async cleanup(): Promise<number> {
    let removed = 0;
    for (const match of [`${this.runId}:*`, `{${this.runId}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await this.admin.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) removed += await this.admin.unlink(...keys);
      } while (cursor !== '0');
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.geo?.close();
    await this.closeAutoPipelining?.();
    await this.near?.close();
    await Promise.allSettled([
      this.nearClient.quit(),
      this.geoClient.quit(),
      this.cr8Client.quit(),
      this.cr9Client.quit(),
      this.admin.quit(),
    ]);
  }
}

interface Settings {
  durationMs: number;
  warmupMs: number;
  rounds: number;
  concurrency: number;
  pool: number;
  ops: OpName[];
  /** Whether to count what never-saved logouts leave behind (`--ops=regenerate` runs only that). */
  regenerate: boolean;
}

function settingsFrom(options: SuiteOptions): Settings {
  const concurrency = Math.floor(numberFlag(options, 'concurrency', 64));
  const pool = Math.ceil(numberFlag(options, 'pool', 8192) / concurrency) * concurrency;
  const asked = options.flags['ops'] ? options.flags['ops'].split(',') : [...OPS, REGENERATE];
  const ops = asked.filter((op) => op !== REGENERATE) as OpName[];
  for (const op of ops) if (!OPS.includes(op)) throw new Error(`--ops: unknown op ${op}`);
  return {
    durationMs: numberFlag(options, 'duration', 3000),
    warmupMs: numberFlag(options, 'warmup', 1000),
    rounds: Math.floor(numberFlag(options, 'rounds', 3)),
    concurrency,
    pool,
    ops,
    regenerate: asked.includes(REGENERATE),
  };
}

/**
 * Per-store session pools. Worker `w` only uses slots `w, w + c, w + 2c, ...` (`c` = concurrency, the
 * pool a multiple of it), so no two in-flight operations share a session object or key.
 */
class Pools {
  /** Stored before timing; used by get, touch and set-unchanged (content never changes). */
  readonly read: BenchSession[];
  /** Used by set; content changes on every write. */
  readonly write: BenchSession[];
  private destroyBatch = 0;

  constructor(readonly settings: Settings) {
    this.read = Array.from({ length: settings.pool }, (_, i) => makeSession(i));
    this.write = Array.from({ length: settings.pool }, (_, i) => makeSession(settings.pool + i));
  }

  slot(worker: number, seq: number): number {
    return (worker + seq * this.settings.concurrency) % this.settings.pool;
  }

  async populateRead(contender: Contender): Promise<void> {
    const indexes = this.read.map((_, i) => i);
    await forEachConcurrent(indexes, 256, (i) =>
      call((cb) => contender.store.set(`r${i}`, this.read[i], cb)),
    );
  }

  /** Stores `count` fresh sessions to be destroyed and returns their ids. */
  async populateDestroy(contender: Contender, count: number): Promise<string[]> {
    const batch = this.destroyBatch++;
    const ids = Array.from({ length: count }, (_, i) => `d${batch}-${i}`);
    const session = makeSession(0);
    await forEachConcurrent(ids, 256, (sid) => call((cb) => contender.store.set(sid, session, cb)));
    return ids;
  }
}

/** The timed operation of `op` on `contender`; `destroyIds` must be given for destroy. */
function operation(op: OpName, contender: Contender, pools: Pools, destroyIds?: string[]) {
  const store = contender.store;
  switch (op) {
    case 'get':
      return (w: number, seq: number) => call((cb) => store.get(`r${pools.slot(w, seq)}`, cb));
    case 'set':
      return (w: number, seq: number) => {
        const i = pools.slot(w, seq);
        const session = pools.write[i] as BenchSession;
        const now = Date.now();
        session.views++;
        session.lastSeen = now;
        session.cookie.expires = new Date(now + MAX_AGE_MS);
        return call((cb) => store.set(`w${i}`, session, cb));
      };
    case 'set-unchanged':
    case 'touch':
      return (w: number, seq: number) => {
        const i = pools.slot(w, seq);
        const session = pools.read[i] as BenchSession;
        session.cookie.expires = new Date(Date.now() + MAX_AGE_MS);
        return op === 'touch'
          ? call((cb) => store.touch(`r${i}`, session, cb))
          : call((cb) => store.set(`r${i}`, session, cb));
      };
    case 'destroy': {
      const ids = destroyIds ?? [];
      return async (w: number, seq: number) => {
        const sid = ids[w + seq * pools.settings.concurrency];
        if (sid === undefined) return EXHAUSTED;
        return call((cb) => store.destroy(sid, cb));
      };
    }
  }
}

/** A timed run plus where its CPU time went. */
interface Measurement extends LoadResult {
  /** CPU time of this Node process (user + system) per op, in µs: client library plus the store. */
  clientUs: number;
  /** CPU time of the Redis server per op, in µs (includes other clients of a shared server). */
  redisUs: number;
}

async function measure(
  op: OpName,
  contender: Contender,
  pools: Pools,
  admin: Redis,
  durationMs: number,
  expectedRate: number,
): Promise<Measurement> {
  const { concurrency } = pools.settings;
  let destroyIds: string[] | undefined;
  if (op === 'destroy') {
    const wanted = Math.ceil((expectedRate * durationMs * 1.5) / 1000 / concurrency);
    destroyIds = await pools.populateDestroy(contender, Math.max(wanted, 100) * concurrency);
  }
  const work = operation(op, contender, pools, destroyIds);
  const { cpu, ...result } = await measureCpu({ redis: admin }, () => runLoad(concurrency, durationMs, work));
  return { ...result, clientUs: cpu.perOpUs['node'] ?? 0, redisUs: cpu.perOpUs['redis'] ?? 0 };
}

type ById<T> = Partial<Record<Contender['id'], T>>;

interface OpResult {
  rounds: ById<number[]>;
  clientUs: ById<number[]>;
  redisUs: ById<number[]>;
  median: ById<number>;
  errors: number;
  exhausted: boolean;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const n = by % items.length;
  return [...items.slice(n), ...items.slice(0, n)];
}

async function runSuite(options: SuiteOptions): Promise<Report> {
  const settings = settingsFrom(options);
  const fixture = new Fixture(autoPipeliningWanted(options));
  const onSignal = () => {
    options.log('interrupted: removing benchmark keys...');
    fixture
      .cleanup()
      .finally(() => process.exit(130))
      .catch(() => undefined);
  };
  process.once('SIGINT', onSignal);
  try {
    await fixture.open();
    const footprint = settings.regenerate
      ? await regenerateFootprint(fixture.admin, (name) => fixture.prefixOf(name))
      : undefined;
    const pools = new Pools(settings);
    if (settings.ops.length > 0) {
      for (const contender of fixture.contenders) await pools.populateRead(contender);
    }

    const results = {} as Record<OpName, OpResult>;
    for (const op of settings.ops) {
      const expected: Record<string, number> = {};
      for (const contender of fixture.contenders) {
        const warm = await measure(op, contender, pools, fixture.admin, settings.warmupMs, 20_000);
        expected[contender.id] = warm.opsPerSec;
        if (warm.errors > 0) throw new Error(`${contender.label} ${op}: ${String(warm.firstError)}`);
      }
      const lists = () => Object.fromEntries(fixture.contenders.map((c) => [c.id, [] as number[]]));
      const result: OpResult = {
        rounds: lists(),
        clientUs: lists(),
        redisUs: lists(),
        median: {},
        errors: 0,
        exhausted: false,
      };
      for (let round = 0; round < settings.rounds; round++) {
        for (const contender of rotate(fixture.contenders, round)) {
          const r = await measure(
            op,
            contender,
            pools,
            fixture.admin,
            settings.durationMs,
            expected[contender.id] ?? 0,
          );
          result.rounds[contender.id]?.push(r.opsPerSec);
          result.clientUs[contender.id]?.push(r.clientUs);
          result.redisUs[contender.id]?.push(r.redisUs);
          result.errors += r.errors;
          result.exhausted ||= r.exhausted;
          if (r.errors > 0)
            options.log(`  ${contender.label} ${op}: ${r.errors} errors, first: ${String(r.firstError)}`);
          options.log(
            `  ${op.padEnd(13)} round ${round + 1} ${contender.label.padEnd(16)} ${Math.round(r.opsPerSec)} ops/s`,
          );
        }
      }
      for (const contender of fixture.contenders) {
        result.median[contender.id] = median(result.rounds[contender.id] ?? [0]);
      }
      results[op] = result;
    }
    // Near cache contender (issue 18): how its reads went (drops: a FLUSHDB anywhere on the server).
    options.log(`  near cache: ${JSON.stringify(fixture.near?.nearCacheStats())}`);
    const report = buildReport(settings, results, fixture.contenders);
    if (fixture.contenders.some((c) => c.id === 'geoAp')) {
      const ap = autoPipeliningReport(settings.ops, results);
      report.tables.splice(1, 0, ap.table);
      report.checks.push(...ap.checks);
    }
    report.tables = report.tables.filter((table) => table.rows.length > 0);
    if (footprint) {
      report.tables.push(footprint.table);
      report.data = { ...(report.data as object), regenerate: footprint.data };
    }
    return report;
  } finally {
    process.off('SIGINT', onSignal);
    const removed = await fixture.cleanup();
    options.log(`removed ${removed} benchmark keys`);
    await fixture.close();
  }
}

/** Median CPU µs per op as `node + redis`: steadier than ops/s on a busy machine. */
function cpuPerOp(r: OpResult, id: Contender['id']): string {
  const node = median(r.clientUs[id] ?? [0]);
  const redis = median(r.redisUs[id] ?? [0]);
  return `${node.toFixed(1)} + ${redis.toFixed(1)}`;
}

function buildReport(
  settings: Settings,
  results: Partial<Record<OpName, OpResult>>,
  contenders: readonly Contender[],
): Report {
  const rows: Cell[][] = [];
  const roundRows: Cell[][] = [];
  const checks: Check[] = [];
  for (const op of settings.ops) {
    const r = results[op];
    if (!r) continue;
    const { geosession = 0, cr8 = 0, cr9 = 0 } = r.median;
    const target = TARGETS[op];
    rows.push([
      op,
      geosession,
      cr8,
      cr9,
      `${(geosession / cr8).toFixed(2)}x`,
      `${(geosession / cr9).toFixed(2)}x`,
      target === undefined ? '-' : `>= ${target.toFixed(2)}x`,
      cpuPerOp(r, 'geosession'),
      cpuPerOp(r, 'cr8'),
    ]);
    if (target !== undefined) {
      checks.push({
        name: `${op} vs connect-redis 8 (ioredis)`,
        actual: geosession / cr8,
        target,
        direction: '>=',
        unit: 'x',
      });
    }
    for (const { id } of contenders) {
      const values = r.rounds[id];
      if (values === undefined || values.length === 0) continue;
      const spread = ((Math.max(...values) - Math.min(...values)) / median(values)) * 100;
      roundRows.push([
        op,
        id,
        values.map((v) => Math.round(v).toLocaleString('en-US')).join(' / '),
        median(r.clientUs[id] ?? [0]),
        median(r.redisUs[id] ?? [0]),
        `${spread.toFixed(0)}%`,
      ]);
    }
  }
  const near = nearCacheRows(settings, results, checks);
  return {
    tables: [
      {
        title: `Median ops/s over ${settings.rounds} interleaved rounds of ${settings.durationMs / 1000} s, concurrency ${settings.concurrency}`,
        columns: [
          'op',
          'geosession',
          'connect-redis 8',
          'connect-redis 9',
          'geo/cr8',
          'geo/cr9',
          'target (cr8)',
          'geo CPU µs/op',
          'cr8 CPU µs/op',
        ],
        rows,
      },
      {
        title:
          'Per-round ops/s; median CPU µs per op of this Node process and of Redis; spread = (max - min) / median',
        columns: ['op', 'store', 'rounds', 'node µs/op', 'redis µs/op', 'spread'],
        rows: roundRows,
      },
      near,
    ],
    checks,
    notes: [
      `Sessions: ${sessionBytes()} bytes of JSON; ${settings.pool} stored sessions per store for get/touch/set/set-unchanged.`,
      'Clients: geosession and connect-redis 8 each on their own ioredis 6 client, connect-redis 9 on node-redis 5; defaults, no auto-pipelining.',
      'geoAp / cr8Ap: geosession / connect-redis 8 on their own ioredis 6 client made with enableAutoPipelining: true (--auto-pipelining=off leaves them out).',
      'Calls use the callback API, as express-session and @fastify/session do.',
      'geo + near cache: geosession with `nearCache: {}` (10,000 entries, maxStalenessMs 1000) on its own ioredis 6 client, in the same interleaved rounds; a get is served from memory when its entry is younger than 1 s.',
      ...settings.ops.map((op) => `${op}: ${OP_NOTES[op]}`),
    ],
    data: { settings, results },
  };
}

// --- Near cache contender (issue 18) ---

/** Target: get with the near cache / connect-redis 9 (node-redis). */
const NEAR_GET_TARGET = 1.5;

/** The near cache rows: every op of geosession + near cache against geosession and connect-redis 9. */
function nearCacheRows(
  settings: Settings,
  results: Partial<Record<OpName, OpResult>>,
  checks: Check[],
): { title: string; columns: string[]; rows: Cell[][] } {
  const rows: Cell[][] = [];
  for (const op of settings.ops) {
    const r = results[op];
    if (!r || r.median.geonc === undefined) continue;
    const { geonc, geosession = 0, cr9 = 0 } = r.median;
    rows.push([
      op,
      geonc,
      `${(geonc / geosession).toFixed(2)}x`,
      `${(geonc / cr9).toFixed(2)}x`,
      op === 'get' ? `>= ${NEAR_GET_TARGET.toFixed(2)}x` : '-',
      cpuPerOp(r, 'geonc'),
    ]);
    if (op === 'get') {
      checks.push({
        name: 'get with the near cache vs connect-redis 9 (node-redis)',
        actual: geonc / cr9,
        target: NEAR_GET_TARGET,
        direction: '>=',
        unit: 'x',
      });
    }
  }
  return {
    title: 'geosession + near cache, same rounds: median ops/s and ratios',
    columns: ['op', 'geo + near cache', 'vs geosession', 'vs connect-redis 9', 'target (cr9)', 'CPU µs/op'],
    rows,
  };
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// --- end near cache contender ---

/** The store suite. */
export const storeSuite: Suite = {
  name: 'store',
  description: 'get/set/touch/destroy ops/s: GeoSessionStore vs connect-redis 8 (ioredis) and 9 (node-redis)',
  run: runSuite,
};
