/**
 * `npm run bench -- ops-migrate`: the rate of `migrateKeyspace` (geosession migrate) over a
 * connect-redis keyspace on a private redis-server, against a raw SCAN + GET pass of the same keyspace
 * in the same run (the least any migration must do: visit and read every session).
 *
 * Options: `--sessions=N` (default 200000), `--batch=N` SCAN COUNT (default 1000).
 */
import { migrateKeyspace } from '../src/admin/migrate.js';
import { startBenchRedis } from './lib/redis-server.js';
import { numberFlag, type Suite } from './lib/suite.js';

/** Writes `n` sessions as connect-redis 8 does (`SET <prefix><sid> <JSON> EX <ttl>`), pipelined. */
async function seed(client: import('ioredis').Redis, prefix: string, n: number): Promise<void> {
  const chunk = 5000;
  for (let start = 0; start < n; start += chunk) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(n, start + chunk); i++) {
      const maxAge = 86_400_000;
      const session = {
        cookie: {
          originalMaxAge: maxAge,
          expires: new Date(Date.now() + maxAge).toISOString(),
          secure: false,
          httpOnly: true,
          path: '/',
        },
        user: `user-${i}`,
        cart: [i, i + 1],
      };
      pipeline.set(`${prefix}${`s${i}`.padEnd(24, 'x')}`, JSON.stringify(session), 'EX', 86_400);
    }
    await pipeline.exec();
  }
}

/** A raw pass over the keyspace: SCAN and pipelined GET of every key found. */
async function scanAndGet(client: import('ioredis').Redis, prefix: string, count: number): Promise<number> {
  let cursor = '0';
  let seen = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', count);
    cursor = next;
    if (keys.length > 0) {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.get(key);
      await pipeline.exec();
      seen += keys.length;
    }
  } while (cursor !== '0');
  return seen;
}

export const opsMigrateSuite: Suite = {
  name: 'ops-migrate',
  description: 'geosession migrate over a connect-redis keyspace (sessions/s) vs a raw SCAN+GET pass',
  async run(options) {
    const sessions = numberFlag(options, 'sessions', 200_000);
    const batch = numberFlag(options, 'batch', 1000);
    const redis = await startBenchRedis();
    try {
      const client = redis.client();
      const prefix = 'sess:';
      options.log(`seeding ${sessions} connect-redis sessions...`);
      await seed(client, prefix, sessions);

      options.log('raw SCAN + GET pass...');
      let started = process.hrtime.bigint();
      const read = await scanAndGet(client, prefix, batch);
      const rawMs = Number(process.hrtime.bigint() - started) / 1e6;

      options.log('migrate...');
      started = process.hrtime.bigint();
      const report = await migrateKeyspace({ client, region: 'hk', prefix, scanCount: batch });
      const migrateMs = Number(process.hrtime.bigint() - started) / 1e6;

      options.log('migrate again (every session has metadata: skipped)...');
      started = process.hrtime.bigint();
      const again = await migrateKeyspace({ client, region: 'hk', prefix, scanCount: batch });
      const againMs = Number(process.hrtime.bigint() - started) / 1e6;

      const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
      const rawRate = rate(read, rawMs);
      const migrateRate = rate(report.migrated, migrateMs);
      const againRate = rate(again.scanned, againMs);
      return {
        tables: [
          {
            title: `migrate ${sessions} connect-redis sessions (SCAN COUNT ${batch}, one private redis-server)`,
            columns: ['pass', 'sessions', 'seconds', 'sessions/s', 'vs raw SCAN+GET'],
            rows: [
              ['raw SCAN + GET', read, (rawMs / 1000).toFixed(2), rawRate, '1.00x'],
              [
                'migrate',
                report.migrated,
                (migrateMs / 1000).toFixed(2),
                migrateRate,
                `${(migrateRate / rawRate).toFixed(2)}x`,
              ],
              [
                'migrate again (all skipped)',
                again.scanned,
                (againMs / 1000).toFixed(2),
                againRate,
                `${(againRate / rawRate).toFixed(2)}x`,
              ],
            ],
          },
        ],
        checks: [],
        notes: [
          'migrate reads each value and whether it has metadata (one pipeline per SCAN batch), computes the fingerprint, then runs migrate.lua for 100 sessions per call (calls of a batch pipelined).',
          'The raw pass is the least any migration does: visit and read every session.',
        ],
        data: { sessions, batch, rawMs, migrateMs, againMs, report, again },
      };
    } finally {
      await redis.stop();
    }
  },
};
