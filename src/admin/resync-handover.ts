/**
 * The handover of a resync to normal replication (docs/replication.md, "Resync"): what the copy holds is
 * recorded in the receiving region's sequence state, so the numbered changes it covers are neither
 * applied again nor reported as a gap, and the needs for a resync that the copy settled are cleared.
 *
 * Before the copy reads anything, the copied region's position is taken: its own outbox counter (every
 * change it numbered so far is in its state) and, for every other origin, what it has handled (every
 * change it applied is in its state). A copy read after that holds all those changes, so afterwards the
 * receiving region may count them as handled. Ranges the copied region gave up as gaps stay gaps.
 *
 * With sharded outboxes (docs/replication.md, "Sharded outboxes") a region numbers each outbox on its
 * own: the unsharded one as `<region>` and shard `i`'s as `<region>#i` (its counter beside the shard's
 * outbox, in the shard's slot), and a receiving region tracks each of those streams under its own field
 * of its sequence state. So a point is per stream: its `origin` is the stream's name. A shard's counter
 * and its sessions share a master, so the order "counter first, then the sessions" holds per shard.
 */
import type { KeySpace } from '../keys.js';
import { coverSequence, parseRanges } from '../redis/commands.js';
import { parseNeeds, type ResyncNeed } from '../replication/resync-state.js';
import { originOfStream } from '../replication/sequence.js';
import type { RedisClient } from '../types.js';
import { sequenceKey } from '../wire/internal-keys.js';

/** Numbers of one origin's stream a copy holds: every number of `epoch` up to `low`, but `gaps`. */
export interface CoverPoint {
  /** The stream: the origin region for its unsharded outbox, `<region>#<shard>` for a shard's. */
  readonly origin: string;
  readonly epoch: string;
  readonly low: number;
  readonly gaps: readonly { readonly from: number; readonly to: number }[];
}

/**
 * Where a copy of `from` starts, read before it reads any session: `from`'s own numbering (each of its
 * outboxes' counters, in `keys`'s layout) and what it handled of every origin's streams but `to`'s
 * (whose own numbers `to` knows best).
 */
export async function readCoverPoints(
  client: RedisClient,
  keys: KeySpace,
  from: string,
  to: string,
): Promise<CoverPoint[]> {
  const counters = [{ key: keys.sequence(from), stream: from }];
  if (keys.shards > 0) {
    for (const o of keys.sessionOutboxes(from)) counters.push({ key: sequenceKey(o.key), stream: o.stream });
  }
  // Each counter alone (on a Cluster each shard's is in its own slot), before the sessions.
  const [seen, ...numbered] = await Promise.all([
    client.hgetall(keys.seen(from)),
    ...counters.map((c) => client.hgetall(c.key)),
  ]);
  const points: CoverPoint[] = [];
  counters.forEach((c, i) => {
    const counter = numbered[i] ?? {};
    const n = Number(counter.n);
    if (counter.e && /^\d{16}$/.test(counter.e) && Number.isSafeInteger(n) && n > 0) {
      points.push({ origin: c.stream, epoch: counter.e, low: n, gaps: [] });
    }
  });
  for (const [origin, text] of Object.entries(seen ?? {})) {
    const region = originOfStream(origin);
    if (region === from || region === to) continue;
    const [epoch = '', low = '', , , , gaps = ''] = text.split('|');
    const lowN = Number(low);
    if (!/^\d{16}$/.test(epoch) || !Number.isSafeInteger(lowN) || lowN <= 0) continue;
    points.push({ origin, epoch, low: lowN, gaps: parseRanges(gaps) });
  }
  return points;
}

/** Records `points` in `to`'s sequence state (cover-sequence.lua), origin by origin. */
export async function coverSequences(
  client: RedisClient,
  keys: KeySpace,
  to: string,
  points: readonly CoverPoint[],
): Promise<void> {
  await Promise.all(
    points.map((p) => coverSequence(client, { state: keys.seen(to), held: keys.seen(to, p.origin) }, p)),
  );
}

/**
 * Whether the copy (`points`) holds the numbers a gap need of `region` missed: the points of the stream
 * it names (a need without one, recorded by an older version: every stream of `region` in that epoch).
 */
function coveredGap(region: string, need: ResyncNeed, points: readonly CoverPoint[]): boolean {
  const missed = need.missed;
  if (need.cause !== 'gap' || !missed) return false;
  const mine = points.filter(
    (p) =>
      p.epoch === missed.epoch &&
      (missed.stream === undefined ? originOfStream(p.origin) === region : p.origin === missed.stream),
  );
  return (
    mine.length > 0 &&
    mine.every((p) => missed.to <= p.low && !p.gaps.some((g) => g.from <= missed.to && g.to >= missed.from))
  );
}

/**
 * Clears, in `to`'s state hash, the needs a copy of `from` (started at `startedAt`, host clock, with
 * `points`) settled, and returns the regions cleared:
 * - `to`'s own need (its Redis lost its data): the copy brought back what other regions hold;
 * - its need for `from`, when recorded before the copy started, or a gap the copy covers;
 * - its need for a third region, likewise, when `from` itself does not need a resync with it.
 * A need recorded after the copy started for another reason may be about changes the copy did not see,
 * and stays.
 */
export async function clearSettledNeeds(
  fromClient: RedisClient,
  toClient: RedisClient,
  keys: KeySpace,
  a: { from: string; to: string; startedAt: number; points: readonly CoverPoint[] },
): Promise<string[]> {
  const [toFields, fromFields] = await Promise.all([
    toClient.hgetall(keys.internal('state', a.to)),
    fromClient.hgetall(keys.internal('state', a.from)),
  ]);
  const fromNeeds = new Map(parseNeeds(fromFields));
  const cleared: string[] = [];
  for (const [region, need] of parseNeeds(toFields)) {
    const settled = need.since < a.startedAt || coveredGap(region, need, a.points);
    if (region === a.to || (settled && (region === a.from || !fromNeeds.has(region)))) {
      cleared.push(region);
    }
  }
  if (cleared.length > 0) {
    await toClient.hdel(keys.internal('state', a.to), ...cleared.map((r) => `resync:${r}`));
  }
  return cleared;
}
