/**
 * Users suite (issue 17 part 9): `sessionsOf` for users with 10 sessions each, and store `set` with the
 * per-user index on against the same store with it off (target >= 0.85x), interleaved on the same Redis.
 * The connection-registry rows (`podsOf`, register/unregister) are added to this suite by its owner.
 *
 * Flags: `--duration=<ms>` per round (2000), `--rounds=<n>` (3), `--concurrency=<n>` (64),
 * `--users=<n>` users for sessionsOf (1000).
 */
import { Redis } from 'ioredis';
import { GeoSessionStore } from '../src/session/store.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { forEachConcurrent, median, runLoad } from './lib/load.js';
import { makeSession } from './lib/session.js';
import { type Check, numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

type Done = (err?: unknown) => void;

function set(store: GeoSessionStore, sid: string, session: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    store.set(sid, session as never, ((err?: unknown) => (err ? reject(err) : resolve())) as Done);
  });
}

const SESSIONS_PER_USER = 10;

/** Runs the users suite. */
async function run(options: SuiteOptions): Promise<Report> {
  const durationMs = numberFlag(options, 'duration', 2000);
  const rounds = numberFlag(options, 'rounds', 3);
  const concurrency = numberFlag(options, 'concurrency', 64);
  const users = numberFlag(options, 'users', 1000);
  const runId = `gsbench-users:${process.pid}.${Date.now().toString(36)}:`;
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const admin = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const on = new GeoSessionStore({
    region: 'bench',
    client,
    prefix: `${runId}on:`,
    userId: (s) => (s as unknown as { user?: string }).user,
  });
  const off = new GeoSessionStore({ region: 'bench', client, prefix: `${runId}off:` });
  const withUser = (i: number) => ({ ...makeSession(i), user: `u${i % users}` });
  // The set rounds' sessions keep their user (w<k> belongs to v<k mod users>), apart from sessionsOf's users.
  const writer = (i: number) => ({ ...makeSession(i), user: `v${(i % 8192) % users}` });
  try {
    options.log(`users: writing ${users * SESSIONS_PER_USER} sessions of ${users} users`);
    const ids = Array.from({ length: users * SESSIONS_PER_USER }, (_, i) => i);
    await forEachConcurrent(ids, concurrency, (i) => set(on, `s${i}`, withUser(i)));
    const setOn: number[] = [];
    const setOff: number[] = [];
    const lookups: number[] = [];
    for (let r = 0; r < rounds; r++) {
      options.log(`users: round ${r + 1}/${rounds}`);
      // The two stores take turns going first, so neither gains from the order.
      const measure = (store: GeoSessionStore) => {
        let n = 0;
        return runLoad(concurrency, durationMs, () => {
          const i = n++;
          return set(store, `w${i % 8192}`, writer(i));
        });
      };
      const first = r % 2 === 0 ? off : on;
      const firstRun = await measure(first);
      const secondRun = await measure(first === off ? on : off);
      const offRun = first === off ? firstRun : secondRun;
      const onRun = first === off ? secondRun : firstRun;
      let k = 0;
      const lookRun = await runLoad(concurrency, durationMs, () => on.sessionsOf(`u${k++ % users}`));
      setOff.push(offRun.opsPerSec);
      setOn.push(onRun.opsPerSec);
      lookups.push(lookRun.opsPerSec);
    }
    const ratio = median(setOn) / median(setOff);
    const checks: Check[] = [
      { name: 'store set, user index on vs off', actual: ratio, target: 0.85, direction: '>=', unit: 'x' },
    ];
    return {
      tables: [
        {
          title: `users: median of ${rounds} rounds of ${durationMs} ms, concurrency ${concurrency}`,
          columns: ['operation', 'ops/s'],
          rows: [
            ['set, user index off', Math.round(median(setOff))],
            ['set, user index on', Math.round(median(setOn))],
            [`sessionsOf (${SESSIONS_PER_USER} sessions per user)`, Math.round(median(lookups))],
          ],
        },
      ],
      checks,
      notes: ['set: each op writes a session whose content changed; both stores on the same Redis.'],
      data: { setOn, setOff, lookups },
    };
  } finally {
    await on.close();
    await off.close();
    client.disconnect();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `*${runId}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
    admin.disconnect();
  }
}

/** The `users` suite: sessionsOf and the cost of the per-user index on set. */
export const usersSuite: Suite = {
  name: 'users',
  description: 'sessionsOf (10 sessions per user) and store set with the user index on vs off',
  run,
};
