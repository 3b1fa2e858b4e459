import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { internalKey } from '../../src/internal/stream-names.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { dropKeys, hasRedis, sharedRedis } from '../helpers/servers.js';
import { transportConformance } from './conformance.js';

describe('redis-streams options', () => {
  // Construction sends nothing, so these need no server.
  const hk = new Redis({ lazyConnect: true });
  const kr = new Redis({ lazyConnect: true });

  it('has a default for every option', async () => {
    const transport = createRedisStreamsTransport({ regions: { hk, kr } });
    expect(transport.name).toBe('redis-streams');
    expect(transport.state).toBe('ready');
    await transport.close();
  });

  it.each([
    ['regions', { regions: undefined }],
    ['regions', { regions: { hk } }],
    ['regions.HK', { regions: { HK: hk, kr } }],
    ['regions.kr', { regions: { hk, kr: {} } }],
    ['readBatch', { readBatch: 0 }],
    ['readBatch', { readBatch: 10.5 }],
    ['blockMs', { blockMs: -1 }],
    ['watchdogMs', { watchdogMs: Number.NaN }],
    ['claimIdleMs', { claimIdleMs: '5' }],
    ['trimIntervalMs', { trimIntervalMs: 0 }],
    ['readers', { readers: 0 }],
    ['maxBacklog', { maxBacklog: 5 }],
    ['maxBacklog.entries', { maxBacklog: { entries: -1 } }],
    ['maxBacklog.size', { maxBacklog: { size: 1 } }],
    ['consumerIdleMs', { consumerIdleMs: 0 }],
    ['readbatch', { readbatch: 10 }],
    ['regions', null],
  ])('names %s when it is wrong', (option, patch) => {
    let error: unknown;
    try {
      createRedisStreamsTransport((patch === null ? null : { regions: { hk, kr }, ...patch }) as never);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe(option);
  });
});

describe.skipIf(!hasRedis)('redis-streams', () => {
  transportConformance('redis-streams', async () => {
    // Three regions on the machine's Redis: each region's outbox is its own key, so one server is enough
    // for the contract; the fault tests use one private server per region.
    const clients = { hk: sharedRedis(), kr: sharedRedis(), us: sharedRedis() };
    const transport = createRedisStreamsTransport({
      regions: clients,
      blockMs: 200,
      claimIdleMs: 2000,
      readers: 2,
    });
    return {
      regions: ['hk', 'kr', 'us'],
      transport: () => transport,
      // `publish` appends to each region's published stream (what a relay writes).
      subscribeOptions: { source: 'published' },
      injectRaw: async (channel, origin, raw) => {
        await clients.hk.xadd(internalKey(channel, 'relay', origin), '*', 'raw', raw);
      },
      cleanup: async () => {
        await dropKeys(clients.hk, 'conf');
        for (const c of Object.values(clients)) c.disconnect();
      },
    };
  });
});
