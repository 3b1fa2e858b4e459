/**
 * Cross-region cache invalidation over Redis Streams between two private redis-servers (hk, kr), two
 * processes per region (each its own clients, transport and invalidator): keys and tags deleted in both
 * regions, every process hearing each invalidation once, nothing lost across a link cut, bad input, and
 * forged or replayed invalidation events refused and counted, unsealed and sealed.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { Sealer } from '../../src/contracts/sealer.js';
import { ArgumentError, ClosedError } from '../../src/errors.js';
import {
  createInvalidator,
  type FlushEvent,
  type InvalidatedEvent,
  type Invalidator,
} from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { entryFields } from '../../src/wire/stream-entry.js';
import { generatePasetoKey, localSealer, sealed, tamperedToken } from '../helpers/forgery.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const WAIT = 20_000;
type Region = 'hk' | 'kr';

/** One process of a region: its invalidator and what it heard. */
interface Process {
  inv: Invalidator;
  /** The region's own Redis, as this process reaches it. */
  client: Redis;
  heard: InvalidatedEvent[];
  flushes: FlushEvent[];
}

describe.skipIf(!hasRedis)('createInvalidator across two regions', () => {
  const pair = usePrivateRedisPair();

  /**
   * A process of `region` on `channel`; `via` lets it reach the other region's Redis through a proxy
   * (the link a test cuts).
   */
  function open(
    region: Region,
    channel: string,
    options: { sealer?: Sealer; via?: TcpProxy; maxKeysPerEvent?: number } = {},
  ): Process {
    const server = { hk: pair.hk, kr: pair.kr };
    const other: Region = region === 'hk' ? 'kr' : 'hk';
    const client = server[region].client();
    const regions = {
      [region]: client,
      [other]: server[other].client(options.via ? { port: options.via.port } : {}),
    } as Record<Region, Redis>;
    const transport = createRedisStreamsTransport({ regions, blockMs: 500 });
    transport.on('error', () => {});
    const inv = createInvalidator({
      client,
      region,
      transport,
      channel,
      sealer: options.sealer ?? 'none',
      heartbeatMs: 0,
      ...(options.maxKeysPerEvent ? { maxKeysPerEvent: options.maxKeysPerEvent } : {}),
    });
    const process: Process = { inv, client, heard: [], flushes: [] };
    inv.on('invalidated', (event) => process.heard.push(event));
    inv.on('flush', (event) => process.flushes.push(event));
    inv.on('error', () => {});
    pair.opened.push(transport, inv);
    return process;
  }

  async function fill(client: Redis, keys: string[]): Promise<void> {
    if (keys.length > 0) await client.mset(...keys.flatMap((k) => [k, 'cached']));
  }

  it('deletes keys and tagged keys in both regions; each of two processes per region hears it once', async () => {
    const channel = uniquePrefix('inv');
    const hk = [open('hk', channel), open('hk', channel)] as const;
    const kr = [open('kr', channel), open('kr', channel)] as const;
    await Promise.all([...hk, ...kr].map((p) => p.inv.ready()));
    const [hk0, hk1] = hk;
    const [kr0] = kr;
    for (const p of [hk0, kr0]) {
      await fill(p.client, ['product:1', 'product:2', 'list:a', 'list:b', 'other']);
      expect(await p.inv.tag('lists', ['list:a', 'list:b'])).toBe(2);
    }

    const result = await hk1.inv.invalidate(['product:1', 'product:2'], { tags: ['lists'] });
    expect(result).toEqual({ deleted: 4, steps: 1 });
    // At once in hk: the call resolved after the delete.
    expect(await hk0.client.exists('product:1', 'product:2', 'list:a', 'list:b')).toBe(0);
    // And in kr, by replication.
    await eventually(
      async () => (await kr0.client.exists('product:1', 'product:2', 'list:a', 'list:b')) === 0,
      WAIT,
    );
    expect(await kr0.client.get('other')).toBe('cached');

    // Every process of every region hears it, once.
    await eventually(() => [...hk, ...kr].every((p) => p.heard.length >= 1), WAIT);
    await new Promise((r) => setTimeout(r, 300));
    for (const p of [...hk, ...kr]) {
      expect(p.heard).toHaveLength(1);
      expect(p.heard[0]).toMatchObject({ keys: ['product:1', 'product:2'], tags: ['lists'], origin: 'hk' });
    }
    for (const p of hk) expect(p.heard[0]?.lagMs).toBe(0);
    for (const p of kr) expect(p.heard[0]?.lagMs).toBeGreaterThanOrEqual(0);
    // Applied once in kr (by one of its processes), heard by both.
    const applied = kr.map((p) => p.inv.stats().applied);
    expect((applied[0] ?? 0) + (applied[1] ?? 0)).toBe(1);
    // A tag is gone with its keys: tagging again starts afresh.
    expect(await kr0.inv.tag('lists', 'list:a')).toBe(1);
  });

  it('applies in every region what was invalidated while the link was cut', async () => {
    const channel = uniquePrefix('inv-cut');
    // kr reads hk's outbox through the proxy: cutting it cuts hk→kr.
    const proxy = await startTcpProxy(pair.hk.port);
    pair.opened.push(proxy);
    const hk = open('hk', channel);
    const kr = [open('kr', channel, { via: proxy }), open('kr', channel, { via: proxy })] as const;
    await Promise.all([hk, ...kr].map((p) => p.inv.ready()));
    const keys = Array.from({ length: 50 }, (_, i) => `item:${i}`);
    await fill(hk.client, keys);
    await fill(kr[0].client, keys);

    proxy.cut();
    for (const key of keys) await hk.inv.invalidate(key);
    expect(await hk.client.exists(...keys)).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    // Nothing crossed the cut link.
    expect(await kr[0].client.exists(...keys)).toBe(keys.length);
    expect(kr[0].heard).toHaveLength(0);

    proxy.heal();
    await eventually(async () => (await kr[0].client.exists(...keys)) === 0, WAIT);
    // Each process of kr heard each of the 50, once.
    await eventually(() => kr.every((p) => p.heard.length >= keys.length), WAIT);
    await new Promise((r) => setTimeout(r, 300));
    for (const p of kr) {
      expect(p.heard.map((e) => e.keys[0]).sort()).toEqual([...keys].sort());
    }
  });

  it('refuses bad input with a clear error; empty lists do nothing; huge batches are split', async () => {
    const channel = uniquePrefix('inv-input');
    const hk = open('hk', channel, { maxKeysPerEvent: 1000 });
    const kr = open('kr', channel);
    await Promise.all([hk.inv.ready(), kr.inv.ready()]);

    expect(await hk.inv.invalidate([])).toEqual({ deleted: 0, steps: 0 });
    expect(await hk.inv.invalidate([], { tags: [] })).toEqual({ deleted: 0, steps: 0 });
    await expect(hk.inv.invalidate([''])).rejects.toThrow(ArgumentError);
    await expect(hk.inv.invalidate(['a', 42 as unknown as string])).rejects.toThrow(/not a string/);
    await expect(hk.inv.invalidate('a', { tags: 'x' as unknown as string[] })).rejects.toThrow(ArgumentError);
    await expect(hk.inv.invalidate(null as unknown as string[])).rejects.toThrow(ArgumentError);
    await expect(hk.inv.invalidate(['x'.repeat(5000)])).rejects.toThrow(/longer than/);
    await expect(hk.inv.tag('', ['a'])).rejects.toThrow(ArgumentError);

    const keys = Array.from({ length: 2500 }, (_, i) => `big:${i}`);
    await fill(hk.client, keys);
    await fill(kr.client, keys);
    expect(await hk.inv.invalidate(keys)).toEqual({ deleted: 2500, steps: 3 });
    await eventually(async () => (await kr.client.exists(...keys)) === 0, WAIT);
    // Nothing was heard for the empty calls; the three steps were.
    await eventually(() => kr.heard.length === 3, WAIT);
    expect(hk.heard.map((e) => e.keys.length)).toEqual([1000, 1000, 500]);

    await hk.inv.close();
    await expect(hk.inv.invalidate('a')).rejects.toThrow(ClosedError);
  });

  it('refuses and counts forged and replayed invalidations (unsealed)', async () => {
    const channel = uniquePrefix('inv-forged');
    const hk = open('hk', channel);
    const kr = open('kr', channel);
    await Promise.all([hk.inv.ready(), kr.inv.ready()]);
    const outbox = createKeySpace(channel).internal('outbox', 'hk');
    await fill(kr.client, ['victim', 'again']);

    // Forged bodies written where kr reads hk's invalidations: not JSON, no names, a bad name.
    const forged = (id: string, body: string): Envelope => ({
      id: `hk:${id}`,
      origin: 'hk',
      kind: 'invalidate',
      time: Date.now(),
      body,
    });
    await hk.client.xadd(outbox, '*', ...entryFields(forged('f1', 'DEL victim')));
    await hk.client.xadd(outbox, '*', ...entryFields(forged('f2', '{"k":[],"t":[]}')));
    await hk.client.xadd(outbox, '*', ...entryFields(forged('f3', '{"k":[""],"t":[]}')));
    await eventually(() => (kr.inv.stats().replication?.rejected.malformed ?? 0) === 3, WAIT);
    expect(await kr.client.get('victim')).toBe('cached');

    // A genuine invalidation, then its entry replayed: dropped as a duplicate, not applied again.
    await hk.inv.invalidate('again');
    await eventually(async () => (await kr.client.exists('again')) === 0, WAIT);
    await kr.client.set('again', 'cached');
    const [genuine] = (await hk.client.xrevrange(outbox, '+', '-', 'COUNT', 1)) as [string, string[]][];
    const fields = (genuine?.[1] ?? []) as [string, string];
    expect(fields[1]).toMatch(/^invalidate /);
    await hk.client.xadd(outbox, '*', ...fields);
    await eventually(() => (kr.inv.stats().replication?.sequences.hk?.duplicates ?? 0) === 1, WAIT);
    expect(await kr.client.get('again')).toBe('cached');
    expect(kr.heard).toHaveLength(1);
  });

  it('refuses and counts unsealed, tampered, replayed and replayed-into-another-channel invalidations (sealed)', async () => {
    const channel = uniquePrefix('inv-sealed');
    const { key } = generatePasetoKey();
    const sealer = localSealer([key]);
    const hk = open('hk', channel, { sealer });
    const kr = open('kr', channel, { sealer });
    await Promise.all([hk.inv.ready(), kr.inv.ready()]);
    const published = createKeySpace(channel).internal('relay', 'hk');
    await fill(kr.client, ['victim', 'genuine']);
    const body = '{"k":["victim"],"t":[]}';
    const envelope: Envelope = {
      id: 'hk:forged-1',
      origin: 'hk',
      kind: 'invalidate',
      time: Date.now(),
      body,
    };

    // Unsealed, where kr reads hk's sealed batches.
    await hk.client.xadd(published, '*', ...entryFields(envelope));
    // Sealed with the right key for another channel (a replay from another keyspace).
    await hk.client.xadd(published, '*', ...entryFields(await sealed(sealer, [envelope], 'hk', 'other:')));
    // Sealed right, then tampered with.
    const good = await sealed(sealer, [envelope], 'hk', channel);
    await hk.client.xadd(published, '*', ...entryFields({ ...good, body: tamperedToken(good.body) }));
    const rejected = () => kr.inv.stats().replication?.rejected ?? {};
    await eventually(() => {
      const r = rejected();
      return r.unsealed === 1 && r['wrong-channel'] === 1 && r.tampered === 1;
    }, WAIT);
    expect(await kr.client.get('victim')).toBe('cached');

    // Genuine invalidations still flow, sealed.
    await hk.inv.invalidate('genuine');
    await eventually(async () => (await kr.client.exists('genuine')) === 0, WAIT);
    expect(await kr.client.get('victim')).toBe('cached');

    // The genuine sealed batch replayed as it is: dropped as a duplicate, not applied again.
    await kr.client.set('genuine', 'cached');
    const [last] = (await hk.client.xrevrange(published, '+', '-', 'COUNT', 1)) as [string, string[]][];
    const fields = (last?.[1] ?? []) as [string, string];
    expect(fields[1]).toMatch(/^sealed /);
    await hk.client.xadd(published, '*', ...fields);
    await eventually(() => (kr.inv.stats().replication?.sequences.hk?.duplicates ?? 0) === 1, WAIT);
    expect(await kr.client.get('genuine')).toBe('cached');
  });

  it('tells a process to drop its whole cache when its subscriber connection was lost, and hears again after', async () => {
    const channel = uniquePrefix('inv-flush');
    const hk = open('hk', channel);
    await hk.inv.ready();
    expect(hk.inv.listening).toBe(true);
    await hk.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await eventually(() => hk.flushes.some((f) => f.reason === 'resubscribed'), WAIT);
    expect(hk.flushes.map((f) => f.reason)).toEqual(['disconnected', 'resubscribed']);
    expect(hk.inv.listening).toBe(true);
    await hk.inv.invalidate('k');
    await eventually(() => hk.heard.length === 1, WAIT);
  });
});

describe('createInvalidator options', () => {
  it('names the option at fault', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis({ lazyConnect: true });
    const base = { client, region: 'hk' };
    const fails = (options: object, option: string) =>
      expect(() => createInvalidator({ ...base, ...options } as never)).toThrow(
        expect.objectContaining({ code: 'ERR_GEOSESSION_CONFIG', option }),
      );
    fails({ region: 'HK!' }, 'region');
    fails({ client: {} }, 'client');
    fails({ channel: 'a|b' }, 'channel');
    fails({ channel: '' }, 'channel');
    fails({ transport: {} }, 'transport');
    fails({ transport: { publish() {}, subscribe() {} } }, 'sealer');
    fails({ maxKeysPerEvent: 0 }, 'maxKeysPerEvent');
    fails({ maxKeysPerEvent: 20_000 }, 'maxKeysPerEvent');
    fails({ heartbeatMs: -1 }, 'heartbeatMs');
    fails({ colour: 'red' }, 'colour');
    client.disconnect();
  });
});
