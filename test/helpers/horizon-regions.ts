/**
 * Regions for the stale-event horizon tests (partitions, round-trip logout): stores over Redis Streams
 * with a short `tombstoneTtl`, fast reader timings, every touch replicated, and their error events kept.
 */
import type { Redis } from 'ioredis';
import type { GeoSessionError } from '../../src/errors.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';

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
export function openHorizonRegion(
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
