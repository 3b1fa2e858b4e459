import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { CallbackError, ClosedError, type ReadThroughError } from '../errors.js';
import { reportError } from '../failures/report.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import { checkMemoryPolicy } from '../redis/memory-policy.js';
import type { DeadLetter } from '../replication/dead-letters.js';
import { type ReplicationStats, Replicator } from '../replication/replicator.js';
import { type Callback, dual, type OnThrown, settle } from '../runtime/callback.js';
import {
  type StoreOperation,
  storeChannel,
  traceStoreOperation,
  traceStorePromise,
} from '../runtime/tracing.js';
import type { RedisClient, Serializer, SessionData, SessionInput } from '../types.js';
import { generateSessionId, regionOfSessionId } from '../validation/ids.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import { deleteAllSessions, listSessionIds, readAllSessions } from './bulk.js';
import { followClientState } from './client-state.js';
import { Deadlines } from './deadline.js';
import type { GeoSessionStoreEvents, RefusedWrite } from './events.js';
import { BaseStore, createSession, load, type RegenerateRequest, regenerate } from './express-compat.js';
import { NearCache, type NearCacheStats } from './near-cache.js';
import {
  type OperationObserver,
  observeOperation,
  observePromise,
  operationObservers,
} from './operation-observers.js';
import { SessionOperations } from './operations.js';
import { type GeoSessionStoreOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { ReadThrough } from './read-through.js';
import { Revocations, type WatchCallback, type WatchOptions } from './revocations.js';
import { StatusMonitor, singleRegionReport } from './status.js';
import type { StatusReport } from './status-report.js';
import { type LogoutEverywhereOptions, UserIndex, type UserSession } from './users.js';

/** Options of {@link GeoSessionStore.destroy}. */
export interface DestroyOptions {
  /**
   * Keep the session ended at least until then (epoch ms or a Date, by this host's clock): the expiry of
   * the credential it came from, such as an access token's `exp`.
   */
  readonly until?: number | Date;
}

type Listener<E extends keyof GeoSessionStoreEvents> = (...args: GeoSessionStoreEvents[E]) => void;

/** Longest wait for `CONFIG GET maxmemory-policy` at start (the client may still be connecting), ms. */
const MEMORY_POLICY_TIMEOUT_MS = 5000;

/**
 * A session Store for express-session and @fastify/session that keeps sessions in the region's own Redis
 * and, given a transport, replicates every change to the other regions.
 *
 * This class is the façade: the express/fastify store contract, callback and promise styles, and the
 * events ({@link GeoSessionStoreEvents}). The work lives in its own modules: local operations
 * (./operations.ts), read-through (./read-through.ts), bulk methods (./bulk.ts), the express-session
 * compatibility layer (./express-compat.ts) and replication (src/replication/replicator.ts).
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
  private readonly ops: SessionOperations;
  private readonly users: UserIndex;
  private readonly replicator: Replicator | undefined;
  /** Lag windows, alerts and the status record; only with a transport. */
  private readonly monitor: StatusMonitor | undefined;
  private readonly started: Promise<void>;
  private readonly policyChecked: Promise<string | undefined>;
  private readonly detachClient: () => void;
  /** Revocation events and watches: a subscriber connection only while someone listens or watches. */
  private readonly revocations: Revocations;
  /** Sessions served from process memory (the `nearCache` option), kept right by Redis key tracking. */
  private readonly nearCache: NearCache | undefined;
  /** Told how every operation ended (the metrics collector; see src/session/operation-observers.ts). */
  private readonly observers: OperationObserver[] = operationObservers(this);
  private isConnected: boolean;
  private closed = false;
  /** Replication has started (and so has read what it knows of this region's own data). */
  private replicationStarted = false;
  /** Where an exception thrown by a caller's callback goes, per method (made once, not per call). */
  private readonly thrown = Object.fromEntries(
    ['get', 'set', 'touch', 'destroy', 'all', 'ids', 'length', 'clear'].map((op) => [
      op,
      (error: unknown) => this.reportError(new CallbackError(op, error)),
    ]),
  ) as Record<'get' | 'set' | 'touch' | 'destroy' | 'all' | 'ids' | 'length' | 'clear', OnThrown>;

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
    this.keys = createKeySpace(resolved.prefix, keyPrefixOf(this.client), resolved.outboxShards);
    this.deadlines = new Deadlines(resolved.operationTimeoutMs);
    const readThrough =
      Object.keys(resolved.remotes).length === 0
        ? undefined
        : new ReadThrough({
            region: resolved.region,
            remotes: resolved.remotes,
            keys: this.keys,
            timeoutMs: resolved.readThroughTimeoutMs,
            negativeTtlMs: resolved.readThroughNegativeTtlMs,
            local: resolved.client,
            horizonMs: Math.round(resolved.tombstoneTtl * 1000),
            maxSkewMs: resolved.maxClockSkewMs,
            digestOf: resolved.transport ? (sid) => this.keys.digestOf(sid, resolved.region) : undefined,
            hasTombstone: (sid) => this.ops.hasTombstone(sid, 'get'),
            onError: (error: ReadThroughError) => this.reportError(error),
          });
    this.nearCache =
      resolved.nearCache &&
      new NearCache({
        client: this.client as Redis,
        keys: this.keys,
        clientKeyPrefix: keyPrefixOf(this.client),
        ...resolved.nearCache,
        json: resolved.serializer === JSON,
        onError: (error) => {
          if (!this.closed) this.reportError(error);
        },
      });
    this.ops = new SessionOperations({
      options: resolved,
      keys: this.keys,
      deadlines: this.deadlines,
      outbox: resolved.transport ? this.keys.internal('outbox', resolved.region) : undefined,
      readThrough,
      nearCache: this.nearCache,
      isClosed: () => this.closed,
      onRefused: (op, sid) => this.emitRefused(op, sid),
      knowsItsOwnSessions: () => this.knowsItsOwnSessions(),
    });
    this.users = new UserIndex({
      options: resolved,
      keys: this.keys,
      outbox: resolved.transport ? this.keys.internal('outbox', resolved.region) : undefined,
      userOf: (text) => {
        const session = resolved.serializer.parse(text);
        return session instanceof Promise ? undefined : resolved.userId?.(session);
      },
      destroy: (sid, why) =>
        new Promise<void>((resolve, reject) =>
          this.ops.remove(sid, (e) => (e ? reject(e) : resolve()), undefined, why),
        ),
      call: (operation, work) => this.ops.call(operation, work),
    });
    this.isConnected = this.client.status === 'ready';
    this.detachClient = followClientState(this.client, (connected) => {
      if (connected === this.isConnected) return;
      this.isConnected = connected;
      this.emit(connected ? 'connect' : 'disconnect');
    });
    this.revocations = this.startRevocations(resolved);
    this.replicator = resolved.transport ? this.startReplication(resolved) : undefined;
    this.monitor = this.replicator && this.startStatus(resolved, this.replicator);
    this.started = this.replicator ? this.replicator.start() : Promise.resolve();
    // A start cut short by close() rejects with a ClosedError (ready() says so), reported to no one.
    this.started.then(
      () => {
        this.replicationStarted = true;
      },
      (error: unknown) => {
        if (!this.closed) this.reportError(error);
      },
    );
    // Eviction would drop tombstones (a logout undone) and metadata: say so once, at start.
    this.policyChecked = checkMemoryPolicy(
      this.client,
      Math.max(resolved.operationTimeoutMs, MEMORY_POLICY_TIMEOUT_MS),
      (error) => {
        if (!this.closed) this.reportError(error);
      },
    );
  }

  private startReplication(resolved: ResolvedOptions): Replicator {
    return new Replicator({
      region: resolved.region,
      channel: resolved.prefix,
      client: this.client as Redis,
      keys: this.keys,
      transport: resolved.transport as NonNullable<ResolvedOptions['transport']>,
      sealer: resolved.sealer,
      acceptUnsealed: resolved.acceptUnsealed,
      sendUnsealed: resolved.sendUnsealed,
      horizonMs: Math.round(resolved.tombstoneTtl * 1000),
      maxSkewMs: resolved.maxClockSkewMs,
      operationTimeoutMs: resolved.operationTimeoutMs,
      deadLetterLimit: resolved.deadLetterLimit,
      relayInFlight: resolved.relayInFlight,
      outboxBound: {
        maxEntries: resolved.maxOutboxBacklog.entries,
        maxAgeMs: resolved.maxOutboxBacklog.ageMs,
        warnAt: resolved.maxOutboxBacklog.warnAt,
      },
      consumerIdleMs: resolved.consumerIdleMs,
      gapGraceMs: resolved.gapGraceMs,
      heartbeatMs: resolved.heartbeatMs,
      now: resolved.clock,
      userOf:
        resolved.userId &&
        ((data) => {
          // An async serializer cannot answer inside the apply: such sessions are not indexed on apply.
          const session = resolved.serializer.parse(data);
          return session instanceof Promise ? undefined : resolved.userId?.(session);
        }),
      onError: (error) => this.reportError(error),
      // A replicated "revoked before" mark ends the user's sessions here that began before it, before
      // the mark is acknowledged: if Redis fails meanwhile, the mark comes again and so does this.
      afterApply: async (events) => {
        for (const event of events) {
          if (event.op === 'revoke') await this.users.endRevoked(event.sid, event.origin);
        }
      },
      onApplied: (batch) => {
        this.monitor?.noteApplied(batch);
        if (this.listenerCount('replicated') > 0) this.emit('replicated', batch);
      },
      onRejected: (rejected) => {
        this.monitor?.noteRejected(rejected);
        if (this.listenerCount('rejected') > 0) this.emit('rejected', rejected);
      },
    });
  }

  private startRevocations(resolved: ResolvedOptions): Revocations {
    const revocations = new Revocations({
      client: this.client,
      channel: this.keys.revoked(resolved.region),
      valuePrefix: keyPrefixOf(this.client) + resolved.prefix,
      isDestroyed: (sid) => this.ops.hasTombstone(sid, 'watch'),
      onRevoked: (event) => this.emit('revoked', event),
      onGap: (gap) => this.emit('revocation-gap', gap),
      onError: (error) => this.reportError(error),
      now: () => Date.now(),
    });
    const follow = (event: string | symbol) => {
      if (event === 'revoked') revocations.setListening(this.listenerCount('revoked') > 0);
    };
    EventEmitter.prototype.on.call(this, 'newListener', (event: string | symbol) => {
      if (event === 'revoked') revocations.setListening(true);
    });
    EventEmitter.prototype.on.call(this, 'removeListener', follow);
    return revocations;
  }

  private startStatus(resolved: ResolvedOptions, replicator: Replicator): StatusMonitor {
    const monitor = new StatusMonitor({
      region: resolved.region,
      client: this.client,
      keys: this.keys,
      replicator,
      transport: resolved.transport as NonNullable<ResolvedOptions['transport']>,
      rules: resolved.alerts,
      onAlert: resolved.onAlert,
      intervalMs: resolved.statusIntervalMs,
      record: resolved.statusRecord,
      operationTimeoutMs: resolved.operationTimeoutMs,
      onError: (error) => this.reportError(error),
    });
    monitor.start();
    return monitor;
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
    return this.started;
  }

  /**
   * The Redis server's `maxmemory-policy` as read at start (`CONFIG GET`), or `undefined` when it could
   * not be read (CONFIG refused or renamed, Redis away). Anything but `noeviction` was reported as an
   * `ERR_GEOSESSION_MEMORY_POLICY` error: evicting keys can drop a tombstone and undo a logout.
   */
  memoryPolicy(): Promise<string | undefined> {
    return this.policyChecked;
  }

  /** Replication counters, lag, refusals, backlog and needed resyncs; `undefined` without a transport. */
  replicationStats(): ReplicationStats | undefined {
    return this.replicator?.stats();
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
    return this.monitor ? this.monitor.report() : singleRegionReport(this.region);
  }

  /** The newest entries of this region's dead-letter stream (envelopes refused here), newest first. */
  async deadLetters(count = 100): Promise<(DeadLetter & { at: string })[]> {
    if (!this.replicator) return [];
    return this.ops.call('deadLetters', this.replicator.deadLettersLatest(count));
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
    this.detachClient();
    this.revocations.close();
    this.monitor?.close();
    const nearClosed = this.nearCache?.close();
    await this.replicator?.close(this.options.operationTimeoutMs + 1000);
    this.deadlines.close(new ClosedError('the session store'));
    await nearClosed;
  }

  // ---------------------------------------------------------------------------------------------
  // The store contract

  /** Reads a session; `null` when there is none. */
  get(sid: string): Promise<SessionData | null>;
  get(sid: string, cb: Callback<SessionData | null>): void;
  get(sid: string, cb?: Callback<SessionData | null>): Promise<SessionData | null> | undefined {
    return dual<SessionData | null>(
      (done) => this.traced('get', done, (d) => this.ops.read(sid, d)),
      cb,
      this.thrown.get,
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
      (done) => this.traced('set', done, (d) => this.ops.write(sid, session, d)),
      cb,
      this.thrown.set,
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
      (done) => this.traced('touch', done, (d) => this.ops.extend(sid, session, d)),
      cb,
      this.thrown.touch,
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
    const callback = typeof optionsOrCb === 'function' ? optionsOrCb : cb;
    const until = typeof optionsOrCb === 'object' && optionsOrCb !== null ? optionsOrCb.until : undefined;
    const untilMs = until === undefined ? undefined : until instanceof Date ? until.getTime() : Number(until);
    return dual<void>(
      (done) => this.traced('destroy', done, (d) => this.ops.remove(sid, d, untilMs)),
      callback,
      this.thrown.destroy,
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
    return this.ops.hasTombstone(sid);
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
    return this.revocations.watch(sid, callback, options);
  }

  /**
   * Resolves once revocation events are being received (the subscriber is subscribed) and the watches
   * made so far have been checked; at once when nobody listens to `revoked` or watches.
   */
  revocationsReady(): Promise<void> {
    return this.revocations.ready();
  }

  /**
   * The live sessions of user `userId` (per the `userId` option) held in this region, those created in
   * other regions included once their writes arrived. Ended and expired sessions are never listed (and
   * are pruned from the index as they are found).
   */
  sessionsOf(userId: string): Promise<UserSession[]> {
    if (this.closed) return Promise.reject(new ClosedError('the session store'));
    return this.users.sessionsOf(userId);
  }

  /**
   * Ends every session of user `userId` in every region, but `options.except`: a replicated "revoked
   * before" mark makes every region refuse any session of the user created before the call, including
   * sessions saved in a partitioned region that arrive later. Resolves to how many sessions it ended here.
   */
  logoutEverywhere(userId: string, options?: LogoutEverywhereOptions): Promise<number> {
    if (this.closed) return Promise.reject(new ClosedError('the session store'));
    return this.users.logoutEverywhere(userId, options);
  }

  /** Every session in this region, each with its `id`. */
  all(): Promise<SessionData[]>;
  all(cb: Callback<SessionData[]>): void;
  all(cb?: Callback<SessionData[]>): Promise<SessionData[]> | undefined {
    return settle(this.runBulk('all', readAllSessions), cb, this.thrown.all);
  }

  /** Ids of every session in this region. */
  ids(): Promise<string[]>;
  ids(cb: Callback<string[]>): void;
  ids(cb?: Callback<string[]>): Promise<string[]> | undefined {
    return settle(this.runBulk('ids', listSessionIds), cb, this.thrown.ids);
  }

  /** Number of sessions in this region. */
  length(): Promise<number>;
  length(cb: Callback<number>): void;
  length(cb?: Callback<number>): Promise<number> | undefined {
    return settle(
      this.runBulk('length', listSessionIds).then((ids) => ids.length),
      cb,
      this.thrown.length,
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
    return settle(this.runBulk('clear', deleteAllSessions), cb, this.thrown.clear);
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

  /** Runs a callback-style operation, traced on `geosession:store` when someone subscribes. */
  private traced<T>(op: StoreOperation, done: Callback<T>, run: (done: Callback<T>) => void): void {
    const observed = this.observers.length > 0 ? observeOperation(this.observers, op, done) : done;
    if (!storeChannel.hasSubscribers) {
      run(observed);
      return;
    }
    traceStoreOperation({ op, region: this.region, keyspace: this.prefix }, run, observed);
  }

  private runBulk<T>(
    op: StoreOperation,
    operation: (ctx: import('./bulk.js').BulkContext) => Promise<T>,
  ): Promise<T> {
    const work = storeChannel.hasSubscribers
      ? () =>
          traceStorePromise({ op, region: this.region, keyspace: this.prefix }, () => this.bulk(operation))
      : () => this.bulk(operation);
    return this.observers.length > 0 ? observePromise(this.observers, op, work) : work();
  }

  private async bulk<T>(operation: (ctx: import('./bulk.js').BulkContext) => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError('the session store');
    return operation({
      client: this.client,
      keys: this.keys,
      scanCount: this.scanCount,
      allowClearWithoutPrefix: this.options.allowClearWithoutPrefix,
      call: (op, work) => this.ops.call(op, work),
      parse: (sid, text) => this.ops.parse(sid, text),
    });
  }

  /** Background failures: an `error` event when someone listens, else printed; never thrown. */
  private reportError(error: unknown): void {
    reportError(this, error);
  }

  /** See OperationsContext.knowsItsOwnSessions. */
  private knowsItsOwnSessions(): boolean {
    if (!this.replicator) return true;
    return this.replicationStarted && this.replicator.stats().needsResync[this.region] === undefined;
  }

  private emitRefused(op: RefusedWrite['op'], sid: string): void {
    this.emit('refused', { op, sid, reason: 'destroyed' });
  }
}
