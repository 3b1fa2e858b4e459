/**
 * A region's process on a host whose clock is wrong (run with test/helpers/shift-clock.mjs preloaded).
 * It writes one session whose cookie express-session made on this host (`maxAge` of
 * GEOSESSION_MAX_AGE_MS, so its `expires` is this host's wrong now plus maxAge) and destroys another,
 * then prints what the parent needs to check the lifetimes against the Redis clock: the Redis time
 * before and after, how long the work took on this host, and the versions written.
 *
 * Env: GEOSESSION_HK_PORT, GEOSESSION_KR_PORT (private redis-servers), GEOSESSION_PREFIX,
 * GEOSESSION_MAX_AGE_MS, GEOSESSION_TOMBSTONE_TTL (s).
 */
import session from 'express-session';
import { Redis } from 'ioredis';
import { GeoSessionStore, generateSessionId, type SessionData } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

async function redisTimeMs(client: Redis): Promise<number> {
  const [s, us] = await client.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

async function main(): Promise<void> {
  const hk = new Redis({ port: Number(env('GEOSESSION_HK_PORT')), host: '127.0.0.1' });
  const kr = new Redis({ port: Number(env('GEOSESSION_KR_PORT')), host: '127.0.0.1' });
  const transport = createRedisStreamsTransport({ regions: { hk, kr }, blockMs: 200 });
  const store = new GeoSessionStore({
    region: 'hk',
    client: hk,
    prefix: env('GEOSESSION_PREFIX'),
    tombstoneTtl: Number(env('GEOSESSION_TOMBSTONE_TTL')),
    transport,
    sealer: 'none',
  });
  await store.ready();
  const sid = store.genid();
  // Born in another region: its logout takes the full, replicated path (a never-saved id born here would not).
  const gone = generateSessionId('us');

  const hostStart = Date.now();
  const redisStart = await redisTimeMs(hk);
  // What express-session does for a new session on this host: expires = Date.now() + maxAge.
  const Cookie = session.Cookie as unknown as new (options: { maxAge: number }) => session.Cookie;
  const cookie = new Cookie({ maxAge: Number(env('GEOSESSION_MAX_AGE_MS')) });
  await store.set(sid, { cookie, user: 'alice' } as unknown as SessionData);
  await store.destroy(gone);
  const redisEnd = await redisTimeMs(hk);
  const hostEnd = Date.now();

  process.stdout.write(
    `${JSON.stringify({
      sid,
      gone,
      hostNow: hostStart,
      cookieExpires: new Date(cookie.expires as Date).getTime(),
      redisStart,
      redisEnd,
      hostDurationMs: hostEnd - hostStart,
    })}\n`,
  );
  await store.close();
  await transport.close();
  hk.disconnect();
  kr.disconnect();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
