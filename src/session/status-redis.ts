import type { Redis } from 'ioredis';
import { isMissingStream } from '../failures/reply-errors.js';
import { RELAY_GROUP } from '../replication/relay.js';
import type { ResyncNeed } from '../replication/resync-state.js';
import type { RedisClient } from '../types.js';
import { parseResyncProgress, type ResyncProgress, type StatusReport } from './status-report.js';

/**
 * What status reads from Redis directly, shared by the store's status monitor and `readStatus()` (which
 * has no app): the dead-letter stream's size, the consumer groups of a region's outbox, the resync
 * state, and the per-process status records in `{P|status}:<region>`.
 */

/** Version of the status record's JSON. */
export const STATUS_RECORD_VERSION = 1;
/** A record older than this many of its own intervals counts as gone (its process stopped or hangs). */
export const RECORD_STALE_INTERVALS = 3;

/** One store process's view, as it writes it into the region's status hash (one field per process). */
export interface StatusRecord {
  readonly v: number;
  /** The writing process: `<host>:<pid>:<random>`, also the hash field. */
  readonly process: string;
  /** When it was written, epoch ms (the writer's host clock). */
  readonly at: number;
  /** How often that process writes it, ms. */
  readonly intervalMs: number;
  /** The process's report, peers with their per-minute lag history. */
  readonly report: StatusReport;
}

/** Size of a region's dead-letter stream: `entries` now, `added` ever (Redis 7; `undefined` before). */
export async function readDeadLetterCount(
  client: RedisClient,
  key: string,
): Promise<{ entries: number; added: number | undefined }> {
  if (typeof (client as Partial<Redis>).xinfo !== 'function') {
    // A Redis-like client without XINFO (an in-memory stand-in): the length alone.
    return { entries: Number(await (client as Redis).xlen(key)), added: undefined };
  }
  try {
    const info = (await (client as Redis).xinfo('STREAM', key)) as unknown[];
    const fields = pairs(info);
    const entries = Number(fields.length ?? 0);
    const added = fields['entries-added'];
    return { entries, added: added === undefined || added === null ? undefined : Number(added) };
  } catch (error) {
    if (isMissingStream(error)) return { entries: 0, added: 0 };
    throw error;
  }
}

/** A consumer group of a stream: its readers, entries delivered and not acknowledged, entries not read. */
export interface GroupSummary {
  readonly consumers: number;
  readonly pending: number;
  /** Entries not delivered yet (Redis 7; `undefined` when Redis cannot tell). */
  readonly lag: number | undefined;
}

/** The consumer groups of `key` by name (empty when the stream does not exist). */
export async function readGroups(client: RedisClient, key: string): Promise<Map<string, GroupSummary>> {
  if (typeof (client as Partial<Redis>).xinfo !== 'function') return new Map();
  try {
    const rows = (await (client as Redis).xinfo('GROUPS', key)) as unknown[][];
    const out = new Map<string, GroupSummary>();
    for (const row of rows) {
      const f = pairs(row);
      const lag = f.lag;
      out.set(String(f.name), {
        consumers: Number(f.consumers ?? 0),
        pending: Number(f.pending ?? 0),
        lag: lag === null || lag === undefined ? undefined : Number(lag),
      });
    }
    return out;
  } catch (error) {
    if (isMissingStream(error)) return new Map();
    throw error;
  }
}

/**
 * The peers' consumer groups on a region's streams (`streams`: its outbox, and the relay stream it
 * publishes sealed batches to): per group name the one its readers use (more consumers, then more
 * entries waiting), with the key it is on. The relay's own group is left out.
 */
export async function readPeerGroups(
  client: RedisClient,
  streams: readonly string[],
): Promise<Map<string, GroupSummary & { key: string }>> {
  const out = new Map<string, GroupSummary & { key: string }>();
  const all = await Promise.all(streams.map((key) => readGroups(client, key)));
  for (const [i, groups] of all.entries()) {
    for (const [name, group] of groups) {
      if (name === RELAY_GROUP) continue;
      const known = out.get(name);
      const waiting = (g: GroupSummary) => (g.lag ?? 0) + g.pending;
      if (
        !known ||
        group.consumers > known.consumers ||
        (group.consumers === known.consumers && waiting(group) > waiting(known))
      ) {
        out.set(name, { ...group, key: streams[i] as string });
      }
    }
  }
  return out;
}

/** The resync state of a region (`{P|resync}:<region>`), `undefined` when none is recorded. */
export async function readResyncProgress(
  client: RedisClient,
  key: string,
): Promise<ResyncProgress | undefined> {
  const fields = await client.hgetall(key);
  return parseResyncProgress(fields ?? {});
}

/** The needs recorded in a region's state hash (fields `resync:<peer>`), read defensively. */
export async function readResyncNeeds(client: RedisClient, key: string): Promise<Record<string, ResyncNeed>> {
  const fields = (await client.hgetall(key)) ?? {};
  const out: Record<string, ResyncNeed> = {};
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith('resync:')) continue;
    try {
      const need = JSON.parse(value) as Partial<ResyncNeed>;
      out[field.slice('resync:'.length)] = {
        reason: String(need.reason ?? 'unknown'),
        since: Number(need.since ?? 0),
        ...(need.cause ? { cause: need.cause } : {}),
        ...(need.missed ? { missed: need.missed } : {}),
      };
    } catch {
      out[field.slice('resync:'.length)] = { reason: 'unreadable need (not JSON)', since: 0 };
    }
  }
  return out;
}

/** Writes `record` as its process's field of the status hash `key`, which expires after a few intervals. */
export async function writeStatusRecord(
  client: RedisClient,
  key: string,
  record: StatusRecord,
): Promise<void> {
  const ttl = record.intervalMs * RECORD_STALE_INTERVALS + 1000;
  await (client as Redis).multi().hset(key, record.process, JSON.stringify(record)).pexpire(key, ttl).exec();
}

/** Parses one field of a status hash; `undefined` for anything that is not a record of a known version. */
export function parseStatusRecord(text: string): StatusRecord | undefined {
  try {
    const record = JSON.parse(text) as Partial<StatusRecord>;
    if (
      record?.v !== STATUS_RECORD_VERSION ||
      typeof record.at !== 'number' ||
      typeof record.intervalMs !== 'number' ||
      typeof record.process !== 'string' ||
      typeof record.report !== 'object' ||
      record.report === null ||
      !Array.isArray(record.report.peers)
    ) {
      return undefined;
    }
    return record as StatusRecord;
  } catch {
    return undefined;
  }
}

/** True when `record` is older than {@link RECORD_STALE_INTERVALS} of its intervals at `now`. */
export function isStale(record: StatusRecord, now: number): boolean {
  return now - record.at > record.intervalMs * RECORD_STALE_INTERVALS;
}

/** Every record of a status hash, fresh ones and the fields to delete (stale or unreadable) apart. */
export async function readStatusRecords(
  client: RedisClient,
  key: string,
  now: number,
): Promise<{ fresh: StatusRecord[]; gone: string[] }> {
  const fields = (await client.hgetall(key)) ?? {};
  const fresh: StatusRecord[] = [];
  const gone: string[] = [];
  for (const [field, text] of Object.entries(fields)) {
    const record = parseStatusRecord(text);
    if (!record || isStale(record, now)) gone.push(field);
    else fresh.push(record);
  }
  return { fresh, gone };
}

function pairs(row: unknown[]): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1];
  return f;
}
