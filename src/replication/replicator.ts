import { TransientError } from '../errors.js';
import type { LifecycleState } from '../runtime/lifecycle.js';
import { Applier, type ApplyOutcome, emptyOutcome } from './applier.js';
import type { ChangeEvent } from './events.js';
import { ReplicationNode } from './node.js';
import type { ResolvedNodeOptions } from './node-options.js';
import type { NodeStats } from './node-stats.js';
import type { Pipeline } from './pipeline.js';
import { decodeSessionChange, SESSION_KIND } from './session-codec.js';

/** Counters, lag and health of one store's replication, as `store.replicationStats()` reports them. */
export interface ReplicationStats extends Omit<NodeStats, 'appliedByKind'> {
  /** Session changes received from other regions, by outcome, and the batches they came in. */
  received: ApplyOutcome & { batches: number };
}

/** A batch of remote changes that was applied, as the store's `replicated` event reports it. */
export interface AppliedBatch {
  /** The changes, as received (before touches were coalesced). */
  events: readonly ChangeEvent[];
  /** What happened to them. */
  outcome: ApplyOutcome;
}

/**
 * Options of {@link Replicator}: its node's (resolved: every field given), and what applying session
 * changes needs.
 */
export interface ReplicatorOptions extends ResolvedNodeOptions {
  /** The stale-event horizon, ms (the shortest tombstone lifetime). */
  readonly horizonMs: number;
  readonly maxSkewMs: number;
  /** The user id of a serialized session, when the store keeps the per-user index (see ApplierOptions). */
  readonly userOf?: ((data: string) => string | undefined) | undefined;
  onApplied?(batch: AppliedBatch): void;
  /**
   * Runs after a batch was applied and before it is acknowledged: what must follow an applied change
   * for good (a "revoked before" mark ends the sessions it covers). A rejection fails the batch for now
   * (a {@link TransientError}): it is delivered again, applied again (idempotent) and this runs again.
   */
  afterApply?(events: readonly ChangeEvent[]): Promise<void>;
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
