import type { Channel, ConfirmChannel } from 'amqplib';
import type { Envelope } from '../contracts/envelope.js';
import { MessageTooLargeError, TransportError } from '../errors.js';
import { encodeFrames } from '../wire/broker-frame.js';
import { sizeRefusal } from './size-refusal.js';

/**
 * The publisher confirm window shared by every publish call of one transport: at most `maxInFlight`
 * messages published and not yet confirmed. Each publish call writes its envelopes, several to a message
 * (src/wire/broker-frame.ts), as slots free up and resolves once the broker confirmed all of them,
 * so several calls (a relay's batches in flight) share one channel and keep it busy while earlier
 * confirms travel back.
 */
export class ConfirmWindow {
  private inFlight = 0;
  private waiters: Array<() => void> = [];
  private readonly failures = new WeakMap<ConfirmChannel, unknown>();

  constructor(private readonly maxInFlight: number) {}

  /**
   * Publishes `envelopes` (all of one origin) on `ch` to `exchange`, several to a message, with the
   * routing key `<origin>.<kind of the first>`, and resolves when every message is confirmed. Stops
   * writing when `gaveUp()` turns true.
   */
  async publish(
    ch: ConfirmChannel,
    exchange: string,
    envelopes: readonly Envelope[],
    gaveUp: () => boolean,
  ): Promise<void> {
    const confirms: Promise<void>[] = [];
    const origin = envelopes[0]?.origin ?? '';
    const kind = envelopes[0]?.kind ?? '';
    const frames = encodeFrames(envelopes);
    try {
      await this.write(ch, exchange, frames, origin, kind, gaveUp, confirms);
      if (gaveUp()) throw new TransportError('publish gave up');
      await Promise.all(confirms);
    } catch (error) {
      // RabbitMQ refuses a message over max_message_size by closing the channel, which fails every
      // publish in flight on it: only the call that wrote a message of the size the refusal names is at
      // fault; the others are published again as after any channel failure.
      const closedBy = this.failures.get(ch);
      const refusal = sizeRefusal(closedBy);
      if (refusal && frames.some((frame) => frame.bytes === refusal.bytes)) {
        throw new MessageTooLargeError(
          `the AMQP broker refused a message of ${refusal.bytes} bytes (max_message_size)`,
          { cause: closedBy, bytes: refusal.bytes },
        );
      }
      throw error;
    }
  }

  /** Records why the broker closed `ch` (its `error` event, emitted before its publishes fail). */
  channelFailed(ch: ConfirmChannel, error: unknown): void {
    this.failures.set(ch, error);
  }

  private async write(
    ch: ConfirmChannel,
    exchange: string,
    frames: ReturnType<typeof encodeFrames>,
    origin: string,
    kind: string,
    gaveUp: () => boolean,
    confirms: Promise<void>[],
  ): Promise<void> {
    for (const frame of frames) {
      while (this.inFlight >= this.maxInFlight && !gaveUp()) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
      if (gaveUp()) break;
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
          `${origin}.${kind}`,
          Buffer.from(frame.text),
          { persistent: true, messageId: frame.id, type: kind, appId: 'geosession' },
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
  }

  /** Wakes every writer waiting for a slot (the transport is closing or a publish gave up). */
  wakeAll(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private release(): void {
    this.inFlight--;
    this.waiters.shift()?.();
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
