import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ReplicationTransport } from '../contracts/transport.js';
import { CallbackError, type GeoSessionError, TimeoutError, TransportError } from '../errors.js';
import { RateLimiter } from '../failures/report.js';
import type { KeySpace } from '../keys.js';
import { LagWindows } from '../replication/lag-window.js';
import type { RejectedEnvelope } from '../replication/pipeline.js';
import type { AppliedBatch, Replicator } from '../replication/replicator.js';
import type { ResyncNeed } from '../replication/resync-state.js';
import { withTimeout } from '../runtime/timeout.js';
import type { RedisClient } from '../types.js';
import type { Alert, ResolvedAlertRules } from './alert-options.js';
import { AlertMonitor } from './alerts.js';
import {
  type GroupSummary,
  readDeadLetterCount,
  readPeerGroups,
  readResyncNeeds,
  readResyncProgress,
  readStatusRecords,
  STATUS_RECORD_VERSION,
  writeStatusRecord,
} from './status-redis.js';
import type { PeerStatus, ResyncProgress, StatusReport } from './status-report.js';

/** Options of {@link StatusMonitor}. */
export interface StatusMonitorOptions {
  readonly region: string;
  readonly client: RedisClient;
  readonly keys: KeySpace;
  readonly replicator: Replicator;
  readonly transport: ReplicationTransport;
  readonly rules: ResolvedAlertRules;
  readonly onAlert: ((alert: Alert) => void) | undefined;
  /** How often rules are checked and the status record written, ms. */
  readonly intervalMs: number;
  /** Write the per-process status record into `{P|status}:<region>`. */
  readonly record: boolean;
  readonly operationTimeoutMs: number;
  onError(error: GeoSessionError): void;
}

/** Prune stale fields of the status hash every this many intervals. */
const PRUNE_EVERY = 6;

/**
 * One store's status: the lag windows (fed by the pipeline), per-peer counters, what it reads from its
 * Redis (dead letters, outbox consumer groups, the resync state), the alert rules, and the status
 * record it writes for `readStatus()` and the CLI. One unref'd timer, stopped by {@link close}.
 */
export class StatusMonitor {
  private readonly lags = new LagWindows();
  private readonly alerts: AlertMonitor;
  private readonly rejected = new Map<string, Record<string, number>>();
  private readonly received = new Map<string, Record<string, number>>();
  private readonly process = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly errors = new RateLimiter(60_000);
  private deadLetters: { entries: number; added: number | undefined } | undefined;
  private groups = new Map<string, GroupSummary>();
  private resync: ResyncProgress | undefined;
  /** Needed resyncs as the state hash holds them (any process may have recorded or cleared one). */
  private needs: Record<string, ResyncNeed> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private ticks = 0;
  private closed = false;
  private readonly detachLag: () => void;

  constructor(private readonly options: StatusMonitorOptions) {
    this.alerts = new AlertMonitor(options.region, options.rules, (alert) => this.deliver(alert));
    this.detachLag = options.replicator.pipeline.onLag((origin, lagMs) => this.lags.add(origin, lagMs));
  }

  /** Starts the periodic check (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.closed || this.timer) return;
    this.timer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => {
        this.ticking = undefined;
      });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Counts an applied batch per origin (batches of several origins count in the region's total only). */
  noteApplied(batch: AppliedBatch): void {
    const origin = batch.events[0]?.origin;
    if (origin === undefined || batch.events.some((e) => e.origin !== origin)) return;
    const counts = this.received.get(origin) ?? {};
    for (const [key, n] of Object.entries(batch.outcome)) if (n > 0) counts[key] = (counts[key] ?? 0) + n;
    this.received.set(origin, counts);
  }

  /** Counts a rejected envelope by its origin and reason. */
  noteRejected(rejected: RejectedEnvelope): void {
    const origin = rejected.origin ?? 'unknown';
    const counts = this.rejected.get(origin) ?? {};
    counts[rejected.reason] = (counts[rejected.reason] ?? 0) + 1;
    this.rejected.set(origin, counts);
  }

  /** The report, after reading what Redis knows now (a Redis away leaves the last values read). */
  async report(): Promise<StatusReport> {
    await this.refresh();
    return this.build(Date.now(), false);
  }

  /** Stops the timer; a check in flight finishes on its own and delivers nothing more. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.detachLag();
  }

  private async tick(): Promise<void> {
    await this.refresh();
    if (this.closed) return;
    const now = Date.now();
    const report = this.build(now, true);
    this.alerts.evaluate({
      now,
      transportState: report.transport.state,
      deadLettersAdded: this.deadLetters ? (this.deadLetters.added ?? this.deadLetters.entries) : undefined,
      peers: report.peers.map((p) => ({
        region: p.region,
        lagP99Ms: p.lag?.p99Ms,
        backlog: p.backlog,
        needsResync: p.needsResync,
        rejectedTotal: Object.values(p.rejected).reduce((a, b) => a + b, 0),
      })),
    });
    if (!this.options.record || this.closed) return;
    const { client, keys, region, intervalMs } = this.options;
    const key = keys.status(region);
    const firing = this.alerts.firing();
    const withAlerts: StatusReport = {
      ...report,
      alerts: firing,
      peers: report.peers.map((p) => ({ ...p, alerts: firing.filter((a) => a.peer === p.region) })),
    };
    await this.guard('writing the status record', async () => {
      await writeStatusRecord(client, key, {
        v: STATUS_RECORD_VERSION,
        process: this.process,
        at: now,
        intervalMs,
        report: withAlerts,
      });
      if (++this.ticks % PRUNE_EVERY === 0) {
        const { gone } = await readStatusRecords(client, key, now);
        if (gone.length > 0) await client.hdel(key, ...gone);
      }
    });
  }

  /** Reads the dead-letter count, the outbox's consumer groups and the resync state. */
  private async refresh(): Promise<void> {
    const { client, keys, region, transport } = this.options;
    await this.guard('reading the status from Redis', async () => {
      const [dead, groups, resync, needs] = await Promise.all([
        readDeadLetterCount(client, keys.internal('dead', region)),
        transport.readsOutbox
          ? readPeerGroups(client, [
              // The outbox, each outbox shard's (the same key when unsharded), and the relay stream.
              ...new Set([
                keys.internal('outbox', region),
                ...keys.sessionOutboxes(region).map((o) => o.key),
              ]),
              keys.internal('relay', region),
            ])
          : Promise.resolve(new Map<string, GroupSummary>()),
        readResyncProgress(client, keys.internal('resync', region)),
        readResyncNeeds(client, keys.internal('state', region)),
      ]);
      this.needs = needs;
      this.deadLetters = dead;
      this.groups = groups;
      this.resync = resync;
    });
  }

  private async guard(what: string, work: () => Promise<void>): Promise<void> {
    const ms = this.options.operationTimeoutMs;
    try {
      await withTimeout(work(), ms, () => new TimeoutError(what, ms));
    } catch (error) {
      if (this.closed || this.errors.admit(what) === undefined) return;
      this.options.onError(
        error instanceof TimeoutError ? error : new TransportError(`${what} failed`, { cause: error }),
      );
    }
  }

  private deliver(alert: Alert): void {
    if (this.closed) return;
    const hook = this.options.onAlert;
    if (!hook) return;
    try {
      hook(alert);
    } catch (error) {
      this.options.onError(new CallbackError('onAlert', error));
    }
  }

  /** The report from what is known now; `history` adds each peer's per-minute lag history. */
  private build(now: number, history: boolean): StatusReport {
    const { region, replicator, transport } = this.options;
    const stats = replicator.stats();
    const everyone = stats.backlog.find((b) => b.region === '*');
    const needs = this.needs ?? stats.needsResync;
    const names = new Set<string>([
      ...this.lags.regions(),
      ...Object.keys(needs),
      ...Object.keys(stats.sequences),
      ...this.rejected.keys(),
      ...this.received.keys(),
      ...stats.backlog.map((b) => b.region),
      ...this.groups.keys(),
    ]);
    names.delete(region);
    names.delete('*');
    const firing = this.alerts.firing();
    const peers: PeerStatus[] = [...names].sort().map((peer) => {
      const own = stats.backlog.find((b) => b.region === peer);
      const backlog =
        own && everyone ? (own.entries >= everyone.entries ? own : everyone) : (own ?? everyone);
      const group = this.groups.get(peer);
      return {
        region: peer,
        lag: this.lags.lastMinute(peer),
        lastApplied: this.lags.last(peer),
        backlog: backlog && {
          entries: backlog.entries,
          oldestAgeMs: backlog.oldestAgeMs,
          level: backlog.level,
        },
        consumers: group?.consumers,
        received: { ...(this.received.get(peer) ?? {}) },
        rejected: { ...(this.rejected.get(peer) ?? {}) },
        needsResync: needs[peer],
        alerts: firing.filter((a) => a.peer === peer),
        ...(history ? { history: this.lags.history(peer) } : {}),
      };
    });
    return {
      region,
      at: now,
      transport: { name: transport.name, state: stats.transport },
      resyncing: this.resync,
      published: stats.published,
      received: { ...stats.received },
      deadLetters: this.deadLetters && { ...this.deadLetters },
      peers,
      alerts: firing,
    };
  }
}

/** The report of a store without a transport: its region alone. */
export function singleRegionReport(region: string): StatusReport {
  return {
    region,
    at: Date.now(),
    transport: { name: 'none', state: 'none' },
    resyncing: undefined,
    published: 0,
    received: {},
    deadLetters: undefined,
    peers: [],
    alerts: [],
  };
}
