import { InvalidSessionIdError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { isTombstoneText } from '../redis/meta.js';
import { runScript } from '../redis/run-script.js';
import { readStates } from '../redis/state-commands.js';
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
  /** This region's outbox when the store replicates. */
  readonly outbox: string | undefined;
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

const MARK_FIELD = '|before';

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
 * The per-user index (src/redis/scripts/includes/user-index.lua) as the store reads it: `sessionsOf`
 * lists a user's live sessions, pruning entries of sessions that ended; `logoutEverywhere` sets the
 * replicated "revoked before" mark and ends every listed session.
 */
export class UserIndex {
  constructor(private readonly ctx: UserIndexContext) {}

  /** The live sessions of `userId` this region holds, pruning the index of those that ended. */
  async sessionsOf(userId: string): Promise<UserSession[]> {
    const uid = checkUser('sessionsOf', userId);
    const { options, keys } = this.ctx;
    const key = keys.user(uid);
    const all = await this.ctx.call('sessionsOf', options.client.hgetall(key));
    const entries: UserSession[] = [];
    const dead: string[] = [];
    for (const [sid, text] of Object.entries(all)) {
      if (sid === MARK_FIELD) continue;
      const entry = sessionIdProblem(sid) === undefined ? parseEntry(sid, text) : undefined;
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
    if (dead.length > 0) await this.ctx.call('sessionsOf', options.client.hdel(key, ...dead));
    return live.sort((a, b) => a.createdAt - b.createdAt || (a.sid < b.sid ? -1 : 1));
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
   * (replicated), then destroys each session listed here. Resolves to how many it ended.
   */
  async logoutEverywhere(userId: string, opts: LogoutEverywhereOptions = {}): Promise<number> {
    const uid = checkUser('logoutEverywhere', userId);
    const except = opts.except === undefined ? '' : checkUser('logoutEverywhere', opts.except);
    const { options, keys, outbox } = this.ctx;
    const horizonMs = Math.round(options.tombstoneTtl * 1000);
    const lifeMs = typeof options.ttl === 'number' ? options.ttl * 1000 : 0;
    const markKeys = outbox === undefined ? [keys.user(uid)] : [keys.user(uid), outbox, sequenceKey(outbox)];
    await this.ctx.call(
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
    const sessions = await this.sessionsOf(uid);
    const ended = sessions.filter((s) => s.sid !== except);
    // ENDING logout-everywhere: each listed session ends as a destroy does (tombstone, event, digests).
    const why = { reason: 'logout-everywhere', userId: uid } as const;
    await Promise.all(ended.map((s) => this.ctx.destroy(s.sid, why)));
    return ended.length;
  }

  /**
   * Ends the sessions of `userId` listed here that began before its "revoked before" mark (a mark that
   * arrived from another region), but the one it kept. Resolves to how many it ended.
   */
  async endRevoked(userId: string, markedIn?: string): Promise<number> {
    const uid = checkUser('logoutEverywhere', userId);
    const { options, keys } = this.ctx;
    const text = await this.ctx.call('logoutEverywhere', options.client.hget(keys.user(uid), MARK_FIELD));
    const match = text === null ? null : /^(\d+)\|(\d+)\|(.*)$/.exec(text);
    if (!match) return 0;
    const at = Number(match[1]);
    const except = match[3];
    const sessions = await this.sessionsOf(uid);
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
