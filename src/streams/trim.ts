import type { Redis } from 'ioredis';
import type { PeerBacklog } from '../contracts/transport.js';
import { compareIds, idTime } from '../wire/stream-entry.js';
import { groupsOf } from './group-info.js';

/** How much a stream may keep for a region that does not consume it. */
export interface BacklogBound {
  /** Most entries kept for one region. */
  readonly maxEntries: number;
  /** Oldest entry kept for one region, ms. */
  readonly maxAgeMs: number;
  /** Fraction of either bound past which a warning is raised. */
  readonly warnAt: number;
}

/**
 * Trims a stream below what every one of `groups` (the regions that read it) has consumed, within
 * `bound`: a group that does not exist yet (a region that never ran) or falls behind keeps its entries
 * until its backlog passes the bound; past it the oldest entries are dropped anyway (that region then
 * needs a resync, and its readers notice). Returns each group's backlog and level. Ages are measured
 * with the clock of the Redis holding the stream (its entry ids carry that clock), never the host's: a
 * host whose clock runs ahead must not trim entries nobody read.
 */
export async function trimStream(
  client: Redis,
  key: string,
  groups: readonly string[],
  bound: BacklogBound,
): Promise<PeerBacklog[]> {
  const now = await redisNowMs(client);
  const info = new Map((await groupsOf(client, key)).map((g) => [g.name, g]));
  const length = Number(await client.xlen(key));
  const ageCutoff = `${Math.max(0, now - bound.maxAgeMs)}-0`;
  const reports: PeerBacklog[] = [];
  let floor: string | undefined;
  for (const name of groups) {
    const group = info.get(name);
    let start = '0-0';
    let entries = length;
    if (group) {
      start = group.lastDeliveredId;
      entries = (group.lag ?? 0) + group.pending;
      if (group.pending > 0) {
        const summary = (await client.xpending(key, name)) as [number, string | null, string | null, unknown];
        if (summary[1]) start = decrement(summary[1]);
      }
    }
    const oldestAgeMs = entries > 0 ? await oldestAfter(client, key, start, now) : undefined;
    const ageRatio = oldestAgeMs === undefined ? 0 : oldestAgeMs / bound.maxAgeMs;
    const ratio = Math.max(entries / bound.maxEntries, ageRatio);
    const level = ratio > 1 ? 'exceeded' : ratio >= bound.warnAt ? 'warning' : 'ok';
    reports.push({ region: name, entries, oldestAgeMs, level });
    // A group past the age bound keeps nothing older than the cutoff; the entry bound is MAXLEN below.
    let groupFloor = start;
    if (ageRatio > 1 && compareIds(ageCutoff, groupFloor) > 0) groupFloor = ageCutoff;
    if (floor === undefined || compareIds(groupFloor, floor) < 0) floor = groupFloor;
  }
  if (floor !== undefined && floor !== '0-0') await client.xtrim(key, 'MINID', floor);
  if (length > bound.maxEntries) await client.xtrim(key, 'MAXLEN', bound.maxEntries);
  return reports;
}

/** The Redis server's clock (TIME), ms. */
async function redisNowMs(client: Redis): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** The id just below `id` (so MINID keeps `id` itself). */
function decrement(id: string): string {
  const [ms = 0, seq = 0] = id.split('-').map(Number);
  return seq > 0 ? `${ms}-${seq - 1}` : `${Math.max(0, ms - 1)}-18446744073709551615`;
}

/** Age of the first entry after `id`, ms (its id carries the Redis time it was added). */
async function oldestAfter(client: Redis, key: string, id: string, now: number): Promise<number | undefined> {
  const first = (await client.xrange(key, `(${id}`, '+', 'COUNT', 1)) as [string, string[]][];
  const entry = first[0];
  return entry ? Math.max(0, now - idTime(entry[0])) : undefined;
}

/**
 * Removes the consumers of `group` that have been idle longer than `idleMs` and hold nothing pending
 * (processes that stopped or died; their pending entries were claimed by others first). `keep` names
 * consumers never to remove (this process's own).
 */
export async function removeIdleConsumers(
  client: Redis,
  key: string,
  group: string,
  idleMs: number,
  keep: ReadonlySet<string>,
): Promise<number> {
  const rows = (await client.xinfo('CONSUMERS', key, group)) as unknown[][];
  let removed = 0;
  for (const row of rows) {
    const f: Record<string, unknown> = {};
    for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1];
    const name = String(f.name);
    if (keep.has(name) || Number(f.pending ?? 0) > 0 || Number(f.idle ?? 0) < idleMs) continue;
    await client.xgroup('DELCONSUMER', key, group, name);
    removed++;
  }
  return removed;
}

/**
 * True when entries were deleted from the stream that `group` had not been delivered yet: the stream
 * was trimmed past it (a backlog bound) or emptied and refilled, so this group missed entries.
 */
export async function groupMissedEntries(client: Redis, key: string, group: string): Promise<boolean> {
  const stream = (await client.xinfo('STREAM', key)) as unknown[];
  let maxDeleted = '0-0';
  for (let i = 0; i + 1 < stream.length; i += 2) {
    if (stream[i] === 'max-deleted-entry-id') maxDeleted = String(stream[i + 1]);
  }
  const mine = (await groupsOf(client, key)).find((g) => g.name === group);
  return mine !== undefined && compareIds(maxDeleted, mine.lastDeliveredId) > 0;
}
