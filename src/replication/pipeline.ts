import type { Envelope } from '../contracts/envelope.js';
import type { Poison, StreamSource, SubscribeOptions, Subscription } from '../contracts/transport.js';
import { EventError, GeoSessionError, MessageTooLargeError, SealError, TransientError } from '../errors.js';
import { asTransient, isDeterministicFailure } from '../failures/reply-errors.js';
import { RateLimiter } from '../failures/report.js';
import {
  applyChannel,
  lagChannel,
  publishChannel,
  type ReplicationBatchMessage,
  type ReplicationLagMessage,
} from '../runtime/tracing.js';
import type {
  KindHandler,
  LagListener,
  PipelineOptions,
  PipelineStats,
  RejectionReason,
} from './pipeline-types.js';
import { SEALED_KIND, sealEnvelopes, unpackBatch } from './sealed-batch.js';
import { numberOf } from './sequence.js';

export type {
  KindHandler,
  LagListener,
  PipelineOptions,
  PipelineStats,
  RejectedEnvelope,
  RejectionReason,
  TransientStats,
} from './pipeline-types.js';

/** How often a transient failure of one reason is reported, ms. */
const TRANSIENT_REPORT_MS = 10_000;

/**
 * The one replication pipeline, for every kind of envelope. Out: encode (the kind's job), seal,
 * publish. In: open, check sealing, drop its own origin, decode, measure lag from `time`, dispatch by
 * kind. A new kind registers a {@link KindHandler} and touches no transport.
 *
 * Poison never blocks: anything that cannot be opened, decoded or applied is refused on its own,
 * counted by reason, kept in the dead-letter stream, reported (rate-limited) and acknowledged, and the
 * envelopes after it flow. Only transient failures (Redis away, a timeout) fail the batch, which the
 * transport then delivers again.
 */
export class Pipeline {
  private readonly kinds = new Map<string, KindHandler<unknown>>();
  private readonly limiter = new RateLimiter(60_000);
  private readonly transientLimiter = new RateLimiter(TRANSIENT_REPORT_MS);
  /** Envelopes taken out of sealed batches: dead-lettered by digest, never in clear. */
  private readonly opened = new WeakSet<Envelope>();
  readonly stats: PipelineStats = {
    batches: 0,
    envelopes: 0,
    ownDropped: 0,
    duplicates: 0,
    published: 0,
    rejected: {},
    lagMs: {},
    transient: { count: 0, byReason: {}, last: undefined },
  };

  /** Who is told the lag of every envelope applied (see {@link Pipeline.onLag}). */
  private readonly lagListeners = new Set<LagListener>();

  constructor(private readonly options: PipelineOptions) {}

  /**
   * Calls `listener` with the lag of every envelope applied from now on (ms from when it was made, by
   * its origin's Redis clock, to its apply here, by this region's); returns the function that stops it.
   * Listeners must be cheap and must not throw: they run on the apply path.
   */
  onLag(listener: LagListener): () => void {
    this.lagListeners.add(listener);
    return () => this.lagListeners.delete(listener);
  }

  /** Routes envelopes of `kind` to `handler`. */
  register<T>(kind: string, handler: KindHandler<T>): void {
    if (kind === SEALED_KIND || this.kinds.has(kind)) throw new Error(`kind ${kind} is already registered`);
    this.kinds.set(kind, handler as KindHandler<unknown>);
  }

  /**
   * Seals (when configured) and publishes envelopes made in this region. A message the broker refuses
   * for its size ({@link MessageTooLargeError}) is refused every time: the batch is split until the
   * envelope at fault is alone, which is dead-lettered here as `too-large`, and the others are
   * published. Any other failure rejects, and the relay publishes the batch again.
   */
  publish(envelopes: readonly Envelope[]): Promise<void> {
    if (envelopes.length === 0) return Promise.resolve();
    if (!publishChannel.hasSubscribers) return this.publishSplitting(envelopes);
    return publishChannel.tracePromise(() => this.publishSplitting(envelopes), this.batchMessage(envelopes));
  }

  /** The message of a batch on the `geosession:replication:*` tracing channels. */
  private batchMessage(envelopes: readonly Envelope[]): ReplicationBatchMessage {
    const { region, channel, transport } = this.options;
    return { region, keyspace: channel, transport: transport.name, envelopes: envelopes.length };
  }

  private async publishSplitting(envelopes: readonly Envelope[]): Promise<void> {
    if (envelopes.length === 0) return;
    try {
      await this.send(envelopes);
    } catch (error) {
      if (!(error instanceof MessageTooLargeError)) throw error;
      if (envelopes.length === 1) {
        this.reject(envelopes[0] as Envelope, 'too-large', error);
        return;
      }
      const half = Math.ceil(envelopes.length / 2);
      await this.publishSplitting(envelopes.slice(0, half));
      await this.publishSplitting(envelopes.slice(half));
    }
  }

  private async send(envelopes: readonly Envelope[]): Promise<void> {
    const { sealer, transport, channel, region, sealOutgoing = true } = this.options;
    const out = sealer && sealOutgoing ? await sealEnvelopes(sealer, envelopes, region, channel) : envelopes;
    await transport.publish(channel, out);
    this.stats.published += envelopes.length;
  }

  /** Subscribes to the other regions' envelopes. */
  subscribe(options: {
    source: StreamSource;
    relayed: boolean;
    maxBatch?: number;
    signal?: AbortSignal;
    outboxes?: SubscribeOptions['outboxes'];
  }): Promise<Subscription> {
    return this.options.transport.subscribe({
      channel: this.options.channel,
      region: this.options.region,
      handler: (batch) => this.receive(batch),
      onPoison: (poison) => this.poison(poison),
      ...options,
    });
  }

  /**
   * Handles one delivered batch; rejects only on a transient failure (the batch is delivered again).
   * Envelopes that passed the seal check have their sequence numbers recorded once the batch is
   * applied; a number handled before is dropped as a duplicate.
   */
  receive(batch: Envelope[]): Promise<void> {
    if (!applyChannel.hasSubscribers) return this.receiveBatch(batch);
    return applyChannel.tracePromise(() => this.receiveBatch(batch), this.batchMessage(batch));
  }

  private async receiveBatch(batch: Envelope[]): Promise<void> {
    this.stats.batches++;
    const { sequences } = this.options;
    const tally = sequences?.tally();
    const routed = new Map<string, { items: unknown[]; envelopes: Envelope[] }>();
    const route = (envelope: Envelope) => {
      this.stats.envelopes++;
      if (sequences && tally) {
        const number = numberOf(envelope);
        if (sequences.isDuplicate(envelope, number)) {
          this.stats.duplicates++;
          return;
        }
        sequences.add(tally, envelope, number);
      }
      const handler = this.kinds.get(envelope.kind);
      if (!handler) {
        this.reject(
          envelope,
          'unknown-kind',
          new EventError(`no handler for envelopes of kind ${envelope.kind}`),
        );
        return;
      }
      let item: unknown;
      try {
        item = handler.decode(envelope);
      } catch (error) {
        this.reject(envelope, 'malformed', asEventError(error));
        return;
      }
      let group = routed.get(envelope.kind);
      if (!group) {
        group = { items: [], envelopes: [] };
        routed.set(envelope.kind, group);
      }
      group.items.push(item);
      group.envelopes.push(envelope);
    };

    const { region, sealer, acceptUnsealed } = this.options;
    for (const envelope of batch) {
      if (envelope.origin === region) {
        this.stats.ownDropped++;
        continue;
      }
      if (envelope.kind === SEALED_KIND) {
        const inner = await this.open(envelope);
        if (inner) for (const item of inner) route(item);
        continue;
      }
      if (sealer && !acceptUnsealed) {
        this.reject(
          envelope,
          'unsealed',
          new SealError('unsealed', `an unsealed envelope from ${envelope.origin} was refused`),
        );
        continue;
      }
      route(envelope);
    }

    for (const [kind, group] of routed) {
      await this.applyIsolating(this.kinds.get(kind) as KindHandler<unknown>, group.items, group.envelopes);
    }
    // Lag is from when a change was made to when it was applied, before its numbers are recorded.
    const now = this.options.now();
    const listeners = this.lagListeners.size > 0 ? this.lagListeners : undefined;
    const traced = lagChannel.hasSubscribers;
    for (const group of routed.values()) {
      for (const envelope of group.envelopes) {
        const lag = Math.max(0, now - envelope.time);
        this.stats.lagMs[envelope.origin] = lag;
        if (listeners) for (const listener of listeners) listener(envelope.origin, lag);
        if (traced) this.publishLag(envelope.origin, lag);
      }
    }
    if (sequences && tally) await sequences.record(tally);
  }

  private publishLag(origin: string, lagMs: number): void {
    const { region, channel } = this.options;
    const message: ReplicationLagMessage = { region, keyspace: channel, origin, lagMs };
    lagChannel.publish(message);
  }

  /** Opens a sealed batch; `undefined` (after refusing it) when it cannot be opened. */
  private async open(envelope: Envelope): Promise<Envelope[] | undefined> {
    const { sealer, channel } = this.options;
    if (!sealer) {
      this.reject(
        envelope,
        'unknown-key',
        new SealError('unknown-key', 'a sealed batch arrived, but this region has no sealer'),
      );
      return undefined;
    }
    try {
      const opened = await sealer.open(envelope.body, { origin: envelope.origin, channel });
      if (opened.region !== undefined && opened.region !== envelope.origin) {
        throw new SealError(
          'origin-mismatch',
          `a batch claiming ${envelope.origin} was sealed by ${opened.region}`,
        );
      }
      const inner = unpackBatch(opened.payload, envelope.origin);
      for (const item of inner) this.opened.add(item);
      return inner;
    } catch (error) {
      const sealError =
        error instanceof SealError
          ? error
          : new SealError('malformed', 'a sealed batch could not be opened', { cause: error });
      this.reject(envelope, sealError.reason, sealError);
      return undefined;
    }
  }

  /**
   * Applies a kind's items; a deterministic failure is narrowed down to the envelopes causing it. A
   * transient one (src/failures/reply-errors.ts) fails the batch with a {@link TransientError}, counted
   * and reported here (rate-limited), so that the transport delivers the batch again.
   */
  private async applyIsolating(
    handler: KindHandler<unknown>,
    items: unknown[],
    envelopes: Envelope[],
  ): Promise<void> {
    try {
      await handler.apply(items, envelopes);
    } catch (error) {
      if (error instanceof TransientError) throw error; // counted where it was met
      if (!isDeterministicFailure(error)) throw this.transient(error);
      if (items.length === 1) {
        this.reject(envelopes[0] as Envelope, 'poison', asEventError(error));
        return;
      }
      const half = Math.ceil(items.length / 2);
      await this.applyIsolating(handler, items.slice(0, half), envelopes.slice(0, half));
      await this.applyIsolating(handler, items.slice(half), envelopes.slice(half));
    }
  }

  /** Counts a transient failure and reports it once per interval per reason; returns it to be thrown. */
  private transient(error: unknown): TransientError {
    const failure = asTransient(error);
    const stats = this.stats.transient;
    stats.count++;
    stats.byReason[failure.reason] = (stats.byReason[failure.reason] ?? 0) + 1;
    stats.last = { reason: failure.reason, at: Date.now() };
    const suppressed = this.transientLimiter.admit(`transient:${failure.reason}`);
    if (suppressed !== undefined) {
      const more = suppressed > 0 ? ` (${suppressed} more since the last report)` : '';
      this.options.onError(
        new TransientError(
          failure.reason,
          `applying a batch of remote changes failed for now: ${failure.message.replace(/^geosession: /, '')}; it is delivered again${more}`,
          { cause: failure.cause, suppressed },
        ),
      );
    }
    return failure;
  }

  /** Refuses an outbox entry or frame that is not an envelope (the relay's and transports' poison). */
  refusePoison(poison: Poison): void {
    this.poison(poison);
  }

  /** A frame the transport could not read as an envelope. */
  private poison(poison: Poison): void {
    this.record(
      'malformed',
      { id: poison.id, origin: poison.origin, kind: undefined, time: undefined, body: poison.raw },
      new EventError(
        `a frame from ${poison.origin ?? 'an unknown region'} is not an envelope: ${poison.reason}`,
      ),
    );
  }

  private reject(envelope: Envelope, reason: RejectionReason, error: GeoSessionError): void {
    this.record(reason, envelope, error);
  }

  private record(
    reason: RejectionReason,
    what: {
      id: string;
      origin: string | undefined;
      kind: string | undefined;
      time: number | undefined;
      body: string;
    },
    error: GeoSessionError,
  ): void {
    this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    this.options.deadLetters?.add({
      reason,
      id: what.id,
      origin: what.origin,
      kind: what.kind,
      time: what.time,
      error: error.message,
      body: what.body,
      sealed: this.opened.has(what as Envelope),
    });
    this.options.onRejected?.({ reason, id: what.id, origin: what.origin, kind: what.kind, error });
    const suppressed = this.limiter.admit(reason);
    if (suppressed === undefined) return;
    const more = suppressed > 0 ? ` (${suppressed} more refused for this reason since the last report)` : '';
    const reported =
      error instanceof SealError
        ? new SealError(
            error.reason,
            `${error.message.replace(/^geosession: /, '')}; refused and dead-lettered${more}`,
            { cause: error },
          )
        : new EventError(`${error.message.replace(/^geosession: /, '')}; refused and dead-lettered${more}`, {
            cause: error,
          });
    this.options.onError(reported);
  }
}

function asEventError(error: unknown): GeoSessionError {
  if (error instanceof GeoSessionError) return error;
  return new EventError(error instanceof Error ? error.message : String(error), { cause: error });
}
