import type { Redis } from 'ioredis';
import { idTime } from '../internal/stream-reader.js';
import type { KeySpace } from '../keys.js';
import type { ReplicationTransport, Subscription } from '../transports/transport.js';
import { Applier, type ApplyOutcome } from './applier.js';
import type { ChangeEvent } from './events.js';
import { OutboxRelay } from './relay.js';

/** Counters and lag of one store's replication, as {@link Replicator.stats} reports them. */
export interface ReplicationStats {
  /** Events received from other regions, by outcome. */
  received: ApplyOutcome & { batches: number };
  /** Events this region's relay published to the broker (0 for Redis Streams, which needs no relay). */
  published: number;
  /** Per origin region: lag of the last applied event (ms from its write there to its apply here). */
  lagMs: Record<string, number>;
  /** Transport state. */
  transport: string;
}

/** A batch of remote events that was applied, as the store's `replicated` event reports it. */
export interface AppliedBatch {
  /** The events, as received (before touches were coalesced). */
  events: readonly ChangeEvent[];
  /** What happened to them. */
  outcome: ApplyOutcome;
}

/** Options of {@link Replicator}. */
export interface ReplicatorOptions {
  region: string;
  channel: string;
  client: Redis;
  keys: KeySpace;
  transport: ReplicationTransport;
  onError(error: unknown): void;
  /** Called after each applied batch. */
  onApplied?(batch: AppliedBatch): void;
}

/** Stream ids below this are not wall-clock times (a Redis emulation numbering entries 1, 2, 3...). */
const YEAR_2001_MS = 978_307_200_000;

/** Lag of an event: its outbox entry id (`<origin>:<ms>-<seq>`) carries the origin's Redis time. */
function lagOf(event: ChangeEvent, now: number): number | undefined {
  const colon = event.id.lastIndexOf(':');
  const ms = idTime(event.id.slice(colon + 1));
  return Number.isFinite(ms) && ms > YEAR_2001_MS ? Math.max(0, now - ms) : undefined;
}

/**
 * One store's replication: subscribes to the other regions' events and applies them, and, for broker
 * transports, runs the relay that publishes this region's outbox.
 */
export class Replicator {
  private readonly applier: Applier;
  private readonly relay: OutboxRelay | undefined;
  private subscription: Subscription | undefined;
  private readonly counters: ReplicationStats['received'] = {
    batches: 0,
    applied: 0,
    unchanged: 0,
    expired: 0,
    refused: 0,
    coalesced: 0,
  };
  private published = 0;
  private readonly lag: Record<string, number> = {};

  constructor(private readonly options: ReplicatorOptions) {
    this.applier = new Applier(options.client, options.keys, options.region);
    if (!options.transport.readsOutbox) {
      this.relay = new OutboxRelay({
        client: options.client,
        outboxKey: options.keys.outbox(options.region),
        channel: options.channel,
        transport: options.transport,
        batchSize: 500,
        onError: options.onError,
        onPublished: (count) => {
          this.published += count;
        },
      });
    }
  }

  /** Subscribes and starts the relay. Resolves once events can flow. */
  async start(): Promise<void> {
    this.subscription = await this.options.transport.subscribe({
      channel: this.options.channel,
      region: this.options.region,
      handler: (events) => this.handle(events),
    });
    this.relay?.start();
  }

  private async handle(events: ChangeEvent[]): Promise<void> {
    const outcome = await this.applier.apply(events);
    const now = Date.now();
    this.counters.batches++;
    this.counters.applied += outcome.applied;
    this.counters.unchanged += outcome.unchanged;
    this.counters.expired += outcome.expired;
    this.counters.refused += outcome.refused;
    this.counters.coalesced += outcome.coalesced;
    for (const event of events) {
      const lag = lagOf(event, now);
      if (lag !== undefined) this.lag[event.origin] = lag;
    }
    this.options.onApplied?.({ events, outcome });
  }

  stats(): ReplicationStats {
    return {
      received: { ...this.counters },
      published: this.published,
      lagMs: { ...this.lag },
      transport: this.options.transport.state,
    };
  }

  /** Stops the relay and the subscription, each after the batch in flight. */
  async close(): Promise<void> {
    await Promise.all([this.relay?.stop(), this.subscription?.close()]);
  }
}
