import { TimeoutError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { ApplyResult, applyChanges, type RemoteChange } from '../redis/commands.js';
import { createWriteBatcher } from '../redis/write-batching.js';
import { withTimeout } from '../runtime/timeout.js';
import type { RedisClient } from '../types.js';
import { isValidSessionId } from '../validation/ids.js';
import type { ChangeEvent, RevokeEvent, TouchEvent } from './events.js';
import { destroyReason } from './session-codec.js';

/** What happened to the changes of one batch, by outcome. */
export interface ApplyOutcome {
  /** Changed this region's state. */
  applied: number;
  /** Duplicates, or older data whose expiry was not later. */
  unchanged: number;
  /** Already past their expiry on arrival. */
  expired: number;
  /** Set or touch of a session destroyed here. */
  refused: number;
  /** Set or touch older than the stale-event horizon. */
  stale: number;
  /** Version or time too far ahead of this region's clock. */
  skewed: number;
  /** Touches that would have removed an expiry or reached past the session's lifetime rule. */
  invalid: number;
  /** Touches merged into another touch of the same session in the same batch. */
  coalesced: number;
}

/** An {@link ApplyOutcome} with every count at zero. */
export function emptyOutcome(): ApplyOutcome {
  return { applied: 0, unchanged: 0, expired: 0, refused: 0, stale: 0, skewed: 0, invalid: 0, coalesced: 0 };
}

const OUTCOME_OF: Record<ApplyResult, Exclude<keyof ApplyOutcome, 'coalesced'>> = {
  [ApplyResult.Applied]: 'applied',
  [ApplyResult.Unchanged]: 'unchanged',
  [ApplyResult.Expired]: 'expired',
  [ApplyResult.Refused]: 'refused',
  [ApplyResult.Stale]: 'stale',
  [ApplyResult.Skewed]: 'skewed',
  [ApplyResult.Invalid]: 'invalid',
};

const OP_CODES = { set: 's', touch: 't', destroy: 'd', revoke: 'r' } as const;

/** Changes per apply script call: big enough to save round trips, small enough not to block Redis long. */
const APPLY_CHUNK = 64;

function laterExpiry(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return Math.max(a, b);
}

/**
 * Several touches of one session and one version in a batch become one with the latest expiry. Touches
 * of different versions stay apart: the higher version's expiry wins, but a lower version's later
 * expiry still keeps the metadata alive that long (apply.lua), which one merged touch would lose. Sets
 * and destroys are kept as they are: the merge rules make the result the same either way, this only
 * saves work.
 */
export function coalesceTouches(events: readonly ChangeEvent[]): {
  events: ChangeEvent[];
  coalesced: number;
} {
  const touches = new Map<string, TouchEvent>();
  const out: ChangeEvent[] = [];
  let coalesced = 0;
  for (const event of events) {
    if (event.op !== 'touch') {
      out.push(event);
      continue;
    }
    const key = `${event.origin}\u0000${event.sid}\u0000${event.version}`;
    const seen = touches.get(key);
    if (!seen) {
      touches.set(key, event);
      continue;
    }
    coalesced++;
    // Touches of the same version merge to the later expiry (as apply.lua merges them).
    const newer = event.time >= seen.time ? event : seen;
    touches.set(key, { ...newer, expiresAt: laterExpiry(seen.expiresAt, event.expiresAt) });
  }
  out.push(...touches.values());
  return { events: out, coalesced };
}

/** Options of {@link Applier}. */
export interface ApplierOptions {
  readonly client: RedisClient;
  readonly keys: KeySpace;
  /** The stale-event horizon, ms (the shortest tombstone lifetime). */
  readonly horizonMs: number;
  readonly maxSkewMs: number;
  /** Longest wait for Redis per chunk; past it the batch fails and is delivered again. */
  readonly timeoutMs: number;
  /**
   * This region, when the apply script keeps its digests (verify) in step: each chunk takes the digest
   * key of its sessions' shard (`KeySpace.shardDigest`).
   */
  readonly digestRegion?: string;
  /** This region's revocation channel (`KeySpace.revoked`): each session a destroy ends is published. */
  readonly revokedChannel?: string;
  /**
   * The user id of a serialized session (the store's `userId` option), when the store keeps the per-user
   * index: applied sets then keep it too. Throws or answers `undefined` for none.
   */
  readonly userOf?: ((data: string) => string | undefined) | undefined;
}

/**
 * Applies batches of remote session changes to this region's Redis: one `apply` script call per chunk,
 * the chunks sent at once so ioredis pipelines them. The script enforces the conflict rules and the
 * sanity checks (docs/replication.md), so duplicates, reordering and replays are harmless. A batch
 * rejects if any call fails or times out, and is then delivered again by the transport.
 *
 * Every script call touches one Redis Cluster slot: with outbox shards (src/keys.ts) a batch's changes
 * are grouped by their session's shard, whose hash tag all its keys (and its digest key) carry, and each
 * group is chunked on its own; the user of a set is indexed in its shard's index of that user, in the
 * same slot. A user's "revoked before" mark is merged into the user's index of every shard, one call
 * each (a mark covers the user's sessions of every shard, whichever shard's outbox it came from). Within
 * a group the changes keep their order.
 */
export class Applier {
  private readonly batchWrites: () => void;

  constructor(private readonly options: ApplierOptions) {
    this.batchWrites = createWriteBatcher(options.client);
  }

  /**
   * Applies `batch`; `oldFrom` lists the origins that sent changes (of any op) older than the stale-event
   * horizon: this region was cut off from them for longer than a tombstone is sure to live.
   */
  async apply(batch: readonly ChangeEvent[]): Promise<{ outcome: ApplyOutcome; oldFrom: Set<string> }> {
    const { events, coalesced } = coalesceTouches(batch);
    const parts: ChangeEvent[][] = [];
    const chunks: Promise<{ results: ApplyResult[]; old: boolean[] }>[] = [];
    this.batchWrites();
    for (const [shard, group] of this.groups(events)) {
      if (shard === -1) {
        parts.push(group);
        chunks.push(this.applyRevoke(group[0] as RevokeEvent));
        continue;
      }
      for (let i = 0; i < group.length; i += APPLY_CHUNK) {
        const part = group.slice(i, i + APPLY_CHUNK);
        parts.push(part);
        chunks.push(this.applyChunk(part, shard));
      }
    }
    const outcome = emptyOutcome();
    outcome.coalesced = coalesced;
    const oldFrom = new Set<string>();
    (await Promise.all(chunks)).forEach(({ results, old }, c) => {
      const part = parts[c] as ChangeEvent[];
      results.forEach((result, i) => {
        outcome[OUTCOME_OF[result] ?? 'invalid']++;
        if (old[i]) oldFrom.add((part[i] as ChangeEvent).origin);
      });
    });
    return { outcome, oldFrom };
  }

  /**
   * The events by script call group: everything together without shards (one slot or a single node);
   * with shards one group per session shard, and each revoke alone (shard -1: {@link applyRevoke}).
   */
  private groups(events: readonly ChangeEvent[]): [number | undefined, ChangeEvent[]][] {
    const { keys } = this.options;
    if (keys.shards === 0) return events.length === 0 ? [] : [[undefined, [...events]]];
    const byShard = new Map<number, ChangeEvent[]>();
    const alone: [number, ChangeEvent[]][] = [];
    for (const event of events) {
      if (event.op === 'revoke') {
        alone.push([-1, [event]]);
        continue;
      }
      const shard = keys.shardOf(event.sid) as number;
      const group = byShard.get(shard);
      if (group) group.push(event);
      else byShard.set(shard, [event]);
    }
    return [...byShard.entries(), ...alone];
  }

  /** The valid user id of a replicated session, or `undefined` (none, no index, or not parseable). */
  private userOf(data: string): string | undefined {
    const { userOf } = this.options;
    if (userOf === undefined) return undefined;
    try {
      const id = userOf(data);
      return id !== undefined && isValidSessionId(id) ? id : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A user's "revoked before" mark in the sharded layout, merged into the user's index of every shard
   * (one call each, each in its shard's slot). One result: applied when the mark changed any shard's,
   * unchanged when none changed, else what every shard answered (expired, skewed).
   */
  private async applyRevoke(event: RevokeEvent): Promise<{ results: ApplyResult[]; old: boolean[] }> {
    const each = await Promise.all(
      this.options.keys.userIndexes(event.sid).map(({ key }) => this.applyChunk([event], -1, key)),
    );
    const codes = each.map((r) => r.results[0] as ApplyResult);
    const result = codes.includes(ApplyResult.Applied)
      ? ApplyResult.Applied
      : codes.includes(ApplyResult.Unchanged)
        ? ApplyResult.Unchanged
        : (codes[0] as ApplyResult);
    return { results: [result], old: [each.some((r) => r.old[0] === true)] };
  }

  /**
   * One apply call. `userKey`: the index a revoke's mark goes to (the user's one, unsharded; the shard's
   * given by {@link applyRevoke}).
   */
  private applyChunk(
    events: readonly ChangeEvent[],
    shard: number | undefined,
    userKey?: string,
  ): Promise<{ results: ApplyResult[]; old: boolean[] }> {
    const { keys, client, horizonMs, maxSkewMs, timeoutMs, digestRegion, revokedChannel } = this.options;
    const digestKey =
      digestRegion === undefined || shard === -1 ? undefined : keys.shardDigest(shard, digestRegion);
    const changes: RemoteChange[] = events.map((event) => {
      if (event.op === 'revoke') {
        const user = userKey ?? keys.user(event.sid);
        return {
          value: user,
          meta: user,
          op: 'r',
          version: event.version,
          expiresAt: event.expiresAt,
          lifetimeMs: undefined,
          fingerprint: event.except,
          data: '',
          time: event.time,
        };
      }
      const userId = event.op === 'set' ? this.userOf(event.data) : undefined;
      return {
        value: keys.session(event.sid),
        meta: keys.meta(event.sid),
        op: OP_CODES[event.op],
        version: event.version,
        expiresAt: event.expiresAt,
        lifetimeMs: event.op === 'destroy' ? undefined : event.lifetimeMs,
        // A destroy's reason rides in the fingerprint field (apply.lua publishes it).
        fingerprint:
          event.op === 'set' ? event.fingerprint : event.op === 'destroy' ? destroyReason(event) : '',
        data: event.op === 'set' ? event.data : '',
        time: event.time,
        user:
          userId === undefined
            ? undefined
            : { sid: event.sid, key: keys.user(userId, keys.shardOf(event.sid)) },
      };
    });
    return withTimeout(
      applyChanges(client, changes, horizonMs, maxSkewMs, digestKey, revokedChannel),
      timeoutMs,
      () => new TimeoutError('applying remote changes', timeoutMs),
    );
  }
}
