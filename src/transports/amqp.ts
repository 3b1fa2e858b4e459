import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { Envelope } from '../contracts/envelope.js';
import type {
  PeerBacklog,
  ReplicationTransport,
  SubscribeOptions,
  Subscription,
} from '../contracts/transport.js';
import { ClosedError, MessageTooLargeError, MissingDependencyError, TransportError } from '../errors.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { unlessAborted } from '../runtime/lifecycle.js';
import { settledWithin } from '../runtime/timeout.js';
import { isValidRegion } from '../validation/ids.js';
import { AmqpConsumer, type AmqpHost } from './amqp-consumer.js';
import {
  type AmqpTransportOptions,
  amqpTopology,
  type ResolvedAmqpOptions,
  resolveAmqpOptions,
} from './amqp-options.js';
import { ConfirmWindow } from './amqp-publisher.js';
import { TransportEvents } from './transport-state.js';

export type { AmqpTopology, AmqpTransportOptions } from './amqp-options.js';
export { amqpTopology } from './amqp-options.js';

/**
 * The AMQP 0-9-1 transport (RabbitMQ, LavinMQ) on amqplib. Per channel (store prefix) it declares a
 * durable topic exchange and one durable queue per region bound to the other regions' routing keys
 * (`<origin>.<kind>`), so a region never receives its own envelopes; queues are bounded
 * (`maxQueueLength`, `messageTtlMs`). Envelopes are persistent messages (`messageId` = envelope id)
 * published on a confirm channel, and a subscription consumes its region's queue with manual acks, a
 * batch at a time. It reconnects by itself with backoff and rebuilds channels, topology and consumers.
 *
 * Needs the optional peer dependency `amqplib`, loaded only when the transport first connects; without
 * it the transport fails at once (state `failed`) with an error that says what to install.
 *
 * @example
 * const transport = createAmqpTransport({ url: 'amqp://guest:guest@127.0.0.1:5672', regions: ['hk', 'kr'] });
 * const store = new GeoSessionStore({ region: 'hk', client: redis, transport, sealer }); // sealer: createPasetoSealer()
 */
export function createAmqpTransport(options: AmqpTransportOptions): ReplicationTransport {
  return new AmqpTransport(options);
}

type Amqplib = typeof import('amqplib');
let amqplibModule: Promise<Amqplib> | undefined;

function loadAmqplib(): Promise<Amqplib> {
  amqplibModule ??= import('amqplib').then(
    (mod) => ((mod as { default?: Amqplib }).default ?? mod) as Amqplib,
    (error: unknown) => {
      amqplibModule = undefined;
      throw new MissingDependencyError('the AMQP transport (geosession/amqp)', ['amqplib'], { cause: error });
    },
  );
  return amqplibModule;
}

class AmqpTransport extends TransportEvents implements ReplicationTransport, AmqpHost {
  readonly name = 'amqp';
  readonly readsOutbox = false;
  readonly options: ResolvedAmqpOptions;
  private conn: ChannelModel | undefined;
  private connWaiters: Array<(conn: ChannelModel | undefined) => void> = [];
  private publishChannel: Promise<ConfirmChannel> | undefined;
  /** Channels whose topology the publish channel's connection has declared. */
  private declared = new Map<string, Promise<void>>();
  private readonly window: ConfirmWindow;
  private readonly publishes = new Set<Promise<unknown>>();
  private readonly consumers = new Set<AmqpConsumer>();
  private fatal: Error | undefined;
  private closed = false;
  private readonly abort = new AbortController();
  /** Aborts the connection attempt in progress (its socket), so a close never waits out connectTimeoutMs. */
  private dialing: AbortController | undefined;
  private readonly loop: Promise<void>;

  constructor(options: AmqpTransportOptions) {
    super();
    this.options = resolveAmqpOptions(options);
    this.window = new ConfirmWindow(this.options.maxInFlight);
    this.loop = this.connectLoop();
  }

  override reportError(error: unknown): void {
    super.reportError(error);
  }

  connection(signal?: Promise<void>): Promise<ChannelModel | undefined> {
    if (this.conn || this.closed || this.fatal) return Promise.resolve(this.conn);
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
    const backoff = new Backoff(minDelay, maxDelay);
    while (!this.closed) {
      let conn: ChannelModel;
      const dial = new AbortController();
      this.dialing = dial;
      try {
        const amqp = await loadAmqplib();
        if (this.closed) break;
        // amqplib hands these to net.connect: the socket is destroyed when close() aborts the attempt
        // (only the attempt: an open connection is closed in order, see close()).
        const socketOptions = {
          timeout: this.options.connectTimeoutMs,
          ...this.options.socketOptions,
          signal: dial.signal,
        };
        conn = await amqp.connect(this.options.url, socketOptions);
      } catch (error) {
        // Closed while connecting: the attempt was abandoned, nothing to report.
        if (this.closed) break;
        if (error instanceof MissingDependencyError) {
          // Nothing will change by retrying: fail for good, and say what to install.
          this.fatal = error;
          this.reportError(error);
          this.setState('failed');
          for (const waiter of this.connWaiters.splice(0)) waiter(undefined);
          return;
        }
        const failures = backoff.failures + 1;
        // One report when the broker goes away, then one every tenth attempt: no log flood in an outage.
        if (failures === 1 || failures % 10 === 0) {
          this.reportError(
            new TransportError(`connecting to the AMQP broker failed (${failures}x)`, { cause: error }),
          );
        }
        await sleep(backoff.next(), this.abort.signal);
        continue;
      } finally {
        if (this.dialing === dial) this.dialing = undefined;
      }
      backoff.reset();
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
      await sleep(minDelay, this.abort.signal);
    }
  }

  /** The arguments of every queue the transport declares. */
  private queueArguments(): Record<string, unknown> {
    const args: Record<string, unknown> = {};
    if (this.options.queueType === 'quorum') args['x-queue-type'] = 'quorum';
    if (this.options.maxQueueLength > 0) {
      args['x-max-length'] = this.options.maxQueueLength;
      args['x-overflow'] = 'drop-head';
    }
    if (this.options.messageTtlMs > 0) args['x-message-ttl'] = this.options.messageTtlMs;
    return args;
  }

  async declare(ch: Channel, channel: string): Promise<void> {
    const topology = amqpTopology(channel, this.options.regions, this.options.namePrefix);
    await ch.assertExchange(topology.exchange, 'topic', { durable: true, autoDelete: false });
    for (const region of this.options.regions) {
      const queue = topology.queues[region] as string;
      await ch.assertQueue(queue, {
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: this.queueArguments(),
      });
      for (const key of topology.bindings[region] ?? []) await ch.bindQueue(queue, topology.exchange, key);
    }
  }

  private getPublishChannel(conn: ChannelModel): Promise<ConfirmChannel> {
    if (this.publishChannel) return this.publishChannel;
    const opening = conn.createConfirmChannel().then((ch) => {
      ch.on('error', (error: Error) => {
        this.window.channelFailed(ch, error);
        this.reportError(new TransportError('the AMQP publish channel failed', { cause: error }));
      });
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

  async publish(channel: string, envelopes: readonly Envelope[]): Promise<void> {
    if (this.closed) throw new ClosedError('the amqp transport');
    if (this.fatal) throw this.fatal;
    if (envelopes.length === 0) return;
    let stop = false;
    let timer: NodeJS.Timeout | undefined;
    let abort: () => void = () => {};
    const gaveUp = new Promise<void>((resolve) => {
      abort = resolve;
      timer = setTimeout(resolve, this.options.publishTimeoutMs);
    });
    void gaveUp.then(() => {
      stop = true;
      this.window.wakeAll();
    });
    const work = (async () => {
      const conn = await this.connection(gaveUp);
      if (!conn || stop) throw this.fatal ?? new TransportError('not connected to the AMQP broker');
      const ch = await this.getPublishChannel(conn);
      await this.ensureDeclared(ch, channel);
      const exchange = amqpTopology(channel, [], this.options.namePrefix).exchange;
      await this.window.publish(ch, exchange, envelopes, () => stop);
    })();
    this.publishes.add(work);
    try {
      const outcome = await Promise.race([
        work.then(() => 'ok' as const),
        gaveUp.then(() => 'timeout' as const),
      ]);
      if (outcome === 'timeout') {
        throw new TransportError(`publish not confirmed within ${this.options.publishTimeoutMs} ms`);
      }
    } catch (error) {
      if (
        error instanceof TransportError ||
        error instanceof ClosedError ||
        error instanceof MissingDependencyError ||
        error instanceof MessageTooLargeError
      ) {
        throw error;
      }
      throw new TransportError('publish to the AMQP broker failed', { cause: error });
    } finally {
      clearTimeout(timer);
      abort();
      work.catch(() => {});
      this.publishes.delete(work);
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the amqp transport');
    if (this.fatal) throw this.fatal;
    if (!isValidRegion(options.region) || !this.options.regions.includes(options.region)) {
      throw new TransportError(`region "${options.region}" is not among the transport's regions`);
    }
    const maxBatch = options.maxBatch ?? 500;
    const consumer = new AmqpConsumer(this, {
      channel: options.channel,
      region: options.region,
      handler: options.handler,
      onPoison: options.onPoison,
      maxBatch,
      prefetch: this.options.prefetch ?? Math.max(100, maxBatch * 2),
      queue: amqpTopology(options.channel, this.options.regions, this.options.namePrefix).queues[
        options.region
      ] as string,
    });
    this.consumers.add(consumer);
    const close = async () => {
      await consumer.stop();
      this.consumers.delete(consumer);
    };
    consumer.start();
    // Resolve once consuming, or after connectTimeoutMs while the broker is away (it starts later); at
    // once when the caller gives up (its signal) or the transport closes (which stops the consumer).
    const { signal } = options;
    await settledWithin(
      unlessAborted(Promise.race([consumer.started, consumer.ended]), signal, 'the amqp subscription'),
      this.options.connectTimeoutMs,
    );
    if (signal?.aborted || consumer.state === 'closing' || consumer.state === 'closed') {
      await close();
      throw new ClosedError('the amqp subscription');
    }
    if (this.fatal) {
      await close();
      throw this.fatal;
    }
    return { close };
  }

  /** Messages waiting in each other region's queue (no age: AMQP does not tell). */
  async backlog(channel: string, region: string): Promise<PeerBacklog[]> {
    const conn = this.conn;
    if (!conn) return [];
    const topology = amqpTopology(channel, this.options.regions, this.options.namePrefix);
    const out: PeerBacklog[] = [];
    for (const other of this.options.regions) {
      if (other === region) continue;
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try {
        const { messageCount } = await ch.checkQueue(topology.queues[other] as string);
        const max = this.options.maxQueueLength;
        const ratio = max > 0 ? messageCount / max : 0;
        out.push({
          region: other,
          entries: messageCount,
          oldestAgeMs: undefined,
          level: ratio >= 1 ? 'exceeded' : ratio >= 0.5 ? 'warning' : 'ok',
        });
      } catch {
        // The queue is not declared yet.
      } finally {
        await ch.close().catch(() => {});
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.dialing?.abort();
    this.window.wakeAll();
    await Promise.all([...this.consumers].map((consumer) => consumer.stop()));
    this.consumers.clear();
    await settledWithin(Promise.allSettled([...this.publishes]), this.options.publishTimeoutMs);
    for (const waiter of this.connWaiters.splice(0)) waiter(undefined);
    const conn = this.conn;
    if (conn) await settledWithin(conn.close(), this.options.connectTimeoutMs);
    await settledWithin(this.loop, this.options.connectTimeoutMs);
    this.setState('closed');
  }
}
