/**
 * A multi-region deployment for end-to-end tests over a real transport: every region is its own private
 * redis-server and runs one GeoSessionStore with its own transport instance, as separate processes in
 * separate regions would. Regions can be restarted with new options (a rolling deploy), and the helper
 * plays the attacker too: it writes envelopes and frames straight where the other regions read them (a
 * raw XADD to an outbox or relay stream, a raw AMQP publish to the exchange, a raw NATS publish to the
 * subject), and it reads what the broker or stream holds in transit.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import amqplib from 'amqplib';
import type { Cluster, Redis } from 'ioredis';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { Sealer } from '../../src/contracts/sealer.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { GeoSessionStore, type RejectedEnvelope } from '../../src/index.js';
import { createKeySpace, type KeySpace } from '../../src/keys.js';
import { amqpTopology, createAmqpTransport } from '../../src/transports/amqp.js';
import { channelToken, createNatsTransport } from '../../src/transports/nats.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { encodeFrames } from '../../src/wire/broker-frame.js';
import { entryFields } from '../../src/wire/stream-entry.js';
import { AMQP_URL, deleteTopology } from '../transports/amqp-fixtures.js';
import { type PrivateRedis, serviceAvailable, startRedis } from './servers.js';

export type TransportKind = 'redis-streams' | 'amqp' | 'nats';
export const TRANSPORT_KINDS: readonly TransportKind[] = ['redis-streams', 'amqp', 'nats'];

const NATS_URL = 'nats://127.0.0.1:4222';

/** Whether the servers `kind` needs answer (under CI a missing one fails, elsewhere it skips loudly). */
export async function transportAvailable(kind: TransportKind): Promise<boolean> {
  if (!(await serviceAvailable('redis', 6379))) return false;
  if (kind === 'amqp') return serviceAvailable('rabbitmq', 5672);
  if (kind === 'nats') return serviceAvailable('nats', 4222);
  return true;
}

/** What a region runs with; everything else is the same in every region. */
export interface RegionConfig {
  sealer?: Sealer;
  acceptUnsealed?: boolean;
  sendUnsealed?: boolean;
  /** Store options of this region only (after the deployment's `store` options). */
  store?: Record<string, unknown>;
}

export interface Deployment {
  readonly kind: TransportKind;
  readonly regions: readonly string[];
  readonly prefix: string;
  readonly keys: KeySpace;
  /** Each region's own Redis, full access. */
  readonly clients: Readonly<Record<string, Redis>>;
  readonly servers: Readonly<Record<string, PrivateRedis>>;
  /** Every refusal each region made, across restarts. */
  readonly rejected: Record<string, RejectedEnvelope[]>;
  /** Every `error` event of each region's store, across restarts. */
  readonly errors: Record<string, Error[]>;
  /** Starts a region's store (and transport) and waits until it is ready. */
  start(region: string, config?: RegionConfig): Promise<GeoSessionStore>;
  /** Stops a region's store and transport (what was not acknowledged is delivered again later). */
  stop(region: string): Promise<void>;
  /**
   * A new transport for `region`, configured as its store's would be, for components other than the
   * store (a replication node on another channel); closed by {@link Deployment.close} if still open.
   */
  transport(region: string): ReplicationTransport;
  /** Stops and starts a region with new options, as a rolling deploy does. */
  restart(region: string, config?: RegionConfig): Promise<GeoSessionStore>;
  /** The running store of a region (throws when it is stopped). */
  store(region: string): GeoSessionStore;
  /** True while a region's store runs. */
  running(region: string): boolean;
  /**
   * Puts envelopes where the other regions read what their origin sends, bypassing every store: the
   * broker exchange or subject, or (Redis Streams) the origin's `relay` stream, or its `outbox`.
   */
  inject(envelopes: readonly Envelope[], stream?: 'outbox' | 'relay'): Promise<void>;
  /** Puts a frame that is not an envelope where the other regions read `origin`'s envelopes. */
  injectRaw(origin: string, raw: string, stream?: 'outbox' | 'relay'): Promise<void>;
  /**
   * Everything the broker carried between regions so far (AMQP: copies from a queue bound to every
   * routing key; NATS: every message of the stream), or what the streams the other regions read hold
   * (Redis Streams: `relay` streams by default), one string per message or entry.
   */
  inTransit(stream?: 'outbox' | 'relay'): Promise<string[]>;
  close(): Promise<void>;
}

export interface DeploymentOptions {
  prefix?: string;
  /** Store options every region gets (besides region, client, prefix, transport and the region config). */
  store?: Record<string, unknown>;
  /** Options added to every region's transport, by kind (e.g. a longer `trimIntervalMs` to inspect streams). */
  transport?: Partial<Record<TransportKind, Record<string, unknown>>>;
  /**
   * Each region's Redis client, given instead of a private redis-server per region (e.g. a Redis
   * Cluster client); the caller keeps them (close() never quits them). `servers` is then empty.
   */
  clients?: Readonly<Record<string, Redis | Cluster>>;
  /** Redis Streams: the clients a region's transport uses for every region (default: full clients). */
  transportClients?: (region: string, clients: Readonly<Record<string, Redis>>) => Record<string, Redis>;
}

let counter = 0;

/** Starts one private redis-server per region; stores start with {@link Deployment.start}. */
export async function createDeployment(
  kind: TransportKind,
  regions: readonly string[],
  options: DeploymentOptions = {},
): Promise<Deployment> {
  const prefix = options.prefix ?? 'sess:';
  const keys = createKeySpace(prefix);
  const id = `${process.pid}x${Date.now().toString(36)}x${++counter}`;
  const servers: Record<string, PrivateRedis> = {};
  const clients: Record<string, Redis> = {};
  for (const region of regions) {
    const given = options.clients?.[region];
    if (given) {
      clients[region] = given as Redis;
      continue;
    }
    const server = await startRedis();
    servers[region] = server;
    clients[region] = server.client();
  }
  const running = new Map<string, { store: GeoSessionStore; transport: ReplicationTransport }>();
  /** Transports made for other components, closed with the deployment. */
  const extra: ReplicationTransport[] = [];
  const rejected: Record<string, RejectedEnvelope[]> = {};
  const errors: Record<string, Error[]> = {};
  for (const region of regions) {
    rejected[region] = [];
    errors[region] = [];
  }

  // Broker-side tools of the attacker and the observer.
  const namePrefix = `gsdep${id}`;
  const streamPrefix = `GSDEP_${id}`;
  const subjectPrefix = `gsdep.${id}`;
  let amqp: { conn: amqplib.ChannelModel; ch: amqplib.ConfirmChannel; spy: string } | undefined;
  let nats: NatsConnection | undefined;
  const seen: string[] = [];
  if (kind === 'amqp') {
    const conn = await amqplib.connect(AMQP_URL);
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    const { exchange } = amqpTopology(prefix, regions, namePrefix);
    await ch.assertExchange(exchange, 'topic', { durable: true, autoDelete: false });
    const spy = `${namePrefix}.spy`;
    await ch.assertQueue(spy, { durable: false, autoDelete: false });
    await ch.bindQueue(spy, exchange, '#');
    amqp = { conn, ch, spy };
  }
  if (kind === 'nats') nats = await natsConnect({ servers: NATS_URL });

  function makeTransport(region: string): ReplicationTransport {
    if (kind === 'amqp') {
      return createAmqpTransport({
        url: AMQP_URL,
        regions: [...regions],
        namePrefix,
        retryDelayMs: 200,
        ...options.transport?.[kind],
      });
    }
    if (kind === 'nats') {
      return createNatsTransport({
        servers: NATS_URL,
        regions: [...regions],
        streamPrefix,
        subjectPrefix,
        retryDelayMs: 200,
        ackWaitMs: 5000,
        ...options.transport?.[kind],
      });
    }
    return createRedisStreamsTransport({
      regions: options.transportClients?.(region, clients) ?? { ...clients },
      blockMs: 200,
      watchdogMs: 2000,
      claimIdleMs: 1000,
      trimIntervalMs: 250,
      ...options.transport?.[kind],
    });
  }

  async function start(region: string, config: RegionConfig = {}): Promise<GeoSessionStore> {
    if (running.has(region)) throw new Error(`${region} is running`);
    const transport = makeTransport(region);
    const store = new GeoSessionStore({
      region,
      client: clients[region] as Redis,
      prefix,
      tombstoneTtl: 600,
      replicateTouchAfter: 0,
      transport,
      sealer: 'none',
      ...options.store,
      ...(config.sealer ? { sealer: config.sealer } : {}),
      ...(config.acceptUnsealed ? { acceptUnsealed: true } : {}),
      ...(config.sendUnsealed ? { sendUnsealed: true } : {}),
      ...config.store,
    });
    store.on('rejected', (r) => rejected[region]?.push(r));
    store.on('error', (e) => errors[region]?.push(e));
    running.set(region, { store, transport });
    await store.ready();
    return store;
  }

  async function stop(region: string): Promise<void> {
    const entry = running.get(region);
    if (!entry) return;
    running.delete(region);
    await entry.store.close();
    await entry.transport.close();
  }

  function streamKey(origin: string, stream: 'outbox' | 'relay'): string {
    return keys.internal(stream, origin);
  }

  async function publishFrames(origin: string, frames: { routing: string; text: string }[]): Promise<void> {
    if (amqp) {
      const { exchange } = amqpTopology(prefix, regions, namePrefix);
      for (const frame of frames) amqp.ch.publish(exchange, frame.routing, Buffer.from(frame.text));
      await amqp.ch.waitForConfirms();
    } else if (nats) {
      const js = jetstream(nats);
      for (const frame of frames) {
        await js.publish(`${subjectPrefix}.${channelToken(prefix)}.${origin}`, frame.text);
      }
    }
  }

  const deployment: Deployment = {
    kind,
    regions,
    prefix,
    keys,
    clients,
    servers,
    rejected,
    errors,
    start,
    stop,
    transport(region) {
      const transport = makeTransport(region);
      extra.push(transport);
      return transport;
    },
    async restart(region, config) {
      await stop(region);
      return start(region, config);
    },
    store(region) {
      const entry = running.get(region);
      if (!entry) throw new Error(`${region} is not running`);
      return entry.store;
    },
    running: (region) => running.has(region),
    async inject(envelopes, stream = 'relay') {
      for (const envelope of envelopes) {
        if (kind === 'redis-streams') {
          const client = clients[envelope.origin];
          if (!client) throw new Error(`no region ${envelope.origin}`);
          await client.xadd(streamKey(envelope.origin, stream), '*', ...entryFields(envelope));
        } else {
          await publishFrames(envelope.origin, [
            {
              routing: `${envelope.origin}.${envelope.kind}`,
              text: (encodeFrames([envelope])[0] as { text: string }).text,
            },
          ]);
        }
      }
    },
    async injectRaw(origin, raw, stream = 'relay') {
      if (kind === 'redis-streams') {
        await (clients[origin] as Redis).xadd(streamKey(origin, stream), '*', 'raw', raw);
      } else {
        await publishFrames(origin, [{ routing: `${origin}.session`, text: raw }]);
      }
    },
    async inTransit(stream = 'relay') {
      if (kind === 'redis-streams') {
        const out: string[] = [];
        for (const region of regions) {
          const entries = await (clients[region] as Redis).xrange(streamKey(region, stream), '-', '+');
          for (const [, fields] of entries) out.push(fields.join(' '));
        }
        return out;
      }
      if (amqp) {
        for (;;) {
          const message = await amqp.ch.get(amqp.spy, { noAck: true });
          if (message === false) break;
          seen.push(message.content.toString('utf8'));
        }
        return [...seen];
      }
      const jsm = await jetstreamManager(nats as NatsConnection);
      const name = `${streamPrefix}_${channelToken(prefix)}`;
      const info = await jsm.streams.info(name);
      const out: string[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const message = await jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (message) out.push(message.string());
      }
      return out;
    },
    async close() {
      for (const region of [...running.keys()]) await stop(region);
      for (const transport of extra.splice(0)) await transport.close().catch(() => {});
      if (amqp) {
        await amqp.ch.deleteQueue(amqp.spy).catch(() => {});
        await amqp.conn.close().catch(() => {});
        await deleteTopology([prefix], [...regions], namePrefix);
      }
      if (nats) {
        const jsm = await jetstreamManager(nats);
        for await (const name of jsm.streams.names()) {
          if (name.startsWith(streamPrefix)) await jsm.streams.delete(name);
        }
        await nats.close();
      }
      await Promise.all(Object.values(servers).map((s) => s.stop()));
    },
  };
  return deployment;
}
