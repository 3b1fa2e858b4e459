import { createHash } from 'node:crypto';
import type { KeySpace } from '../keys.js';
import { groupBySlot } from '../redis/slots.js';
import {
  dropUnchanged,
  type MoveItem,
  type MoveResult,
  moveSessions,
  undoMoves,
} from '../redis/state-commands.js';
import { fingerprint } from '../session/fingerprint.js';
import type { SessionData } from '../types.js';
import { groupsOf, type RegionLayout } from './region-layout.js';

/**
 * Migrate into the sharded key layout (src/admin/migrate.ts with `outboxShards`): each connect-redis
 * session is moved from its unsharded key `P<sid>` into its shard's keys (`P{T}<sid>`, `{T}:m:P{T}<sid>`,
 * src/keys.ts), in three steps, each atomic in its own slot:
 *
 * 1. read the old value and its absolute expiry (PEXPIRETIME) and whether it has metadata (then it is
 *    geosession's, written in the unsharded layout, and is not moved);
 * 2. migrate-move.lua in the shard's slot writes the value with that expiry and the metadata migrate.lua
 *    would give it, unless the shard holds the session already (geosession's own data wins);
 * 3. migrate-drop.lua deletes the old key, only while it holds the value read in step 1.
 *
 * A crash between the steps leaves at worst both copies of an unchanged value: a re-run finds the sharded
 * one and deletes the old one. When the old value changed between steps 1 and 3 (an app still on
 * connect-redis wrote it), migrate-undo.lua takes the moved copy back unless a store wrote it since, and
 * the session is tried again from step 1 (up to `tries` times; then counted unreadable, its old key kept).
 */

/** Counts of a migration so far (`migrateKeyspace`, src/admin/migrate.ts). */
export interface MigrateCounts {
  /** Session values seen (keys of the prefix that are session ids and strings). */
  scanned: number;
  /** Given metadata (with `dryRun`: that would be). */
  migrated: number;
  /**
   * Skipped: metadata (or a tombstone) already there. In the sharded layout: the shard holds the session
   * already (its old key is deleted: geosession's own data wins), or the old key has metadata (written by
   * a store in the unsharded layout: left where it is).
   */
  alreadyMigrated: number;
  /** Skipped: expired or deleted between the scan and the write. */
  gone: number;
  /**
   * Skipped: not a JSON object (not a session express-session wrote), or changed on every try (in the
   * sharded layout its old key is kept, and no copy in its shard).
   */
  unreadable: number;
}

/** How a batch is moved. */
export interface MoveBatch {
  /** The unsharded keys the scan found (where connect-redis wrote). */
  readonly keys: KeySpace;
  /** The sharded layout the sessions move into. */
  readonly layout: RegionLayout;
  readonly region: string;
  readonly ttlMs: number;
  readonly maxSkewMs: number;
  readonly dryRun: boolean;
  /** Sessions per script call. */
  readonly perCall: number;
  /** Tries per session whose old value changes while it moves. */
  readonly tries: number;
}

/** What the store needs to know of a stored value, or `undefined` when it is not a session's JSON. */
export function sessionFacts(
  value: string,
  ttlMs: number,
): { fingerprint: string; ruleMs: number; sha1: string } | undefined {
  let session: unknown;
  try {
    session = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof session !== 'object' || session === null || Array.isArray(session)) return undefined;
  const maxAge = (session as { cookie?: { originalMaxAge?: unknown } }).cookie?.originalMaxAge;
  const ruleMs = typeof maxAge === 'number' && maxAge > 0 && Number.isFinite(maxAge) ? maxAge : ttlMs;
  return {
    fingerprint: fingerprint(JSON, session as SessionData, value),
    ruleMs,
    sha1: createHash('sha1').update(value, 'utf8').digest('hex'),
  };
}

interface Read {
  readonly sid: string;
  readonly old: string;
  readonly sha1: string;
  readonly item: MoveItem;
}

/** `run` on `items` split by `groups`, at most `size` per call: each item's answer. */
async function inCalls<T, R>(
  items: readonly T[],
  groups: (items: readonly T[]) => T[][],
  size: number,
  run: (chunk: T[]) => Promise<R[]>,
): Promise<Map<T, R>> {
  const calls: Promise<void>[] = [];
  const results = new Map<T, R>();
  for (const group of groups(items)) {
    for (let at = 0; at < group.length; at += size) {
      const chunk = group.slice(at, at + size);
      calls.push(
        run(chunk).then((answers) => {
          for (const [i, item] of chunk.entries()) results.set(item, answers[i] as R);
        }),
      );
    }
  }
  await Promise.all(calls);
  return results;
}

/** Moves the sessions `sids` (found by one master's scan), adding to `counts`. */
export async function moveBatch(
  batch: MoveBatch,
  sids: readonly string[],
  counts: MigrateCounts,
): Promise<void> {
  const { layout } = batch;
  const client = layout.client;
  const byShard = (items: readonly Read[]) => groupsOf(items, (r) => layout.groupOf(r.sid));
  const byOldSlot = (items: readonly Read[]) =>
    layout.cluster ? groupBySlot(items, (r) => layout.keyPrefix + r.old) : [[...items]];
  counts.scanned += sids.length;
  let pending = [...sids];
  for (let attempt = 1; pending.length > 0; attempt++) {
    const reads = await readOld(batch, pending, counts);
    pending = [];
    if (batch.dryRun) {
      const held = await Promise.all(reads.map((r) => client.exists(r.item.keys.value, r.item.keys.meta)));
      for (const n of held) {
        if (n > 0) counts.alreadyMigrated++;
        else counts.migrated++;
      }
      return;
    }
    const hostNow = Date.now();
    const moved = await inCalls(reads, byShard, batch.perCall, (chunk) =>
      moveSessions(
        client,
        chunk.map((r) => r.item),
        { region: batch.region, hostNow, maxSkewMs: batch.maxSkewMs },
      ),
    );
    const toDrop = reads.filter((r) => moved.get(r) !== 'expired');
    counts.gone += reads.length - toDrop.length;
    const dropped = await inCalls(toDrop, byOldSlot, batch.perCall, (chunk) =>
      dropUnchanged(
        client,
        chunk.map((r) => ({ key: r.old, sha1: r.sha1 })),
      ),
    );
    const changed: { read: Read; version: string }[] = [];
    for (const read of toDrop) {
      const result = moved.get(read) as MoveResult;
      if (dropped.get(read)) {
        if (result === 'exists') counts.alreadyMigrated++;
        else counts.migrated++;
        continue;
      }
      // The old value changed since it was read: take a moved copy back, then try again.
      if (typeof result === 'object') changed.push({ read, version: result.version });
      if (attempt < batch.tries) pending.push(read.sid);
      else counts.unreadable++;
    }
    await inCalls(
      changed,
      (items) => groupsOf(items, (c) => layout.groupOf(c.read.sid)),
      batch.perCall,
      (chunk) =>
        undoMoves(
          client,
          chunk.map((c) => ({ keys: c.read.item.keys, sha1: c.read.sha1, version: c.version })),
        ),
    );
  }
}

/** Step 1: the old values of `sids` and their expiries (one master's keys: one pipeline). */
async function readOld(batch: MoveBatch, sids: readonly string[], counts: MigrateCounts): Promise<Read[]> {
  const { keys, layout } = batch;
  const pipeline = layout.client.pipeline();
  for (const sid of sids) {
    pipeline.get(keys.session(sid)).pexpiretime(keys.session(sid)).exists(keys.meta(sid));
  }
  const replies = (await pipeline.exec()) ?? [];
  const reads: Read[] = [];
  sids.forEach((sid, i) => {
    const answer = (n: number): unknown => {
      const [error, value] = replies[3 * i + n] ?? [new Error('no reply')];
      if (error) throw error;
      return value;
    };
    const [value, expiry, hasMeta] = [answer(0), Number(answer(1)), Number(answer(2))];
    if (hasMeta === 1) counts.alreadyMigrated++;
    else if (typeof value !== 'string' || expiry === -2) counts.gone++;
    else {
      const facts = sessionFacts(value, batch.ttlMs);
      if (!facts) counts.unreadable++;
      else {
        const item: MoveItem = {
          keys: { value: layout.keys.session(sid), meta: layout.keys.meta(sid) },
          value,
          expiresAt: expiry === -1 ? 0 : expiry,
          fingerprint: facts.fingerprint,
          ruleMs: facts.ruleMs,
        };
        reads.push({ sid, old: keys.session(sid), sha1: facts.sha1, item });
      }
    }
  });
  return reads;
}
