import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { internalKey } from '../../src/wire/internal-keys.js';
import { dropKeys, eventually, hasRedis, sharedRedis } from '../helpers/servers.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
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
    ['readers', { readers: 'many' }],
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

describe.skipIf(!hasRedis)('redis-streams readers: auto', () => {
  it('keeps one read waiting per 5 ms of measured round trip: 1 on a local link, more over a slow one', async () => {
    const hk = sharedRedis();
    const local = sharedRedis();
    const proxy = await startTcpProxy(6379, '127.0.0.1', { delayMs: 20 });
    const far = sharedRedis({ port: proxy.port });
    const channel = `auto${Date.now().toString(36)}:`;
    const consumers = async (client: typeof hk, origin: string) => {
      const key = internalKey(channel, 'outbox', origin);
      await eventually(async () => (await client.exists(key)) === 1);
      const rows = (await client.xinfo('CONSUMERS', key, 'hk')) as unknown[][];
      return rows.length;
    };
    const transport = createRedisStreamsTransport({ regions: { hk, kr: local, us: far } });
    const sub = await transport.subscribe({ channel, region: 'hk', handler: async () => {} });
    try {
      await eventually(async () => (await consumers(hk, 'kr')) >= 1 && (await consumers(hk, 'us')) >= 1);
      // Each reader registers its consumer on its first read.
      await new Promise((r) => setTimeout(r, 300));
      expect(await consumers(hk, 'kr')).toBe(1);
      expect(await consumers(hk, 'us')).toBeGreaterThanOrEqual(6); // a 40 ms round trip: 8 (noise aside)
    } finally {
      await sub.close();
      await transport.close();
      await proxy.close();
      await dropKeys(hk, channel);
      for (const c of [hk, local, far]) c.disconnect();
    }
  });
});
