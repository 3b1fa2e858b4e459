import type { Redis } from 'ioredis';
import type { GeoSessionStoreOptions } from '../../src/index.js';
import { createKeySpace, type KeySpace } from '../../src/keys.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { dropKeys, sharedRedis } from './servers.js';

/** hk and kr on the machine's Redis (databases 7 and 8), replicating through a memory transport. */
export interface MemoryRegions {
  hk: GeoSessionStore;
  kr: GeoSessionStore;
  clients: { hk: Redis; kr: Redis };
  keys: KeySpace;
  /** Closes both stores and the transport, drops the keys under the prefix and disconnects. */
  close(): Promise<void>;
}

/** Opens hk and kr under `prefix` (sealer 'none', plus `options`) and waits until both are ready. */
export async function openMemoryRegions(
  prefix: string,
  options: Partial<GeoSessionStoreOptions> = {},
): Promise<MemoryRegions> {
  const clients = { hk: sharedRedis({ db: 7 }), kr: sharedRedis({ db: 8 }) };
  const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
  const make = (region: 'hk' | 'kr') =>
    new GeoSessionStore({
      region,
      client: clients[region],
      prefix,
      transport,
      sealer: 'none',
      ...options,
    });
  const hk = make('hk');
  const kr = make('kr');
  await Promise.all([hk.ready(), kr.ready()]);
  return {
    hk,
    kr,
    clients,
    keys: createKeySpace(prefix),
    async close() {
      await hk.close();
      await kr.close();
      await transport.close();
      for (const c of Object.values(clients)) {
        await dropKeys(c, prefix);
        c.disconnect();
      }
    },
  };
}
