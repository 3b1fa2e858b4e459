/**
 * Every error that reaches the store's `error` event is a GeoSessionError with a stable `code` (issue 8
 * item 6, issue 11): background failures from the relay's trim timer on a stream that vanished, from
 * read-through, and from a transport whose broker or remote Redis went away; and a transport's errors
 * reach the store's listener, a raw one wrapped in a TransportError with the original as `cause`.
 */
import type { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import {
  GeoSessionError,
  type GeoSessionErrorCode,
  ReadThroughError,
  TransportError,
} from '../../src/errors.js';
import {
  createMemoryTransport,
  GeoSessionStore,
  generateSessionId,
  type SessionData,
} from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createAmqpTransport } from '../../src/transports/amqp.js';
import { createNatsTransport } from '../../src/transports/nats.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { type PrivateNats, startNats } from '../helpers/nats-server.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, serviceAvailable, startRedis, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { deleteTopology, recordChannels } from '../transports/amqp-fixtures.js';

/** The codes GeoSessionErrorCode promises (src/errors.ts), spelled out: a rename must break this test. */
const STABLE_CODES: readonly GeoSessionErrorCode[] = [
  'ERR_GEOSESSION_CONFIG',
  'ERR_GEOSESSION_TIMEOUT',
  'ERR_GEOSESSION_CORRUPT',
  'ERR_GEOSESSION_REDIS',
  'ERR_GEOSESSION_CLOSED',
  'ERR_GEOSESSION_TRANSPORT',
  'ERR_GEOSESSION_EVENT',
  'ERR_GEOSESSION_SEAL',
  'ERR_GEOSESSION_SESSION_ID',
  'ERR_GEOSESSION_DEPENDENCY',
  'ERR_GEOSESSION_BACKLOG',
  'ERR_GEOSESSION_RESYNC_NEEDED',
  'ERR_GEOSESSION_READ_THROUGH',
  'ERR_GEOSESSION_TRANSIENT',
  'ERR_GEOSESSION_MEMORY_POLICY',
  'ERR_GEOSESSION_SESSION_TOO_LARGE',
  'ERR_GEOSESSION_MESSAGE_TOO_LARGE',
];

const hasRabbit = await serviceAvailable('rabbitmq', 5672);
const hasNats = await serviceAvailable('nats', 4222);
const WAIT = 20_000;

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  };
}

/** Everything a store emitted as `error`, checked to be a GeoSessionError with a stable code. */
function expectStable(errors: unknown[]): void {
  for (const error of errors) {
    expect(error).toBeInstanceOf(GeoSessionError);
    expect(STABLE_CODES).toContain((error as GeoSessionError).code);
  }
}

describe.skipIf(!hasRedis)('errors reaching the store’s `error` event', () => {
  const servers = usePrivateRedisPair();
  const { opened } = servers;
  let hkClient: Redis;

  beforeAll(() => {
    hkClient = servers.hk.client();
  });

  function store(region: string, prefix: string, transport?: ReplicationTransport, extra = {}) {
    const s = new GeoSessionStore({
      region,
      client: region === 'hk' ? hkClient : servers.kr.client(),
      prefix,
      transport,
      sealer: 'none',
      ...extra,
    });
    const errors: unknown[] = [];
    s.on('error', (e) => errors.push(e));
    opened.push(...(transport ? [transport] : []), s);
    return { store: s, errors };
  }

  it('the relay (its reads and its trim timer) on an outbox that vanished', async () => {
    const prefix = uniquePrefix('err-trim');
    const outbox = createKeySpace(prefix).internal('outbox', 'hk');
    const { store: hk, errors } = store('hk', prefix, createMemoryTransport({ regions: ['hk', 'kr'] }));
    await hk.ready();
    await hk.set(hk.genid(), session({ n: 1 }));
    // The outbox goes missing again and again for longer than a trim interval (5 s).
    const until = Date.now() + 5500;
    while (Date.now() < until) {
      await hkClient.del(outbox);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Its reads lose their group (reported); its trim timer finds no stream (not an error).
    expect(errors.length).toBeGreaterThan(0);
    expectStable(errors);
    // And the store still works and replicates.
    await hk.set(hk.genid(), session({ n: 2 }));
  }, 20_000);

  it('read-through to a stalled remote: ReadThroughError', async () => {
    const prefix = uniquePrefix('err-rt');
    const { store: kr, errors } = store('kr', prefix, undefined, {
      remotes: { hk: hkClient },
      readThroughTimeoutMs: 100,
    });
    servers.hk.pause();
    expect(await kr.get(generateSessionId('hk'))).toBeNull();
    servers.hk.resume();
    expect(errors.some((e) => e instanceof ReadThroughError)).toBe(true);
    expectStable(errors);
  });

  it('a transport’s raw error reaches the store as a TransportError with it as cause', async () => {
    const prefix = uniquePrefix('err-raw');
    const transport = createMemoryTransport();
    const { store: hk, errors } = store('hk', prefix, transport);
    await hk.ready();
    const raw = new Error('something in a custom transport broke');
    (transport as unknown as EventEmitter).emit('error', raw);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TransportError);
    expect((errors[0] as TransportError).cause).toBe(raw);
    expectStable(errors);
  });

  it('Redis Streams: another region’s Redis goes away', async () => {
    const prefix = uniquePrefix('err-rs');
    const gone = await startRedis();
    const regions = { hk: hkClient, kr: gone.client() };
    const { store: hk, errors } = store('hk', prefix, createRedisStreamsTransport({ regions, blockMs: 200 }));
    await hk.ready();
    await gone.stop();
    await eventually(() => errors.some((e) => e instanceof TransportError), WAIT);
    await hk.set(hk.genid(), session({ n: 1 }));
    expectStable(errors);
  });

  describe.skipIf(!hasRabbit)('AMQP', () => {
    let proxy: TcpProxy;
    const namePrefix = `gserrors.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
    const seen = new Set<string>();
    beforeAll(async () => {
      proxy = await startTcpProxy(5672);
    });
    afterAll(async () => {
      await proxy?.close();
      await deleteTopology(seen, ['hk', 'kr'], namePrefix);
    });

    it('the broker goes away', async () => {
      const prefix = uniquePrefix('err-amqp');
      const transport = recordChannels(
        createAmqpTransport({
          url: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
          regions: ['hk', 'kr'],
          namePrefix,
          publishTimeoutMs: 1000,
          reconnectDelayMs: [50, 500],
        }),
        seen,
      );
      const { store: hk, errors } = store('hk', prefix, transport);
      await hk.ready();
      proxy.cut();
      await hk.set(hk.genid(), session({ n: 1 })); // the relay cannot publish it
      await eventually(() => errors.some((e) => e instanceof TransportError), WAIT);
      proxy.heal();
      expectStable(errors);
    });
  });

  describe.skipIf(!hasNats)('NATS', () => {
    let nats: PrivateNats;
    beforeAll(async () => {
      nats = await startNats();
    });
    afterAll(async () => {
      await nats?.stop();
    });

    it('the server goes away', async () => {
      const prefix = uniquePrefix('err-nats');
      const transport = createNatsTransport({
        servers: nats.url,
        regions: ['hk', 'kr'],
        publishTimeoutMs: 1000,
        idleHeartbeatMs: 500,
      });
      const { store: hk, errors } = store('hk', prefix, transport);
      await hk.ready();
      await nats.kill();
      await hk.set(hk.genid(), session({ n: 1 })); // the relay cannot publish it
      await eventually(() => errors.some((e) => e instanceof TransportError), WAIT);
      await nats.restart();
      expectStable(errors);
    });
  });
});
