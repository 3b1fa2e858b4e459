import type { Envelope } from './envelope.js';

/**
 * What every replication transport implements. A transport moves {@link Envelope}s from the region
 * that made them to every other region, at least once. It never looks inside them: sealing, decoding,
 * ordering, duplicates and conflicts are the pipeline's business (src/replication/pipeline.ts), so a
 * transport only has to be durable, to redeliver what was not acknowledged, and to report frames that
 * are not envelopes at all.
 *
 * To write one: implement this interface, run the shared conformance suite
 * (test/transports/conformance.ts) against it, and import nothing but `contracts/` and the base layer (`runtime/`, `failures/`, `validation/`, `wire/`, `streams/`).
 */
export interface ReplicationTransport {
  /** Short name for logs and errors, e.g. `memory` or `redis-streams`. */
  readonly name: string;

  /**
   * True when other regions can read each region's outbox stream directly (Redis Streams): the
   * store's scripts append to the outbox, and without a sealer no relay is needed. False when a relay
   * must read the outbox and {@link ReplicationTransport.publish} its entries.
   */
  readonly readsOutbox: boolean;

  /** Current state: `failed` is terminal (a missing dependency, a configuration the broker refuses). */
  readonly state: TransportState;

  /**
   * Publishes envelopes made in one region (`envelopes[i].origin`). Resolves only when the broker has
   * confirmed every one (publisher confirm, PubAck, XADD reply); rejects with a `TransportError`
   * otherwise, and the caller publishes them again with the same ids. A message the broker refuses for
   * its size (which no retry changes) rejects with a `MessageTooLargeError` instead: the caller splits
   * the batch and dead-letters the envelope that is too large alone. Messages are bounded in UTF-8
   * bytes.
   *
   * @param channel the keyspace the envelopes belong to (the store's key prefix): stores that share a
   *   transport but not a prefix never see each other's envelopes.
   */
  publish(channel: string, envelopes: readonly Envelope[]): Promise<void>;

  /**
   * Starts delivering to `region` what the other regions publish on `channel`. Delivering a region's
   * own envelopes back to it is allowed but wasteful (the pipeline drops them). The handler gets
   * batches: when its promise resolves the batch is acknowledged, when it rejects the batch is delivered
   * again later, within seconds and with a backoff while it keeps failing. A rejection with a
   * `TransientError` (`ERR_GEOSESSION_TRANSIENT`) was reported by the handler already: the transport
   * does not report it again. Durable transports keep what was not delivered to a region while it is
   * away.
   */
  subscribe(options: SubscribeOptions): Promise<Subscription>;

  /**
   * How much each other region has not consumed yet of what this region sent on `channel`, where the
   * transport can tell (`undefined` otherwise).
   */
  backlog?(channel: string, region: string): Promise<PeerBacklog[]>;

  /** Listens for state changes, background errors, and backlog warnings. */
  on<E extends keyof TransportEventMap>(event: E, listener: (...args: TransportEventMap[E]) => void): this;
  off<E extends keyof TransportEventMap>(event: E, listener: (...args: TransportEventMap[E]) => void): this;

  /**
   * Stops every subscription (batches in flight settle or are left unacknowledged, within a bounded
   * time) and releases what the transport opened itself. Clients the user passed in are left open.
   */
  close(): Promise<void>;
}

/** The events of a transport. */
export interface TransportEventMap {
  /** The transport's state changed. */
  state: [state: TransportState];
  /** A background failure the transport recovers from by itself (always a `GeoSessionError`). */
  error: [error: Error];
  /** A peer's backlog crossed a warning threshold or its bound (entries were dropped for it). */
  backlog: [report: PeerBacklog];
  /**
   * This region and `region` may now hold different data: a stream lost its consumer groups (the Redis
   * holding it restarted empty) or was trimmed past what this region had read.
   */
  resync: [notice: { region: string; reason: string }];
}

/** Connection state of a transport. `failed` is terminal. */
export type TransportState = 'connecting' | 'ready' | 'degraded' | 'failed' | 'closed';

/** Handler of delivered batches. Resolve to acknowledge, reject to have the batch delivered again. */
export type EnvelopeHandler = (envelopes: Envelope[]) => Promise<void>;

/**
 * A delivered frame that is not an envelope at all (missing fields, not the transport's framing). The
 * transport acknowledges it so it cannot block the stream or queue, and hands it to
 * {@link SubscribeOptions.onPoison}.
 */
export interface Poison {
  /** The frame's id where the transport has one (message id, stream entry id). */
  readonly id: string;
  /** The region it came from, where the transport knows it (the stream or subject it was read from). */
  readonly origin: string | undefined;
  /** What is wrong with it. */
  readonly reason: string;
  /** The frame as received, possibly shortened. */
  readonly raw: string;
}

/** Which of a region's streams a subscription reads, for transports that read outboxes directly. */
export type StreamSource = 'outbox' | 'published' | 'both';

/** Options of {@link ReplicationTransport.subscribe}. */
export interface SubscribeOptions {
  /** The keyspace to receive envelopes of (the store's key prefix). */
  channel: string;
  /** The region receiving. */
  region: string;
  /** Called with 1 to `maxBatch` envelopes at a time. */
  handler: EnvelopeHandler;
  /** Receives frames that are not envelopes (see {@link Poison}); they are acknowledged either way. */
  onPoison?: (poison: Poison) => void;
  /**
   * Largest batch handed to the handler, in envelopes. Transports that carry several envelopes in one
   * message (AMQP, NATS: a publish call's envelopes) never split a message, so a batch can exceed this
   * by what one message holds.
   * @default 500
   */
  maxBatch?: number;
  /**
   * Transports that read outboxes directly ({@link ReplicationTransport.readsOutbox}): read the other
   * regions' outbox streams (what their scripts wrote, unsealed), their published streams (what their
   * relays published, sealed), or both. Ignored by the others.
   * @default 'outbox'
   */
  source?: StreamSource;
  /**
   * Transports that read outboxes directly: the outbox streams session changes of `region` go to, each
   * with the name its numbers travel under (`<region>`, or `<region>#<shard>` for an outbox shard, see
   * docs/replication.md "Sharded outboxes"), for this region and every other (every region uses the same
   * layout). Without it, each region has its one outbox.
   * @default undefined
   */
  outboxes?: (region: string) => readonly { readonly key: string; readonly stream: string }[];
  /**
   * Transports that read outboxes directly: true when this region runs a relay over its own outbox (it
   * seals), which then trims the outbox itself; the transport only trims what it was asked to publish.
   * @default false
   */
  relayed?: boolean;
  /**
   * Aborting it abandons a subscribe that is still starting (waiting for a connection, a round trip to
   * a region that does not answer): the promise rejects with a `ClosedError` at once, and nothing the
   * subscribe made is left behind (no reader, timer, socket, or error reported afterwards). Aborting it
   * after the subscribe resolved changes nothing: close the subscription.
   */
  signal?: AbortSignal;
}

/** A running subscription. */
export interface Subscription {
  /** Stops delivery; resolves after the batch in flight, if any, has settled (bounded). */
  close(): Promise<void>;
}

/** What one region has not consumed yet of what this region sent. */
export interface PeerBacklog {
  /** The region that has not consumed it. */
  readonly region: string;
  /** Envelopes (or outbox entries) waiting for it. */
  readonly entries: number;
  /** Age of the oldest, in ms, when known. */
  readonly oldestAgeMs: number | undefined;
  /** `ok`, `warning` (past the warning threshold), or `exceeded` (past the bound: the oldest were dropped). */
  readonly level: 'ok' | 'warning' | 'exceeded';
}
