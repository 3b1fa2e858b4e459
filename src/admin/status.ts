import type { Redis } from 'ioredis';
import { TimeoutError } from '../errors.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import type { LagPoint } from '../replication/lag-window.js';
import { withTimeout } from '../runtime/timeout.js';
import type { Alert } from '../session/alert-options.js';
import { singleRegionReport } from '../session/status.js';
import {
  type GroupSummary,
  readDeadLetterCount,
  readPeerGroups,
  readResyncNeeds,
  readResyncProgress,
  readStatusRecords,
  type StatusRecord,
} from '../session/status-redis.js';
import type { PeerStatus, StatusReport } from '../session/status-report.js';
import type { RedisClient } from '../types.js';

/** Options of {@link readStatus}. */
export interface ReadStatusOptions {
  /**
   * The stores' key prefix.
   * @default 'sess:'
   */
  prefix?: string;
  /**
   * Longest wait for each region's Redis, ms; a region that does not answer is reported unreachable.
   * @default 5000
   */
  timeoutMs?: number;
}

/** One process whose status record was read (fresh: written within a few of its intervals). */
export interface StatusProcess {
  readonly process: string;
  /** When it last wrote its record, epoch ms (its host clock). */
  readonly at: number;
  readonly transport: StatusReport['transport'];
}

/**
 * One region's status read from Redis alone: what its store processes last recorded (merged), and
 * what its Redis tells directly (outbox, consumer groups, dead letters, needed resyncs, resync state).
 */
export interface RegionStatus extends StatusReport {
  /** False when the region's Redis could not be read (see `error`); the report is then empty. */
  readonly reachable: boolean;
  /** Why it could not be read. */
  readonly error: string | undefined;
  /** The store processes with a fresh status record; none means no app runs (or none writes records). */
  readonly processes: readonly StatusProcess[];
  /** Entries in this region's outbox stream. */
  readonly outbox: number | undefined;
}

/**
 * Builds each region's status report from Redis alone, without the app (`geosession status`): the
 * process records in `{P|status}:<region>` merged (lag: the worst process's; counts: summed; alerts:
 * every process's), and what Redis knows directly, which wins where both tell: the outbox length, each
 * peer's consumer group on it (Redis Streams: entries not consumed, readers), the dead-letter stream,
 * `needsResync` from the state hash and the resync state hash.
 *
 * @param regions every region's Redis client, by region id (the clients stay yours).
 */
export async function readStatus(
  regions: Record<string, RedisClient>,
  options: ReadStatusOptions = {},
): Promise<RegionStatus[]> {
  const prefix = options.prefix ?? 'sess:';
  const timeoutMs = options.timeoutMs ?? 5000;
  const names = Object.keys(regions).sort();
  return Promise.all(
    names.map(async (region) => {
      const client = regions[region] as RedisClient;
      const keys = createKeySpace(prefix, (client as Redis).options?.keyPrefix ?? '');
      try {
        return await withTimeout(
          readRegion(client, keys, region, names),
          timeoutMs,
          () => new TimeoutError(`reading the status of ${region}`, timeoutMs),
        );
      } catch (error) {
        return unreachable(region, error instanceof Error ? error.message : String(error));
      }
    }),
  );
}

async function readRegion(
  client: RedisClient,
  keys: KeySpace,
  region: string,
  known: readonly string[],
): Promise<RegionStatus> {
  const now = Date.now();
  const [{ fresh }, dead, groups, resyncing, state, outbox, redisNow] = await Promise.all([
    readStatusRecords(client, keys.status(region), now),
    readDeadLetterCount(client, keys.internal('dead', region)),
    readPeerGroups(client, [keys.internal('outbox', region), keys.internal('relay', region)]),
    readResyncProgress(client, keys.internal('resync', region)),
    readResyncNeeds(client, keys.internal('state', region)),
    (client as Redis).xlen(keys.internal('outbox', region)),
    redisTime(client as Redis),
  ]);
  const needs = state;
  const records = fresh.filter((r) => r.report.region === region).sort((a, b) => b.at - a.at);
  const newest = records[0];
  const peerNames = new Set<string>([
    ...known,
    ...groups.keys(),
    ...Object.keys(needs),
    ...records.flatMap((r) => r.report.peers.map((p) => p.region)),
  ]);
  peerNames.delete(region);
  const alerts = mergeAlerts(records.flatMap((r) => r.report.alerts));
  const peers: PeerStatus[] = [];
  for (const peer of [...peerNames].sort()) {
    const group = groups.get(peer);
    const views = records.flatMap((r) => r.report.peers.filter((p) => p.region === peer));
    const fromRedis = group
      ? await groupBacklog(client as Redis, group.key, peer, group, redisNow)
      : undefined;
    const recorded = views.map((v) => v.backlog).find((b) => b !== undefined);
    peers.push({
      region: peer,
      lag: worst(views.map((v) => v.lag)),
      lastApplied: newestOf(views.map((v) => v.lastApplied)),
      backlog: fromRedis ?? recorded,
      consumers: group?.consumers,
      received: sum(views.map((v) => v.received)),
      rejected: sum(views.map((v) => v.rejected)),
      needsResync: needs[peer],
      alerts: alerts.filter((a) => a.peer === peer),
      history: mergeHistory(views.map((v) => v.history ?? [])),
    });
  }
  return {
    region,
    at: now,
    transport: newest?.report.transport ?? { name: 'unknown', state: 'none' },
    resyncing,
    published: records.reduce((n, r) => n + r.report.published, 0),
    received: sum(records.map((r) => r.report.received)),
    deadLetters: dead,
    peers,
    alerts,
    reachable: true,
    error: undefined,
    processes: records.map((r: StatusRecord) => ({
      process: r.process,
      at: r.at,
      transport: r.report.transport,
    })),
    outbox,
  };
}

function unreachable(region: string, error: string): RegionStatus {
  return {
    ...singleRegionReport(region),
    transport: { name: 'unknown', state: 'none' },
    reachable: false,
    error,
    processes: [],
    outbox: undefined,
  };
}

/** A peer's backlog on a stream from its consumer group: entries not read plus not acknowledged. */
async function groupBacklog(
  client: Redis,
  key: string,
  peer: string,
  group: GroupSummary,
  now: number,
): Promise<PeerStatus['backlog']> {
  if (group.lag === undefined) return undefined;
  const entries = group.lag + group.pending;
  if (entries === 0) return { entries, oldestAgeMs: undefined, level: 'ok' };
  let oldest: string | undefined;
  if (group.pending > 0) {
    const summary = (await client.xpending(key, peer)) as [number, string | null, ...unknown[]];
    oldest = summary[1] ?? undefined;
  } else {
    const info = (await client.xinfo('GROUPS', key)) as unknown[][];
    const row = info.find((r) => r[1] === peer) ?? [];
    const at = row.indexOf('last-delivered-id');
    const last = at >= 0 ? String(row[at + 1]) : '0-0';
    const next = (await client.xrange(key, `(${last}`, '+', 'COUNT', 1)) as [string, string[]][];
    oldest = next[0]?.[0];
  }
  const oldestAgeMs = oldest ? Math.max(0, now - Number(oldest.split('-')[0])) : undefined;
  return { entries, oldestAgeMs, level: 'ok' };
}

async function redisTime(client: Redis): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

function worst(lags: (PeerStatus['lag'] | undefined)[]): PeerStatus['lag'] {
  let out: PeerStatus['lag'];
  for (const lag of lags) if (lag && (!out || lag.p99Ms > out.p99Ms)) out = lag;
  return out;
}

function newestOf(items: (PeerStatus['lastApplied'] | undefined)[]): PeerStatus['lastApplied'] {
  let out: PeerStatus['lastApplied'];
  for (const item of items) if (item && (!out || item.at > out.at)) out = item;
  return out;
}

function sum(maps: (Readonly<Record<string, number>> | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const map of maps) for (const [k, n] of Object.entries(map ?? {})) out[k] = (out[k] ?? 0) + Number(n);
  return out;
}

function mergeAlerts(alerts: Alert[]): Alert[] {
  const seen = new Map<string, Alert>();
  for (const alert of alerts) {
    const key = `${alert.rule}\u0000${alert.peer ?? ''}`;
    const known = seen.get(key);
    if (!known || alert.since < known.since) seen.set(key, alert);
  }
  return [...seen.values()];
}

/** Per minute, the worst process's point. */
function mergeHistory(histories: readonly (readonly LagPoint[])[]): LagPoint[] {
  const byMinute = new Map<number, LagPoint>();
  for (const history of histories) {
    for (const point of history) {
      const known = byMinute.get(point.minute);
      if (!known || point.p99Ms > known.p99Ms) byMinute.set(point.minute, point);
    }
  }
  return [...byMinute.values()].sort((a, b) => a.minute - b.minute);
}
