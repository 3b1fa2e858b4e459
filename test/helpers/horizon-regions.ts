/**
 * Regions for the stale-event horizon tests (partitions, round-trip logout): stores over Redis Streams
 * with a short `tombstoneTtl`, fast reader timings, every touch replicated, and their error events kept.
 */
import type { Redis } from 'ioredis';
import type { GeoSessionError } from '../../src/errors.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { type PrivateRedis, startRedis } from './servers.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** A session whose cookie lives `lifeMs` from now, as express-session would hand it over. */
export function sessionFor(lifeMs: number, data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: lifeMs, expires: new Date(Date.now() + lifeMs).toISOString() },
    ...data,
  };
}

export interface HorizonRegion {
  store: GeoSessionStore;
  errors: GeoSessionError[];
  close(): Promise<void>;
}

/** A store for `region` on `client`, reading the other regions through `regions` (its own included). */
function openHorizonRegion(
  region: string,
  client: Redis,
  prefix: string,
  regions: Record<string, Redis>,
  tombstoneTtl: number,
): HorizonRegion {
  const transport = createRedisStreamsTransport({
    regions,
    blockMs: 200,
    watchdogMs: 1000,
    trimIntervalMs: 200,
  });
  const store = new GeoSessionStore({
    region,
    client,
    prefix,
    tombstoneTtl,
    replicateTouchAfter: 0,
    transport,
    sealer: 'none',
  });
  const errors: GeoSessionError[] = [];
  store.on('error', (e) => errors.push(e));
  return {
    store,
    errors,
    async close() {
      await store.close();
      await transport.close();
    },
  };
}

/**
 * Two private redis-servers, hk and kr, each with a TCP proxy in front for the other region's reads:
 * `krToHk` (hk reads kr's outbox through it) and `hkToKr`, so each direction can be cut alone.
 */
export interface HorizonPair {
  hkServer: PrivateRedis;
  krServer: PrivateRedis;
  hkClient: Redis;
  krClient: Redis;
  krToHk: TcpProxy;
  hkToKr: TcpProxy;
  /** A store for `region` on its own Redis (closed by `stop`). */
  open(region: 'hk' | 'kr', prefix: string, regions: Record<string, Redis>): HorizonRegion;
  stop(): Promise<void>;
}

export async function startHorizonPair(horizonS: number): Promise<HorizonPair> {
  const hkServer = await startRedis();
  const krServer = await startRedis();
  const krToHk = await startTcpProxy(krServer.port);
  const hkToKr = await startTcpProxy(hkServer.port);
  const hkClient = hkServer.client();
  const krClient = krServer.client();
  const opened: HorizonRegion[] = [];
  return {
    hkServer,
    krServer,
    hkClient,
    krClient,
    krToHk,
    hkToKr,
    open(region, prefix, regions) {
      const client = region === 'hk' ? hkClient : krClient;
      const r = openHorizonRegion(region, client, prefix, regions, horizonS);
      opened.push(r);
      return r;
    },
    async stop() {
      for (const r of opened.splice(0).reverse()) await r.close();
      await krToHk.close();
      await hkToKr.close();
      await hkServer.stop();
      await krServer.stop();
    },
  };
}
