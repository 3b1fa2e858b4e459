import type { Redis } from 'ioredis';
import type { Sealer } from '../contracts/sealer.js';
import type { PeerBacklog, ReplicationTransport, TransportState } from '../contracts/transport.js';
import { type GeoSessionError, TransientError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import type { LifecycleState } from '../runtime/lifecycle.js';
import type { BacklogBound } from '../streams/trim.js';
import { Applier, type ApplyOutcome, emptyOutcome } from './applier.js';
import type { ChangeEvent } from './events.js';
import { ReplicationNode } from './node.js';
import type { Pipeline, RejectedEnvelope, RejectionReason, TransientStats } from './pipeline.js';
import type { ResyncNeed } from './resync-state.js';
import type { OriginSequence } from './sequence.js';
import { decodeSessionChange, SESSION_KIND } from './session-codec.js';

/** Counters, lag and health of one store's replication, as `store.replicationStats()` reports them. */
export interface ReplicationStats {
  /** Transport state. */
  transport: TransportState;
  /** The transport's name (`redis-streams`, `amqp`, `nats`, `memory`...). */
  transportName: string;
  /** Session changes received from other regions, by outcome, and the batches they came in. */
  received: ApplyOutcome & { batches: number };
  /** Envelopes refused before they could be applied, by reason (each is dead-lettered). */
  rejected: Partial<Record<RejectionReason, number>>;
  /**
   * Batches that met a transient failure (this region's Redis out of memory, busy, read-only, away...)
   * and were left to be delivered again: how many, by reason, and the latest. Nothing is dead-lettered.
   */
  transient: TransientStats;
  /** Changes this region published (through its relay; 0 for Redis Streams without a sealer). */
  published: number;
  /** Per origin region: lag of the newest change applied (ms from when it was made to its apply here). */
  lagMs: Record<string, number>;
  /** Regions this region needs a resync with, and why (empty when the regions are known to agree). */
  needsResync: Record<string, ResyncNeed>;
  /** What each other region has not consumed yet of what this region sent, where the transport can tell. */
  backlog: PeerBacklog[];
  /**
   * Per origin region: the numbers of its changes handled here (see docs/replication.md, "No silent
   * divergence"), duplicates dropped, and late arrivals into ranges given up as gaps.
   */
  sequences: Record<string, OriginSequence & { duplicates: number; late: number }>;
}

/** A batch of remote changes that was applied, as the store's `replicated` event reports it. */
export interface AppliedBatch {
  /** The changes, as received (before touches were coalesced). */
  events: readonly ChangeEvent[];
  /** What happened to them. */
  outcome: ApplyOutcome;
}

/** Options of {@link Replicator}. */
export interface ReplicatorOptions {
  readonly region: string;
  /** The keyspace (the store's key prefix). */
  readonly channel: string;
  readonly client: Redis;
  readonly keys: KeySpace;
  readonly transport: ReplicationTransport;
  readonly sealer: Sealer | undefined;
  readonly acceptUnsealed: boolean;
  /** With a sealer: publish unsealed (the first step of switching sealing on). */
  readonly sendUnsealed: boolean;
  /** The stale-event horizon, ms (the shortest tombstone lifetime). */
  readonly horizonMs: number;
  readonly maxSkewMs: number;
  readonly operationTimeoutMs: number;
  readonly deadLetterLimit: number;
  /** Numbers of an origin missing this long are a gap (the origin is flagged for resync). */
  readonly gapGraceMs: number;
  /** A quiet region announces its last number this often (a heartbeat), so a gap at the tail shows. */
  readonly heartbeatMs: number;
  readonly relayInFlight: number;
  /** The relay's outbox bound (broker transports, or a sealer). */
  readonly outboxBound: BacklogBound;
  /** The relay's consumers idle this long with nothing pending are removed from its group. */
  readonly consumerIdleMs: number;
  readonly now: () => number;
  /** The user id of a serialized session, when the store keeps the per-user index (see ApplierOptions). */
  readonly userOf?: ((data: string) => string | undefined) | undefined;
  onError(error: GeoSessionError): void;
  onApplied?(batch: AppliedBatch): void;
  /**
   * Runs after a batch was applied and before it is acknowledged: what must follow an applied change
   * for good (a "revoked before" mark ends the sessions it covers). A rejection fails the batch for now
   * (a {@link TransientError}): it is delivered again, applied again (idempotent) and this runs again.
   */
  afterApply?(events: readonly ChangeEvent[]): Promise<void>;
  onRejected?(rejected: RejectedEnvelope): void;
}

/**
 * One store's replication: a {@link ReplicationNode} on the store's prefix with the session-change
 * kind registered (the store's scripts append its envelopes to the node's outbox themselves, `q`
 * entries numbered by the same counter), and the {@link Applier} that applies what arrives. Everything
 * kind-agnostic (outbox, relay, subscription, pipeline, dead letters, gaps, heartbeats, resync state,
 * lifecycle) is the node's; other kinds on the store's channel register on {@link node} before start.
 */
export class Replicator {
  /** The node carrying session changes (and any other kind registered on the store's channel). */
  readonly node: ReplicationNode;
  private readonly applier: Applier;
  private readonly counters = { ...emptyOutcome(), batches: 0 };

  constructor(private readonly options: ReplicatorOptions) {
    const { client, keys } = options;
    this.node = new ReplicationNode({
      region: options.region,
      channel: options.channel,
      client,
      keys,
      transport: options.transport,
      sealer: options.sealer,
      acceptUnsealed: options.acceptUnsealed,
      sendUnsealed: options.sendUnsealed,
      operationTimeoutMs: options.operationTimeoutMs,
      deadLetterLimit: options.deadLetterLimit,
      gapGraceMs: options.gapGraceMs,
      heartbeatMs: options.heartbeatMs,
      relayInFlight: options.relayInFlight,
      outboxBound: options.outboxBound,
      consumerIdleMs: options.consumerIdleMs,
      now: options.now,
      onError: (error) => options.onError(error),
      ...(options.onRejected ? { onRejected: options.onRejected } : {}),
    });
    this.applier = new Applier({
      client,
      keys,
      horizonMs: options.horizonMs,
      maxSkewMs: options.maxSkewMs,
      timeoutMs: options.operationTimeoutMs,
      digestRegion: options.region,
      revokedChannel: keys.revoked(options.region),
      userOf: options.userOf,
    });
    this.node.register<ChangeEvent>(SESSION_KIND, {
      decode: decodeSessionChange,
      apply: (events) => this.applySessions(events),
    });
  }

  /** The node's pipeline (lag listeners, counters). */
  get pipeline(): Pipeline {
    return this.node.pipeline;
  }

  /** `starting`, `running` once start() subscribed, `closing` and `closed`. */
  get lifecycle(): LifecycleState {
    return this.node.lifecycle;
  }

  /** See {@link ReplicationNode.start}. */
  start(): Promise<void> {
    return this.node.start();
  }

  private async applySessions(events: ChangeEvent[]): Promise<void> {
    const { outcome, oldFrom } = await this.applier.apply(events);
    if (this.options.afterApply) {
      try {
        await this.options.afterApply(events);
      } catch (error) {
        throw new TransientError(
          'OTHER',
          'finishing a batch of remote changes failed for now; it is delivered again',
          {
            cause: error,
          },
        );
      }
    }
    this.counters.batches++;
    for (const key of Object.keys(outcome) as (keyof ApplyOutcome)[]) this.counters[key] += outcome[key];
    for (const origin of oldFrom) {
      this.node.markResync(
        origin,
        'changes older than the stale-event horizon (tombstoneTtl) arrived: the regions were cut off for longer than a logout is sure to be remembered',
        'horizon',
      );
    }
    this.options.onApplied?.({ events, outcome });
  }

  stats(): ReplicationStats {
    const s = this.node.stats();
    return {
      transport: s.transport,
      transportName: s.transportName,
      received: { ...this.counters },
      rejected: s.rejected,
      transient: s.transient,
      published: s.published,
      lagMs: s.lagMs,
      needsResync: s.needsResync,
      backlog: s.backlog,
      sequences: s.sequences,
    };
  }

  /** The newest dead letters, newest first. */
  deadLettersLatest(count: number) {
    return this.node.deadLettersLatest(count);
  }

  /** See {@link ReplicationNode.close}. */
  close(limitMs: number): Promise<void> {
    return this.node.close(limitMs);
  }
}
