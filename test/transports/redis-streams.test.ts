import { describe } from 'vitest';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { hasRedis, sharedRedis } from '../helpers/servers.js';
import { transportConformance } from './conformance.js';

describe.skipIf(!hasRedis)('redis-streams', () => {
  transportConformance('redis-streams', async () => {
    // Three regions on the machine's Redis: each region's outbox is its own key, so one server is enough
    // for the contract; the fault tests use one private server per region.
    const clients = { hk: sharedRedis(), kr: sharedRedis(), us: sharedRedis() };
    const transport = createRedisStreamsTransport({ regions: clients, blockMs: 200, claimIdleMs: 2000 });
    return {
      regions: ['hk', 'kr', 'us'],
      transport: () => transport,
      cleanup: async () => {
        const keys = await clients.hk.keys('{conf*');
        if (keys.length > 0) await clients.hk.del(...keys);
        for (const c of Object.values(clients)) c.disconnect();
      },
    };
  });
});
