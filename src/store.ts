import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { type BulkContext, deleteAllSessions, listSessionIds, readAllSessions } from './bulk.js';
import { ClosedError, CorruptSessionError, GeoSessionError, RedisCommandError } from './errors.js';
import { type Callback, dual, settle } from './internal/callback.js';
import { followClientState } from './internal/client-state.js';
import { cookieExpired, cookieExpiryMs, cookieExpiryText } from './internal/cookie-expiry.js';
import { Deadlines } from './internal/deadline.js';
import { loadExpressSession } from './internal/express-session.js';
import { fingerprint } from './internal/fingerprint.js';
import { reportError } from './internal/report.js';
import { createWriteBatcher } from './internal/write-batching.js';
import { createKeySpace, type KeySpace } from './keys.js';
import {
  type GeoSessionStoreOptions,
  type RedisClient,
  type ResolvedOptions,
  resolveOptions,
  type Serializer,
  type SessionData,
  type SessionInput,
} from './options.js';
import { type AppliedBatch, type ReplicationStats, Replicator } from './replication/replicator.js';
import { runScript } from './scripts/index.js';
import { generateSessionId, regionOfSessionId } from './session-id.js';

const expressSession = loadExpressSession();

/**
 * express-session's `Store` when the app has express-session, so that `store instanceof session.Store`
 * holds; a plain EventEmitter otherwise (fastify needs nothing more).
 */
const BaseStore: typeof EventEmitter = expressSession?.Store ?? EventEmitter;

/** Why a write was not applied. Emitted as the store's `refused` event. */
export interface RefusedWrite {
  /** The method that was refused. */
  op: 'set' | 'touch';
  /** The session id. */
  sid: string;
  /** `destroyed`: a logout's tombstone forbids the write (a slow request re-saving after logout). */
  reason: 'destroyed';
}

/** The request shape `regenerate` needs (express-session's `req`). */
interface RegenerateRequest {
  sessionID: string;
}

/**
 * A session Store for express-session and @fastify/session that keeps sessions in the region's own Redis
 * and, given a transport, replicates every change to the other regions.
 *
 * Events: `connect` and `disconnect` follow the Redis client's state (express-session stops using the
 * store while disconnected); `refused` ({@link RefusedWrite}) reports a write that a logout forbade;
 * `error` reports background failures (replication), never request failures, which go to the caller;
 * `replicated` ({@link AppliedBatch}) reports each batch of other regions' changes applied here.
 */
export class GeoSessionStore extends BaseStore {
  /** The Redis client passed in. It belongs to the caller. */
  readonly client: RedisClient;
  /** This store's region id. */
  readonly region: string;
  /** Key prefix of session values. */
  readonly prefix: string;
  /** Lifetime in seconds when the cookie has none, or a function of the session. */
  readonly ttl: ResolvedOptions['ttl'];
  /** Serializer of stored sessions. */
  readonly serializer: Serializer;
  /** Whether `touch` is a no-op. */
  readonly disableTouch: boolean;
  /** Whether sessions are stored without expiry. */
  readonly disableTTL: boolean;
  /** `COUNT` hint of each SCAN. */
  readonly scanCount: number;

  /** Set by express-session's middleware; used by {@link GeoSessionStore.regenerate}. */
  generate?: (req: unknown) => void;

  private readonly options: ResolvedOptions;
  private readonly keys: KeySpace;
  private readonly deadlines: Deadlines;
  private readonly batchWrites: () => void;
  private readonly outboxKey: string | undefined;
  private readonly tombstoneMs: number;
  private readonly readsThrough: boolean;
  private isConnected: boolean;
  private closed = false;
  private readonly detachClient: () => void;
  private readonly replicator: Replicator | undefined;
  private readonly started: Promise<void>;

  constructor(options: GeoSessionStoreOptions) {
    super();
    const resolved = resolveOptions(options);
    this.options = resolved;
    this.client = resolved.client;
    this.region = resolved.region;
    this.prefix = resolved.prefix;
    this.ttl = resolved.ttl;
    this.serializer = resolved.serializer;
    this.disableTouch = resolved.disableTouch;
    this.disableTTL = resolved.disableTTL;
    this.scanCount = resolved.scanCount;
    this.keys = createKeySpace(
      resolved.prefix,
      (this.client.options as { keyPrefix?: string }).keyPrefix ?? '',
    );
    this.deadlines = new Deadlines(resolved.operationTimeoutMs);
    this.batchWrites = createWriteBatcher(this.client);
    this.outboxKey = resolved.transport ? this.keys.outbox(resolved.region) : undefined;
    this.tombstoneMs = Math.round(resolved.tombstoneTtl * 1000);
    this.readsThrough = Object.keys(resolved.remotes).length > 0;
    this.isConnected = this.client.status === 'ready';
    this.detachClient = this.followClient();
    if (resolved.transport) {
      this.replicator = new Replicator({
        region: this.region,
        channel: this.prefix,
        client: this.client as Redis,
        keys: this.keys,
        transport: resolved.transport,
        onError: (error) => this.reportError(error),
        onApplied: (batch) => {
          if (this.listenerCount('replicated') > 0) this.emit('replicated', batch);
        },
      });
      this.started = this.replicator.start();
      this.started.catch((error: unknown) => this.reportError(error));
    } else {
      this.started = Promise.resolve();
    }
  }

  /**
   * Resolves once replication is running (at once without a transport); rejects if it could not start.
   * Requests do not need to wait for it: writes land in the outbox either way.
   */
  ready(): Promise<void> {
    return this.started;
  }

  /** Replication counters and lag; `undefined` without a transport. */
  replicationStats(): ReplicationStats | undefined {
    return this.replicator?.stats();
  }

  /**
   * Makes a new session id that records this region (see {@link regionOfSessionId}). Bound, so it can be
   * passed as express-session's `genid` or @fastify/session's `idGenerator` directly.
   */
  readonly genid = (_req?: unknown): string => generateSessionId(this.region);

  /** The region that created `sid`, or `undefined` for ids not made by {@link GeoSessionStore.genid}. */
  regionOf(sid: string): string | undefined {
    return regionOfSessionId(sid);
  }

  /** True while the Redis client is ready. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Reads a session; `null` when there is none. */
  get(sid: string): Promise<SessionData | null>;
  get(sid: string, cb: Callback<SessionData | null>): void;
  get(sid: string, cb?: Callback<SessionData | null>): Promise<SessionData | null> | undefined {
    return dual<SessionData | null>((done) => this.read(sid, done), cb);
  }

  /**
   * Writes a session. A lifetime at or below zero destroys it (connect-redis does the same). A session
   * whose content is unchanged except for `cookie.expires` only has its lifetime extended. A session
   * destroyed earlier is never written again: the write is dropped and a `refused` event emitted.
   */
  set<S extends SessionInput>(sid: string, session: S): Promise<void>;
  set<S extends SessionInput>(sid: string, session: S, cb: Callback<void>): void;
  set<S extends SessionInput>(sid: string, session: S, cb?: Callback<void>): Promise<void> | undefined {
    return dual<void>((done) => this.write(sid, session, done), cb);
  }

  /**
   * Extends a session's lifetime without rewriting its value. Never creates a session and never
   * shortens one. A no-op under `disableTouch` or `disableTTL`.
   */
  touch<S extends SessionInput>(sid: string, session: S): Promise<void>;
  touch<S extends SessionInput>(sid: string, session: S, cb: Callback<void>): void;
  touch<S extends SessionInput>(sid: string, session: S, cb?: Callback<void>): Promise<void> | undefined {
    return dual<void>((done) => this.extend(sid, session, done), cb);
  }

  /** Destroys a session and leaves a tombstone so that it cannot come back. The callback is optional. */
  destroy(sid: string): Promise<void>;
  destroy(sid: string, cb: Callback<void> | undefined): void;
  destroy(sid: string, cb?: Callback<void>): Promise<void> | undefined {
    return dual<void>((done) => this.remove(sid, done), cb);
  }

  /**
   * True when a logout's tombstone stands for `sid` in this region: the session was destroyed and no
   * write can bring it back. A missing session that was never destroyed (or whose tombstone outlived
   * its horizon) answers `false`. For gateways and token-derived sessions that must tell "logged out"
   * from "never seen".
   */
  isDestroyed(sid: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new ClosedError('the session store'));
    return this.hasTombstone(sid, 'isDestroyed');
  }

  /** Every session in this region, each with its `id`. */
  all(): Promise<SessionData[]>;
  all(cb: Callback<SessionData[]>): void;
  all(cb?: Callback<SessionData[]>): Promise<SessionData[]> | undefined {
    return settle(this.runBulk(readAllSessions), cb);
  }

  /** Ids of every session in this region. */
  ids(): Promise<string[]>;
  ids(cb: Callback<string[]>): void;
  ids(cb?: Callback<string[]>): Promise<string[]> | undefined {
    return settle(this.runBulk(listSessionIds), cb);
  }

  /** Number of sessions in this region. */
  length(): Promise<number>;
  length(cb: Callback<number>): void;
  length(cb?: Callback<number>): Promise<number> | undefined {
    return settle(
      this.runBulk(listSessionIds).then((ids) => ids.length),
      cb,
    );
  }

  /**
   * Deletes every session in this region's Redis, batch by batch as SCAN finds them. It is local: it is
   * not replicated and leaves tombstones in place.
   */
  clear(): Promise<void>;
  clear(cb: Callback<void>): void;
  clear(cb?: Callback<void>): Promise<void> | undefined {
    return settle(this.runBulk(deleteAllSessions), cb);
  }

  /** express-session's `Store#regenerate`: destroys the old session, then makes a new one on `req`. */
  regenerate(req: RegenerateRequest, fn: (err?: Error | null) => void): void {
    this.destroy(req.sessionID, (err) => {
      this.generate?.(req);
      fn(err);
    });
  }

  /**
   * express-session's `Store#load`: `get` plus `createSession`. Generic so that the store stays assignable
   * to express-session's typed `Store` (whose callback takes its `SessionData`).
   */
  load<T = unknown>(sid: string, fn: (err?: Error | null, session?: T) => void): void {
    this.get(sid, (err, session) => {
      if (err) return fn(err);
      if (!session) return fn();
      fn(null, this.createSession<T>({ sessionID: sid, sessionStore: this }, session));
    });
  }

  /**
   * express-session's `Store#createSession`: sets and returns `req.session`. Needs express-session installed.
   * `T` is express-session's `Session & SessionData` (generic for the same reason as `load`).
   */
  createSession<T = unknown>(req: object, session: object): T {
    if (!expressSession) {
      throw new GeoSessionError(
        'ERR_GEOSESSION_CONFIG',
        'geosession: createSession needs express-session, which is not installed',
      );
    }
    return expressSession.Store.prototype.createSession.call(this, req, session) as T;
  }

  /**
   * Stops the store's own work: pending calls fail with a `ClosedError` and later calls too. The Redis
   * client stays open; it is yours to `quit()`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detachClient();
    await this.replicator?.close();
    this.deadlines.close(new ClosedError('the session store'));
  }

  // ---------------------------------------------------------------------------------------------
  // Implementation

  /**
   * Runs one Redis call under the operation deadline: `next` gets the reply, `done` gets a failure (Redis
   * error, timeout, or an exception thrown by `next`). No promise is made beyond the client's own.
   */
  private exec<T>(
    operation: string,
    work: Promise<T>,
    done: Callback<never>,
    next: (value: T) => void,
  ): void {
    const pending = this.deadlines.track(operation, done);
    work.then(
      (value) => {
        if (pending.settled) return;
        pending.settled = true;
        try {
          next(value);
        } catch (error) {
          done(error instanceof Error ? error : new Error(String(error)));
        }
      },
      (error: unknown) => {
        if (pending.settled) return;
        pending.settled = true;
        done(asGeoSessionError(operation, error) as Error);
      },
    );
  }

  private read(sid: string, done: Callback<SessionData | null>): void {
    if (this.closed) {
      done(new ClosedError('the session store'));
      return;
    }
    this.batchWrites();
    this.exec('get', this.client.get(this.keys.session(sid)), done, (text) => {
      if (text !== null) return this.deliver(sid, text, done);
      // A miss is final unless a remote region can be asked (read-through).
      if (!this.readsThrough) return done(null, null);
      this.readThrough(sid).then(
        (remote) => (remote === null ? done(null, null) : this.deliver(sid, remote, done)),
        (error: Error) => done(error),
      );
    });
  }

  /** Parses a stored value and hands it to `done`, fixing its cookie expiry if a touch left it behind. */
  private deliver(sid: string, text: string, done: Callback<SessionData | null>): void {
    let parsed: SessionData | Promise<SessionData>;
    try {
      parsed = this.serializer.parse(text);
    } catch (error) {
      done(new CorruptSessionError(sid, error));
      return;
    }
    if (parsed instanceof Promise) {
      parsed.then(
        (session) => this.finish(sid, session, done),
        (error: unknown) => done(new CorruptSessionError(sid, error)),
      );
      return;
    }
    this.finish(sid, parsed, done);
  }

  private finish(sid: string, session: unknown, done: Callback<SessionData | null>): void {
    if (typeof session !== 'object' || session === null) {
      const what = session === null ? 'null' : typeof session;
      done(new CorruptSessionError(sid, new TypeError(`parsed to ${what}`)));
      return;
    }
    if (!cookieExpired(session as SessionData)) {
      done(null, session as SessionData);
      return;
    }
    this.freshenCookieExpiry(sid, session as SessionData, done);
  }

  /**
   * On a local miss for an id born in a region listed in `remotes`, reads it from there, unless it was
   * destroyed here (a logout here must not be undone by a region that has not heard of it yet). A remote
   * that fails or is slow counts as a miss: the request goes on unauthenticated, as it would without
   * read-through, and the failure is reported as an `error` event.
   */
  private async readThrough(sid: string): Promise<string | null> {
    const origin = regionOfSessionId(sid);
    const remote = origin === undefined ? undefined : this.options.remotes[origin];
    if (!remote) return null;
    if (await this.hasTombstone(sid, 'get')) return null;
    try {
      return await this.deadlines.run(
        `read-through from ${origin}`,
        remote.get(this.keys.session(sid)),
        this.options.readThroughTimeoutMs,
      );
    } catch (error) {
      this.reportError(error);
      return null;
    }
  }

  private write(sid: string, session: SessionInput, done: Callback<void>): void {
    if (this.closed) {
      done(new ClosedError('the session store'));
      return;
    }
    let args: (string | number)[];
    try {
      const now = Date.now();
      const cookieExpiry = cookieExpiryMs(session);
      const expiresAt = this.expiryOf(session, cookieExpiry, now);
      if (expiresAt !== 0 && expiresAt <= now) {
        this.remove(sid, done);
        return;
      }
      const body = this.serializer.stringify(session as SessionData);
      const fp = fingerprint(this.serializer, session as SessionData, body);
      args = [body, fp, expiresAt, cookieExpiryText(cookieExpiry), this.region, sid, now];
    } catch (error) {
      // A ttl function or serializer that throws fails this call, not the host app.
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.batchWrites();
    this.exec('set', runScript(this.client, 'set', this.scriptKeys(sid), args), done, (result) => {
      if ((result as [number, string])[0] === -1) this.emitRefused('set', sid);
      done(null);
    });
  }

  private extend(sid: string, session: SessionInput, done: Callback<void>): void {
    if (this.closed) {
      done(new ClosedError('the session store'));
      return;
    }
    if (this.disableTouch || this.disableTTL) {
      done(null);
      return;
    }
    let expiresAt: number;
    let cookieExpiry: number | undefined;
    try {
      cookieExpiry = cookieExpiryMs(session);
      expiresAt = this.expiryOf(session, cookieExpiry, Date.now());
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (this.outboxKey === undefined) {
      // Without replication a touch needs no version and no event: one PEXPIREAT GT never creates a
      // session, never shortens one, and cannot revive a destroyed one (its value key is gone).
      const key = this.keys.session(sid);
      this.batchWrites();
      this.exec('touch', this.client.pexpireat(key, expiresAt, 'GT'), done, (moved) => {
        if (moved !== 0) return done(null);
        this.reportMissedTouch(sid).then(() => done(null), done);
      });
      return;
    }
    const args = [expiresAt, cookieExpiryText(cookieExpiry), this.region, sid];
    this.batchWrites();
    this.exec('touch', runScript(this.client, 'touch', this.scriptKeys(sid), args), done, (code) => {
      if (code === -1) this.emitRefused('touch', sid);
      done(null);
    });
  }

  /** A touch that moved nothing: the session is gone, already lives longer, or was destroyed. */
  private async reportMissedTouch(sid: string): Promise<void> {
    if (await this.hasTombstone(sid, 'touch')) this.emitRefused('touch', sid);
  }

  /** True when a logout's tombstone stands for `sid` (metadata `1|…`, see src/scripts/includes/common.lua). */
  private async hasTombstone(sid: string, operation: string): Promise<boolean> {
    const meta = await this.call(operation, this.client.get(this.keys.meta(sid)));
    return meta?.startsWith('1|') === true;
  }

  private remove(sid: string, done: Callback<void>): void {
    if (this.closed) {
      done(new ClosedError('the session store'));
      return;
    }
    const args = [this.tombstoneMs, this.region, sid, Date.now()];
    this.batchWrites();
    this.exec('destroy', runScript(this.client, 'destroy', this.scriptKeys(sid), args), done, () =>
      done(null),
    );
  }

  private async runBulk<T>(operation: (ctx: BulkContext) => Promise<T>): Promise<T> {
    return operation(this.bulk());
  }

  /** What the bulk methods (src/bulk.ts) need from the store. */
  private bulk(): BulkContext {
    this.assertOpen();
    return {
      client: this.client,
      keys: this.keys,
      scanCount: this.scanCount,
      call: (operation, work) => this.call(operation, work),
      parse: (sid, text) => this.parse(sid, text),
    };
  }

  private scriptKeys(sid: string): string[] {
    const keys = [this.keys.session(sid), this.keys.meta(sid)];
    if (this.outboxKey) keys.push(this.outboxKey);
    return keys;
  }

  /** Absolute expiry in ms for a session about to be stored; 0 means never (disableTTL). */
  private expiryOf(session: SessionInput, cookieExpiry: number | undefined, now: number): number {
    let expiresAt: number;
    if (typeof this.ttl === 'function') expiresAt = now + this.ttl(session as SessionData) * 1000;
    else expiresAt = cookieExpiry ?? now + this.ttl * 1000;
    if (this.disableTTL && expiresAt > now) return 0;
    return Math.floor(expiresAt);
  }

  private parse(sid: string, text: string): Promise<SessionData> {
    return new Promise((resolve, reject) => {
      this.deliver(sid, text, (err, session) => (err ? reject(err) : resolve(session as SessionData)));
    });
  }

  /**
   * `touch` never rewrites the stored value, so after one its `cookie.expires` is older than the real
   * expiry. That is harmless until it lies in the past, when @fastify/session would treat a live session
   * as expired: then (rarely) read the key's real expiry (PEXPIRETIME) and put it in.
   */
  private freshenCookieExpiry(sid: string, session: SessionData, done: Callback<SessionData | null>): void {
    const stored = cookieExpiryMs(session) ?? 0;
    this.exec('get', this.client.pexpiretime(this.keys.session(sid)), done, (latest) => {
      if (latest > stored && session.cookie) session.cookie.expires = new Date(latest).toISOString();
      done(null, session);
    });
  }

  private call<T>(operation: string, work: Promise<T>): Promise<T> {
    return this.deadlines.run(operation, work, undefined, asGeoSessionError);
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('the session store');
  }

  /** Background failures: an `error` event when someone listens, else printed; never thrown. */
  private reportError(error: unknown): void {
    reportError(this, error);
  }

  private emitRefused(op: RefusedWrite['op'], sid: string): void {
    const info: RefusedWrite = { op, sid, reason: 'destroyed' };
    this.emit('refused', info);
  }

  /** Mirrors the client's real state as `connect` / `disconnect`, only on transitions. */
  private followClient(): () => void {
    return followClientState(this.client, (connected) => {
      if (connected === this.isConnected) return;
      this.isConnected = connected;
      this.emit(connected ? 'connect' : 'disconnect');
    });
  }
}

function asGeoSessionError(operation: string, error: unknown): unknown {
  return error instanceof GeoSessionError ? error : new RedisCommandError(operation, error);
}
