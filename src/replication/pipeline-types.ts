// The shapes around the replication pipeline (src/replication/pipeline.ts): the handler a kind
// registers, the options it takes, its counters, and what it reports of an envelope it refused.
import type { Envelope } from '../contracts/envelope.js';
import type { RefusalReason, Sealer } from '../contracts/sealer.js';
import type { ReplicationTransport } from '../contracts/transport.js';
import type { GeoSessionError } from '../errors.js';
import type { DeadLetters } from './dead-letters.js';
import type { SequenceTracker } from './sequence.js';

/**
 * Receives and applies the envelopes of one kind. `decode` runs on each envelope alone (a throw refuses
 * that envelope as `malformed`); `apply` gets everything of its kind in a batch, in arrival order, and
 * rejects to have the whole batch delivered again. Internal: the library registers its own kinds
 * (sessions on the store's node, and the kinds of the registry and the invalidator on theirs, through
 * `ReplicationNode.register`); it is not exported from the package.
 */
export interface KindHandler<T> {
  decode(envelope: Envelope): T;
  apply(items: T[], envelopes: Envelope[]): Promise<void>;
}

/**
 * Why the pipeline refused an envelope: a sealing refusal, or one of its own (`too-large`: this region's
 * own envelope, which the broker refuses for its size, dead-lettered here instead of published).
 */
export type RejectionReason = RefusalReason | 'unknown-kind' | 'poison' | 'too-large';

/** An envelope (or frame) the pipeline refused: counted, dead-lettered, never applied. */
export interface RejectedEnvelope {
  readonly reason: RejectionReason;
  readonly id: string;
  readonly origin: string | undefined;
  readonly kind: string | undefined;
  /** What went wrong, as a `GeoSessionError`. */
  readonly error: GeoSessionError;
}

/** Options of {@link Pipeline}. */
export interface PipelineOptions {
  readonly region: string;
  readonly channel: string;
  readonly transport: ReplicationTransport;
  /** Seals what leaves, opens what arrives; without one nothing is sealed. */
  readonly sealer: Sealer | undefined;
  /** With a sealer: also accept unsealed envelopes (the window while sealing is switched on). */
  readonly acceptUnsealed: boolean;
  /** With a sealer: seal what is published (false only in the first step of switching sealing on). */
  readonly sealOutgoing?: boolean;
  readonly deadLetters: DeadLetters | undefined;
  /** Tells gaps from duplicates by the envelopes' sequence numbers; without one nothing is tracked. */
  readonly sequences?: SequenceTracker;
  /** The clock lag is measured with. */
  readonly now: () => number;
  onError(error: GeoSessionError): void;
  onRejected?(rejected: RejectedEnvelope): void;
}

/** Counters of a {@link Pipeline}. */
export interface PipelineStats {
  /** Batches handed over by the transport. */
  batches: number;
  /** Envelopes received (a sealed batch counts as the envelopes inside). */
  envelopes: number;
  /** Envelopes of this region itself, dropped. */
  ownDropped: number;
  /** Envelopes whose sequence number was handled before (replays, redeliveries), dropped. */
  duplicates: number;
  /** Envelopes this region published (before sealing). */
  published: number;
  /** Refused envelopes by reason. */
  rejected: Partial<Record<RejectionReason, number>>;
  /** Per origin region: lag of the newest envelope applied (ms from when it was made to its apply). */
  lagMs: Record<string, number>;
  /** Batches that met a transient failure and were left to be delivered again. */
  transient: TransientStats;
}

/** Batches failed by a transient error (Redis out of memory, busy, read-only, a lost connection...). */
export interface TransientStats {
  /** Batches failed (each is delivered again by the transport). */
  count: number;
  /** The same, by reason: the Redis error reply code (`OOM`, `BUSY`...), `CONNECTION`, `TIMEOUT`, `OTHER`. */
  byReason: Record<string, number>;
  /** The latest: its reason and when it happened (ms since the epoch, host clock). */
  last: { reason: string; at: number } | undefined;
}

/** Told the lag of one applied envelope: its origin region and the ms from its making to its apply. */
export type LagListener = (origin: string, lagMs: number) => void;
