import type { TransportState } from '../contracts/transport.js';
import type { LagPoint, LagSummary } from '../replication/lag-window.js';
import type { ResyncNeed } from '../replication/resync-state.js';
import type { Alert } from './alert-options.js';

/**
 * What `store.status()` returns, and what `readStatus()` (geosession/admin) builds from Redis alone:
 * one region's replication health at a glance. Every field is documented in docs/operations.md
 * ("Status").
 */
export interface StatusReport {
  /** This region. */
  readonly region: string;
  /** When the report was made, epoch ms (host clock). */
  readonly at: number;
  /** The transport: its name and state; `none` for a store that does not replicate. */
  readonly transport: { readonly name: string; readonly state: TransportState | 'none' };
  /** A resync of this region in progress (or the last one), as `{P|resync}:<region>` records it. */
  readonly resyncing: ResyncProgress | undefined;
  /** Changes this region published through its relay (0 for Redis Streams without a sealer). */
  readonly published: number;
  /** Changes received from every peer, by outcome (see `replicationStats().received`). */
  readonly received: Readonly<Record<string, number>>;
  /** Entries in this region's dead-letter stream, and how many were ever added (Redis 7), when known. */
  readonly deadLetters: { readonly entries: number; readonly added: number | undefined } | undefined;
  /** One entry per other region this region knows of, sorted by region. */
  readonly peers: readonly PeerStatus[];
  /** Every alert firing (state `firing`), for this region and every peer. */
  readonly alerts: readonly Alert[];
}

/** What one region knows of one peer region. */
export interface PeerStatus {
  /** The peer region. */
  readonly region: string;
  /** Lag of the changes applied here from that peer over the last minute; `undefined` when none arrived. */
  readonly lag: LagSummary | undefined;
  /** When the newest change from that peer was applied here (epoch ms, host clock), and its lag. */
  readonly lastApplied: { readonly at: number; readonly lagMs: number } | undefined;
  /**
   * What that peer has not consumed yet of this region's changes, where the transport can tell (Redis
   * Streams, AMQP): entries, the age of the oldest, and the level against the backlog bound.
   */
  readonly backlog:
    | { readonly entries: number; readonly oldestAgeMs: number | undefined; readonly level: string }
    | undefined;
  /**
   * Readers of that peer on this region's outbox (Redis Streams: consumers in the peer's consumer
   * group, from Redis); `undefined` where the transport cannot tell.
   */
  readonly consumers: number | undefined;
  /** Changes of that peer received here, by outcome (`applied`, `refused`, `stale` …; batches of one origin). */
  readonly received: Readonly<Record<string, number>>;
  /** Its envelopes rejected here, by reason (each was dead-lettered). */
  readonly rejected: Readonly<Record<string, number>>;
  /** Set when this region needs a resync with that peer: why, the cause, since when. */
  readonly needsResync: ResyncNeed | undefined;
  /** Alerts firing about that peer. */
  readonly alerts: readonly Alert[];
  /** Per-minute lag history, oldest first (only in reports read from Redis and in status records). */
  readonly history?: readonly LagPoint[];
}

/** A resync of a region, as the resync state hash `{P|resync}:<region>` records it. */
export interface ResyncProgress {
  /** `resyncing` while it runs; `done` or `failed` after. */
  readonly state: 'resyncing' | 'done' | 'failed';
  /** The region copied from. */
  readonly from: string | undefined;
  /** When it started, epoch ms. */
  readonly startedAt: number | undefined;
  /** Sessions copied so far. */
  readonly copied: number | undefined;
  /** Sessions to copy, when known. */
  readonly total: number | undefined;
}

/** Parses a resync state hash defensively; `undefined` when it holds no known `state`. */
export function parseResyncProgress(fields: Record<string, string>): ResyncProgress | undefined {
  const state = fields.state;
  if (state !== 'resyncing' && state !== 'done' && state !== 'failed') return undefined;
  const num = (value: string | undefined) => {
    if (value === undefined || value === '') return undefined;
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  };
  return {
    state,
    from: fields.from || undefined,
    startedAt: num(fields.startedAt),
    copied: num(fields.copied),
    total: num(fields.total),
  };
}
