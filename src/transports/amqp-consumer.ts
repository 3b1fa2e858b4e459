import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Envelope } from '../contracts/envelope.js';
import type { EnvelopeHandler, Poison } from '../contracts/transport.js';
import { TransportError } from '../errors.js';
import { Backoff } from '../runtime/backoff.js';
import { Lifecycle, type LifecycleState } from '../runtime/lifecycle.js';
import { settledWithin } from '../runtime/timeout.js';
import { decodeFrames, envelopeCount, preview, takeBatch } from '../wire/broker-frame.js';

/** What a consumer needs from the AMQP transport that owns it. */
export interface AmqpHost {
  readonly options: {
    readonly retryDelayMs: number;
    readonly batchLingerMs: number;
    readonly reconnectDelayMs: readonly [number, number];
  };
  /** The live connection; waits for one, or until `signal` settles; undefined once closed or aborted. */
  connection(signal?: Promise<void>): Promise<ChannelModel | undefined>;
  /** Declares a channel's exchange, queues and bindings on `ch`. */
  declare(ch: Channel, channel: string): Promise<void>;
  reportError(error: unknown): void;
}

/** One subscription's settings. */
export interface AmqpConsumerOptions {
  channel: string;
  region: string;
  queue: string;
  handler: EnvelopeHandler;
  onPoison: ((poison: Poison) => void) | undefined;
  maxBatch: number;
  prefetch: number;
}

/** Longest pause before a batch that keeps failing is delivered again, ms (unless `retryDelayMs` is longer). */
const RETRY_MAX_MS = 5000;

/**
 * Consumes one region's queue on its own channel and hands batches to the handler, one batch at a time:
 * acked (multiple, up to the batch's last delivery) when the handler resolves, nacked with requeue after
 * `retryDelayMs` when it rejects (doubling, up to 5 s, while batches keep failing). A single loop owns the channel: it (re)opens it when the connection
 * comes back, when the channel dies, or when the server cancels the consumer (queue deleted), and it
 * only does so between batches, so an ack never goes to the wrong channel.
 */
export class AmqpConsumer {
  /** Resolves the first time the consumer is running. */
  readonly started: Promise<void>;
  private markStarted: () => void = () => {};
  private ch: Channel | undefined;
  /** A channel to close once the batch in flight is done (after a server cancel). */
  private retired: Channel | undefined;
  private buffer: ConsumeMessage[] = [];
  private wake: (() => void) | undefined;
  private readonly life = new Lifecycle('the amqp consumer');
  private stopSignal: () => void = () => {};
  private readonly stopped: Promise<void>;
  private loop: Promise<void> | undefined;
  /** Pause before a failed batch goes back: `retryDelayMs`, doubling while batches keep failing. */
  private readonly retry: Backoff;

  constructor(
    private readonly host: AmqpHost,
    private readonly options: AmqpConsumerOptions,
  ) {
    this.started = new Promise((resolve) => {
      this.markStarted = resolve;
    });
    this.stopped = new Promise((resolve) => {
      this.stopSignal = resolve;
    });
    const delay = host.options.retryDelayMs;
    this.retry = new Backoff(delay, Math.max(delay, RETRY_MAX_MS));
  }

  /** `starting` until consuming, `running`, then `closing` and `closed` (see {@link Lifecycle}). */
  get state(): LifecycleState {
    return this.life.state;
  }

  /** Resolves when stop() is called. */
  get ended(): Promise<void> {
    return this.stopped;
  }

  private get active(): boolean {
    return !this.life.stopping;
  }

  start(): void {
    if (this.life.stopping) return;
    this.loop ??= this.run();
  }

  /**
   * Stops consuming after the batch in flight (waiting at most `limitMs`); undelivered messages go back
   * to the queue, and so does a batch still in flight when the channel is closed under it.
   */
  async stop(limitMs = 5000): Promise<void> {
    this.life.beginClose();
    this.stopSignal();
    this.wake?.();
    if (this.loop) await settledWithin(this.loop, limitMs);
    const ch = this.ch;
    this.ch = undefined;
    this.buffer = [];
    // Closing the channel cancels the consumer and requeues what was prefetched but not handled.
    if (ch) await settledWithin(ch.close(), 1000);
    this.life.markClosed();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref?.();
      this.stopped.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private waitForWork(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const [minDelay, maxDelay] = this.host.options.reconnectDelayMs;
    const backoff = new Backoff(minDelay, maxDelay);
    while (this.active) {
      if (!this.ch) {
        if (this.retired) {
          const old = this.retired;
          this.retired = undefined;
          await old.close().catch(() => {});
        }
        const conn = await this.host.connection(this.stopped);
        if (!conn || !this.active) break;
        try {
          await this.open(conn);
          backoff.reset();
          this.life.markRunning();
          this.markStarted();
        } catch (error) {
          if (!this.active) break;
          this.host.reportError(
            new TransportError(`starting the consumer of ${this.options.queue} failed`, { cause: error }),
          );
          await this.sleep(backoff.next());
        }
        continue;
      }
      if (this.buffer.length === 0) {
        await this.waitForWork();
        continue;
      }
      const linger = this.host.options.batchLingerMs;
      if (this.buffer.length < this.options.maxBatch && linger > 0) await this.sleep(linger);
      const ch = this.ch;
      if (!ch) continue;
      const batch = takeBatch(this.buffer, this.options.maxBatch, (m) => envelopeCount(m.content));
      await this.deliver(ch, batch);
    }
  }

  private async open(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (error: Error) =>
      this.host.reportError(
        new TransportError(`the consumer channel of ${this.options.queue} failed`, { cause: error }),
      ),
    );
    ch.once('close', () => {
      if (this.ch !== ch) return;
      // Connection lost or channel killed by the server: the prefetched messages are requeued by the broker.
      this.ch = undefined;
      this.buffer = [];
      this.wake?.();
    });
    try {
      await ch.prefetch(this.options.prefetch);
      await this.host.declare(ch, this.options.channel);
      this.ch = ch;
      this.buffer = [];
      await ch.consume(this.options.queue, (message) => this.onMessage(ch, message), { noAck: false });
    } catch (error) {
      if (this.ch === ch) this.ch = undefined;
      await ch.close().catch(() => {});
      throw error;
    }
  }

  private onMessage(ch: Channel, message: ConsumeMessage | null): void {
    if (this.ch !== ch) return;
    if (message === null) {
      // The server cancelled the consumer (queue deleted, node down...): consume again on a fresh channel.
      this.host.reportError(
        new TransportError(`the broker cancelled the consumer of ${this.options.queue}; consuming again`),
      );
      this.ch = undefined;
      this.retired = ch;
      this.buffer = [];
      this.wake?.();
      return;
    }
    this.buffer.push(message);
    if (this.buffer.length === 1 || this.buffer.length >= this.options.maxBatch) this.wake?.();
  }

  private async deliver(ch: Channel, batch: ConsumeMessage[]): Promise<void> {
    const last = batch[batch.length - 1];
    if (!last) return;
    const envelopes: Envelope[] = [];
    for (const message of batch) {
      const text = message.content.toString('utf8');
      const decoded = decodeFrames(text);
      if ('problem' in decoded) {
        // Not envelopes: handed over as poison and acknowledged with its batch, so it cannot block the queue.
        const id = String(message.properties.messageId ?? message.fields.deliveryTag);
        this.options.onPoison?.({ id, origin: undefined, reason: decoded.problem, raw: preview(text) });
        continue;
      }
      envelopes.push(...decoded);
    }
    let failed = false;
    if (envelopes.length > 0) {
      try {
        await this.options.handler(envelopes);
      } catch (error) {
        failed = true;
        if (this.active) this.host.reportError(error);
      }
    }
    if (failed && this.active) await this.sleep(this.retry.next());
    if (!failed) this.retry.reset();
    try {
      // Deliveries are handled in order, one batch at a time, so "multiple" covers exactly this batch.
      if (failed) ch.nack(last, true, true);
      else ch.ack(last, true);
    } catch {
      // The channel closed meanwhile: the broker requeues the batch itself (delivered again, harmless).
    }
  }
}
