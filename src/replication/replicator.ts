import type { Redis } from 'ioredis';
import type { Envelope } from '../contracts/envelope.js';
import type { Sealer } from '../contracts/sealer.js';
import type {
  PeerBacklog,
  ReplicationTransport,
  Subscription,
  TransportState,
} from '../contracts/transport.js';
import {
  BacklogError,
  ClosedError,
  EventError,
  GeoSessionError,
  ResyncNeededError,
  TimeoutError,
  TransportError,
} from '../errors.js';
import { Lifecycle, type LifecycleState } from '../internal/lifecycle.js';
import type { BacklogBound } from '../internal/stream-trim.js';
import { settledWithin, withTimeout } from '../internal/timeout.js';
import type { KeySpace } from '../keys.js';
import { appendHeartbeat } from '../redis/commands.js';
import { Applier, type ApplyOutcome, emptyOutcome } from './applier.js';
import { DeadLetters } from './dead-letters.js';
import type { ChangeEvent } from './events.js';
import { Pipeline, type RejectedEnvelope, type RejectionReason, type TransientStats } from './pipeline.js';
import { RedisClock } from './redis-clock.js';
import { OutboxRelay } from './relay.js';
import { type ResyncNeed, ResyncState } from './resync-state.js';
import { HEARTBEAT_KIND, type OriginSequence, type SequenceGap, SequenceTracker } from './sequence.js';
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
  onRejected?(rejected: RejectedEnvelope): void;
}

/**
 * One store's replication: the pipeline with the session-change kind registered, the subscription to
 * the other regions, the relay that publishes this region's outbox (broker transports, or any
 * transport with a sealer), the dead-letter stream and the resync state.
 */
export class Replicator {
  readonly pipeline: Pipeline;
  private readonly applier: Applier;
  private readonly relay: OutboxRelay | undefined;
  private readonly state: ResyncState;
  private readonly deadLetters: DeadLetters;
  private readonly sequences: SequenceTracker;
  /** The clock lag is measured with: the local Redis's, not the host's. */
  private readonly clock: RedisClock;
  private subscription: Subscription | undefined;
  private readonly counters = { ...emptyOutcome(), batches: 0 };
  private readonly life = new Lifecycle('replication');
  /** The periodic work, running from the end of startup to close (see startTimers). */
  private readonly timers: NodeJS.Timeout[] = [];
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly detach: () => void;
  private backlog: PeerBacklog[] = [];
  /** The last level reported per peer, so each change of level is reported once. */
  private readonly backlogLevels = new Map<string, PeerBacklog['level']>();
  /** Loading the resync state (again, when the local Redis was away at start). */
  private loading: Promise<void> | undefined;
  /** The housekeeping round in flight: a round never overlaps the one before it. */
  private tending: Promise<void> | undefined;

  constructor(private readonly options: ReplicatorOptions) {
    const { client, keys, region, transport, sealer } = options;
    const onError = (error: GeoSessionError) => this.report(error);
    const report = (error: unknown) => this.report(asReported(error));
    this.clock = new RedisClock(client, options.now);
    this.deadLetters = new DeadLetters(
      client,
      keys.internal('dead', region),
      options.deadLetterLimit,
      report,
    );
    this.state = new ResyncState(
      client,
      keys.internal('state', region),
      region,
      (other, need) => onError(new ResyncNeededError(other, need.reason)),
      report,
      keys.resync(region),
    );
    this.sequences = new SequenceTracker({
      client,
      keys,
      region,
      graceMs: options.gapGraceMs,
      timeoutMs: options.operationTimeoutMs,
      onGap: (gap) => this.onGap(gap),
      onHealed: (origin) => this.onHealed(origin),
    });
    this.pipeline = new Pipeline({
      region,
      channel: options.channel,
      transport,
      sealer,
      acceptUnsealed: options.acceptUnsealed,
      sealOutgoing: !options.sendUnsealed,
      deadLetters: this.deadLetters,
      sequences: this.sequences,
      now: () => this.clock.now(),
      onError,
      onRejected: options.onRejected,
    });
    this.applier = new Applier({
      client,
      keys,
      horizonMs: options.horizonMs,
      maxSkewMs: options.maxSkewMs,
      timeoutMs: options.operationTimeoutMs,
      digestKey: keys.digest(options.region),
      revokedChannel: keys.revoked(options.region),
      userOf: options.userOf,
    });
    this.pipeline.register<ChangeEvent>(SESSION_KIND, {
      decode: decodeSessionChange,
      apply: (events) => this.applySessions(events),
    });
    // A heartbeat carries nothing but its number, which the pipeline records.
    this.pipeline.register<null>(HEARTBEAT_KIND, {
      decode: (envelope) => {
        if (envelope.body !== '') throw new EventError(`heartbeat ${envelope.id} carries a body`);
        return null;
      },
      apply: async () => {},
    });
    // A relay reads the outbox for a broker, or to seal what it holds.
    if (!transport.readsOutbox || (sealer && !options.sendUnsealed)) {
      this.relay = new OutboxRelay({
        client,
        region,
        outboxKey: keys.internal('outbox', region),
        publish: (envelopes: Envelope[]) => this.pipeline.publish(envelopes),
        onPoison: (poison) => this.pipeline.refusePoison(poison),
        onError: report,
        onBacklog: (b) => this.onBacklog(b),
        batchSize: 500,
        maxInFlight: options.relayInFlight,
        bound: options.outboxBound,
        consumerIdleMs: options.consumerIdleMs,
        trimIntervalMs: 5000,
        // While unsealed envelopes are accepted, regions that do not seal yet may read the outbox itself.
        keepReaders: transport.readsOutbox && options.acceptUnsealed,
      });
    }
    const onTransportError = (error: Error) => report(error);
    const onBacklog = (b: PeerBacklog) => this.onBacklog(b);
    const onResync = (notice: { region: string; reason: string }) =>
      this.state.mark(notice.region, notice.reason, { cause: 'trimmed' });
    transport.on('error', onTransportError);
    transport.on('backlog', onBacklog);
    transport.on('resync', onResync);
    this.detach = () => {
      transport.off('error', onTransportError);
      transport.off('backlog', onBacklog);
      transport.off('resync', onResync);
    };
  }

  /** `starting`, `running` once start() subscribed, `closing` and `closed` (see {@link Lifecycle}). */
  get lifecycle(): LifecycleState {
    return this.life.state;
  }

  /**
   * A failure to report: dropped once closed (close() abandoned that work), and so is a `ClosedError`
   * once closing began (a step of startup or a batch cut short by the close).
   */
  private report(error: GeoSessionError): void {
    if (this.life.state === 'closed') return;
    if (this.life.stopping && error instanceof ClosedError) return;
    this.options.onError(error);
  }

  /**
   * The one place the replicator's periodic work starts (once running) and stops (on close): the tend
   * loop (state, clock, epoch, backlog), never overlapping itself, and the heartbeat.
   */
  private startTimers(): void {
    if (this.life.stopping || this.timers.length > 0) return;
    const tend = setInterval(() => {
      this.tending ??= this.tend().finally(() => {
        this.tending = undefined;
      });
    }, 5000);
    tend.unref();
    this.timers.push(tend);
    if (this.options.heartbeatMs > 0) {
      const heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs);
      heartbeat.unref();
      this.timers.push(heartbeat);
    }
  }

  private stopTimers(): void {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
  }

  /** Announces this region's last number if its outbox has been quiet for a heartbeat's time. */
  private async beat(): Promise<void> {
    const { client, keys, region, heartbeatMs, operationTimeoutMs: ms } = this.options;
    try {
      await withTimeout(
        appendHeartbeat(client, keys.internal('outbox', region), region, heartbeatMs),
        ms,
        () => new TimeoutError('appending a heartbeat', ms),
      );
    } catch {
      // The local Redis is away: writes fail too, and the store reports that. The next beat tries again.
    }
  }

  private onGap(gap: SequenceGap): void {
    const count = gap.to - gap.from + 1;
    this.state.mark(
      gap.origin,
      `gap: ${count} numbered change${count === 1 ? '' : 's'} from ${gap.origin} (${gap.from}-${gap.to} of epoch ${gap.epoch}) never arrived: a broker's retention or length limit, a trimmed stream or a deleted message dropped them, or the origin dead-lettered a change too large to send`,
      { cause: 'gap', missed: { epoch: gap.epoch, from: gap.from, to: gap.to } },
    );
  }

  /** Late arrivals filled every gap of `origin`: a need recorded for a gap alone is cleared. */
  private onHealed(origin: string): void {
    if (this.state.snapshot()[origin]?.cause !== 'gap') return;
    this.state.clear(origin).catch((error: unknown) => this.report(asReported(error)));
  }

  /**
   * Subscribes, starts the relay and loads the resync state. Resolves once changes can flow. A local
   * Redis that is away at start delays only the resync state, which is loaded again later. Rejects with
   * a `ClosedError` when close() was called before it finished; whatever it had made by then is
   * released (the subscription is closed, the relay never runs).
   */
  start(): Promise<void> {
    this.starting ??= this.run();
    return this.starting;
  }

  private async run(): Promise<void> {
    this.life.check();
    this.loading = this.loadState().catch((error: unknown) => {
      this.loading = undefined;
      this.report(asReported(error));
    });
    const { transport, sealer, acceptUnsealed } = this.options;
    const source = !transport.readsOutbox
      ? 'published'
      : !sealer
        ? 'outbox'
        : acceptUnsealed
          ? 'both'
          : 'published';
    const synced = this.syncClock();
    const subscription = await this.pipeline.subscribe({
      source,
      relayed: this.relay !== undefined,
      signal: this.life.signal,
    });
    if (this.life.stopping) {
      // Closed while subscribing, by a transport that finished anyway: this subscription is ours to close.
      await subscription.close();
      this.life.check();
    }
    this.subscription = subscription;
    this.relay?.start();
    this.startTimers();
    this.life.markRunning();
    await this.life.race(Promise.all([this.loading, synced]));
  }

  /** Measures the Redis clock's offset (an away Redis leaves the last one: it is tried again later). */
  private syncClock(): Promise<void> {
    const ms = this.options.operationTimeoutMs;
    return withTimeout(this.clock.sync(), ms, () => new TimeoutError('reading the Redis clock', ms)).catch(
      () => {},
    );
  }

  private loadState(): Promise<void> {
    const ms = this.options.operationTimeoutMs;
    const state = withTimeout(this.state.load(), ms, () => new TimeoutError('loading the resync state', ms));
    return Promise.all([state, this.sequences.load()]).then(() => {});
  }

  private async applySessions(events: ChangeEvent[]): Promise<void> {
    const { outcome, oldFrom } = await this.applier.apply(events);
    this.counters.batches++;
    for (const key of Object.keys(outcome) as (keyof ApplyOutcome)[]) this.counters[key] += outcome[key];
    for (const origin of oldFrom) {
      this.state.mark(
        origin,
        'changes older than the stale-event horizon (tombstoneTtl) arrived: the regions were cut off for longer than a logout is sure to be remembered',
        { cause: 'horizon' },
      );
    }
    this.options.onApplied?.({ events, outcome });
  }

  /**
   * A peer's backlog, from the transport (its events, or what `backlog()` answers) or from the relay's
   * outbox (region `*`: what every region is waiting for). Reported once per change of level.
   */
  private onBacklog(report: PeerBacklog): void {
    const previous = this.backlogLevels.get(report.region) ?? 'ok';
    this.backlogLevels.set(report.region, report.level);
    if (report.level === 'ok' || report.level === previous) return;
    this.report(new BacklogError(report.region, report.entries, report.oldestAgeMs, report.level));
    if (report.level === 'exceeded') {
      this.state.mark(report.region, 'a backlog bound dropped changes that region had not received', {
        cause: 'backlog',
      });
    }
  }

  /**
   * Housekeeping every few seconds: the resync state (loaded again if it failed), the Redis clock, the
   * epoch, the peers' backlogs. Every call has a deadline, and the timer never starts a round while
   * the last one runs, so a Redis that does not answer cannot pile rounds up.
   */
  private async tend(): Promise<void> {
    if (this.life.stopping) return;
    const ms = this.options.operationTimeoutMs;
    this.loading ??= this.loadState().catch(() => {
      this.loading = undefined;
    });
    await this.loading;
    await this.sequences.load().catch(() => {});
    await this.syncClock();
    if (this.life.stopping) return;
    try {
      await withTimeout(this.state.checkEpoch(), ms, () => new TimeoutError('checking the epoch', ms));
      if (this.life.stopping) return;
      // Needs cleared by a resync (src/admin/resync.ts) or by hand are forgotten without a restart.
      await withTimeout(this.state.refresh(), ms, () => new TimeoutError('reading the resync state', ms));
      if (this.life.stopping) return;
      const { transport, channel, region } = this.options;
      const backlog = transport.backlog?.(channel, region);
      this.backlog = backlog
        ? await withTimeout(backlog, ms, () => new TimeoutError('reading the backlog', ms))
        : [];
      for (const report of this.backlog) this.onBacklog(report);
    } catch (error) {
      this.report(asReported(error));
    }
  }

  stats(): ReplicationStats {
    const p = this.pipeline.stats;
    return {
      transport: this.options.transport.state,
      transportName: this.options.transport.name,
      received: { ...this.counters },
      rejected: { ...p.rejected },
      transient: {
        count: p.transient.count,
        byReason: { ...p.transient.byReason },
        last: p.transient.last && { ...p.transient.last },
      },
      published: p.published,
      lagMs: { ...p.lagMs },
      needsResync: this.state.snapshot(),
      backlog: [...this.backlog],
      sequences: Object.fromEntries(
        Object.entries(this.sequences.snapshot()).map(([origin, known]) => [
          origin,
          {
            ...known,
            duplicates: this.sequences.duplicates[origin] ?? 0,
            late: this.sequences.late[origin] ?? 0,
          },
        ]),
      ),
    };
  }

  /** The newest dead letters, newest first. */
  deadLettersLatest(count: number) {
    return this.deadLetters.latest(count);
  }

  /**
   * Stops the relay and the subscription within `limitMs`, whatever the servers do: batches not applied
   * or not confirmed by then stay unacknowledged and are delivered again (what the stream readers left
   * pending is handed over to their group's next reader). Called during startup, it abandons startup at
   * its next step (a subscribe still waiting on a region or broker is aborted) and releases what
   * startup made. No error is reported once it resolved.
   */
  close(limitMs: number): Promise<void> {
    if (this.closing) return this.closing;
    this.life.beginClose();
    this.stopTimers();
    this.detach();
    const deadline = Date.now() + limitMs;
    this.closing = (async () => {
      if (this.starting) await settledWithin(this.starting, limitMs);
      const left = Math.max(0, deadline - Date.now());
      const stopping = Promise.all([this.relay?.stop(left), this.subscription?.close()]);
      await settledWithin(stopping, left);
      this.life.markClosed();
    })();
    return this.closing;
  }
}

function asReported(error: unknown): GeoSessionError {
  if (error instanceof GeoSessionError) return error;
  return new TransportError(error instanceof Error ? error.message : String(error), { cause: error });
}
