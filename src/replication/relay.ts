import type { Redis } from 'ioredis';
import type { Envelope } from '../contracts/envelope.js';
import type { PeerBacklog, Poison } from '../contracts/transport.js';
import { TransportError } from '../errors.js';
import { isMissingStream } from '../failures/reply-errors.js';
import { Lifecycle, type LifecycleState } from '../runtime/lifecycle.js';
import { groupsOf } from '../streams/group-info.js';
import { StreamGroupReader } from '../streams/group-reader.js';
import { type BacklogBound, removeIdleConsumers, trimStream } from '../streams/trim.js';
import { envelopeOfEntry, isPoison, type StreamEntry } from '../wire/stream-entry.js';

/** The consumer group the relay reads its region's outbox with. */
export const RELAY_GROUP = 'relay';

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  readonly client: Redis;
  readonly region: string;
  readonly outboxKey: string;
  /**
   * The name the outbox's numbers travel under (src/wire/outbox-shards.ts `streamName`): the region for
   * its one outbox, `<region>#<shard>` for a shard's.
   * @default region
   */
  readonly stream?: string;
  /** Seals (when configured) and publishes; resolves once the broker confirmed. */
  publish(envelopes: Envelope[]): Promise<void>;
  /** Entries of the outbox that are not envelopes. */
  onPoison(poison: Poison): void;
  onError(error: unknown): void;
  /** The outbox's backlog, at every trim, `ok` included (region `*`: what the relay has not published). */
  onBacklog(report: PeerBacklog): void;
  readonly batchSize: number;
  /** Batches published and not yet confirmed, at most. */
  readonly maxInFlight: number;
  readonly bound: BacklogBound;
  /** Consumers of the group idle this long with nothing pending (processes gone) are removed. */
  readonly consumerIdleMs: number;
  readonly trimIntervalMs: number;
  /**
   * Other regions may read this outbox directly (Redis Streams while sealing is switched on: regions
   * that do not seal yet read the outbox, not the relay's output): trim only below what every consumer
   * group of the outbox has consumed, not just the relay's.
   * @default false
   */
  readonly keepReaders?: boolean;
}

/**
 * Moves this region's outbox to the transport: reads batches (consumer group `relay`), publishes them
 * through the pipeline (which seals them when configured), and acknowledges each batch only once the
 * broker confirmed it. Several batches are in flight at once, so a confirm's round trip over a long link
 * does not hold up the next batch; when one fails, no new batch goes out until every batch in flight has
 * settled, and the unconfirmed ones are published again in the order they were read. While the broker
 * is away the outbox grows, up to its backlog bound; nothing unpublished is trimmed before that. Several
 * processes of one region share the group, so each entry is published by one of them (at least once).
 */
export class OutboxRelay {
  private readonly reader: StreamGroupReader;
  private readonly life = new Lifecycle('the outbox relay');
  /** The periodic trim, from start() to stop(). */
  private trimmer: NodeJS.Timeout | undefined;

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
      maxInFlight: options.maxInFlight,
      onBatch: (entries) => this.publish(entries),
      onError: (error) =>
        options.onError(
          error instanceof TransportError
            ? error
            : new TransportError('relaying the outbox failed', { cause: error }),
        ),
    });
  }

  /** `starting` until start(), `running`, then `closing` and `closed` (see {@link Lifecycle}). */
  get state(): LifecycleState {
    return this.life.state;
  }

  /** Starts reading and trimming; does nothing once stop() was called. */
  start(): void {
    if (!this.life.markRunning() || this.trimmer) return;
    this.reader.start();
    this.trimmer = setInterval(() => void this.trim(), this.options.trimIntervalMs);
    this.trimmer.unref();
  }

  /**
   * Stops within `limitMs`; batches not confirmed by then stay pending and are handed over to the
   * group's next reader (see StreamGroupReader.stop). A relay stopped before it started opens nothing.
   */
  async stop(limitMs?: number): Promise<void> {
    this.life.beginClose();
    clearInterval(this.trimmer);
    await this.reader.stop(limitMs);
    this.life.markClosed();
  }

  private async publish(entries: StreamEntry[]): Promise<void> {
    const envelopes: Envelope[] = [];
    for (const [id, fields] of entries) {
      if (fields === null) continue;
      const parsed = envelopeOfEntry(this.options.region, id, fields, this.options.stream);
      if (isPoison(parsed)) this.options.onPoison(parsed);
      else envelopes.push(parsed);
    }
    if (envelopes.length > 0) await this.options.publish(envelopes);
  }

  private async trim(): Promise<void> {
    const { client, outboxKey, keepReaders } = this.options;
    try {
      const groups = [RELAY_GROUP];
      if (keepReaders) {
        for (const group of await groupsOf(client, outboxKey)) {
          if (group.name !== RELAY_GROUP) groups.push(group.name);
        }
      }
      const reports = await trimStream(client, outboxKey, groups, this.options.bound);
      if (this.life.stopping) return;
      for (const report of reports) {
        // What the relay has not published is what every region waits for: region `*`. Every report
        // goes out, `ok` too; the listener reports each change of level once.
        this.options.onBacklog(report.region === RELAY_GROUP ? { ...report, region: '*' } : report);
      }
      await removeIdleConsumers(
        client,
        outboxKey,
        RELAY_GROUP,
        this.options.consumerIdleMs,
        new Set([this.reader.consumerName]),
      );
    } catch (error) {
      // The outbox or its group is gone (the local Redis lost its data): the reader recreates them.
      // Closing: the trim is abandoned, not reported.
      if (isMissingStream(error) || this.life.stopping) return;
      this.options.onError(new TransportError('trimming the outbox failed', { cause: error }));
    }
  }
}
