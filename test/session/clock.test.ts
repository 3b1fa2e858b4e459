/**
 * Time comes from Redis, not from the host (issue 11, "a host with a wrong clock"; DESIGN.md §3.6).
 *
 * The host only contributes a remaining lifetime (its cookie's expiry minus its own now); the scripts
 * make the absolute expiry from the Redis clock. So a host whose clock is hours off stores a session
 * that lives exactly as long as on a correct host, give or take the request's own duration, in its own
 * region and in every region it reaches, and its versions never fall behind the Redis clock nor run so
 * far ahead that another region refuses them.
 *
 * The wrong clock is played two ways: in a child process whose `Date` is shifted before anything loads
 * (test/helpers/shift-clock.mjs, so express-session's own cookie math runs on the wrong clock too), and
 * in-process through the store's `clock` option.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, generateSessionId, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { versionTime } from '../../src/redis/meta.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { readMeta } from '../helpers/meta.js';
import { eventually, hasRedis, type PrivateRedis, startRedis, uniquePrefix } from '../helpers/servers.js';

const run = promisify(execFile);
const HOUR = 3_600_000;
const TOMBSTONE_TTL_S = 600;
const MAX_SKEW_MS = 60_000; // the store's default maxClockSkewMs
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PRELOAD = fileURLToPath(new URL('../helpers/shift-clock.mjs', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/clock-child.ts', import.meta.url));

/** What a (possibly wrong-clocked) writer reports about its one set and one destroy. */
interface WriteReport {
  sid: string;
  gone: string;
  /** The writer's own `Date.now()` when it started (wrong by the offset). */
  hostNow: number;
  /** Redis time (ms) before the work and after it. */
  redisStart: number;
  redisEnd: number;
  /** How long the work took, measured on the writer's host. */
  hostDurationMs: number;
}

async function redisTimeMs(client: Redis): Promise<number> {
  const [s, us] = await client.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

const pexpiretime = (client: Redis, key: string) => client.call('PEXPIRETIME', key) as Promise<number>;

describe.skipIf(!hasRedis)('a host with a wrong clock (private servers, Redis Streams)', () => {
  let hkServer: PrivateRedis;
  let krServer: PrivateRedis;
  let hk: Redis;
  let kr: Redis;
  const opened: { close(): Promise<void> }[] = [];
  const prefix = uniquePrefix('clock');
  const keys = createKeySpace(prefix);
  let krStore: GeoSessionStore;

  beforeAll(async () => {
    hkServer = await startRedis();
    krServer = await startRedis();
    hk = hkServer.client();
    kr = krServer.client();
    // kr runs with a correct clock and receives what hk writes.
    const transport = createRedisStreamsTransport({ regions: { hk, kr }, blockMs: 200 });
    krStore = new GeoSessionStore({
      region: 'kr',
      client: kr,
      prefix,
      tombstoneTtl: TOMBSTONE_TTL_S,
      transport,
      sealer: 'none',
    });
    opened.push(krStore, transport);
    await krStore.ready();
  });

  afterAll(async () => {
    for (const o of opened.splice(0)) await o.close();
    await hkServer?.stop();
    await krServer?.stop();
  });

  /**
   * Checks one writer's report: the session lives maxAge from the Redis time of the write (within the
   * write's own duration) in hk and, once replicated, in kr; the tombstone lives twice tombstoneTtl
   * from the Redis time; the version's wall time is the Redis clock's, or at most half the skew bound ahead.
   */
  async function checkLifetimes(report: WriteReport, maxAgeMs: number): Promise<void> {
    const { sid, gone, redisStart, redisEnd, hostDurationMs } = report;
    // The remaining lifetime the host sent is maxAge minus the time between making the cookie and the set.
    const earliest = redisStart + maxAgeMs - hostDurationMs - 1;
    const latest = redisEnd + maxAgeMs + 1;

    const hkExpiry = await pexpiretime(hk, keys.session(sid));
    expect(hkExpiry).toBeGreaterThanOrEqual(earliest);
    expect(hkExpiry).toBeLessThanOrEqual(latest);
    const meta = await readMeta(hk, keys.meta(sid));
    expect(Number(meta.x)).toBe(hkExpiry);
    const wall = versionTime(meta.v ?? '');
    expect(wall).toBeGreaterThanOrEqual(redisStart);
    expect(wall).toBeLessThanOrEqual(redisEnd + MAX_SKEW_MS / 2);

    const tombstoneExpiry = await pexpiretime(hk, keys.meta(gone));
    expect(tombstoneExpiry).toBeGreaterThanOrEqual(redisStart + 2 * TOMBSTONE_TTL_S * 1000);
    expect(tombstoneExpiry).toBeLessThanOrEqual(redisEnd + 2 * TOMBSTONE_TTL_S * 1000 + 1);

    // kr, with a correct clock, serves the session and expires it when hk does.
    await eventually(async () => (await kr.exists(keys.session(sid))) === 1, 10_000);
    expect(await pexpiretime(kr, keys.session(sid))).toBe(hkExpiry);
    expect(await krStore.get(sid)).toMatchObject({ user: 'alice' });
    await eventually(async () => (await readMeta(kr, keys.meta(gone))).t === '1', 10_000);
    expect(krStore.replicationStats()?.received).toMatchObject({ skewed: 0, stale: 0, expired: 0 });
  }

  for (const offset of [-2 * HOUR, 2 * HOUR]) {
    const label = `${offset > 0 ? '+' : '-'}${Math.abs(offset) / HOUR} h`;

    it(`a child process whose clock is ${label} stores a 60-minute login that lives 60 minutes everywhere`, async () => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', '--import', PRELOAD, CHILD], {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          ...process.env,
          GEOSESSION_CLOCK_OFFSET_MS: String(offset),
          GEOSESSION_HK_PORT: String(hkServer.port),
          GEOSESSION_KR_PORT: String(krServer.port),
          GEOSESSION_PREFIX: prefix,
          GEOSESSION_MAX_AGE_MS: String(HOUR),
          GEOSESSION_TOMBSTONE_TTL: String(TOMBSTONE_TTL_S),
        },
      });
      const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as WriteReport;
      // The child's clock really was wrong.
      expect(Math.abs(report.hostNow - offset - report.redisStart)).toBeLessThan(60_000);
      await checkLifetimes(report, HOUR);
    });

    it(`the store option \`clock\` ${label}: a 30-minute session lives 30 minutes everywhere`, async () => {
      const clock = () => Date.now() + offset;
      const transport = createRedisStreamsTransport({ regions: { hk, kr }, blockMs: 200 });
      const store = new GeoSessionStore({
        region: 'hk',
        client: hk,
        prefix,
        tombstoneTtl: TOMBSTONE_TTL_S,
        transport,
        sealer: 'none',
        clock,
      });
      try {
        await store.ready();
        const sid = store.genid();
        // Born in another region: its logout takes the full, replicated path (a never-saved id born here would not).
        const gone = generateSessionId('us');
        const hostStart = Date.now();
        const redisStart = await redisTimeMs(hk);
        // The cookie as express-session would make it on that host.
        const expires = new Date(clock() + HOUR / 2).toISOString();
        await store.set(sid, { cookie: { originalMaxAge: HOUR / 2, expires }, user: 'alice' } as SessionData);
        await store.destroy(gone);
        const redisEnd = await redisTimeMs(hk);
        const report = {
          sid,
          gone,
          hostNow: clock(),
          redisStart,
          redisEnd,
          hostDurationMs: Date.now() - hostStart,
        };
        await checkLifetimes(report, HOUR / 2);

        // A correctly clocked region re-saves it: express-session resets the cookie from that host's clock
        // (now + maxAge), so the session keeps its 30 minutes, moved on by the time that passed.
        const before = await pexpiretime(kr, keys.session(sid));
        const again = (await krStore.get(sid)) as SessionData;
        const cookie = { ...again.cookie, expires: new Date(Date.now() + HOUR / 2).toISOString() };
        await krStore.set(sid, { ...again, cookie, step: 2 } as SessionData);
        await eventually(
          async () => JSON.parse((await hk.get(keys.session(sid))) ?? '{}').step === 2,
          10_000,
        );
        const after = await pexpiretime(hk, keys.session(sid));
        expect(after).toBeGreaterThanOrEqual(before);
        expect(after - before).toBeLessThan(60_000);
        // The lag this host reports is the event's, not its clock's error (it is measured on Redis time).
        const lag = store.replicationStats()?.lagMs.kr ?? -1;
        expect(lag).toBeGreaterThanOrEqual(0);
        expect(lag).toBeLessThan(5_000);
      } finally {
        await store.close();
        await transport.close();
      }
    });
  }
});
