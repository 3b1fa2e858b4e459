import { ClosedError, InvalidSessionIdError, SessionTooLargeError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import {
  destroySession,
  type SessionKeys,
  TouchResult,
  touchLocalSession,
  touchSession,
  WriteResult,
  writeSession,
} from '../redis/commands.js';
import { expiryShift, isTombstoneText } from '../redis/meta.js';
import { sendCommand } from '../redis/send-command.js';
import { createWriteBatcher } from '../redis/write-batching.js';
import type { Callback } from '../runtime/callback.js';
import type { SessionData, SessionInput } from '../types.js';
import { isValidSessionId, regionOfSessionId, sessionIdProblem } from '../validation/ids.js';
import { exceedsBytes, utf8Length } from '../validation/utf8.js';
import { cookieExpired } from './cookie-expiry.js';
import type { Deadlines } from './deadline.js';
import type { RefusedWrite } from './events.js';
import { fingerprint } from './fingerprint.js';
import type { NearCache } from './near-cache.js';
import type { ResolvedOptions } from './options.js';
import type { ReadThrough } from './read-through.js';
import { asGeoSessionError, execCall } from './redis-call.js';
import { lifetimeOf, userOf } from './session-lifetime.js';
import { deliverStored } from './stored-session.js';

/**
 * How long the local tombstone of a never-saved session lives (a logout or `regenerate` of an id born
 * here that this region holds nothing of): as long as a request can be in flight, Node's default
 * `server.requestTimeout` (300 s), so that a slow save of the id after the logout is still refused
 * (connect-redis#328). See docs/replication.md rule 2.
 */
export const LOCAL_TOMBSTONE_MS = 300_000;

/** What {@link SessionOperations} needs from the store. */
export interface OperationsContext {
  readonly options: ResolvedOptions;
  readonly keys: KeySpace;
  readonly deadlines: Deadlines;
  /**
   * This region's outbox when the store replicates (the unsharded one; with outbox shards each session's
   * changes go to its shard's, `KeySpace.outboxOf`).
   */
  readonly outbox: string | undefined;
  readonly readThrough: ReadThrough | undefined;
  /** The near cache, when the store has one (src/session/near-cache.ts). */
  readonly nearCache: NearCache | undefined;
  isClosed(): boolean;
  onRefused(op: RefusedWrite['op'], sid: string): void;
  /**
   * True when this region's Redis can be trusted to know every session born here: replication has
   * started and has not found this region's own data lost (a region that came back empty may have lost
   * sessions the other regions still hold, so its logouts must replicate).
   */
  knowsItsOwnSessions(): boolean;
}

/**
 * The store's operations on its own region's Redis: read (with read-through on a miss), write, touch
 * and destroy, each bounded by the operation deadline. Hot paths use one completion callback per call
 * rather than promise chains. The host contributes only remaining lifetimes: every absolute expiry and
 * version is made by the scripts from the Redis clock. Their parts live beside it: the lifetime and user
 * of a session to store (./session-lifetime.ts), turning a stored value into a session
 * (./stored-session.ts) and one Redis call under the deadline (./redis-call.ts).
 */
export class SessionOperations {
  private readonly batchWrites: () => void;
  private readonly tombstoneMs: number;
  private readonly touchStepMs: number;

  constructor(private readonly ctx: OperationsContext) {
    this.batchWrites = createWriteBatcher(ctx.options.client);
    // A tombstone lives at least twice the stale-event horizon (tombstoneTtl). With only one, a set
    // made in another region just after the logout (before the logout reached it) and delayed by
    // almost the horizon arrives after the tombstone is gone yet inside the horizon, and revives the
    // session here without any region noticing. With two, a set can outlive the tombstone only if it
    // was made more than a horizon after the logout, so the logout reached its region later than the
    // horizon and that region is flagged as needing a resync (test/replication/round-trip-logout).
    this.tombstoneMs = Math.round(ctx.options.tombstoneTtl * 1000 * 2);
    this.touchStepMs = Math.round(ctx.options.replicateTouchAfter * 1000);
  }

  read(sid: string, done: Callback<SessionData | null>): void {
    if (this.refuseClosed(done)) return;
    if (!isValidSessionId(sid)) {
      done(null, null); // no such id can have been stored
      return;
    }
    const near = this.ctx.nearCache;
    if (near !== undefined) {
      const hit = near.lookup(sid);
      if (hit !== undefined) {
        // Answered after the caller's code, as a read from Redis would be: a copy of the entry's parsed
        // session (JSON serializer), else its text parsed, as a read from Redis does.
        queueMicrotask(() => {
          const copy = near.copyOf(hit);
          if (copy !== undefined && !cookieExpired(copy)) done(null, copy);
          else deliverStored(this.ctx, sid, hit.text, done, hit.shiftMs);
        });
        return;
      }
    }
    const { client } = this.ctx.options;
    this.batchWrites();
    // One MGET of the value and its metadata (same slot): the metadata says how far writes that moved
    // only the expiry moved it. A key of another type reads as missing (MGET's rule), as no session.
    let read = sendCommand(client, 'mget', [this.ctx.keys.session(sid), this.ctx.keys.meta(sid)]) as Promise<
      (string | null)[]
    >;
    if (near !== undefined) read = near.fillFrom(sid, this.ctx.keys.session(sid), read);
    execCall(this.ctx.deadlines, 'get', read, done, ([text, meta]) => {
      if (text != null) return deliverStored(this.ctx, sid, text, done, expiryShift(meta));
      // A miss is final unless the region that made the id can be asked (read-through).
      const through = this.ctx.readThrough;
      if (!through?.covers(sid)) return done(null, null);
      through.fetch(sid).then(
        (remote) =>
          remote === null
            ? done(null, null)
            : deliverStored(this.ctx, sid, remote.text, done, expiryShift(remote.meta)),
        (error: Error) => done(error),
      );
    });
  }

  write(sid: string, session: SessionInput, done: Callback<void>): void {
    if (this.refuseClosed(done) || this.refuseId('set', sid, done)) return;
    const { options } = this.ctx;
    let data: string;
    let fp: string;
    let lifetimeMs: number;
    let ruleMs: number;
    let user: { id: string; key: string } | undefined;
    try {
      ({ lifetimeMs, ruleMs } = lifetimeOf(options, session));
      if (lifetimeMs < 0) {
        // An expired cookie destroys the session (connect-redis does the same).
        this.remove(sid, done);
        return;
      }
      data = options.serializer.stringify(session as SessionData);
      fp = fingerprint(options.serializer, session as SessionData, data);
      user = userOf(options, this.ctx.keys, sid, session as SessionData);
    } catch (error) {
      // A ttl function or serializer that throws fails this call, not the host app.
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (exceedsBytes(data, options.maxSessionBytes)) {
      done(new SessionTooLargeError(utf8Length(data), options.maxSessionBytes));
      return;
    }
    // nearCache.touchAfterMs: an unchanged save (fastify's rolling, express's resave) is a touch.
    if (this.ctx.nearCache?.skipsTouch(sid, lifetimeMs, ruleMs, fp)) {
      done(null);
      return;
    }
    done = this.forgetAround(sid, done);
    this.ctx.readThrough?.forget(sid);
    this.batchWrites();
    const work = writeSession(options.client, this.keysOf(sid), {
      data,
      fingerprint: fp,
      lifetimeMs,
      ruleMs,
      region: options.region,
      sid,
      hostNow: options.clock(),
      maxSkewMs: options.maxClockSkewMs,
      touchStepMs: this.touchStepMs,
      user,
    });
    execCall(this.ctx.deadlines, 'set', work, done, ({ result }) => {
      if (result === WriteResult.Refused) this.ctx.onRefused('set', sid);
      if (result === WriteResult.Revoked) {
        // ENDING revoked-before: the user's "revoked before" mark ends a session created before it.
        this.ctx.onRefused('set', sid);
        this.remove(sid, done, undefined, { reason: 'revoked-before', userId: user?.id });
        return;
      }
      done(null);
    });
  }

  extend(sid: string, session: SessionInput, done: Callback<void>): void {
    if (this.refuseClosed(done)) return;
    const { options } = this.ctx;
    if (options.disableTouch || options.disableTTL) {
      done(null);
      return;
    }
    if (this.refuseId('touch', sid, done)) return;
    let lifetimeMs: number;
    let ruleMs: number;
    let user: { id: string; key: string } | undefined;
    try {
      ({ lifetimeMs, ruleMs } = lifetimeOf(options, session));
      lifetimeMs = Math.max(1, lifetimeMs);
      user = userOf(options, this.ctx.keys, sid, session as SessionData);
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    // nearCache.touchAfterMs: a cached session that already lives nearly that long is not touched.
    if (this.ctx.nearCache?.skipsTouch(sid, lifetimeMs, ruleMs)) {
      done(null);
      return;
    }
    done = this.forgetAround(sid, done);
    const outbox = this.ctx.outbox;
    this.batchWrites();
    if (outbox === undefined) {
      // Without replication a touch needs no version and no event: a relative PEXPIRE GT never creates
      // a session, never shortens one, and cannot revive a destroyed one (its value key is gone); the
      // metadata's expiry follows so that get reports the new cookie.expires.
      const work = touchLocalSession(
        options.client,
        this.keysOf(sid),
        lifetimeMs,
        user && { sid, region: options.region, key: user.key },
      );
      execCall(this.ctx.deadlines, 'touch', work, done, (moved) => {
        if (moved) return done(null);
        this.hasTombstone(sid, 'touch').then((destroyed) => {
          if (destroyed) this.ctx.onRefused('touch', sid);
          done(null);
        }, done);
      });
      return;
    }
    const keys = { ...this.keysOf(sid), outbox: this.ctx.keys.outboxOf(sid, options.region) };
    const work = touchSession(options.client, keys, {
      lifetimeMs,
      ruleMs,
      region: options.region,
      sid,
      touchStepMs: this.touchStepMs,
      user,
    });
    execCall(this.ctx.deadlines, 'touch', work, done, (result) => {
      if (result === TouchResult.Refused) this.ctx.onRefused('touch', sid);
      // The cookie's maxAge changed ("remember me"): a touch may not reach past the stored rule, so the
      // session is written with its new rule instead.
      if (result === TouchResult.RuleChanged) return this.write(sid, session, done);
      done(null);
    });
  }

  /**
   * Destroys `sid`. `untilMs` (epoch ms, host clock) is when the credential the session came from stops
   * being valid (a token's exp): the tombstone lives at least until then.
   */
  remove(
    sid: string,
    done: Callback<void>,
    untilMs?: number,
    why?: { reason: 'logout-everywhere' | 'revoked-before'; userId: string | undefined; endedIn?: string },
  ): void {
    if (this.refuseClosed(done) || this.refuseId('destroy', sid, done)) return;
    done = this.forgetAround(sid, done);
    const { options } = this.ctx;
    this.ctx.readThrough?.forget(sid);
    this.batchWrites();
    const hostNow = options.clock();
    const work = destroySession(options.client, this.keysOf(sid), {
      tombstoneMs: this.tombstoneMs,
      region: options.region,
      sid,
      hostNow,
      maxSkewMs: options.maxClockSkewMs,
      credentialMs: untilMs === undefined ? 0 : untilMs - hostNow,
      bornHere: regionOfSessionId(sid) === options.region && this.ctx.knowsItsOwnSessions(),
      localTombstoneMs: LOCAL_TOMBSTONE_MS,
      revokedChannel: this.ctx.keys.revoked(options.region),
      ...(why ? { reason: why.reason, userId: why.userId } : {}),
      ...(why?.endedIn ? { endedIn: why.endedIn } : {}),
    });
    execCall(this.ctx.deadlines, 'destroy', work, done, () => done(null));
  }

  /** True when a logout's tombstone stands for `sid`. */
  async hasTombstone(sid: string, operation = 'isDestroyed'): Promise<boolean> {
    if (!isValidSessionId(sid)) return false;
    const read = sendCommand(this.ctx.options.client, 'get', [this.ctx.keys.meta(sid)]);
    const meta = await this.call(operation, read as Promise<string | null>);
    return isTombstoneText(meta);
  }

  /** Parses a stored value (CorruptSessionError when it cannot). */
  parse(sid: string, text: string): Promise<SessionData> {
    return new Promise((resolve, reject) => {
      deliverStored(this.ctx, sid, text, (err, session) =>
        err ? reject(err) : resolve(session as SessionData),
      );
    });
  }

  /** Runs one Redis call under the operation deadline, with errors made `GeoSessionError`s. */
  call<T>(operation: string, work: Promise<T>): Promise<T> {
    return this.ctx.deadlines.run(operation, work, undefined, asGeoSessionError);
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * A write of this process: the near cache forgets `sid` now, before the write is sent (voiding reads
   * in flight), and again when it ends (Redis's own invalidation may reach the process after the reply).
   */
  private forgetAround(sid: string, done: Callback<void>): Callback<void> {
    const near = this.ctx.nearCache;
    if (near === undefined) return done;
    near.invalidate(sid);
    return (error) => {
      near.invalidate(sid);
      done(error);
    };
  }

  private keysOf(sid: string): SessionKeys {
    const { keys, outbox, options } = this.ctx;
    return {
      value: keys.session(sid),
      meta: keys.meta(sid),
      outbox: outbox === undefined ? undefined : keys.outboxOf(sid, options.region),
      digest: outbox === undefined ? undefined : keys.digestOf(sid, options.region),
    };
  }

  private refuseClosed(done: Callback<never>): boolean {
    if (!this.ctx.isClosed()) return false;
    done(new ClosedError('the session store'));
    return true;
  }

  private refuseId(operation: string, sid: string, done: Callback<never>): boolean {
    const problem = sessionIdProblem(sid);
    if (problem === undefined) return false;
    done(new InvalidSessionIdError(operation, problem));
    return true;
  }
}
