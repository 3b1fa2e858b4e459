/**
 * The fault suite's checker: once every fault is undone and replication has settled, the end state of a
 * schedule must satisfy every rule of ../shared/DESIGN.md section 3 that a schedule can reach, plus
 * "nothing acknowledged is lost" and "no region serves a session the user logged out of".
 *
 * A region whose Redis came back empty lost what it held; it must say so (`needsResync` for itself)
 * until it is resynced. Once every fault is undone it is resynced both ways from a region that was not
 * emptied (schedule.ts, `resyncWiped`): it must then hold the same state as the others, no longer say it
 * needs a resync, and hold the same as its source even for the ids changed in it before the wipe (which
 * the third region may hold otherwise); calls made in it before the wipe may still be lost. A region that missed changes dropped in
 * transit (the `drop` step) either converges anyway or says so (`needsResync` with cause `gap`, or `trimmed`
 * when its stream reader noticed first, for the region whose changes were dropped), and is then left out of the comparison: every region converges or
 * is flagged with the reason, never silently different. Nothing else is excused, and nothing may be
 * refused or dead-lettered (no schedule sends anything malformed: a transient error must never be).
 */
import type { Redis } from 'ioredis';
import { GeoSessionError } from '../../src/errors.js';
import { isMissingStream } from '../../src/failures/reply-errors.js';
import { versionTime } from '../../src/redis/meta.js';
import { type GroupInfo, groupsOf } from '../../src/streams/group-info.js';
import { readMeta } from '../helpers/meta.js';
import { REGIONS, type Schedule, STORE } from './rig.js';
import { type CallRecord, followGapFlags, type Played } from './schedule.js';
import { userOf } from './users.js';

/** What the checker compares between regions for one session id. */
interface Held {
  value: string | null;
  t: string;
  v: string;
  x: string;
  /** PEXPIRETIME of the value key (-2: none, -1: no expiry). */
  valueAt: number;
}

async function held(schedule: Schedule, r: number, sid: string): Promise<Held> {
  const region = schedule.regions[r];
  if (!region) throw new Error(`no region ${r}`);
  const { keys, reader } = { keys: schedule.keys, reader: region.reader };
  const [value, meta, valueAt] = await Promise.all([
    reader.get(keys.session(sid)),
    readMeta(reader, keys.meta(sid)),
    reader.call('PEXPIRETIME', keys.session(sid)) as Promise<number>,
  ]);
  return { value, t: meta.t ?? '', v: meta.v ?? '', x: meta.x ?? '', valueAt };
}

const same = (a: Held, b: Held) => JSON.stringify(a) === JSON.stringify(b);

/** The causes a region may give for missing changes dropped in transit: its numbers, or its stream. */
const LOSS_CAUSES = new Set(['gap', 'trimmed']);

/** Whether region `r` says it missed changes of a region whose changes were dropped in transit. */
function flaggedGap(schedule: Schedule, played: Played, r: number): boolean {
  const needs = schedule.regions[r]?.store.replicationStats()?.needsResync ?? {};
  return Object.entries(needs).some(
    ([origin, need]) => LOSS_CAUSES.has(need.cause ?? '') && played.dropped.has(origin),
  );
}

/**
 * Whether region `r` is excused from holding `s`: it came back empty after a call on `s`, or it flagged a
 * gap in changes that were dropped in transit.
 */
function excused(schedule: Schedule, played: Played, r: number, s: number): boolean {
  if (flaggedGap(schedule, played, r)) return true;
  const wiped = played.wipedAt[r] ?? 0;
  if (wiped > 0 && resynced(played, r)) return false;
  return wiped > 0 && played.calls.some((c) => c.s === s && c.start < wiped);
}

/** Whether region `r` came back empty and was resynced afterwards (see `resyncWiped`). */
const resynced = (played: Played, r: number) => (played.resyncedFrom[r] ?? -1) >= 0;

/**
 * The pairs a resync made equal (an emptied region and its source), for ids that may differ elsewhere:
 * after a resync both ways the two hold the same state, and replication keeps them so.
 */
function resyncPairs(schedule: Schedule, played: Played): [number, number][] {
  return played.resyncedFrom.flatMap((from, r) =>
    from >= 0 && !flaggedGap(schedule, played, r) && !flaggedGap(schedule, played, from)
      ? [[r, from] as [number, number]]
      : [],
  );
}

/** A call made in a region that later came back empty may be lost with it. */
function mayBeLost(played: Played, c: CallRecord): boolean {
  const wiped = played.wipedAt[c.r] ?? 0;
  return wiped > 0 && c.start < wiped;
}

/**
 * When a call may have taken effect at the latest: a call that failed (a timeout while its Redis was
 * stalled, say) may still have run when the Redis woke up, until replication settled.
 */
const latest = (played: Played, c: CallRecord) => (c.ok ? c.end : played.finishedAt);

/** A call the checker may hold the end state to: acknowledged, and not lost with a wiped region. */
const counts = (played: Played) => (c: CallRecord) => c.ok && !mayBeLost(played, c);

export interface Verdict {
  violations: string[];
  /** Session ids checked in every region, and (id, region) pairs excused by a wipe. */
  checked: number;
  excused: number;
  /** Session ids changed in a region before it came back empty: only their logouts are checked. */
  doubtful: number;
  settledMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the regions agree on every id (twice in a row) and every wiped region has flagged itself,
 * at most `timeoutMs`, then judges the end state.
 */
export async function settleAndCheck(
  schedule: Schedule,
  played: Played,
  sids: string[],
  timeoutMs: number,
): Promise<Verdict> {
  const started = Date.now();
  const regions = REGIONS.map((_, r) => r);
  const readAll = () =>
    Promise.all(sids.map((sid) => Promise.all(regions.map((r) => held(schedule, r, sid)))));
  const doubtful = (s: number) => played.calls.some((c) => c.s === s && mayBeLost(played, c));
  const agree = (states: Held[][]) =>
    states.every((row, s) => {
      if (doubtful(s)) {
        return resyncPairs(schedule, played).every(([a, b]) => same(row[a] as Held, row[b] as Held));
      }
      const counted = row.filter((_, r) => !excused(schedule, played, r, s));
      return counted.every((h) => counted[0] && same(h, counted[0]));
    });
  // An emptied region says so until its resync, and no longer once resynced.
  const flagged = () =>
    regions.every(
      (r) =>
        !played.wipedAt[r] ||
        Object.hasOwn(
          schedule.regions[r]?.store.replicationStats()?.needsResync ?? {},
          REGIONS[r] as string,
        ) !== resynced(played, r),
    );

  let states = await readAll().catch(() => undefined);
  let previous: string | undefined;
  let steady = 0;
  while (Date.now() - started < timeoutMs) {
    await followGapFlags(schedule, played);
    states = await readAll().catch(() => undefined);
    // Settled: the regions agree, every emptied region has said so, nothing is left in any stream a
    // relay or a region reads, and all of that held for a second (a broker may still hold a change
    // the streams no longer show).
    if (states && agree(states) && flagged() && (await drained(schedule))) {
      const text = JSON.stringify(states);
      steady = text === previous ? steady + 1 : 0;
      previous = text;
      if (steady >= 4) break;
    } else {
      previous = undefined;
      steady = 0;
    }
    await sleep(250);
  }
  const settledMs = Date.now() - started;
  states ??= await readAll();
  // A call that failed may have run as late as now: a stalled Redis runs what was queued to it some
  // milliseconds after it wakes, and a relay or a broker may deliver it later still.
  played.finishedAt = Date.now();

  const violations: string[] = [];
  let checked = 0;
  let excusedPairs = 0;
  let doubtfulIds = 0;
  const acked = counts(played);

  for (const [s, sid] of sids.entries()) {
    const row = states[s] as Held[];
    const counted = regions.filter((r) => !excused(schedule, played, r, s));
    excusedPairs += regions.length - counted.length;
    const label = `session ${s} (${sid.slice(0, 8)}…)`;
    const calls = played.calls.filter((c) => c.s === s);
    const destroys = calls.filter((c) => c.op === 'destroy');
    const served = await Promise.all(
      counted.map((r) => schedule.regions[r]?.store.get(sid).catch((e: unknown) => ({ error: String(e) }))),
    );
    const noneServed = (why: string) =>
      served.forEach((got, i) => {
        if (got !== null)
          violations.push(`${label}: ${why}, yet ${REGIONS[counted[i] ?? 0]} serves ${JSON.stringify(got)}`);
      });
    // A change made in a region that then came back empty may have reached some regions and not others:
    // that region has flagged itself for a resync (checked below), and only the logouts that no wipe
    // can have lost are held to.
    if (doubtful(s)) {
      doubtfulIds++;
      if (destroys.some(acked)) noneServed('destroyed');
      // A resync both ways made the emptied region and its source equal, whatever the others hold.
      for (const [a, b] of resyncPairs(schedule, played)) {
        if (!same(row[a] as Held, row[b] as Held)) {
          violations.push(
            `${label}: resynced ${REGIONS[a]} holds ${JSON.stringify(row[a])}, its source ${REGIONS[b]} ${JSON.stringify(row[b])}`,
          );
        }
      }
      continue;
    }
    const first = counted[0];
    if (first === undefined) continue;
    checked++;
    const ref = row[first] as Held;

    // 1. Convergence: every region holds the same value, version, expiry and tombstone.
    for (const r of counted) {
      if (!same(row[r] as Held, ref)) {
        violations.push(
          `${label}: ${REGIONS[r]} holds ${JSON.stringify(row[r])}, ${REGIONS[first]} ${JSON.stringify(ref)}`,
        );
      }
    }

    const sets = calls.filter((c) => c.op === 'set');

    if (ref.t === '1') {
      // 2. Logout is final: no region serves it, and the tombstone outlives two horizons.
      // A logout everywhere of its user (acknowledged or not) ends it too, as does a save it refused.
      const everywhere = played.logouts.some((l) => l.user === userOf(s));
      if (destroys.length === 0 && !everywhere) violations.push(`${label}: a tombstone that no destroy made`);
      noneServed('destroyed');
      const firstAcked = destroys.filter(acked).map((c) => c.start);
      if (firstAcked.length > 0) {
        const least = Math.min(...firstAcked) + 2 * STORE.tombstoneTtl * 1000 - 50;
        if (Number(ref.x) < least) violations.push(`${label}: tombstone until ${ref.x}, before ${least}`);
      }
      continue;
    }

    // Not destroyed anywhere: no acknowledged logout may have been lost.
    for (const d of destroys.filter(acked)) {
      violations.push(`${label}: the logout acknowledged in ${REGIONS[d.r]} at ${d.start} was lost`);
    }
    if (ref.value === null) {
      // 3. Nothing acknowledged is lost.
      for (const c of sets.filter(acked)) {
        violations.push(`${label}: set n=${c.n}, acknowledged in ${REGIONS[c.r]}, is held by no region`);
      }
    } else {
      // 4. Last writer wins: the value is one a set wrote, and no acknowledged set made clearly after
      //    it (beyond how far a host clock may push a version) lost to it.
      const n = (JSON.parse(ref.value) as { n?: number }).n;
      const winner = sets.find((c) => c.n === n);
      if (!winner) {
        violations.push(`${label}: holds n=${n}, which no set wrote`);
      } else {
        const margin = STORE.maxClockSkewMs / 2 + 50;
        for (const c of sets.filter(acked)) {
          if (c.start > latest(played, winner) + margin) {
            violations.push(
              `${label}: n=${c.n} (${REGIONS[c.r]}, at ${c.start}) lost to the older n=${n} (ended ${winner.end})`,
            );
          }
        }
      }
      served.forEach((got, i) => {
        if (!got || 'error' in got || (got as { n?: number }).n !== n) {
          violations.push(
            `${label}: ${REGIONS[counted[i] ?? 0]} serves ${JSON.stringify(got)}, holds n=${n}`,
          );
        }
      });
      if (ref.valueAt !== Number(ref.x))
        violations.push(`${label}: value expires at ${ref.valueAt}, metadata says ${ref.x}`);
    }

    // 5. Expiry is absolute and travels with the version: the winning set's own expiry, or later when
    //    touches of that version (made once it was written) asked for later; never an older set's or
    //    touch's. Made from Redis time whatever the host clocks said.
    const extending = calls.filter((c) => c.op !== 'destroy');
    const ackedExtending = extending.filter(acked);
    if (ref.x !== '' && extending.length > 0) {
      const x = Number(ref.x);
      let lowest = Number.NEGATIVE_INFINITY;
      let since = Number.NEGATIVE_INFINITY;
      if (ref.value !== null) {
        const n = (JSON.parse(ref.value) as { n?: number }).n;
        const winner = sets.find((c) => c.n === n);
        if (winner) {
          lowest = winner.start + winner.lifeMs - 5;
          since = winner.start;
        }
      }
      const after = extending.filter((c) => latest(played, c) >= since);
      const highest = Math.max(...after.map((c) => latest(played, c) + c.lifeMs)) + 5;
      if (x < lowest || x > highest) {
        violations.push(
          `${label}: expires at ${x}, outside [${lowest}, ${highest}] that the winning version's calls asked for`,
        );
      }
    } else if (ackedExtending.length > 0) {
      violations.push(`${label}: acknowledged writes, but no expiry is recorded`);
    }
    // 6. Versions never run behind Redis time by more than a clamp nor ahead of it by more than half the skew.
    if (ref.v !== '') {
      const wall = versionTime(ref.v);
      const lastEnd = Math.max(...calls.map((c) => latest(played, c)));
      if (wall > lastEnd + STORE.maxClockSkewMs / 2 + 5)
        violations.push(`${label}: version ${ref.v} is ahead of any write`);
    }
  }

  // The emptied regions say so (the regions reading them may too); no other alarm is raised.
  const wiped = regions.filter((r) => played.wipedAt[r]).map((r) => REGIONS[r] as string);
  regions.forEach((r) => {
    const name = REGIONS[r] as string;
    const needs = Object.keys(schedule.regions[r]?.store.replicationStats()?.needsResync ?? {});
    const needed = schedule.regions[r]?.store.replicationStats()?.needsResync ?? {};
    // The emptied region always knows (its epoch is gone); a region reading it knows when its consumer
    // group there was lost with the data (not when the group was made afterwards: it missed nothing).
    if (played.wipedAt[r] && !resynced(played, r) && !needs.includes(name)) {
      violations.push(`${name}: came back empty but does not say it needs a resync`);
    }
    if (resynced(played, r) && needs.includes(name)) {
      violations.push(`${name}: still says it needs a resync after its resync (${needed[name]?.reason})`);
    }
    for (const other of needs) {
      const gap = LOSS_CAUSES.has(needed[other]?.cause ?? '') && played.dropped.has(other);
      // A region that came back empty lost what every other region had sent it: its numbers start over
      // and it may find the other regions' first changes missing.
      const lostHere = played.wipedAt[r] && needed[other]?.cause === 'gap';
      if (!wiped.includes(other) && !gap && !lostHere)
        violations.push(
          `${name}: needs a resync with ${other}, which lost nothing (${needed[other]?.reason})`,
        );
    }
    // Nothing a schedule sends is malformed or forged: a refusal would be a transient error taken for poison.
    const rejected = schedule.regions[r]?.store.replicationStats()?.rejected ?? {};
    if (Object.keys(rejected).length > 0) {
      violations.push(`${name}: refused and dead-lettered ${JSON.stringify(rejected)}`);
    }
    for (const e of schedule.regions[r]?.errors ?? []) {
      if (!(e instanceof GeoSessionError) || typeof e.code !== 'string') {
        violations.push(`${name}: an error event that is not a GeoSessionError with a code: ${String(e)}`);
      }
    }
  });

  violations.push(...played.resyncErrors);
  if (violations.length > 0) violations.push(...(await outboxes(schedule)));
  return { violations, checked, excused: excusedPairs, doubtful: doubtfulIds, settledMs };
}

/** A stream's last id and its consumer groups (XINFO, parsed by the reader's own {@link groupsOf}). */
async function streamState(client: Redis, key: string): Promise<{ last: string; groups: GroupInfo[] }> {
  const info = (await client.xinfo('STREAM', key)) as unknown[];
  return { last: String(info[info.indexOf('last-generated-id') + 1]), groups: await groupsOf(client, key) };
}

/** Whether every group on every region's outbox and relay stream has read and acknowledged everything. */
async function drained(schedule: Schedule): Promise<boolean> {
  for (const [r, region] of schedule.regions.entries()) {
    for (const family of ['outbox', 'relay'] as const) {
      try {
        const { last, groups } = await streamState(
          region.reader,
          schedule.keys.internal(family, REGIONS[r] as string),
        );
        if (groups.some((g) => g.pending > 0 || g.lastDeliveredId !== last)) return false;
      } catch (error) {
        if (!isMissingStream(error)) return false;
      }
    }
  }
  return true;
}

/** Each region's stream the others read, and its groups: where replication stood, for a failure's report. */
async function outboxes(schedule: Schedule): Promise<string[]> {
  const lines: string[] = [];
  for (const [r, region] of schedule.regions.entries()) {
    const key = schedule.keys.internal(schedule.sealed ? 'relay' : 'outbox', REGIONS[r] as string);
    try {
      const { last, groups } = await streamState(region.reader, key);
      const text = groups.map(
        (g) => `${g.name}: delivered ${g.lastDeliveredId}, pending ${g.pending}, lag ${g.lag}`,
      );
      lines.push(`stream of ${REGIONS[r]}: last ${last}; ${text.join('; ')}`);
    } catch (error) {
      lines.push(`stream of ${REGIONS[r]}: ${String(error)}`);
    }
    lines.push(`${REGIONS[r]} stats: ${JSON.stringify(region.store.replicationStats())}`);
    lines.push(`${REGIONS[r]} errors: ${region.errors.map((e) => `${e.code} ${e.message}`).join(' | ')}`);
    lines.push(`${REGIONS[r]} applied: ${region.applied.join(' | ')}`);
  }
  return lines;
}
