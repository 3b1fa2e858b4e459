/**
 * The store suite's auto-pipelining contenders (issue 18): geosession and connect-redis 8, each on an
 * ioredis client made with `enableAutoPipelining: true`, in the same interleaved rounds as the others,
 * and their table: each against itself without the option, and against connect-redis 9 on node-redis.
 *
 * `--auto-pipelining=off` leaves them out (a shorter run).
 */
import { RedisStore as ConnectRedis8 } from 'connect-redis-8';
import { Redis } from 'ioredis';
import { GeoSessionStore } from '../src/session/store.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { median } from './lib/load.js';
import type { Check, SuiteOptions, Table } from './lib/suite.js';

/** Ids of the auto-pipelining contenders in the suite's data. */
export type AutoPipeliningId = 'geoAp' | 'cr8Ap';

/** Target: geosession with auto-pipelining / connect-redis 9 on node-redis. */
const TARGETS: Readonly<Record<string, number>> = { set: 0.8 };

/** The figures of one op that the table reads, by contender id. */
interface OpFigures {
  median: Readonly<Record<string, number>>;
  clientUs: Readonly<Record<string, readonly number[]>>;
  redisUs: Readonly<Record<string, readonly number[]>>;
}

/** A contender of the suite, as bench/store.ts describes it. */
interface ApContender {
  id: AutoPipeliningId;
  label: string;
  store: unknown;
  prefix: string;
}

/** Whether the run includes the auto-pipelining contenders (`--auto-pipelining=off` leaves them out). */
export function autoPipeliningWanted(options: SuiteOptions): boolean {
  const flag = options.flags['auto-pipelining'];
  return flag === undefined || !['off', 'false', 'no', '0'].includes(flag);
}

/** The two contenders on their own auto-pipelining clients; `close` quits those clients. */
export function openAutoPipelining(prefixOf: (name: string) => string): {
  contenders: ApContender[];
  close(): Promise<void>;
} {
  const options = { host: REDIS_HOST, port: REDIS_PORT, enableAutoPipelining: true };
  const geoClient = new Redis(options);
  const cr8Client = new Redis(options);
  const geo = new GeoSessionStore({ region: 'bench', client: geoClient, prefix: prefixOf('geoap') });
  return {
    contenders: [
      { id: 'geoAp', label: 'geosession + AP', store: geo, prefix: prefixOf('geoap') },
      {
        id: 'cr8Ap',
        label: 'cr8 + AP',
        store: new ConnectRedis8({ client: cr8Client, prefix: prefixOf('cr8ap') }),
        prefix: prefixOf('cr8ap'),
      },
    ],
    async close() {
      await geo.close();
      await Promise.allSettled([geoClient.quit(), cr8Client.quit()]);
    },
  };
}

function cpu(r: OpFigures, id: string): string {
  const node = median(r.clientUs[id] ?? [0]);
  const redis = median(r.redisUs[id] ?? [0]);
  return `${node.toFixed(1)} + ${redis.toFixed(1)}`;
}

/** The auto-pipelining table and its checks, from the ops' medians. */
export function autoPipeliningReport(
  ops: readonly string[],
  results: Readonly<Partial<Record<string, OpFigures>>>,
): { table: Table; checks: Check[] } {
  const rows: (string | number)[][] = [];
  const checks: Check[] = [];
  for (const op of ops) {
    const r = results[op];
    if (!r) continue;
    const m = (id: string) => r.median[id] ?? 0;
    const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
    const target = TARGETS[op];
    rows.push([
      op,
      m('geoAp'),
      m('cr8Ap'),
      m('cr9'),
      ratio(m('geoAp'), m('geosession')),
      ratio(m('cr8Ap'), m('cr8')),
      ratio(m('geoAp'), m('cr8Ap')),
      ratio(m('geoAp'), m('cr9')),
      target === undefined ? '-' : `>= ${target.toFixed(2)}x`,
      cpu(r, 'geoAp'),
      cpu(r, 'cr8Ap'),
    ]);
    if (target !== undefined && m('cr9') > 0) {
      checks.push({
        name: `${op} with auto-pipelining vs connect-redis 9 (node-redis)`,
        actual: m('geoAp') / m('cr9'),
        target,
        direction: '>=',
        unit: 'x',
      });
    }
  }
  return {
    table: {
      title:
        'Auto-pipelining (ioredis enableAutoPipelining: true), same rounds: median ops/s; "AP/off" = with the option / the same store without it',
      columns: [
        'op',
        'geo + AP',
        'cr8 + AP',
        'cr9',
        'geo AP/off',
        'cr8 AP/off',
        'geo+AP / cr8+AP',
        'geo+AP / cr9',
        'target (cr9)',
        'geo+AP CPU µs/op',
        'cr8+AP CPU µs/op',
      ],
      rows,
    },
    checks,
  };
}
