/**
 * One process of the e2e suite (forked by bench/e2e.ts through bench/lib/child.ts). It plays one role:
 *
 * - `geo`: a region's GeoSessionStore on that region's Redis with a transport. In hk it writes
 *   (`write`), in kr it applies what arrives; the suite watches kr's Redis for the keys.
 * - `raw-publisher` / `raw-consumer`: the raw client floor (bench/e2e/raw-pipes.ts); the consumer keeps
 *   the lag of each message by phase for `collect`.
 * - `proxy`: a delay proxy (bench/lib/delay-proxy.ts) playing the link between regions.
 *
 * Only the public API is used: GeoSessionStore from src/index.ts and the transport factories from their
 * entry points, so the suite measures whatever the library holds when it is run.
 */
import { Redis } from 'ioredis';
import { createAmqpTransport } from '../../src/amqp.js';
import { GeoSessionStore, type ReplicationTransport } from '../../src/index.js';
import { createNatsTransport } from '../../src/nats.js';
import { createRedisStreamsTransport } from '../../src/redis-streams.js';
import { serveParent } from '../lib/child.js';
import { type DelayProxy, startDelayProxy } from '../lib/delay-proxy.js';
import { paceBatches, wallNow } from '../lib/lag.js';
import { makeSession } from '../lib/session.js';
import {
  openRawConsumer,
  openRawPublisher,
  type RawAddress,
  type RawConsumer,
  type RawPublisher,
  type TransportKind,
} from './raw-pipes.js';

/** What a `geo` process needs, every address as seen from this process. */
export interface GeoInit {
  region: 'hk' | 'kr';
  kind: TransportKind;
  /** Key prefix, which is also the replication channel. */
  prefix: string;
  /** Ports of each region's Redis (kr's process reaches hk's through the link for Redis Streams). */
  redisPorts: { hk: number; kr: number };
  amqpUrl: string;
  natsUrl: string;
  /** Unique names of this run's broker objects. */
  brokerPrefix: string;
}

/** Sid of a measured write: phase, sequence and send time (µs), read back from kr's keyspace events. */
export function sidOf(phase: number, seq: number, sentAt: number): string {
  return `p${phase}-${seq}-${Math.round(sentAt * 1000)}`;
}

/** Phase and send time (ms) of a sid made by {@link sidOf}, or undefined. */
export function parseSid(sid: string): { phase: number; sentAt: number } | undefined {
  const parts = sid.split('-');
  if (parts.length !== 3 || !parts[0]?.startsWith('p')) return undefined;
  return { phase: Number(parts[0].slice(1)), sentAt: Number(parts[2]) / 1000 };
}

let store: GeoSessionStore | undefined;
let closeGeo: (() => Promise<void>) | undefined;
let publisher: RawPublisher | undefined;
let consumer: RawConsumer | undefined;
let proxy: DelayProxy | undefined;
let cpuMark = process.cpuUsage();
let errors = 0;
let firstError: string | undefined;
const arrivals = new Map<number, number[]>();

function noteError(error: unknown): void {
  errors++;
  firstError ??= error instanceof Error ? error.message : String(error);
}

async function initGeo(init: GeoInit): Promise<void> {
  const own = new Redis({ port: init.redisPorts[init.region], host: '127.0.0.1' });
  const clients: Redis[] = [own];
  let transport: ReplicationTransport;
  if (init.kind === 'redis-streams') {
    const other = init.region === 'hk' ? 'kr' : 'hk';
    const otherClient = new Redis({ port: init.redisPorts[other], host: '127.0.0.1' });
    clients.push(otherClient);
    transport = createRedisStreamsTransport({ regions: { [init.region]: own, [other]: otherClient } });
  } else if (init.kind === 'amqp') {
    transport = createAmqpTransport({
      url: init.amqpUrl,
      regions: ['hk', 'kr'],
      namePrefix: init.brokerPrefix,
    });
  } else {
    transport = createNatsTransport({
      servers: init.natsUrl,
      regions: ['hk', 'kr'],
      streamPrefix: init.brokerPrefix.replace(/[^A-Za-z0-9_-]/g, '_'),
      subjectPrefix: init.brokerPrefix.replace(/[^A-Za-z0-9_-]/g, '_'),
    });
  }
  transport.on('error', noteError);
  store = new GeoSessionStore({
    region: init.region,
    client: own,
    prefix: init.prefix,
    transport,
    sealer: 'none',
  });
  store.on('error', noteError);
  await store.ready();
  closeGeo = async () => {
    await store?.close();
    await transport.close();
    for (const client of clients) client.disconnect();
  };
}

const template = makeSession(1);

/** Writes at `rate` for `ms` in batches every 10 ms; resolves when every write has settled. */
async function write(args: {
  phase: number;
  rate: number;
  ms: number;
}): Promise<{ sent: number; failed: number }> {
  const pending: Promise<unknown>[] = [];
  let failed = 0;
  const sent = await paceBatches(args.rate, args.ms, (seq) => {
    if (store) {
      const now = wallNow();
      const session = { ...template, views: seq, lastSeen: Math.round(now) };
      pending.push(store.set(sidOf(args.phase, seq, now), session).catch(() => failed++));
    } else if (publisher) {
      publisher.publish(args.phase);
    } else {
      throw new Error('nothing to write with: init a geo hk store or a raw publisher first');
    }
  });
  await Promise.all(pending);
  if (publisher) failed += await publisher.settle();
  return { sent, failed };
}

/** Waits until `count` messages of `phase` arrived (or `timeoutMs` passed); returns their lags in ms. */
async function collect(args: { phase: number; count: number; timeoutMs: number }): Promise<number[]> {
  const deadline = Date.now() + args.timeoutMs;
  while ((arrivals.get(args.phase)?.length ?? 0) < args.count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const lags = arrivals.get(args.phase) ?? [];
  arrivals.delete(args.phase);
  return lags;
}

serveParent({
  geo: (init: GeoInit) => initGeo(init),
  'raw-publisher': async (at: RawAddress) => {
    publisher = await openRawPublisher(at);
  },
  'raw-consumer': async (at: RawAddress) => {
    consumer = await openRawConsumer(at, (phase, sentAt, now) => {
      const list = arrivals.get(phase);
      if (list) list.push(now - sentAt);
      else arrivals.set(phase, [now - sentAt]);
    });
  },
  proxy: async (args: { targetPort: number; delayMs: number }) => {
    proxy = await startDelayProxy(args.targetPort, args.delayMs);
    return proxy.port;
  },
  write,
  collect,
  /** This process's clock, for the parent's check that clocks agree across processes. */
  clock: () => wallNow(),
  'cpu-mark': () => {
    cpuMark = process.cpuUsage();
  },
  /** CPU µs (user + system) since the last mark, and the errors seen since the last read. */
  'cpu-read': () => {
    const used = process.cpuUsage(cpuMark);
    const report = { cpuUs: used.user + used.system, errors, firstError };
    errors = 0;
    firstError = undefined;
    return report;
  },
  close: async () => {
    await closeGeo?.();
    await publisher?.close();
    await consumer?.close();
    await proxy?.close();
  },
});
