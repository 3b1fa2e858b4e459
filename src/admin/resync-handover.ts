/**
 * The handover of a resync to normal replication (docs/replication.md, "Resync"): what the copy holds is
 * recorded in the receiving region's sequence state, so the numbered changes it covers are neither
 * applied again nor reported as a gap, and the needs for a resync that the copy settled are cleared.
 *
 * Before the copy reads anything, the copied region's position is taken: its own outbox counter (every
 * change it numbered so far is in its state) and, for every other origin, what it has handled (every
 * change it applied is in its state). A copy read after that holds all those changes, so afterwards the
 * receiving region may count them as handled. Ranges the copied region gave up as gaps stay gaps.
 */
import type { Redis } from 'ioredis';
import type { KeySpace } from '../keys.js';
import { coverSequence, parseRanges } from '../redis/commands.js';
import { parseNeeds, type ResyncNeed } from '../replication/resync-state.js';

/** Numbers of one origin a copy holds: every number of `epoch` up to `low`, but `gaps`. */
export interface CoverPoint {
  readonly origin: string;
  readonly epoch: string;
  readonly low: number;
  readonly gaps: readonly { readonly from: number; readonly to: number }[];
}

/**
 * Where a copy of `from` starts, read before it reads any session: `from`'s own numbering and what it
 * handled of every origin but `to` (whose own numbers `to` knows best).
 */
export async function readCoverPoints(
  client: Redis,
  keys: KeySpace,
  from: string,
  to: string,
): Promise<CoverPoint[]> {
  const [counter, seen] = await Promise.all([
    client.hgetall(keys.sequence(from)),
    client.hgetall(keys.seen(from)),
  ]);
  const points: CoverPoint[] = [];
  const n = Number(counter.n);
  if (counter.e && /^\d{16}$/.test(counter.e) && Number.isSafeInteger(n) && n > 0) {
    points.push({ origin: from, epoch: counter.e, low: n, gaps: [] });
  }
  for (const [origin, text] of Object.entries(seen)) {
    if (origin === from || origin === to) continue;
    const [epoch = '', low = '', , , , gaps = ''] = text.split('|');
    const lowN = Number(low);
    if (!/^\d{16}$/.test(epoch) || !Number.isSafeInteger(lowN) || lowN <= 0) continue;
    points.push({ origin, epoch, low: lowN, gaps: parseRanges(gaps) });
  }
  return points;
}

/** Records `points` in `to`'s sequence state (cover-sequence.lua), origin by origin. */
export async function coverSequences(
  client: Redis,
  keys: KeySpace,
  to: string,
  points: readonly CoverPoint[],
): Promise<void> {
  await Promise.all(
    points.map((p) => coverSequence(client, { state: keys.seen(to), held: keys.seen(to, p.origin) }, p)),
  );
}

function coveredGap(need: ResyncNeed, point: CoverPoint | undefined): boolean {
  const missed = need.missed;
  if (need.cause !== 'gap' || !missed || !point || point.epoch !== missed.epoch) return false;
  if (missed.to > point.low) return false;
  return !point.gaps.some((g) => g.from <= missed.to && g.to >= missed.from);
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
  fromClient: Redis,
  toClient: Redis,
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
    const point = a.points.find((p) => p.origin === region);
    const settled = need.since < a.startedAt || coveredGap(need, point);
    if (region === a.to || (settled && (region === a.from || !fromNeeds.has(region)))) {
      cleared.push(region);
    }
  }
  if (cleared.length > 0) {
    await toClient.hdel(keys.internal('state', a.to), ...cleared.map((r) => `resync:${r}`));
  }
  return cleared;
}
