import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../contracts/envelope.js';
import type { SubscribeOptions } from '../contracts/transport.js';
import { ClosedError, MissingDependencyError, TransportError } from '../errors.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { Lifecycle, type LifecycleState } from '../runtime/lifecycle.js';
import { settledWithin } from '../runtime/timeout.js';
import { decodeFrames, envelopeCount, preview, takeBatch } from '../wire/broker-frame.js';

/** Longest redelivery delay of a batch that keeps failing, ms (unless `retryDelayMs` is longer). */
const RETRY_MAX_MS = 5000;

/** One NATS connection with its JetStream client and manager. */
export interface Conn {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** Where a channel lives: its stream and its subject base. */
export interface Names {
  stream: string;
  /** Subject base: envelopes go to `<base>.<origin>`. */
  base: string;
}

/** What a subscription needs from the NATS transport that owns it. */
export interface NatsHost {
  readonly settings: {
    readonly maxAckPending: number;
    readonly retryDelayMs: number;
    readonly idleHeartbeatMs: number;
  };
  /** Current connection; waits (forever, or until closed) for one when there is none. */
  connection(): Promise<Conn>;
  /** Creates the channel's stream once per connection (an existing stream is left as it is). */
  ensureStream(conn: Conn, names: Names): Promise<void>;
  /** Creates `region`'s durable consumer of `origin`'s subject unless it exists; resolves to its name. */
  ensureConsumer(conn: Conn, names: Names, region: string, origin: string): Promise<string>;
  /** Recomputes the transport state from the connection and the subscriptions' health. */
  refreshState(): void;
  /** True while a connection is up and not disconnected. */
  isConnected(): boolean;
  report(error: unknown): void;
}

/**
 * One destination region's consumption of one origin's subject on one channel: consume loop, batching,
 * watchdog. The consumer is filtered on the origin's subject, so only other regions' envelopes arrive.
 */
export class NatsSubscription {
  /** False after a failure or a stall, until the consumer runs again (starting counts as healthy). */
  healthy = true;
  readonly started: Promise<void>;
  private markStarted: () => void = () => {};
  /** Settles when close() is called, to abandon waits for a connection that may never come. */
  private readonly stopping: Promise<never>;
  private stop: () => void = () => {};
  private readonly life = new Lifecycle('the nats subscription');
  private messages: ConsumerMessages | undefined;
  private readonly buffer: JsMsg[] = [];
  private running: Promise<void> | undefined;
  private readonly loop: Promise<void>;
  private readonly maxBatch: number;
  /** When the consume loop last saw a message or heartbeat, or started waiting for one. */
  private lastSign = Date.now();
  private waiting = false;
  /** Redelivery delay of a failed batch: `retryDelayMs`, doubling while batches keep failing. */
  private readonly retry: Backoff;

  constructor(
    private readonly transport: NatsHost,
    private readonly names: Names,
    private readonly origin: string,
    private readonly options: SubscribeOptions,
  ) {
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
    const delay = transport.settings.retryDelayMs;
    this.retry = new Backoff(delay, Math.max(delay, RETRY_MAX_MS));
    this.started = new Promise((resolve) => {
      this.markStarted = resolve;
    });
    this.stopping = new Promise<never>((_, reject) => {
      this.stop = () => reject(new ClosedError('the subscription'));
    });
    this.stopping.catch(() => {});
    this.loop = this.run();
  }

  /** `starting` until the consumer first runs, `running`, then `closing` and `closed`. */
  get state(): LifecycleState {
    return this.life.state;
  }

  private get active(): boolean {
    return !this.life.stopping;
  }

  private unlessStopped<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => {});
    return Promise.race([promise, this.stopping]);
  }

  private setHealthy(healthy: boolean): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.transport.refreshState();
  }

  /** Called after the connection came back: restart the silence clock. */
  reconnected(): void {
    this.lastSign = Date.now();
  }

  private async run(): Promise<void> {
    const s = this.transport.settings;
    let failures = 0;
    while (this.active) {
      try {
        const conn = await this.unlessStopped(this.transport.connection());
        await this.unlessStopped(this.transport.ensureStream(conn, this.names));
        const durable = await this.unlessStopped(
          this.transport.ensureConsumer(conn, this.names, this.options.region, this.origin),
        );
        const consumer = await this.unlessStopped(conn.js.consumers.get(this.names.stream, durable));
        const messages = await consumer.consume({
          max_messages: Math.min(Math.max(this.maxBatch, 64), s.maxAckPending),
          idle_heartbeat: s.idleHeartbeatMs,
          expires: s.idleHeartbeatMs * 2,
        });
        this.messages = messages;
        if (!this.active) break;
        failures = 0;
        this.setHealthy(true);
        this.life.markRunning();
        this.markStarted();
        await this.drive(messages);
      } catch (error) {
        if (error instanceof MissingDependencyError) {
          // The transport failed for good (and said so): nothing to retry.
          this.markStarted();
          break;
        }
        if (this.active && !(error instanceof ClosedError)) {
          failures++;
          this.transport.report(
            new TransportError(
              `consuming ${this.names.stream} from ${this.origin} as ${this.options.region} failed`,
              {
                cause: error,
              },
            ),
          );
          this.markStarted();
        }
      } finally {
        this.messages?.stop();
        this.messages = undefined;
      }
      if (this.active) {
        this.setHealthy(false);
        await sleep(Math.min(250 * 2 ** Math.min(failures, 4), 5000), this.life.signal);
      }
    }
    await this.running;
    // Envelopes received but never handed to the handler go back at once, for whoever consumes next.
    for (const m of this.buffer.splice(0)) m.nak();
  }

  /** Feeds the consume iterator into batches until it ends (closed, or stopped by the watchdog). */
  private async drive(messages: ConsumerMessages): Promise<void> {
    const s = this.transport.settings;
    const stall = () => {
      if (!this.active || this.messages !== messages) return;
      this.transport.report(
        new TransportError(
          `consumer ${this.options.region} of ${this.origin} on ${this.names.stream} stalled; recreating it`,
        ),
      );
      messages.stop();
    };
    void (async () => {
      for await (const status of messages.status()) {
        if (status.type === 'heartbeat') this.lastSign = Date.now();
        else if (status.type === 'heartbeats_missed' && status.count >= 2) stall();
        else if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found') stall();
        else if (status.type === 'stream_not_found') stall();
      }
    })().catch(() => {});
    // Our own watchdog, for stalls the client does not notice: connected, waiting, and silent too long.
    const watchdog = setInterval(() => {
      if (this.waiting && this.transport.isConnected() && Date.now() - this.lastSign > 3 * s.idleHeartbeatMs)
        stall();
    }, s.idleHeartbeatMs);
    watchdog.unref();
    try {
      this.lastSign = Date.now();
      this.waiting = true;
      for await (const m of messages) {
        this.waiting = false;
        this.lastSign = Date.now();
        if (!this.active) {
          m.nak();
        } else {
          this.buffer.push(m);
          this.kick();
          if (this.buffer.length >= this.maxBatch) await this.running;
        }
        this.lastSign = Date.now();
        this.waiting = true;
      }
    } finally {
      this.waiting = false;
      clearInterval(watchdog);
    }
    await this.running;
  }

  private kick(): void {
    if (this.running) return;
    this.running = (async () => {
      try {
        await this.process();
      } finally {
        this.running = undefined;
      }
    })();
  }

  /** Hands buffered envelopes to the handler a batch at a time; acks on resolve, naks on reject. */
  private async process(): Promise<void> {
    while (this.active && this.buffer.length > 0) {
      const batch = takeBatch(this.buffer, this.maxBatch, (m) => envelopeCount(m.data));
      const envelopes: Envelope[] = [];
      const good: JsMsg[] = [];
      for (const m of batch) {
        const text = m.string();
        const decoded = decodeFrames(text);
        if ('problem' in decoded) {
          // Not envelopes: handed over as poison and terminated, so it can never block the stream.
          this.options.onPoison?.({
            id: `${this.names.stream}:${m.seq}`,
            origin: this.origin,
            reason: decoded.problem,
            raw: preview(text),
          });
          settle(() => m.term());
          continue;
        }
        envelopes.push(...decoded);
        good.push(m);
      }
      if (envelopes.length === 0) continue;
      try {
        await this.options.handler(envelopes);
      } catch (error) {
        if (this.active) this.transport.report(error);
        const retry = this.retry.next();
        for (const m of good) settle(() => m.nak(retry));
        continue;
      }
      this.retry.reset();
      if (this.active) {
        for (const m of good) settle(() => m.ack());
      } else {
        // Closing: make sure the server has the acks before close() resolves.
        await settledWithin(Promise.all(good.map((m) => m.ackAck().catch(() => false))), 2000);
      }
    }
  }

  /** Stops within `limitMs`; envelopes not acknowledged by then are delivered again after `ack_wait`. */
  async close(limitMs = 5000): Promise<void> {
    if (!this.active) {
      await settledWithin(this.loop, limitMs);
      return;
    }
    this.life.beginClose();
    this.messages?.stop();
    this.stop();
    this.markStarted();
    await settledWithin(this.loop, limitMs);
    this.life.markClosed();
  }
}

/** Acks and naks are fire-and-forget; one on a closed connection must not throw into the loop. */
function settle(fn: () => void): void {
  try {
    fn();
  } catch {
    // The server redelivers after ack_wait.
  }
}
