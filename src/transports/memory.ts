import type { Envelope } from '../contracts/envelope.js';
import type { ReplicationTransport, SubscribeOptions, Subscription } from '../contracts/transport.js';
import { ClosedError, ConfigError } from '../errors.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { Lifecycle } from '../runtime/lifecycle.js';
import { isValidRegion } from '../validation/ids.js';
import { numberOption, rejectUnknown } from '../validation/options.js';
import { TransportEvents } from './transport-state.js';

/** Options of {@link createMemoryTransport}. */
export interface MemoryTransportOptions {
  /**
   * Regions to keep envelopes for before they subscribe, so a region that starts late still receives
   * everything. Regions that subscribe are remembered anyway.
   * @default []
   */
  regions?: string[];
  /**
   * Pause before a batch whose handler rejected is delivered again, in ms; it doubles (up to 2 s) while
   * the batch keeps failing.
   * @default 50
   */
  retryDelayMs?: number;
}

interface Mailbox {
  queue: Envelope[];
  wake: (() => void) | undefined;
}

/**
 * An in-process transport: one instance is the "broker" shared by several stores in one process (tests,
 * the demo). It keeps each region's undelivered envelopes in memory for as long as the process lives
 * and redelivers a batch whose handler rejected. Not for production: nothing survives a restart.
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): ReplicationTransport {
  return new MemoryTransport(options);
}

class MemoryTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'memory';
  readonly readsOutbox = false;
  /** channel -> region -> undelivered envelopes. */
  private readonly channels = new Map<string, Map<string, Mailbox>>();
  private readonly declared: ReadonlySet<string>;
  private readonly subscriptions = new Set<Subscription>();
  private readonly retryDelayMs: number;
  private closed = false;

  constructor(options: MemoryTransportOptions) {
    super();
    if (typeof options !== 'object' || options === null)
      throw new ConfigError('options', 'must be an object');
    rejectUnknown(options, ['regions', 'retryDelayMs'], 'createMemoryTransport');
    this.retryDelayMs = numberOption('retryDelayMs', options.retryDelayMs, 50, {
      min: 0,
      minExclusive: false,
    });
    const regions = options.regions ?? [];
    if (!Array.isArray(regions) || !regions.every(isValidRegion)) {
      throw new ConfigError('regions', 'must be an array of region ids');
    }
    this.declared = new Set(regions);
    this.setState('ready');
  }

  private mailboxes(channel: string): Map<string, Mailbox> {
    let boxes = this.channels.get(channel);
    if (!boxes) {
      boxes = new Map();
      for (const region of this.declared) boxes.set(region, { queue: [], wake: undefined });
      this.channels.set(channel, boxes);
    }
    return boxes;
  }

  async publish(channel: string, envelopes: readonly Envelope[]): Promise<void> {
    if (this.closed) throw new ClosedError('the memory transport');
    for (const [region, box] of this.mailboxes(channel)) {
      const wanted = envelopes.filter((envelope) => envelope.origin !== region);
      if (wanted.length === 0) continue;
      box.queue.push(...wanted);
      box.wake?.();
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the memory transport');
    if (options.signal?.aborted) throw new ClosedError('the memory subscription');
    const boxes = this.mailboxes(options.channel);
    let box = boxes.get(options.region);
    if (!box) {
      box = { queue: [], wake: undefined };
      boxes.set(options.region, box);
    }
    const mailbox = box;
    const maxBatch = options.maxBatch ?? 500;
    // Nothing to wait for at start: the subscription runs at once.
    const life = new Lifecycle('the memory subscription');
    life.markRunning();
    const retry = new Backoff(this.retryDelayMs, Math.max(this.retryDelayMs, 2000));
    const loop = (async () => {
      while (!life.stopping) {
        if (mailbox.queue.length === 0) {
          await new Promise<void>((resolve) => {
            mailbox.wake = resolve;
          });
          mailbox.wake = undefined;
          continue;
        }
        const batch = mailbox.queue.splice(0, maxBatch);
        try {
          await options.handler(batch);
          retry.reset();
        } catch (error) {
          // Not acknowledged: back to the front of the queue, delivered again after a pause that
          // doubles (up to 2 s) while it keeps failing.
          mailbox.queue.unshift(...batch);
          if (life.stopping) break;
          this.reportError(error);
          await sleep(retry.next(), life.signal);
        }
      }
    })();
    const subscription: Subscription = {
      close: async () => {
        life.beginClose();
        mailbox.wake?.();
        await loop;
        this.subscriptions.delete(subscription);
        life.markClosed();
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.setState('closed');
  }
}
