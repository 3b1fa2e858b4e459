/**
 * The fault suite's deployment: three regions, each a private redis-server with an append-only file
 * fsynced on every write (so a crash loses nothing it acknowledged, as a production Redis with AOF would)
 * and a GeoSessionStore replicating over Redis Streams. Every region reads every other region's outbox
 * through its own TCP proxy, so each direction of each link can be cut, frozen and healed alone.
 *
 * Servers and proxies live for the whole suite; each schedule opens fresh stores on a fresh key prefix
 * (`open`) and closes them at its end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import type { GeoSessionError } from '../../src/errors.js';
import { createInvalidator, GeoSessionStore, type Invalidator } from '../../src/index.js';
import { createKeySpace, type KeySpace } from '../../src/keys.js';
import { amqpTopology, createAmqpTransport } from '../../src/transports/amqp.js';
import { createNatsTransport } from '../../src/transports/nats.js';
import { channelToken } from '../../src/transports/nats-options.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { generatePasetoKey, localSealer } from '../helpers/forgery.js';
import { freePort, type ServerProcess, startServerProcess } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { AMQP_URL, deleteTopology, recordChannels } from '../transports/amqp-fixtures.js';

export const REGIONS = ['hk', 'kr', 'sg'] as const;
export type RegionName = (typeof REGIONS)[number];

/** Tuning of every schedule's stores: short timeouts so that faults show within a schedule. */
export const STORE = {
  /** The stale-event horizon, s: far longer than a schedule, so no change may be refused as stale. */
  tombstoneTtl: 120,
  /** Half of it is how far ahead of Redis a host clock may push a version. */
  maxClockSkewMs: 2000,
  operationTimeoutMs: 500,
  /**
   * Numbers missing this long are a gap: longer than a broker takes to deliver a failed batch again (AMQP
   * and NATS back off up to 5 s, NATS redelivers a lost ack after `ackWaitMs`, 5 s), so that a batch on
   * its way back is not taken for a loss, and short enough that a `drop` is found within the settle.
   */
  gapGraceMs: 8000,
  heartbeatMs: 500,
} as const;

/** A redis-server that keeps its data across a crash (AOF, fsync always) unless it is wiped. */
export interface DurableRedis {
  readonly port: number;
  /** SIGKILL (a crash). `start` brings it back with every acknowledged write. */
  kill(): Promise<void>;
  /** Deletes its data files: the next `start` is an empty Redis (no persistence, a replacement). */
  forget(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a stall. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

async function startDurableRedis(): Promise<DurableRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'geosession-faults-'));
  const args = [
    ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--loglevel', 'warning'],
    ...['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir],
  ];
  const proc: ServerProcess = await startServerProcess('redis-server', args, port);
  let down = false;
  return {
    port,
    async kill() {
      down = true;
      await proc.kill();
    },
    async forget() {
      await rm(join(dir, 'appendonlydir'), { recursive: true, force: true });
    },
    async start() {
      if (!down) return;
      await proc.restart();
      down = false;
    },
    pause: () => proc.pause(),
    resume: () => proc.resume(),
    async stop() {
      await proc.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One region of an open schedule. */
export interface Region {
  readonly name: RegionName;
  readonly store: GeoSessionStore;
  /** The store's own client, and a direct client the checker reads with. */
  readonly client: Redis;
  readonly reader: Redis;
  /** How far this host's clock is off, ms (the store's `clock` and the cookies it is given). */
  clockOffsetMs: number;
  readonly errors: GeoSessionError[];
  /** Every change applied here, as `<origin> <op> <sid> <expiry>` (for a failure's report). */
  readonly applied: string[];
  /** The region's cache invalidator (test/faults/invalidation.ts), on the store's transport. */
  readonly invalidator: Invalidator;
}

/** How changes travel: each region reads the others' Redis, or every region goes through a broker. */
export type FaultTransport = 'redis-streams' | 'amqp' | 'nats';

const NATS_PORT = 4222;

export interface Deployment {
  readonly transport: FaultTransport;
  readonly servers: Record<RegionName, DurableRedis>;
  /**
   * `links[source][reader]`: the proxy through which `reader` reads `source`'s outbox (Redis Streams).
   * With a broker every entry of a row is the same proxy: `source`'s link to the broker, both ways.
   */
  readonly links: Record<RegionName, Record<RegionName, TcpProxy | undefined>>;
  /** Fresh stores on `prefix`; `sealed`: PASETO v4.local, so every change goes through a relay. */
  open(prefix: string, options?: { sealed?: boolean }): Promise<Schedule>;
  /**
   * Loses changes in transit (see the `drop` step): Redis Streams deletes the newest entry of the stream
   * the others read of `source`; AMQP purges `reader`'s queue; NATS purges `source`'s messages. False when
   * there was nothing to lose or the server was away.
   */
  drop(schedule: Schedule, source: RegionName, reader: RegionName): Promise<boolean>;
  stop(): Promise<void>;
}

export interface Schedule {
  readonly keys: KeySpace;
  /** Changes are sealed: the other regions read each region's relay stream, not its outbox. */
  readonly sealed: boolean;
  readonly regions: Region[];
  close(): Promise<void>;
}

function client(port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  c.on('error', () => {});
  return c;
}

export async function startDeployment(kind: FaultTransport = 'redis-streams'): Promise<Deployment> {
  const servers = {} as Record<RegionName, DurableRedis>;
  for (const r of REGIONS) servers[r] = await startDurableRedis();
  const links = {} as Record<RegionName, Record<RegionName, TcpProxy | undefined>>;
  const amqpPort = Number(new URL(AMQP_URL).port);
  for (const source of REGIONS) {
    links[source] = {} as Record<RegionName, TcpProxy | undefined>;
    const toBroker =
      kind === 'amqp'
        ? await startTcpProxy(amqpPort)
        : kind === 'nats'
          ? await startTcpProxy(NATS_PORT)
          : undefined;
    for (const reader of REGIONS) {
      if (reader === source) continue;
      links[source][reader] = toBroker ?? (await startTcpProxy(servers[source].port));
    }
  }
  /** The port of `region`'s link to the broker (every entry of its row is the same proxy). */
  const brokerPort = (region: RegionName) => Object.values(links[region])[0]?.port as number;

  async function open(prefix: string, options: { sealed?: boolean } = {}): Promise<Schedule> {
    const keys = createKeySpace(prefix);
    const sealKey = options.sealed ? generatePasetoKey().key : undefined;
    const extra: Redis[] = [];
    const transports: { close(): Promise<void> }[] = [];
    const channels = new Set<string>();
    const namePrefix = namePrefixOf(prefix);

    const transportOf = (name: RegionName, own: Redis): ReplicationTransport => {
      const regions = [...REGIONS];
      if (kind === 'amqp') {
        const url = new URL(AMQP_URL);
        url.port = String(brokerPort(name));
        const amqp = createAmqpTransport({ url: url.toString(), regions, namePrefix, retryDelayMs: 200 });
        return recordChannels(amqp, channels);
      }
      if (kind === 'nats') {
        const servers = `nats://127.0.0.1:${brokerPort(name)}`;
        const prefixes = { streamPrefix: namePrefix, subjectPrefix: namePrefix };
        return createNatsTransport({ servers, regions, ...prefixes, retryDelayMs: 200, ackWaitMs: 5000 });
      }
      // Every other region's Redis through the proxy of that link.
      const peers: Record<string, Redis> = { [name]: own };
      for (const source of REGIONS) {
        if (source === name) continue;
        peers[source] = client(links[source][name]?.port ?? 0);
        extra.push(peers[source]);
      }
      return createRedisStreamsTransport({
        regions: peers,
        blockMs: 200,
        watchdogMs: 1000,
        trimIntervalMs: 500,
      });
    };

    const regions = REGIONS.map((name): Region => {
      const own = client(servers[name].port);
      const reader = client(servers[name].port);
      extra.push(own, reader);
      const transport = transportOf(name, own);
      transports.push(transport);
      // `region` is read by these closures only once the store runs, after it is made below.
      const store = new GeoSessionStore({
        region: name,
        client: own,
        prefix,
        transport,
        replicateTouchAfter: 0,
        // The per-user index (test/faults/users.ts): every session carries its user.
        userId: (session) => (session as { user?: string }).user,
        sealer: 'none',
        ...(sealKey ? { sealer: localSealer([sealKey]) } : {}),
        ...STORE,
        clock: () => Date.now() + region.clockOffsetMs,
      });
      const invalidator = createInvalidator({
        client: own,
        region: name,
        transport,
        channel: `${prefix}inv:`,
        sealer: sealKey ? localSealer([sealKey]) : 'none',
        operationTimeoutMs: STORE.operationTimeoutMs,
        gapGraceMs: STORE.gapGraceMs,
        heartbeatMs: STORE.heartbeatMs,
      });
      invalidator.on('error', () => {});
      const region: Region = {
        name,
        store,
        client: own,
        reader,
        clockOffsetMs: 0,
        errors: [],
        applied: [],
        invalidator,
      };
      store.on('error', (e) => region.errors.push(e));
      store.on('replicated', (b) => {
        for (const e of b.events) region.applied.push(`${e.origin} ${e.op} ${e.sid} ${e.expiresAt} ${e.id}`);
      });
      transport.on('resync', (n: { region: string; reason: string }) =>
        region.applied.push(`RESYNC ${n.region} at ${Date.now()}: ${n.reason.slice(0, 60)}`),
      );
      return region;
    });
    await Promise.all(regions.flatMap((r) => [r.store.ready(), r.invalidator.ready()]));
    return {
      keys,
      sealed: sealKey !== undefined,
      regions,
      async close() {
        await Promise.all(regions.flatMap((r) => [r.store.close(), r.invalidator.close()]));
        await Promise.all(transports.map((t) => t.close()));
        for (const c of extra) c.disconnect();
        if (kind === 'amqp') await deleteTopology(channels, [...REGIONS], namePrefix);
        if (kind === 'nats') await deleteNatsStreams(namePrefix);
      },
    };
  }

  async function drop(schedule: Schedule, source: RegionName, reader: RegionName): Promise<boolean> {
    const prefix = schedule.keys.prefix;
    try {
      if (kind === 'amqp') {
        const conn = await amqplib.connect(AMQP_URL);
        try {
          const ch = await conn.createChannel();
          const queue = amqpTopology(prefix, [...REGIONS], namePrefixOf(prefix)).queues[reader] as string;
          const { messageCount } = await ch.purgeQueue(queue);
          return messageCount > 0;
        } finally {
          await conn.close().catch(() => {});
        }
      }
      if (kind === 'nats') {
        const nats = await natsConnect({ servers: `nats://127.0.0.1:${NATS_PORT}` });
        try {
          const jsm = await jetstreamManager(nats);
          const token = channelToken(prefix);
          const name = namePrefixOf(prefix);
          const { purged } = await jsm.streams.purge(`${name}_${token}`, {
            filter: `${name}.${token}.${source}`,
          });
          return purged > 0;
        } finally {
          await nats.close();
        }
      }
      const region = schedule.regions.find((r) => r.name === source);
      const read = schedule.keys.internal(schedule.sealed ? 'relay' : 'outbox', source);
      const newest = await region?.reader.xrevrange(read, '+', '-', 'COUNT', 1);
      const id = newest?.[0]?.[0];
      return id !== undefined && (await region?.reader.xdel(read, id)) === 1;
    } catch {
      return false;
    }
  }

  return {
    transport: kind,
    servers,
    links,
    open,
    drop,
    async stop() {
      const proxies = new Set(REGIONS.flatMap((source) => Object.values(links[source])));
      for (const proxy of proxies) await proxy?.close();
      for (const r of REGIONS) await servers[r].stop();
    },
  };
}

/** The broker names of a schedule's prefix (AMQP `namePrefix`, NATS stream and subject prefix). */
function namePrefixOf(prefix: string): string {
  return `gsfaults_${prefix.replace(/[^a-z0-9]/gi, '')}`;
}

/** Deletes the JetStream streams a schedule's NATS transports made. */
async function deleteNatsStreams(streamPrefix: string): Promise<void> {
  const nats = await natsConnect({ servers: `nats://127.0.0.1:${NATS_PORT}` });
  try {
    const jsm = await jetstreamManager(nats);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(streamPrefix)) await jsm.streams.delete(name).catch(() => false);
    }
  } finally {
    await nats.close();
  }
}
