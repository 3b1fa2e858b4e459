/**
 * The fault suite's per-user part: every session of a schedule belongs to one of {@link USERS} users (the
 * stores' `userId` option keeps the per-user index), and the `logoutEverywhere` step ends a user's
 * sessions from one region while the other faults run. Once replication settled the checker holds:
 *
 * 1. **The index lists no ended session**: no region's `sessionsOf(user)` lists a session that is a
 *    tombstone or gone in that region.
 * 2. **Logout everywhere is final**: no region serves a session of the user that existed before an
 *    acknowledged `logoutEverywhere` of that user: a set acknowledged before the call began, so its
 *    session was created (Redis time of its first write) before the mark (Redis time of the call, or a
 *    host clock ahead of it). Sessions saved after the call are allowed (docs/users-and-connections.md,
 *    "Per-user index and logout everywhere").
 *
 * Excused, as for sessions: a call made in a region whose Redis later came back empty (its outbox went
 * with the data), a call whose region's changes were dropped in transit, a set lost with a wiped region,
 * and a region that said it missed changes dropped in transit.
 */
import { readMeta } from '../helpers/meta.js';
import { REGIONS, type Schedule } from './rig.js';
import type { Played } from './schedule.js';

/** Users per schedule: few, so that each has several of the schedule's sessions. */
export const USERS = 2;

/** The user of session id index `s`. */
export const userOf = (s: number) => `u${s % USERS}`;

/** A `logoutEverywhere(user)` call as it happened. */
export interface LogoutRecord {
  readonly r: number;
  readonly user: string;
  readonly start: number;
  end: number;
  ok: boolean;
  /** Session id indexes of the user with a set acknowledged before the call began (for the report). */
  readonly existed: number[];
}

/** Whether region `r` said it missed changes dropped in transit (left out, as for sessions). */
function flaggedLoss(schedule: Schedule, played: Played, r: number): boolean {
  const needs = schedule.regions[r]?.store.replicationStats()?.needsResync ?? {};
  return Object.entries(needs).some(
    ([origin, need]) => (need.cause === 'gap' || need.cause === 'trimmed') && played.dropped.has(origin),
  );
}

/** What the user rules found: violations (`[]` when they hold) and how many sessions rule 2 held. */
export interface UsersVerdict {
  violations: string[];
  /** (logout, session) pairs whose session existed before the call, each checked served nowhere. */
  checked: number;
}

/** The violations of both rules now. */
async function violations(schedule: Schedule, played: Played, sids: string[]): Promise<UsersVerdict> {
  const found: string[] = [];
  let checked = 0;
  const users = Array.from({ length: USERS }, (_, u) => `u${u}`);
  // 1. The index lists no ended session.
  for (const [r, region] of schedule.regions.entries()) {
    for (const user of users) {
      const listed = await region.store.sessionsOf(user);
      for (const entry of listed) {
        const [value, meta] = await Promise.all([
          region.reader.get(schedule.keys.session(entry.sid)),
          readMeta(region.reader, schedule.keys.meta(entry.sid)),
        ]);
        if (value === null || meta.t === '1') {
          found.push(
            `${REGIONS[r]}: sessionsOf(${user}) lists ${entry.sid.slice(0, 8)}…, which ended there (${value === null ? 'gone' : 'tombstone'})`,
          );
        }
      }
    }
  }
  // 2. No session that existed before an acknowledged logout everywhere of its user is served.
  // The mark's time is Redis time at the call, or the host clock when that is ahead (wall_time in
  // common.lua: never behind Redis time); a session's creation is Redis time at its first write. The
  // Redis servers share this machine's clock: a set that ended before the call began was created before
  // the mark (a few ms apart for the clocks' readings).
  const margin = 5;
  const lost = (r: number, at: number) => (played.wipedAt[r] ?? 0) > at;
  const counted = REGIONS.map((_, r) => r).filter((r) => !flaggedLoss(schedule, played, r));
  for (const call of played.logouts) {
    if (!call.ok || lost(call.r, call.start) || played.dropped.has(REGIONS[call.r] as string)) continue;
    for (const [s, sid] of sids.entries()) {
      if (userOf(s) !== call.user) continue;
      const before = played.calls.find(
        (c) => c.op === 'set' && c.s === s && c.ok && !lost(c.r, c.start) && c.end < call.start - margin,
      );
      if (!before) continue;
      checked++;
      for (const r of counted) {
        const got = await schedule.regions[r]?.store.get(sid);
        if (got) {
          found.push(
            `${REGIONS[r]} serves ${JSON.stringify(got)} of ${call.user} (session ${s}, ${sid.slice(0, 8)}…, set n=${before.n} in ${REGIONS[before.r]} ended ${before.end}), after logoutEverywhere(${call.user}) in ${REGIONS[call.r]} at ${call.start}–${call.end}`,
          );
        }
      }
    }
  }
  return { violations: found, checked };
}

/**
 * Waits, at most `timeoutMs`, until both rules hold (a mark's endings may still be on their way); returns
 * what still breaks them then (`[]`: they hold).
 */
export async function checkUsers(
  schedule: Schedule,
  played: Played,
  sids: string[],
  timeoutMs: number,
): Promise<UsersVerdict> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await violations(schedule, played, sids).catch((e: unknown) => ({
      violations: [String(e)],
      checked: 0,
    }));
    if (found.violations.length === 0 || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}
