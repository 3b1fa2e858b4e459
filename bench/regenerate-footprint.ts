/**
 * What logouts of sessions that were never saved leave behind: express-session's `regenerate` (every
 * login) and anonymous `/logout` requests destroy ids no one saved. Counts, per 10,000 such destroys on
 * a replicating GeoSessionStore (Redis Streams transport, so every replicated change is an outbox entry),
 * the keys left in Redis, the longest time one lives, and the outbox entries written; the same for ids
 * born in another region (which take the full, replicated path) and for connect-redis 8.
 */
import { RedisStore as ConnectRedis8 } from 'connect-redis-8';
import { Redis } from 'ioredis';
import { createKeySpace } from '../src/keys.js';
import { GeoSessionStore } from '../src/session/store.js';
import { createRedisStreamsTransport } from '../src/transports/redis-streams.js';
import { generateSessionId } from '../src/validation/ids.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { forEachConcurrent } from './lib/load.js';
import type { Cell, Table } from './lib/suite.js';

/** Destroys per case. */
export const REGENERATES = 10_000;

interface Footprint {
  keys: number;
  longestTtlS: number;
  outboxEntries: number;
}

/** Keys matching `patterns` and the longest PTTL among them, in s (Infinity for a key without expiry). */
async function keysLeft(admin: Redis, patterns: string[]): Promise<{ keys: number; longest: number }> {
  let keys = 0;
  let longest = 0;
  for (const match of patterns) {
    let cursor = '0';
    do {
      const [next, found] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      keys += found.length;
      const ttls = await Promise.all(found.map((k) => admin.pttl(k)));
      for (const t of ttls) longest = t === -1 ? Number.POSITIVE_INFINITY : Math.max(longest, t);
    } while (cursor !== '0');
  }
  return { keys, longest: longest / 1000 };
}

async function geoCase(
  admin: Redis,
  prefix: string,
  sidOf: (store: GeoSessionStore) => string,
): Promise<Footprint> {
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const far = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  // A second region on the same server reads the outbox; no trim runs while the figures are taken.
  const transport = createRedisStreamsTransport({
    regions: { bench: client, far },
    trimIntervalMs: 3_600_000,
  });
  const store = new GeoSessionStore({
    region: 'bench',
    client,
    prefix,
    transport,
    sealer: 'none',
  });
  store.on('error', () => {});
  const outbox = createKeySpace(prefix).internal('outbox', 'bench');
  try {
    await store.ready();
    const before = await admin.xlen(outbox);
    const sids = Array.from({ length: REGENERATES }, () => sidOf(store));
    await forEachConcurrent(sids, 64, (sid) => store.destroy(sid));
    const outboxEntries = (await admin.xlen(outbox)) - before;
    // Session values and metadata (tombstones) only: internal keys hold a '|' and end otherwise.
    const left = await keysLeft(admin, [`${prefix}*`, `{${prefix}*}:m`]);
    return { keys: left.keys, longestTtlS: left.longest, outboxEntries };
  } finally {
    await store.close();
    await transport.close();
    client.disconnect();
    far.disconnect();
  }
}

async function connectRedisCase(admin: Redis, prefix: string): Promise<Footprint> {
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  const store = new ConnectRedis8({ client, prefix });
  try {
    const sids = Array.from({ length: REGENERATES }, () => generateSessionId('bench'));
    await forEachConcurrent(sids, 64, (sid) => store.destroy(sid));
    const left = await keysLeft(admin, [`${prefix}*`]);
    return { keys: left.keys, longestTtlS: left.longest, outboxEntries: 0 };
  } finally {
    client.disconnect();
  }
}

/** Runs the three cases under `prefixOf(name)` keys (the caller removes them) and returns one table. */
export async function regenerateFootprint(
  admin: Redis,
  prefixOf: (name: string) => string,
): Promise<{ table: Table; data: Record<string, Footprint> }> {
  const data: Record<string, Footprint> = {
    'geosession, id born here (genid)': await geoCase(admin, prefixOf('regen-here'), (s) => s.genid()),
    'geosession, id born in another region': await geoCase(admin, prefixOf('regen-far'), () =>
      generateSessionId('far'),
    ),
    'connect-redis 8': await connectRedisCase(admin, prefixOf('regen-cr8')),
  };
  const rows: Cell[][] = Object.entries(data).map(([name, f]) => [
    name,
    f.keys,
    f.longestTtlS,
    f.outboxEntries,
  ]);
  return {
    table: {
      title: `Left behind by ${REGENERATES.toLocaleString('en-US')} logouts/regenerates of sessions never saved`,
      columns: ['store', 'keys left', 'longest key TTL (s)', 'outbox entries (replicated events)'],
      rows,
    },
    data,
  };
}
