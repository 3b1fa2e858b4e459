import type { Redis } from 'ioredis';
import { StreamGroupReader, trimConsumed } from '../internal/stream-reader.js';
import type { ReplicationTransport } from '../transports/transport.js';
import { coalesceTouches } from './applier.js';
import { eventFromOutbox } from './codec.js';
import type { ChangeEvent } from './events.js';

/** The consumer group the relay reads its region's outbox with. */
export const RELAY_GROUP = 'relay';

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  client: Redis;
  outboxKey: string;
  channel: string;
  transport: ReplicationTransport;
  batchSize: number;
  onError(error: unknown): void;
  onPublished?(count: number): void;
}

/**
 * Moves this region's outbox to a broker transport: reads a batch (consumer group `relay`), coalesces
 * touches of the same session, publishes, and acknowledges only once the broker confirmed. While the
 * broker is away the outbox simply grows; nothing is trimmed that was not published. Several processes
 * of one region share the group, so each entry is published by one of them (at least once).
 */
export class OutboxRelay {
  private readonly reader: StreamGroupReader;
  private readonly trimmer: NodeJS.Timeout;

  constructor(private readonly options: OutboxRelayOptions) {
    this.reader = new StreamGroupReader({
      client: options.client,
      key: options.outboxKey,
      group: RELAY_GROUP,
      consumerPrefix: 'relay',
      batchSize: options.batchSize,
      blockMs: 1000,
      claimIdleMs: 30_000,
      watchdogMs: 5000,
      onBatch: (entries) => this.publish(entries),
      onError: options.onError,
    });
    this.trimmer = setInterval(() => {
      trimConsumed(options.client, options.outboxKey, [RELAY_GROUP]).catch(options.onError);
    }, 5000);
    this.trimmer.unref();
  }

  start(): void {
    this.reader.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.trimmer);
    await this.reader.stop();
  }

  private async publish(entries: [string, string[] | null][]): Promise<void> {
    const events: ChangeEvent[] = [];
    for (const [id, fields] of entries) {
      if (fields === null) continue;
      try {
        events.push(eventFromOutbox(id, fields));
      } catch (error) {
        this.options.onError(error);
      }
    }
    if (events.length === 0) return;
    const { events: coalesced } = coalesceTouches(events);
    await this.options.transport.publish(this.options.channel, coalesced);
    this.options.onPublished?.(coalesced.length);
  }
}
