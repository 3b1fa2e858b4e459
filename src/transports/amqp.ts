import { createHash } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, Options, SocketOptions } from 'amqplib';
import { ClosedError, ConfigError, TransportError } from '../errors.js';
import { delay, TransportEvents } from '../internal/transport-state.js';
import { encodeEvent } from '../replication/codec.js';
import type { ChangeEvent } from '../replication/events.js';
import { isValidRegion } from '../session-id.js';
import { AmqpConsumer, type AmqpHost } from './amqp-consumer.js';
import type { ReplicationTransport, SubscribeOptions, Subscription } from './transport.js';

/** Options of {@link createAmqpTransport}. */
export interface AmqpTransportOptions {
  /**
   * Broker address: an `amqp://` / `amqps://` URL, or amqplib's connection object. A `heartbeat` of
   * {@link AmqpTransportOptions.heartbeatSeconds} is added unless the URL or object sets one.
   */
  url: string | Options.Connect;
  /**
   * Every region of the deployment, this process's own included. Each gets a durable queue per channel
   * as soon as the channel is used, so a region that is away keeps receiving into its queue.
   */
  regions: string[];
  /**
   * First part of every exchange and queue name (`<namePrefix>.<channel>` ...), letters, digits, `.`,
   * `_` and `-`.
   * @default 'geosession'
   */
  namePrefix?: string;
  /**
   * Type of the queues created: plain classic durable queues (RabbitMQ and LavinMQ), or RabbitMQ quorum
   * queues (replicated). Changing it for existing queues fails until they are deleted.
   * @default 'classic'
   */
  queueType?: 'classic' | 'quorum';
  /**
   * Unacknowledged deliveries per subscription (basic.qos). Defaults to twice the subscription's
   * `maxBatch`, at least 100.
   */
  prefetch?: number;
  /**
   * Publisher confirm window: events published but not yet confirmed, across all publish calls.
   * @default 1000
   */
  maxInFlight?: number;
  /**
   * A publish that is not confirmed within this many ms (including waiting for a connection) rejects
   * with a `TransportError`; the relay retries it later.
   * @default 5000
   */
  publishTimeoutMs?: number;
  /**
   * Time allowed for the TCP connect and AMQP handshake, in ms. `subscribe` also resolves after at most
   * this long when the broker is away; the consumer then starts as soon as the broker is back.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * AMQP heartbeat interval in seconds (a dead peer is noticed after about two intervals).
   * @default 10
   */
  heartbeatSeconds?: number;
  /**
   * Pause before a batch whose handler rejected is returned to its queue (nack with requeue), in ms.
   * @default 1000
   */
  retryDelayMs?: number;
  /**
   * When fewer than `maxBatch` deliveries are waiting, how long to wait for more before handing them
   * over, in ms. With 0 a batch is what arrived together (and what piled up while the previous batch
   * was handled), which batches well under load without adding latency.
   * @default 0
   */
  batchLingerMs?: number;
  /**
   * First and largest delay between reconnect attempts, in ms (exponential backoff with jitter).
   * @default [100, 10000]
   */
  reconnectDelayMs?: [min: number, max: number];
  /**
   * Extra socket options for amqplib (TLS certificates, `clientProperties`...). `noDelay` is `true`
   * unless set here: Nagle's algorithm otherwise adds about 40 ms to each confirm and delivery.
   */
  socketOptions?: SocketOptions;
}

/** The broker names the transport uses for one channel; see {@link amqpTopology}. */
export interface AmqpTopology {
  /** Durable topic exchange every region publishes to. */
  exchange: string;
  /** Durable queue of each destination region, by region id. */
  queues: Record<string, string>;
  /** Binding keys of each destination region's queue: one `<origin>.#` per other region. */
  bindings: Record<string, string[]>;
}

/**
 * The exchange, queue and binding names used for `channel` (a store's key prefix). Characters other
 * than letters and digits in the channel are written as `_xx` (hex), so distinct prefixes never share
 * a name; `''` becomes `-`. Useful for monitoring and for removing a channel's topology.
 */
export function amqpTopology(
  channel: string,
  regions: readonly string[],
  namePrefix = 'geosession',
): AmqpTopology {
  const base = `${namePrefix}.${encodeChannel(channel)}`;
  const queues: Record<string, string> = {};
  const bindings: Record<string, string[]> = {};
  for (const region of regions) {
    queues[region] = `${base}.${region}`;
    bindings[region] = regions.filter((origin) => origin !== region).map((origin) => `${origin}.#`);
  }
  return { exchange: `${base}.events`, queues, bindings };
}

function encodeChannel(channel: string): string {
  if (channel === '') return '-';
  let out = '';
  for (const byte of Buffer.from(channel, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9]/.test(ch) ? ch : `_${byte.toString(16).padStart(2, '0')}`;
  }
  // AMQP names are at most 255 bytes: long channels keep a readable head and a digest.
  if (out.length > 120) out = `${out.slice(0, 80)}_h${createHash('sha1').update(channel).digest('hex')}`;
  return out;
}

/**
 * The AMQP 0-9-1 transport (RabbitMQ, LavinMQ) on amqplib. Per channel (store prefix) it declares a
 * durable topic exchange and one durable queue per region bound to the other regions' routing keys
 * (`<origin>.<op>`); events are persistent messages (`messageId` = event id) published on a confirm
 * channel, and a subscription consumes its region's queue with manual acks, a batch at a time. It
 * reconnects by itself with backoff and rebuilds channels, topology and consumers.
 *
 * Needs the optional peer dependency `amqplib`, loaded only when the transport first connects.
 *
 * @example
 * const transport = createAmqpTransport({ url: 'amqp://guest:guest@127.0.0.1:5672', regions: ['hk', 'kr'] });
 * const store = new GeoSessionStore({ region: 'hk', client: redis, transport });
 */
export function createAmqpTransport(options: AmqpTransportOptions): ReplicationTransport {
  return new AmqpTransport(options);
}

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(name, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

interface ResolvedOptions {
  url: string | Options.Connect;
  regions: readonly string[];
  namePrefix: string;
  queueType: 'classic' | 'quorum';
  prefetch: number | undefined;
  maxInFlight: number;
  publishTimeoutMs: number;
  connectTimeoutMs: number;
  retryDelayMs: number;
  batchLingerMs: number;
  reconnectDelayMs: [number, number];
  socketOptions: SocketOptions;
}

function resolve(options: AmqpTransportOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError('url', 'is required');
  const heartbeat = positiveInt('heartbeatSeconds', options.heartbeatSeconds, 10, 0);
  let url: string | Options.Connect;
  if (typeof options.url === 'string') {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new ConfigError('url', 'is not a valid URL');
    }
    if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
      throw new ConfigError('url', `must be an amqp:// or amqps:// URL, got ${parsed.protocol}`);
    }
    if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(heartbeat));
    url = parsed.toString();
  } else if (typeof options.url === 'object' && options.url !== null) {
    url = { heartbeat, ...options.url };
  } else {
    throw new ConfigError('url', 'is required: an amqp:// URL or an amqplib connection object');
  }
  if (!Array.isArray(options.regions))
    throw new ConfigError('regions', 'is required: an array of region ids');
  for (const region of options.regions) {
    if (!isValidRegion(region))
      throw new ConfigError('regions', `contains an invalid region id: ${String(region)}`);
  }
  const regions = [...new Set(options.regions)];
  if (regions.length < 2) throw new ConfigError('regions', 'must name at least two distinct regions');
  const namePrefix = options.namePrefix ?? 'geosession';
  if (typeof namePrefix !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(namePrefix)) {
    throw new ConfigError('namePrefix', 'must be 1 to 64 letters, digits, ".", "_" or "-"');
  }
  const queueType = options.queueType ?? 'classic';
  if (queueType !== 'classic' && queueType !== 'quorum') {
    throw new ConfigError('queueType', `must be 'classic' or 'quorum', got ${String(queueType)}`);
  }
  const reconnect = options.reconnectDelayMs ?? [100, 10_000];
  if (
    !Array.isArray(reconnect) ||
    reconnect.length !== 2 ||
    !reconnect.every((n) => typeof n === 'number' && Number.isFinite(n) && n > 0) ||
    reconnect[0] > reconnect[1]
  ) {
    throw new ConfigError('reconnectDelayMs', 'must be [min, max] positive ms with min <= max');
  }
  return {
    url,
    regions,
    namePrefix,
    queueType,
    prefetch: options.prefetch === undefined ? undefined : positiveInt('prefetch', options.prefetch, 0),
    maxInFlight: positiveInt('maxInFlight', options.maxInFlight, 1000),
    publishTimeoutMs: positiveInt('publishTimeoutMs', options.publishTimeoutMs, 5000),
    connectTimeoutMs: positiveInt('connectTimeoutMs', options.connectTimeoutMs, 5000),
    retryDelayMs: positiveInt('retryDelayMs', options.retryDelayMs, 1000, 0),
    batchLingerMs: positiveInt('batchLingerMs', options.batchLingerMs, 0, 0),
    reconnectDelayMs: [reconnect[0], reconnect[1]],
    socketOptions: { noDelay: true, ...(options.socketOptions ?? {}) },
  };
}

type Amqplib = typeof import('amqplib');
let amqplibModule: Promise<Amqplib> | undefined;

function loadAmqplib(): Promise<Amqplib> {
  amqplibModule ??= import('amqplib').then(
    (mod) => ((mod as { default?: Amqplib }).default ?? mod) as Amqplib,
    (error: unknown) => {
      amqplibModule = undefined;
      throw new TransportError('the AMQP transport needs the package `amqplib` (npm i amqplib)', {
        cause: error,
      });
    },
  );
  return amqplibModule;
}

class AmqpTransport extends TransportEvents implements ReplicationTransport, AmqpHost {
  readonly name = 'amqp';
  readonly readsOutbox = false;
  readonly options: ResolvedOptions;
  private conn: ChannelModel | undefined;
  private connWaiters: Array<(conn: ChannelModel | undefined) => void> = [];
  private publishChannel: Promise<ConfirmChannel> | undefined;
  /** Channels whose topology the publish channel's connection has declared. */
  private declared = new Map<string, Promise<void>>();
  private inFlight = 0;
  private slotWaiters: Array<() => void> = [];
  private readonly publishes = new Set<Promise<unknown>>();
  private readonly consumers = new Set<AmqpConsumer>();
  private closed = false;
  private wakeLoop: (() => void) | undefined;
  private readonly loop: Promise<void>;

  constructor(options: AmqpTransportOptions) {
    super();
    this.options = resolve(options);
    this.loop = this.connectLoop();
  }

  override reportError(error: unknown): void {
    super.reportError(error);
  }

  connection(signal?: Promise<void>): Promise<ChannelModel | undefined> {
    if (this.conn || this.closed) return Promise.resolve(this.conn);
    return new Promise((resolve) => {
      const waiter = (conn: ChannelModel | undefined) => resolve(conn);
      this.connWaiters.push(waiter);
      signal?.then(() => {
        this.connWaiters = this.connWaiters.filter((w) => w !== waiter);
        resolve(undefined);
      });
    });
  }

  private async connectLoop(): Promise<void> {
    const [minDelay, maxDelay] = this.options.reconnectDelayMs;
    let failures = 0;
    while (!this.closed) {
      let conn: ChannelModel;
      try {
        const amqp = await loadAmqplib();
        conn = await amqp.connect(this.options.url, {
          timeout: this.options.connectTimeoutMs,
          ...this.options.socketOptions,
        });
      } catch (error) {
        failures++;
        // One report when the broker goes away, then one every tenth attempt: no log flood in an outage.
        if (failures === 1 || failures % 10 === 0) {
          this.reportError(
            new TransportError(`connecting to the AMQP broker failed (${failures}x)`, { cause: error }),
          );
        }
        const base = Math.min(maxDelay, minDelay * 2 ** Math.min(failures - 1, 20));
        await this.sleep(base * (0.8 + Math.random() * 0.4));
        continue;
      }
      failures = 0;
      const lost = new Promise<unknown>((resolve) => conn.once('close', resolve));
      conn.on('error', (error: Error) =>
        this.reportError(new TransportError('AMQP connection error', { cause: error })),
      );
      conn.on('blocked', () => this.setState('degraded'));
      conn.on('unblocked', () => this.setState('ready'));
      if (this.closed) {
        await conn.close().catch(() => {});
        break;
      }
      this.conn = conn;
      this.declared = new Map();
      this.publishChannel = undefined;
      this.setState('ready');
      for (const waiter of this.connWaiters.splice(0)) waiter(conn);
      const reason = await lost;
      this.conn = undefined;
      this.publishChannel = undefined;
      if (this.closed) break;
      this.setState('degraded');
      this.reportError(new TransportError('the AMQP connection was lost; reconnecting', { cause: reason }));
      await this.sleep(minDelay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref?.();
      this.wakeLoop = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async declare(ch: Channel, channel: string): Promise<void> {
    const topology = amqpTopology(channel, this.options.regions, this.options.namePrefix);
    const args = this.options.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : undefined;
    await ch.assertExchange(topology.exchange, 'topic', { durable: true, autoDelete: false });
    for (const region of this.options.regions) {
      const queue = topology.queues[region] as string;
      await ch.assertQueue(queue, { durable: true, exclusive: false, autoDelete: false, arguments: args });
      for (const key of topology.bindings[region] ?? []) await ch.bindQueue(queue, topology.exchange, key);
    }
  }

  private getPublishChannel(conn: ChannelModel): Promise<ConfirmChannel> {
    if (this.publishChannel) return this.publishChannel;
    const opening = conn.createConfirmChannel().then((ch) => {
      ch.on('error', (error: Error) =>
        this.reportError(new TransportError('the AMQP publish channel failed', { cause: error })),
      );
      ch.once('close', () => {
        // Server-closed (e.g. 404 after an exchange was deleted): reopen and redeclare on next publish.
        if (this.publishChannel === opening) {
          this.publishChannel = undefined;
          this.declared = new Map();
        }
      });
      return ch;
    });
    opening.catch(() => {
      if (this.publishChannel === opening) this.publishChannel = undefined;
    });
    this.publishChannel = opening;
    return opening;
  }

  private ensureDeclared(ch: ConfirmChannel, channel: string): Promise<void> {
    let done = this.declared.get(channel);
    if (!done) {
      const map = this.declared;
      done = this.declare(ch, channel);
      done.catch(() => map.delete(channel));
      map.set(channel, done);
    }
    return done;
  }

  async publish(channel: string, events: readonly ChangeEvent[]): Promise<void> {
    if (this.closed) throw new ClosedError('the amqp transport');
    if (events.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    let abort: () => void = () => {};
    const timedOut = new Promise<void>((resolve) => {
      abort = resolve;
      timer = setTimeout(resolve, this.options.publishTimeoutMs);
    });
    const work = this.publishNow(channel, events, timedOut);
    this.publishes.add(work);
    try {
      const outcome = await Promise.race([
        work.then(() => 'ok' as const),
        timedOut.then(() => 'timeout' as const),
      ]);
      if (outcome === 'timeout') {
        throw new TransportError(`publish not confirmed within ${this.options.publishTimeoutMs} ms`);
      }
    } catch (error) {
      if (error instanceof TransportError || error instanceof ClosedError) throw error;
      throw new TransportError('publish to the AMQP broker failed', { cause: error });
    } finally {
      clearTimeout(timer);
      abort();
      work.catch(() => {});
      this.publishes.delete(work);
    }
  }

  private async publishNow(
    channel: string,
    events: readonly ChangeEvent[],
    gaveUp: Promise<void>,
  ): Promise<void> {
    let stop = false;
    gaveUp.then(() => {
      stop = true;
    });
    const conn = await this.connection(gaveUp);
    if (!conn || stop) throw new TransportError('not connected to the AMQP broker');
    const ch = await this.getPublishChannel(conn);
    await this.ensureDeclared(ch, channel);
    const exchange = amqpTopology(channel, [], this.options.namePrefix).exchange;
    const confirms: Promise<void>[] = [];
    for (const event of events) {
      if (stop) break;
      while (this.inFlight >= this.options.maxInFlight) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        if (stop) break;
      }
      if (stop) break;
      this.inFlight++;
      let settle: (error: unknown) => void = () => {};
      const confirmed = new Promise<void>((resolve, reject) => {
        settle = (error) => {
          if (error) reject(new TransportError('the broker did not confirm a publish', { cause: error }));
          else resolve();
        };
      });
      confirmed.catch(() => {});
      confirms.push(confirmed);
      let written: boolean;
      try {
        written = ch.publish(
          exchange,
          `${event.origin}.${event.op}`,
          encodeEvent(event),
          {
            persistent: true,
            messageId: event.id,
            contentType: 'application/json',
            type: event.op,
            appId: 'geosession',
          },
          (error: unknown) => {
            this.release();
            settle(error);
          },
        );
      } catch (error) {
        // The channel closed under us: amqplib throws instead of calling back.
        this.release();
        settle(error);
        break;
      }
      // The socket buffer is full: wait for it to drain (or the channel to die) before writing more.
      if (!written) await waitDrain(ch);
    }
    if (stop) throw new TransportError('publish gave up');
    await Promise.all(confirms);
  }

  private release(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the amqp transport');
    if (!isValidRegion(options.region) || !this.options.regions.includes(options.region)) {
      throw new TransportError(`region "${options.region}" is not among the transport's regions`);
    }
    const maxBatch = options.maxBatch ?? 500;
    const consumer = new AmqpConsumer(this, {
      channel: options.channel,
      region: options.region,
      handler: options.handler,
      maxBatch,
      prefetch: this.options.prefetch ?? Math.max(100, maxBatch * 2),
      queue: amqpTopology(options.channel, this.options.regions, this.options.namePrefix).queues[
        options.region
      ] as string,
    });
    this.consumers.add(consumer);
    consumer.start();
    // Resolve once consuming, or after connectTimeoutMs while the broker is away (it starts later).
    await Promise.race([consumer.started, delay(this.options.connectTimeoutMs)]);
    return {
      close: async () => {
        await consumer.stop();
        this.consumers.delete(consumer);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((consumer) => consumer.stop()));
    this.consumers.clear();
    await Promise.allSettled([...this.publishes]);
    for (const waiter of this.connWaiters.splice(0)) waiter(undefined);
    this.wakeLoop?.();
    const conn = this.conn;
    if (conn) await conn.close().catch(() => {});
    await this.loop;
    this.setState('closed');
  }
}

function waitDrain(ch: Channel): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      ch.off('drain', done);
      ch.off('close', done);
      resolve();
    };
    ch.on('drain', done);
    ch.on('close', done);
  });
}
