import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { GeoSessionStore, type GeoSessionStoreOptions } from '../../src/index.js';
import {
  createRedisStreamsTransport,
  type RedisStreamsTransportOptions,
} from '../../src/transports/redis-streams.js';
import { type PrivateRedis, startRedis } from './servers.js';

/** What a test opens and the pair closes after it. */
export interface Closable {
  close(): Promise<void>;
}

/** Two private redis-servers, hk and kr, shared by the tests of one describe block. */
export interface PrivateRedisPair {
  /** hk's server (available from the block's first beforeAll on). */
  readonly hk: PrivateRedis;
  /** kr's server (available from the block's first beforeAll on). */
  readonly kr: PrivateRedis;
  /** What a test opened: closed in reverse order after each test, once both servers are resumed. */
  readonly opened: Closable[];
  /**
   * A store for region `name` on its server, replicating over Redis Streams between hk's and kr's servers
   * (new clients, sealer 'none', its `error` events swallowed: the tests cause them); closed after the test.
   */
  streamsRegion(
    name: 'hk' | 'kr',
    prefix: string,
    transportOptions: Omit<RedisStreamsTransportOptions, 'regions'>,
    storeOptions: Partial<GeoSessionStoreOptions>,
  ): StreamsRegion;
}

/** One region opened by {@link PrivateRedisPair.streamsRegion}. */
export interface StreamsRegion {
  store: GeoSessionStore;
  transport: ReplicationTransport;
  clients: { hk: Redis; kr: Redis };
}

/**
 * Registers, in the calling describe block, the hooks that start hk's and kr's servers before its tests,
 * resume them (a test may have paused one) and close what a test opened after each, and stop them after all.
 */
export function usePrivateRedisPair(): PrivateRedisPair {
  let hk: PrivateRedis | undefined;
  let kr: PrivateRedis | undefined;
  const opened: Closable[] = [];
  beforeAll(async () => {
    hk = await startRedis();
    kr = await startRedis();
  });
  afterEach(async () => {
    hk?.resume();
    kr?.resume();
    for (const o of opened.splice(0).reverse()) await o.close();
  });
  afterAll(async () => {
    await hk?.stop();
    await kr?.stop();
  });
  const started = (server: PrivateRedis | undefined, name: string): PrivateRedis => {
    if (!server) throw new Error(`${name}'s redis-server is not started yet (use it in a hook or a test)`);
    return server;
  };
  return {
    get hk() {
      return started(hk, 'hk');
    },
    get kr() {
      return started(kr, 'kr');
    },
    opened,
    streamsRegion(name, prefix, transportOptions, storeOptions) {
      const clients = { hk: started(hk, 'hk').client(), kr: started(kr, 'kr').client() };
      const transport = createRedisStreamsTransport({ regions: clients, ...transportOptions });
      const store = new GeoSessionStore({
        region: name,
        client: clients[name],
        prefix,
        transport,
        sealer: 'none',
        ...storeOptions,
      });
      store.on('error', () => {});
      opened.push(transport, store);
      return { store, transport, clients };
    },
  };
}
