import { ClosedError, InvalidSessionIdError } from '../errors.js';
import { isDeterministicFailure } from '../failures/reply-errors.js';
import type { KeySpace } from '../keys.js';
import { isTombstoneText } from '../redis/meta.js';
import { runScript } from '../redis/run-script.js';
import { readStates } from '../redis/state-commands.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { sessionIdProblem } from '../validation/ids.js';
import { sequenceKey } from '../wire/internal-keys.js';
import type { ResolvedOptions } from './options.js';

/** One session of a user, as the per-user index lists it (`store.sessionsOf`). */
export interface UserSession {
  /** The session id. */
  readonly sid: string;
  /** The region that first wrote the session into this region's index (its own region for a local set). */
  readonly origin: string;
  /**
   * When the session began at the latest, epoch ms: the time of the oldest of its versions this region
   * saw (the clock of the region that made it).
   */
  readonly createdAt: number;
  /** Its last write or touch recorded here, epoch ms. */
  readonly lastSeenAt: number;
  /** Its expiry, epoch ms; `null` for never. */
  readonly expiresAt: number | null;
}

/** Options of `store.logoutEverywhere`. */
export interface LogoutEverywhereOptions {
  /** A session id to keep (the caller's own session): neither ended nor refused by the mark. */
  readonly except?: string;
}

/** What the per-user index needs from the store. */
export interface UserIndexContext {
  readonly options: ResolvedOptions;
  readonly keys: KeySpace;
  /** Whether the store replicates: each mark is then appended to the outbox of its index's shard. */
  readonly replicates: boolean;
  /** The user of a stored session's text (`undefined`: none, or not readable synchronously). */
  userOf(text: string): string | undefined;
  /**
   * Ends one session as `store.destroy` does (tombstone, event), publishing and replicating why (the
   * revocation event's reason) and whose it was.
   */
  destroy(
    sid: string,
    why: { reason: 'logout-everywhere' | 'revoked-before'; userId: string; endedIn?: string },
  ): Promise<void>;
  /** Runs one Redis call under the operation deadline. */
  call<T>(operation: string, work: Promise<T>): Promise<T>;
}

/** One index of a user: the one, or one shard's (`KeySpace.userIndexes`). */
type Index = { readonly key: string; readonly shard: number | undefined };

const MARK_FIELD = '|before';

/** Attempts of each step of `sessionsOf` and `logoutEverywhere` that meets a transient failure. */
const ATTEMPTS = 3;

function checkUser(operation: string, userId: unknown): string {
  const problem = sessionIdProblem(userId);
  if (problem !== undefined) throw new InvalidSessionIdError(operation, `as a user id ${problem}`);
  return userId as string;
}

/** Parses an index entry `origin|created|lastSeen|expiry` (undefined when malformed). */
function parseEntry(sid: string, text: string): UserSession | undefined {
  const match = /^([^|]*)\|(\d+)\|(\d+)\|(\d+)$/.exec(text);
  if (!match) return undefined;
  const expiry = Number(match[4]);
  return {
    sid,
    origin: match[1] as string,
    createdAt: Number(match[2]),
    lastSeenAt: Number(match[3]),
    expiresAt: expiry === 0 ? null : expiry,
  };
}

/**
 * Runs `work` again (up to {@link ATTEMPTS} times, with backoff) while it fails transiently (a lost
 * connection, a failover, a timeout: src/failures/reply-errors.ts); every step it retries is idempotent.
 */
async function retrying<T>(work: () => Promise<T>): Promise<T> {
  const backoff = new Backoff(50, 500);
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= ATTEMPTS || error instanceof ClosedError || isDeterministicFailure(error)) throw error;
      await sleep(backoff.next());
    }
  }
}

/** Waits for every one of `works`, then rejects with the first failure if any failed (none is left half-seen). */
async function all<T>(works: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(works);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/**
 * The per-user index (src/redis/scripts/includes/user-index.lua) as the store reads it: `sessionsOf`
 * lists a user's live sessions, pruning entries of sessions that ended; `logoutEverywhere` sets the
 * replicated "revoked before" mark and ends every listed session.
 *
 * In the sharded layout (src/keys.ts) each shard keeps its own index of the user, in its slot, beside
 * the sessions it lists, so that every write script keeps it atomically in one slot: `sessionsOf` reads
 * every shard's (concurrently) and merges them, and `logoutEverywhere` marks and ends shard by shard,
 * each shard's mark appended to that shard's outbox (a region receiving a mark merges it into every
 * shard's index of the user: src/replication/applier.ts). A step that fails transiently is tried again,
 * and a call that could not finish in every shard rejects after the others finished: the caller calls
 * again, which changes nothing that was done.
 */
export class UserIndex {
  constructor(private readonly ctx: UserIndexContext) {}

  /** The live sessions of `userId` this region holds, pruning the index of those that ended. */
  async sessionsOf(userId: string): Promise<UserSession[]> {
    const uid = checkUser('sessionsOf', userId);
    const lists = await all(
      this.ctx.keys.userIndexes(uid).map((index) => retrying(() => this.list(uid, index))),
    );
    return lists.flat().sort((a, b) => a.createdAt - b.createdAt || (a.sid < b.sid ? -1 : 1));
  }

  /** The live sessions listed in one index of `uid` (one slot), pruning the others from it. */
  private async list(uid: string, index: Index): Promise<UserSession[]> {
    const { options, keys } = this.ctx;
    const fields = await this.ctx.call('sessionsOf', options.client.hgetall(index.key));
    const entries: UserSession[] = [];
    const dead: string[] = [];
    for (const [sid, text] of Object.entries(fields)) {
      if (sid === MARK_FIELD) continue;
      // A shard's index lists only that shard's sessions (the write scripts put them there).
      const valid = sessionIdProblem(sid) === undefined && keys.shardOf(sid) === index.shard;
      const entry = valid ? parseEntry(sid, text) : undefined;
      if (entry === undefined) dead.push(sid);
      else entries.push(entry);
    }
    const states = await this.ctx.call(
      'sessionsOf',
      readStates(
        options.client,
        entries.map((e) => ({ value: keys.session(e.sid), meta: keys.meta(e.sid) })),
      ),
    );
    const live: UserSession[] = [];
    entries.forEach((entry, i) => {
      const state = states[i];
      // Ended (tombstone), expired or gone: not listed, and pruned.
      // A session now of another user (the same id saved with another user) is not this user's either.
      if (
        state === undefined ||
        state.value === undefined ||
        isTombstoneText(state.metaText ?? null) ||
        this.ownerOf(state.value) !== uid
      ) {
        dead.push(entry.sid);
      } else {
        live.push(entry);
      }
    });
    if (dead.length > 0) await this.ctx.call('sessionsOf', options.client.hdel(index.key, ...dead));
    return live;
  }

  private ownerOf(text: string): string | undefined {
    try {
      return this.ctx.userOf(text);
    } catch {
      return undefined;
    }
  }

  /**
   * Ends every session of `userId` in every region but `except`: sets the user's "revoked before" mark
   * (replicated), then destroys each session listed here; shard by shard in the sharded layout. Resolves
   * to how many it ended; rejects if any shard could not be done (after the others were).
   */
  async logoutEverywhere(userId: string, opts: LogoutEverywhereOptions = {}): Promise<number> {
    const uid = checkUser('logoutEverywhere', userId);
    const except = opts.except === undefined ? '' : checkUser('logoutEverywhere', opts.except);
    const { keys } = this.ctx;
    const counts = await all(
      keys.userIndexes(uid).map(async (index) => {
        await retrying(() => this.mark(uid, except, index));
        const sessions = await retrying(() => this.list(uid, index));
        const ended = sessions.filter((s) => s.sid !== except);
        // ENDING logout-everywhere: each listed session ends as a destroy does (tombstone, event, digests).
        const why = { reason: 'logout-everywhere', userId: uid } as const;
        await all(ended.map((s) => retrying(() => this.ctx.destroy(s.sid, why))));
        return ended.length;
      }),
    );
    return counts.reduce((a, n) => a + n, 0);
  }

  /** Runs revoke-user.lua on one index of `uid`, with its shard's outbox when the store replicates. */
  private mark(uid: string, except: string, index: Index): Promise<unknown> {
    const { options, keys } = this.ctx;
    const horizonMs = Math.round(options.tombstoneTtl * 1000);
    const lifeMs = typeof options.ttl === 'number' ? options.ttl * 1000 : 0;
    const outbox = this.ctx.replicates
      ? keys.sessionOutboxes(options.region).find((o) => o.shard === index.shard)?.key
      : undefined;
    const markKeys = outbox === undefined ? [index.key] : [index.key, outbox, sequenceKey(outbox)];
    return this.ctx.call(
      'logoutEverywhere',
      runScript(options.client, 'revoke-user', markKeys, [
        options.region,
        uid,
        except,
        lifeMs + 2 * horizonMs,
        Math.floor(options.clock()),
        options.maxClockSkewMs,
        horizonMs,
      ]),
    );
  }

  /**
   * Ends the sessions of `userId` listed here that began before its "revoked before" mark (a mark that
   * arrived from another region), but the one it kept; in each shard by that shard's mark. Resolves to
   * how many it ended.
   */
  async endRevoked(userId: string, markedIn?: string): Promise<number> {
    const uid = checkUser('logoutEverywhere', userId);
    const counts = await all(
      this.ctx.keys.userIndexes(uid).map((index) => this.endRevokedIn(uid, index, markedIn)),
    );
    return counts.reduce((a, n) => a + n, 0);
  }

  private async endRevokedIn(uid: string, index: Index, markedIn: string | undefined): Promise<number> {
    const { options } = this.ctx;
    const text = await this.ctx.call('logoutEverywhere', options.client.hget(index.key, MARK_FIELD));
    const match = text === null ? null : /^(\d+)\|(\d+)\|(.*)$/.exec(text);
    if (!match) return 0;
    const at = Number(match[1]);
    const except = match[3];
    const sessions = await this.list(uid, index);
    const ended = sessions.filter((s) => s.sid !== except && s.createdAt < at);
    // ENDING: as a destroy does (tombstone, event, digests). A mark that came from another region is that
    // region's logout everywhere: its sessions here end with that reason, published as ended there.
    const why =
      markedIn === undefined
        ? ({ reason: 'revoked-before', userId: uid } as const)
        : ({ reason: 'logout-everywhere', userId: uid, endedIn: markedIn } as const);
    await Promise.all(ended.map((s) => this.ctx.destroy(s.sid, why)));
    return ended.length;
  }
}
