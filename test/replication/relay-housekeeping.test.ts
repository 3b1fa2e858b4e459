/**
 * The outbox relay (broker transports, or any transport with a sealer) reads this region's outbox
 * through the consumer group `relay`, one consumer per process. Processes that stopped or died leave
 * their consumer behind; like the Redis Streams transport's groups (issue 11: "dead consumers stay
 * listed in consumer groups forever"), the relay removes those idle longer than `consumerIdleMs` with
 * nothing pending, never its own. And while the broker is away, what the outbox keeps is bounded by
 * `maxOutboxBacklog` (issue 11: "never unbounded memory").
 */
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BacklogError,
  ConfigError,
  createMemoryTransport,
  DEFAULT_OPTIONS,
  GeoSessionStore,
  type GeoSessionStoreOptions,
  type ReplicationTransport,
  type SessionData,
  TransportError,
} from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { dropKeys, eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

function session(n: number): SessionData {
  return { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000).toISOString() }, n };
}

/** hk's store on `client` under `prefix`, replicating through `transport` (sealer 'none'), with `options`. */
function hkStore(
  client: Redis,
  prefix: string,
  transport: ReplicationTransport,
  options: Partial<GeoSessionStoreOptions>,
): GeoSessionStore {
  return new GeoSessionStore({ region: 'hk', client, prefix, transport, sealer: 'none', ...options });
}

const consumerNames = async (client: Redis, key: string, group: string) =>
  ((await client.xinfo('CONSUMERS', key, group)) as unknown[][]).map((row) => String(row[1]));

describe.skipIf(!hasRedis)('the outbox relay’s consumer group', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('relay');

  afterAll(async () => {
    await dropKeys(client, prefix);
    client.disconnect();
  });

  it('consumerIdleMs has a default and is validated, naming the option', () => {
    expect(DEFAULT_OPTIONS.consumerIdleMs).toBe(3_600_000);
    for (const bad of [0, -1, Number.NaN, '5']) {
      let error: unknown;
      try {
        new GeoSessionStore({ region: 'hk', client, consumerIdleMs: bad as number });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe('consumerIdleMs');
    }
  });

  it('loses the consumers of processes that stopped, once idle past consumerIdleMs, and keeps its own', async () => {
    const outbox = createKeySpace(prefix).internal('outbox', 'hk');
    const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
    const store = hkStore(client, prefix, transport, { consumerIdleMs: 500 });
    try {
      await store.ready();
      await store.set(store.genid(), session(1));
      // Two earlier processes of hk left their relay consumers behind.
      await client.xgroup('CREATECONSUMER', outbox, 'relay', 'relay:old-host:1:aaaaaa');
      await client.xgroup('CREATECONSUMER', outbox, 'relay', 'relay:old-host:2:bbbbbb');
      expect(await consumerNames(client, outbox, 'relay')).toHaveLength(3);
      await eventually(async () => (await consumerNames(client, outbox, 'relay')).length === 1, 15_000);
      const [own] = await consumerNames(client, outbox, 'relay');
      expect(own).toMatch(/^relay:/);
      expect(own).not.toMatch(/old-host/);
      // It still relays.
      await store.set(store.genid(), session(2));
      await eventually(async () => Number(((await client.xpending(outbox, 'relay')) as [number])[0]) === 0);
    } finally {
      await store.close();
      await transport.close();
    }
  }, 30_000);
});

describe.skipIf(!hasRedis)('the outbox while the broker is away', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('relay-bound');

  afterAll(async () => {
    await dropKeys(client, prefix);
    client.disconnect();
  });

  /** A transport whose broker is away: every publish fails, as a broker's unconfirmed publish does. */
  function brokerAway(): ReplicationTransport {
    const inner = createMemoryTransport({ regions: ['hk', 'kr'] });
    return Object.assign(Object.create(inner) as ReplicationTransport, {
      publish: async () => {
        throw new TransportError('not connected to the broker');
      },
    });
  }

  it('is bounded by maxOutboxBacklog: a warning, then the bound, the oldest dropped and a resync needed', async () => {
    const outbox = createKeySpace(prefix).internal('outbox', 'hk');
    const transport = brokerAway();
    const store = hkStore(client, prefix, transport, { maxOutboxBacklog: { entries: 20, warnAt: 0.5 } });
    const errors: Error[] = [];
    store.on('error', (e) => errors.push(e));
    const backlogErrors = () => errors.filter((e): e is BacklogError => e instanceof BacklogError);
    try {
      await store.ready();
      for (let i = 0; i < 12; i++) await store.set(store.genid(), session(i));
      await eventually(() => backlogErrors().some((e) => e.level === 'warning'), 15_000);
      expect(backlogErrors()[0]?.code).toBe('ERR_GEOSESSION_BACKLOG');
      expect(store.replicationStats()?.needsResync).toEqual({});
      for (let i = 12; i < 30; i++) await store.set(store.genid(), session(i));
      await eventually(() => backlogErrors().some((e) => e.level === 'exceeded'), 15_000);
      expect(await client.xlen(outbox)).toBeLessThanOrEqual(20);
      // What the outbox dropped, every region missed: the report names no single region.
      expect(backlogErrors().at(-1)?.region).toBe('*');
      expect(backlogErrors().at(-1)?.message).toMatch(/the outbox \(every region\)/);
      expect(Object.keys(store.replicationStats()?.needsResync ?? {})).toEqual(['*']);
    } finally {
      await store.close();
      await transport.close();
    }
  }, 40_000);
});
