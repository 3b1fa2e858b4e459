import { ClosedError } from '../errors.js';
import { delay, TransportEvents } from '../internal/transport-state.js';
import type { ChangeEvent } from '../replication/events.js';
import type { ReplicationTransport, SubscribeOptions, Subscription } from './transport.js';

/** Options of {@link createMemoryTransport}. */
export interface MemoryTransportOptions {
  /**
   * Regions to keep events for before they subscribe, so a region that starts late still receives
   * everything. Regions that subscribe are remembered anyway.
   * @default []
   */
  regions?: string[];
  /**
   * Pause before a batch whose handler rejected is delivered again, in ms.
   * @default 50
   */
  retryDelayMs?: number;
}

interface Mailbox {
  queue: ChangeEvent[];
  wake: (() => void) | undefined;
}

/**
 * An in-process transport: one instance is the "broker" shared by several stores in one process (tests,
 * the demo). It keeps each region's undelivered events in memory for as long as the process lives and
 * redelivers a batch whose handler rejected. Not for production: nothing survives a restart.
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): ReplicationTransport {
  return new MemoryTransport(options);
}

class MemoryTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'memory';
  readonly readsOutbox = false;
  /** channel -> region -> undelivered events. */
  private readonly channels = new Map<string, Map<string, Mailbox>>();
  private readonly declared: ReadonlySet<string>;
  private readonly subscriptions = new Set<Subscription>();
  private readonly retryDelayMs: number;
  private closed = false;

  constructor(options: MemoryTransportOptions) {
    super();
    this.retryDelayMs = options.retryDelayMs ?? 50;
    this.declared = new Set(options.regions ?? []);
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

  async publish(channel: string, events: readonly ChangeEvent[]): Promise<void> {
    if (this.closed) throw new ClosedError('the memory transport');
    for (const [region, box] of this.mailboxes(channel)) {
      const wanted = events.filter((event) => event.origin !== region);
      if (wanted.length === 0) continue;
      box.queue.push(...wanted);
      box.wake?.();
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the memory transport');
    const boxes = this.mailboxes(options.channel);
    let box = boxes.get(options.region);
    if (!box) {
      box = { queue: [], wake: undefined };
      boxes.set(options.region, box);
    }
    const mailbox = box;
    const maxBatch = options.maxBatch ?? 500;
    let active = true;
    const loop = (async () => {
      while (active) {
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
        } catch (error) {
          // Not acknowledged: back to the front of the queue, delivered again after a pause.
          mailbox.queue.unshift(...batch);
          this.reportError(error);
          await delay(this.retryDelayMs);
        }
      }
    })();
    const subscription: Subscription = {
      close: async () => {
        active = false;
        mailbox.wake?.();
        await loop;
        this.subscriptions.delete(subscription);
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
