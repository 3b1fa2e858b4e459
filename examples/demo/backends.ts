/**
 * Where the demo's two regions keep their sessions, and how they replicate:
 *
 * - given `--hk` and `--kr` Redis URLs: those servers, with the Redis Streams transport. The demo's keys
 *   (`demo:*` and `{demo:*`) are removed from them when it ends;
 * - else (the embedded default) a private `redis-server` per region, started and stopped by the demo,
 *   when the binary is on PATH (Redis 7.0 or later), with the Redis Streams transport;
 * - else, or when GEOSESSION_DEMO_EMBEDDED=mock, an in-memory Redis (ioredis-mock, see
 *   embedded-redis.ts) with the memory transport.
 *
 * GEOSESSION_DEMO_EMBEDDED=redis-server insists on the binary instead of falling back.
 */

import { Redis } from 'ioredis';
import { createMemoryTransport, type ReplicationTransport } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/redis-streams.js';
import { createEmbeddedRedis } from './embedded-redis.js';
import { findOnPath, redisServerVersion, startPrivateRedis, versionIsRecentEnough } from './private-redis.js';
import type { Teardown } from './teardown.js';

/** The two regions' Redis clients and the transport between them. */
export interface Backends {
  hk: Redis;
  kr: Redis;
  transport: ReplicationTransport;
  /** One line saying what runs, for the demo's header. */
  description: string;
}

/** Every key pattern the demo's stores write under the key prefix `prefix`. */
export function keyPatterns(prefix: string): string[] {
  // Session values are `prefix + sid`; metadata, tombstones and outbox streams all start with `{prefix`.
  return [`${prefix}*`, `{${prefix}*`];
}

/** Deletes every key of `patterns` (SCAN, then UNLINK page by page); returns how many there were. */
export async function dropKeys(client: Redis, patterns: readonly string[]): Promise<number> {
  let dropped = 0;
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) dropped += await client.unlink(...keys);
    } while (cursor !== '0');
  }
  return dropped;
}

/** Opens the backends; everything opened is handed to `teardown` as soon as it exists. */
export async function openBackends(
  urls: { hk?: string | undefined; kr?: string | undefined },
  prefix: string,
  teardown: Teardown,
): Promise<Backends> {
  if (urls.hk || urls.kr) {
    if (!urls.hk || !urls.kr) throw new Error('give both --hk and --kr Redis URLs, or neither');
    return openGivenRedis(urls.hk, urls.kr, prefix, teardown);
  }
  const wanted = process.env.GEOSESSION_DEMO_EMBEDDED ?? '';
  if (!['', 'redis-server', 'mock'].includes(wanted)) {
    throw new Error(`GEOSESSION_DEMO_EMBEDDED must be "redis-server" or "mock", not "${wanted}"`);
  }
  if (wanted === 'mock') return openMock('as GEOSESSION_DEMO_EMBEDDED=mock asks', teardown);
  const binary = findOnPath('redis-server');
  const version = binary && redisServerVersion(binary);
  if (binary && version && versionIsRecentEnough(version)) return openPrivateRedis(binary, teardown);
  const why = !binary
    ? 'no redis-server on PATH'
    : `the redis-server on PATH (${version ?? 'unknown version'}) is older than 7.0`;
  if (wanted === 'redis-server') throw new Error(`GEOSESSION_DEMO_EMBEDDED=redis-server, but ${why}`);
  return openMock(why, teardown);
}

function closedAtTheEnd(transport: ReplicationTransport, teardown: Teardown): ReplicationTransport {
  transport.on('error', (error) => console.error(`[${transport.name}] ${error.message}`));
  teardown.add('closing the transport', () => transport.close());
  return transport;
}

function connect(url: string, region: string, teardown: Teardown): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 5000 });
  let reported = false;
  client.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    console.error(`[${region}] Redis at ${url}: ${error.message}`);
  });
  teardown.add(`disconnecting from ${url}`, () => client.disconnect());
  return client;
}

async function reachable(clients: [Redis, string][]): Promise<void> {
  await Promise.all(
    clients.map(([client, url]) =>
      client.ping().catch((error: Error) => {
        throw new Error(`cannot reach Redis at ${url} (${error.message})`);
      }),
    ),
  );
}

async function openGivenRedis(hkUrl: string, krUrl: string, prefix: string, teardown: Teardown) {
  const hk = connect(hkUrl, 'hk', teardown);
  const kr = connect(krUrl, 'kr', teardown);
  await reachable([
    [hk, hkUrl],
    [kr, krUrl],
  ]);
  // Left by a demo that was killed outright: an old outbox would be replayed into this run.
  const leftover = (await dropKeys(hk, keyPatterns(prefix))) + (await dropKeys(kr, keyPatterns(prefix)));
  if (leftover > 0) console.log(`(removed ${leftover} keys left by an earlier demo run)`);
  teardown.add('removing the demo keys', async () => {
    await Promise.all([dropKeys(hk, keyPatterns(prefix)), dropKeys(kr, keyPatterns(prefix))]);
  });
  return {
    hk,
    kr,
    transport: closedAtTheEnd(createRedisStreamsTransport({ regions: { hk, kr } }), teardown),
    description: `real Redis (hk ${hkUrl}, kr ${krUrl}) with the Redis Streams transport`,
  };
}

async function openPrivateRedis(binary: string, teardown: Teardown): Promise<Backends> {
  const servers = await startPrivateRedis(binary, ['hk', 'kr']);
  teardown.add('stopping the private redis-servers', () => servers.stop());
  const { hk: hkUrl = '', kr: krUrl = '' } = servers.urls;
  const hk = connect(hkUrl, 'hk', teardown);
  const kr = connect(krUrl, 'kr', teardown);
  await reachable([
    [hk, hkUrl],
    [kr, krUrl],
  ]);
  const ports = `hk on port ${hk.options.port}, kr on port ${kr.options.port}`;
  return {
    hk,
    kr,
    transport: closedAtTheEnd(createRedisStreamsTransport({ regions: { hk, kr } }), teardown),
    description:
      `embedded: a private redis-server per region (${ports}, files in ${servers.dir}) ` +
      'with the Redis Streams transport',
  };
}

function openMock(why: string, teardown: Teardown): Backends {
  const hk = createEmbeddedRedis();
  const kr = createEmbeddedRedis();
  teardown.add('closing the in-memory Redis', () => {
    hk.disconnect();
    kr.disconnect();
  });
  return {
    hk,
    kr,
    transport: closedAtTheEnd(createMemoryTransport({ regions: ['hk', 'kr'] }), teardown),
    description: `embedded: in-memory Redis (ioredis-mock; ${why}) with the memory transport`,
  };
}
