/**
 * A replication node's periodic work (src/replication/node.ts), from the end of its startup to its
 * close: every few seconds the resync state (loaded again if the local Redis was away), the Redis clock
 * lag is measured with, the epoch and the peers' backlogs; and the heartbeat that announces each
 * outbox's last number when it has been quiet. Every call has a deadline, and a round never overlaps
 * the one before it, so a Redis that does not answer cannot pile rounds up.
 */
import type { PeerBacklog } from '../contracts/transport.js';
import { BacklogError, GeoSessionError, TimeoutError, TransportError } from '../errors.js';
import type { SessionOutbox } from '../keys.js';
import type { Lifecycle } from '../runtime/lifecycle.js';
import { withTimeout } from '../runtime/timeout.js';
import { beat } from './heartbeat.js';
import type { ResolvedNodeOptions } from './node-options.js';
import type { RedisClock } from './redis-clock.js';
import type { ResyncState } from './resync-state.js';
import type { SequenceTracker } from './sequence.js';

/** What the housekeeping works on: the node's parts, and where its failures go. */
export interface HousekeepingHost {
  readonly options: ResolvedNodeOptions;
  readonly outboxes: readonly SessionOutbox[];
  readonly state: ResyncState;
  readonly sequences: SequenceTracker;
  readonly clock: RedisClock;
  readonly life: Lifecycle;
  report(error: GeoSessionError): void;
}

/** `error` as a {@link GeoSessionError} to report (a `TransportError` around anything else). */
export function asReported(error: unknown): GeoSessionError {
  if (error instanceof GeoSessionError) return error;
  return new TransportError(error instanceof Error ? error.message : String(error), { cause: error });
}

/** The node's periodic work and the state it keeps (the peers' backlogs). */
export class NodeHousekeeping {
  /** The peers' backlogs, as last read. */
  backlog: PeerBacklog[] = [];
  /** The last level reported per peer, so each change of level is reported once. */
  private readonly backlogLevels = new Map<string, PeerBacklog['level']>();
  /** Loading the resync state (again, when the local Redis was away at start). */
  private loading: Promise<void> | undefined;
  /** The round in flight: a round never overlaps the one before it. */
  private tending: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly host: HousekeepingHost) {}

  /** Starts loading the resync state; a failure is reported, and a later round loads it again. */
  loadState(): Promise<void> {
    this.loading = this.readState().catch((error: unknown) => {
      this.loading = undefined;
      this.host.report(asReported(error));
    });
    return this.loading;
  }

  /** Starts the rounds and the heartbeat (once; never after the node began to close). */
  start(): void {
    if (this.host.life.stopping || this.timers.length > 0) return;
    const tend = setInterval(() => {
      this.tending ??= this.tend().finally(() => {
        this.tending = undefined;
      });
    }, 5000);
    tend.unref();
    this.timers.push(tend);
    const { heartbeatMs } = this.host.options;
    if (heartbeatMs > 0) {
      const heartbeat = setInterval(() => void this.beat(), heartbeatMs);
      heartbeat.unref();
      this.timers.push(heartbeat);
    }
  }

  stop(): void {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
  }

  /** Measures the Redis clock's offset (an away Redis leaves the last one: it is tried again later). */
  syncClock(): Promise<void> {
    const ms = this.host.options.operationTimeoutMs;
    return withTimeout(
      this.host.clock.sync(),
      ms,
      () => new TimeoutError('reading the Redis clock', ms),
    ).catch(() => {});
  }

  /**
   * A peer's backlog, from the transport (its events, or what `backlog()` answers) or from the relay's
   * outbox (region `*`: what every region is waiting for). Reported once per change of level.
   */
  onBacklog(report: PeerBacklog): void {
    const previous = this.backlogLevels.get(report.region) ?? 'ok';
    this.backlogLevels.set(report.region, report.level);
    if (report.level === 'ok' || report.level === previous) return;
    this.host.report(new BacklogError(report.region, report.entries, report.oldestAgeMs, report.level));
    if (report.level === 'exceeded') {
      this.host.state.mark(report.region, 'a backlog bound dropped changes that region had not received', {
        cause: 'backlog',
      });
    }
  }

  /** Announces each outbox's last number if it has been quiet for a heartbeat's time. */
  private async beat(): Promise<void> {
    const { client, heartbeatMs, operationTimeoutMs } = this.host.options;
    await Promise.all(
      this.host.outboxes.map((o) => beat(client, o.key, o.stream, heartbeatMs, operationTimeoutMs)),
    );
  }

  private readState(): Promise<void> {
    const ms = this.host.options.operationTimeoutMs;
    const state = withTimeout(
      this.host.state.load(),
      ms,
      () => new TimeoutError('loading the resync state', ms),
    );
    return Promise.all([state, this.host.sequences.load()]).then(() => {});
  }

  /** One round: the resync state, the clock, the epoch, the peers' backlogs. */
  private async tend(): Promise<void> {
    const { life, state, options } = this.host;
    if (life.stopping) return;
    const ms = options.operationTimeoutMs;
    this.loading ??= this.readState().catch(() => {
      this.loading = undefined;
    });
    await this.loading;
    await this.host.sequences.load().catch(() => {});
    await this.syncClock();
    if (life.stopping) return;
    try {
      await withTimeout(state.checkEpoch(), ms, () => new TimeoutError('checking the epoch', ms));
      if (life.stopping) return;
      // Needs cleared by a resync (src/admin/resync.ts) or by hand are forgotten without a restart.
      await withTimeout(state.refresh(), ms, () => new TimeoutError('reading the resync state', ms));
      if (life.stopping) return;
      const { transport, channel, region } = options;
      const backlog = transport.backlog?.(channel, region);
      this.backlog = backlog
        ? await withTimeout(backlog, ms, () => new TimeoutError('reading the backlog', ms))
        : [];
      for (const report of this.backlog) this.onBacklog(report);
    } catch (error) {
      this.host.report(asReported(error));
    }
  }
}
