import { ClosedError } from '../errors.js';
import { reportError } from '../failures/report.js';
import type { DeadLetter } from '../replication/dead-letters.js';
import type { ReplicationStats } from '../replication/replicator.js';
import { type Callback, dual, settle } from '../runtime/callback.js';
import type { StoreOperation } from '../runtime/tracing.js';
import type { RedisClient, Serializer, SessionData, SessionInput } from '../types.js';
import { generateSessionId, regionOfSessionId } from '../validation/ids.js';
import { type BulkContext, deleteAllSessions, listSessionIds, readAllSessions } from './bulk.js';
import { ClientConnection } from './client-state.js';
import { type DestroyOptions, destroyArguments } from './destroy-options.js';
import type { GeoSessionStoreEvents } from './events.js';
import { BaseStore, createSession, load, type RegenerateRequest, regenerate } from './express-compat.js';
import type { NearCache, NearCacheStats } from './near-cache.js';
import { type GeoSessionStoreOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { followRevokedListeners, type WatchCallback, type WatchOptions } from './revocations.js';
import { singleRegionReport } from './status.js';
import type { StatusReport } from './status-report.js';
import { StoreCalls } from './store-calls.js';
import { StoreParts } from './store-parts.js';
import type { LogoutEverywhereOptions, UserSession } from './users.js';

export type { DestroyOptions } from './destroy-options.js';

type Listener<E extends keyof GeoSessionStoreEvents> = (...args: GeoSessionStoreEvents[E]) => void;

/**
 * A session Store for express-session and @fastify/session that keeps sessions in the region's own Redis
 * and, given a transport, replicates every change to the other regions.
 *
 * This class is the façade: the express/fastify store contract, callback and promise styles, and the
 * events ({@link GeoSessionStoreEvents}). The work lives in its own modules, made and closed together by
 * ./store-parts.ts: local operations (./operations.ts), read-through (./read-through.ts), bulk methods
 * (./bulk.ts), the express-session compatibility layer (./express-compat.ts) and replication
 * (src/replication/replicator.ts).
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

  /** Everything the store does, in its own modules (./store-parts.ts). */
  private readonly parts: StoreParts;
  /** Sessions served from process memory (the `nearCache` option), kept right by Redis key tracking. */
  private readonly nearCache: NearCache | undefined;
  /** Whether the client is connected, told as `connect` and `disconnect` events. */
  private readonly connection: ClientConnection;
  /** Observed and traced calls, and where a caller's callback's exceptions go (./store-calls.ts). */
  private readonly calls: StoreCalls;
  private closed = false;

  constructor(options: GeoSessionStoreOptions) {
    super();
    const resolved = resolveOptions(options);
    this.client = resolved.client;
    this.region = resolved.region;
    this.prefix = resolved.prefix;
    this.ttl = resolved.ttl;
    this.serializer = resolved.serializer;
    this.disableTouch = resolved.disableTouch;
    this.disableTTL = resolved.disableTTL;
    this.scanCount = resolved.scanCount;
    this.calls = new StoreCalls(this, resolved.region, resolved.prefix, (error) => this.reportError(error));
    this.connection = new ClientConnection(this.client, (connected) =>
      this.emit(connected ? 'connect' : 'disconnect'),
    );
    this.parts = new StoreParts(resolved, {
      isClosed: () => this.closed,
      reportError: (error) => this.reportError(error),
      emit: (event, ...args) => this.emit(event, ...args),
      listenerCount: (event) => this.listenerCount(event),
    });
    this.nearCache = this.parts.nearCache;
    followRevokedListeners(this, this.parts.revocations);
  }

  // ---------------------------------------------------------------------------------------------
  // Typed events

  override on<E extends keyof GeoSessionStoreEvents>(event: E, listener: Listener<E>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<E extends keyof GeoSessionStoreEvents>(event: E, listener: Listener<E>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<E extends keyof GeoSessionStoreEvents>(event: E, listener: Listener<E>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override addListener<E extends keyof GeoSessionStoreEvents>(event: E, listener: Listener<E>): this {
    return super.addListener(event, listener as (...args: unknown[]) => void);
  }
  override removeListener<E extends keyof GeoSessionStoreEvents>(event: E, listener: Listener<E>): this {
    return super.removeListener(event, listener as (...args: unknown[]) => void);
  }
  override prependListener<E extends keyof GeoSessionStoreEvents>(event: E, listener: Listener<E>): this {
    return super.prependListener(event, listener as (...args: unknown[]) => void);
  }
  override emit<E extends keyof GeoSessionStoreEvents>(event: E, ...args: GeoSessionStoreEvents[E]): boolean {
    return super.emit(event, ...args);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle and introspection

  /**
   * Resolves once replication is running (at once without a transport); rejects if it could not start,
   * with a `ClosedError` when the store was closed first. Requests do not need to wait for it: writes
   * land in the outbox either way.
   */
  ready(): Promise<void> {
    return this.parts.started;
  }

  /**
   * The Redis server's `maxmemory-policy` as read at start (`CONFIG GET`), or `undefined` when it could
   * not be read (CONFIG refused or renamed, Redis away). Anything but `noeviction` was reported as an
   * `ERR_GEOSESSION_MEMORY_POLICY` error: evicting keys can drop a tombstone and undo a logout.
   */
  memoryPolicy(): Promise<string | undefined> {
    return this.parts.policyChecked;
  }

  /** Replication counters, lag, refusals, backlog and needed resyncs; `undefined` without a transport. */
  replicationStats(): ReplicationStats | undefined {
    return this.parts.replicator?.stats();
  }

  /**
   * The near cache's counters (hits, misses, invalidations, whole-cache drops, entries, whether tracking
   * is armed); `undefined` without the `nearCache` option.
   */
  nearCacheStats(): NearCacheStats | undefined {
    return this.nearCache?.stats();
  }

  /**
   * This region's replication health in one report (docs/operations.md, "Status"): the transport, a
   * resync in progress, and per peer region the lag p50/p99 over the last minute, backlog, last applied
   * change, consumers, refused/rejected counts, `needsResync` and the alerts firing. Reads the
   * dead-letter count, the outbox's consumer groups and the resync state from Redis (a Redis that is
   * away leaves the last values read). Without a transport: the region alone, transport `none`.
   */
  async status(): Promise<StatusReport> {
    if (this.closed) throw new ClosedError('the session store');
    return this.parts.monitor ? this.parts.monitor.report() : singleRegionReport(this.region);
  }

  /** The newest entries of this region's dead-letter stream (envelopes refused here), newest first. */
  async deadLetters(count = 100): Promise<(DeadLetter & { at: string })[]> {
    if (!this.parts.replicator) return [];
    return this.parts.ops.call('deadLetters', this.parts.replicator.deadLettersLatest(count));
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
    return this.connection.connected;
  }

  /**
   * Stops the store's own work within about `operationTimeoutMs` plus a second, whatever Redis, a remote
   * region or the broker does: replication stops (batches not applied by then stay unacknowledged and
   * are delivered again, and what the stream readers left pending is handed over to the next process),
   * pending calls fail with a `ClosedError`, and so do later calls. At any moment, startup included (a
   * region or broker that never answers), it resolves once replication's readers, timers and sockets are
   * released; no `error` follows it, and `ready()` rejects with a `ClosedError` if startup was cut
   * short. The near cache's own connections are closed. The Redis client stays open; it is yours to
   * `quit()`; the transport too (`close()` it after).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connection.close();
    await this.parts.close();
  }

  // ---------------------------------------------------------------------------------------------
  // The store contract

  /** Reads a session; `null` when there is none. */
  get(sid: string): Promise<SessionData | null>;
  get(sid: string, cb: Callback<SessionData | null>): void;
  get(sid: string, cb?: Callback<SessionData | null>): Promise<SessionData | null> | undefined {
    return dual<SessionData | null>(
      (done) => this.calls.traced('get', done, (d) => this.parts.ops.read(sid, d)),
      cb,
      this.calls.thrown.get,
    );
  }

  /**
   * Writes a session. A lifetime at or below zero destroys it (connect-redis does the same). The write's
   * lifetime wins, shorter or longer, in every region (a session re-saved with a shorter maxAge is
   * shortened). A session whose content and maxAge are unchanged except for `cookie.expires` only has its
   * lifetime extended (a touch's cost), and `get` then reports the new `cookie.expires`. A session
   * destroyed earlier is never written again: the write is dropped and a `refused` event emitted. An id
   * that cannot be stored safely fails with an `InvalidSessionIdError`.
   */
  set<S extends SessionInput>(sid: string, session: S): Promise<void>;
  set<S extends SessionInput>(sid: string, session: S, cb: Callback<void>): void;
  set<S extends SessionInput>(sid: string, session: S, cb?: Callback<void>): Promise<void> | undefined {
    return dual<void>(
      (done) => this.calls.traced('set', done, (d) => this.parts.ops.write(sid, session, d)),
      cb,
      this.calls.thrown.set,
    );
  }

  /**
   * Extends a session's lifetime without rewriting its value. Never creates a session and never
   * shortens one. A no-op under `disableTouch` or `disableTTL`. `session` is the whole session, as
   * express-session passes it: when its cookie's maxAge grew past the stored one ("remember me"), no
   * touch may reach that far, so the session is written instead.
   */
  touch<S extends SessionInput>(sid: string, session: S): Promise<void>;
  touch<S extends SessionInput>(sid: string, session: S, cb: Callback<void>): void;
  touch<S extends SessionInput>(sid: string, session: S, cb?: Callback<void>): Promise<void> | undefined {
    return dual<void>(
      (done) => this.calls.traced('touch', done, (d) => this.parts.ops.extend(sid, session, d)),
      cb,
      this.calls.thrown.touch,
    );
  }

  /**
   * Destroys a session and leaves a tombstone so that it cannot come back: in every region, for at least
   * twice `tombstoneTtl`, as long as any expiry known for the session, and until `options.until` when
   * given (the expiry of the credential the session came from, such as a token's `exp`: a logout lasts as
   * long as what could bring the session back). An id made by `genid` in this region that this region
   * holds nothing of was never saved: it ends with a local tombstone of a few minutes and nothing
   * replicated (docs/replication.md rule 2). The callback is optional.
   */
  destroy(sid: string): Promise<void>;
  destroy(sid: string, cb: Callback<void> | undefined): void;
  destroy(sid: string, options: DestroyOptions): Promise<void>;
  destroy(sid: string, options: DestroyOptions, cb: Callback<void>): void;
  destroy(
    sid: string,
    optionsOrCb?: DestroyOptions | Callback<void>,
    cb?: Callback<void>,
  ): Promise<void> | undefined {
    const { callback, untilMs } = destroyArguments(optionsOrCb, cb);
    return dual<void>(
      (done) => this.calls.traced('destroy', done, (d) => this.parts.ops.remove(sid, d, untilMs)),
      callback,
      this.calls.thrown.destroy,
    );
  }

  /**
   * True when a logout's tombstone stands for `sid` in this region: the session was destroyed and no
   * write can bring it back. A missing session that was never destroyed (or whose tombstone outlived
   * its horizon) answers `false`. For gateways and token-derived sessions that must tell "logged out"
   * from "never seen".
   */
  isDestroyed(sid: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new ClosedError('the session store'));
    return this.parts.ops.hasTombstone(sid);
  }

  /**
   * Calls `callback` once when session `sid` ends by logout, logout everywhere or a "revoked before"
   * mark, in any region; also (reason `missed`) when the session had ended before the watch began or
   * while the subscriber was disconnected. Returns the function that releases the watch; aborting
   * `options.signal` releases it too. Tie it to the connection: `ws.on('close', store.watch(sid, () =>
   * ws.close(4001, 'logged out')))`. Watching holds one subscriber connection per store, shared by all
   * watches. An invalid id is never watched.
   */
  watch(sid: string, callback: WatchCallback, options?: WatchOptions): () => void {
    return this.parts.revocations.watch(sid, callback, options);
  }

  /**
   * Resolves once revocation events are being received (the subscriber is subscribed) and the watches
   * made so far have been checked; at once when nobody listens to `revoked` or watches.
   */
  revocationsReady(): Promise<void> {
    return this.parts.revocations.ready();
  }

  /**
   * The live sessions of user `userId` (per the `userId` option) held in this region, those created in
   * other regions included once their writes arrived. Ended and expired sessions are never listed (and
   * are pruned from the index as they are found).
   */
  sessionsOf(userId: string): Promise<UserSession[]> {
    if (this.closed) return Promise.reject(new ClosedError('the session store'));
    return this.parts.users.sessionsOf(userId);
  }

  /**
   * Ends every session of user `userId` in every region, but `options.except`: a replicated "revoked
   * before" mark makes every region refuse any session of the user created before the call, including
   * sessions saved in a partitioned region that arrive later. Resolves to how many sessions it ended here.
   * With outbox shards it works shard by shard, retrying transient failures; it rejects if any shard
   * could not be done (after the others were): call it again, which changes nothing already done.
   */
  logoutEverywhere(userId: string, options?: LogoutEverywhereOptions): Promise<number> {
    if (this.closed) return Promise.reject(new ClosedError('the session store'));
    return this.parts.users.logoutEverywhere(userId, options);
  }

  /** Every session in this region, each with its `id`. */
  all(): Promise<SessionData[]>;
  all(cb: Callback<SessionData[]>): void;
  all(cb?: Callback<SessionData[]>): Promise<SessionData[]> | undefined {
    return settle(this.runBulk('all', readAllSessions), cb, this.calls.thrown.all);
  }

  /** Ids of every session in this region. */
  ids(): Promise<string[]>;
  ids(cb: Callback<string[]>): void;
  ids(cb?: Callback<string[]>): Promise<string[]> | undefined {
    return settle(this.runBulk('ids', listSessionIds), cb, this.calls.thrown.ids);
  }

  /** Number of sessions in this region. */
  length(): Promise<number>;
  length(cb: Callback<number>): void;
  length(cb?: Callback<number>): Promise<number> | undefined {
    return settle(
      this.runBulk('length', listSessionIds).then((ids) => ids.length),
      cb,
      this.calls.thrown.length,
    );
  }

  /**
   * Deletes every session in this region's Redis, batch by batch as SCAN finds them. It is local: it is
   * not replicated and leaves tombstones in place. With `prefix: ''` it fails with a `ConfigError` unless
   * the store was made with `allowClearWithoutPrefix: true`.
   */
  clear(): Promise<void>;
  clear(cb: Callback<void>): void;
  clear(cb?: Callback<void>): Promise<void> | undefined {
    return settle(this.runBulk('clear', deleteAllSessions), cb, this.calls.thrown.clear);
  }

  /** express-session's `Store#regenerate`: destroys the old session, then makes a new one on `req`. */
  regenerate(req: RegenerateRequest, fn: (err?: Error | null) => void): void {
    regenerate(this, req, fn);
  }

  /**
   * express-session's `Store#load`: `get` plus `createSession`. Generic so that the store stays assignable
   * to express-session's typed `Store` (whose callback takes its `SessionData`).
   */
  load<T = unknown>(sid: string, fn: (err?: Error | null, session?: T) => void): void {
    load(this, sid, fn);
  }

  /**
   * express-session's `Store#createSession`: sets and returns `req.session`. Needs express-session installed.
   * `T` is express-session's `Session & SessionData` (generic for the same reason as `load`).
   */
  createSession<T = unknown>(req: object, session: object): T {
    return createSession<T>(this, req, session);
  }

  // ---------------------------------------------------------------------------------------------

  private runBulk<T>(op: StoreOperation, operation: (ctx: BulkContext) => Promise<T>): Promise<T> {
    return this.calls.tracedPromise(op, () => this.parts.bulk(operation));
  }

  /** Background failures: an `error` event when someone listens, else printed; never thrown. */
  private reportError(error: unknown): void {
    reportError(this, error);
  }
}
