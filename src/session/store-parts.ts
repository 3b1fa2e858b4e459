/**
 * The parts a {@link GeoSessionStore} is made of, built from its resolved options: the key space, the
 * operation deadlines and local operations, read-through, the near cache, the per-user index, revocation
 * events and watches and, with a transport, replication and the status monitor; the memory-policy check
 * at start; and the order they close in. They see the store only through {@link StoreHost} (its events,
 * its error sink and whether it is closed): the store holds them, never the reverse.
 */

import type { Redis } from 'ioredis';
import { ClosedError, type ReadThroughError } from '../errors.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import { checkMemoryPolicy } from '../redis/memory-policy.js';
import { Replicator } from '../replication/replicator.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import type { BulkContext } from './bulk.js';
import { Deadlines } from './deadline.js';
import type { GeoSessionStoreEvents } from './events.js';
import { NearCache } from './near-cache.js';
import { SessionOperations } from './operations.js';
import { ReadThrough } from './read-through.js';
import { Revocations } from './revocations.js';
import { StatusMonitor } from './status.js';
import type { ResolvedOptions } from './store-options.js';
import { UserIndex } from './users.js';

/** Longest wait for `CONFIG GET maxmemory-policy` at start (the client may still be connecting), ms. */
const MEMORY_POLICY_TIMEOUT_MS = 5000;

/** What the parts need from the store façade. */
export interface StoreHost {
  /** True once the store was closed. */
  isClosed(): boolean;
  /** Background failures: an `error` event when someone listens, else printed; never thrown. */
  reportError(error: unknown): void;
  emit<E extends keyof GeoSessionStoreEvents>(event: E, ...args: GeoSessionStoreEvents[E]): boolean;
  listenerCount(event: keyof GeoSessionStoreEvents): number;
}

/** The parts of one store, made and started together (replication starts in the constructor). */
export class StoreParts {
  readonly keys: KeySpace;
  readonly deadlines: Deadlines;
  readonly ops: SessionOperations;
  readonly users: UserIndex;
  readonly replicator: Replicator | undefined;
  /** Lag windows, alerts and the status record; only with a transport. */
  readonly monitor: StatusMonitor | undefined;
  /** Revocation events and watches: a subscriber connection only while someone listens or watches. */
  readonly revocations: Revocations;
  /** Sessions served from process memory (the `nearCache` option), kept right by Redis key tracking. */
  readonly nearCache: NearCache | undefined;
  /** Replication's start; resolved at once without a transport. */
  readonly started: Promise<void>;
  /** The server's `maxmemory-policy` as read at start, `undefined` when it could not be read. */
  readonly policyChecked: Promise<string | undefined>;
  /** Replication has started (and so has read what it knows of this region's own data). */
  private replicationStarted = false;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly host: StoreHost,
  ) {
    const resolved = options;
    const client = resolved.client;
    this.keys = createKeySpace(resolved.prefix, keyPrefixOf(client), resolved.outboxShards);
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
            onError: (error: ReadThroughError) => host.reportError(error),
          });
    this.nearCache =
      resolved.nearCache &&
      new NearCache({
        client,
        keys: this.keys,
        clientKeyPrefix: keyPrefixOf(client),
        ...resolved.nearCache,
        json: resolved.serializer === JSON,
        onError: (error) => {
          if (!host.isClosed()) host.reportError(error);
        },
      });
    this.ops = new SessionOperations({
      options: resolved,
      keys: this.keys,
      deadlines: this.deadlines,
      outbox: resolved.transport ? this.keys.internal('outbox', resolved.region) : undefined,
      readThrough,
      nearCache: this.nearCache,
      isClosed: () => host.isClosed(),
      onRefused: (op, sid) => host.emit('refused', { op, sid, reason: 'destroyed' }),
      knowsItsOwnSessions: () => this.knowsItsOwnSessions(),
    });
    this.users = new UserIndex({
      options: resolved,
      keys: this.keys,
      replicates: resolved.transport !== undefined,
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
    this.revocations = new Revocations({
      client,
      channel: this.keys.revoked(resolved.region),
      valuePrefix: keyPrefixOf(client) + resolved.prefix,
      isDestroyed: (sid) => this.ops.hasTombstone(sid, 'watch'),
      onRevoked: (event) => host.emit('revoked', event),
      onGap: (gap) => host.emit('revocation-gap', gap),
      onError: (error) => host.reportError(error),
      now: () => Date.now(),
    });
    this.replicator = resolved.transport ? this.startReplication() : undefined;
    this.monitor = this.replicator && this.startStatus(this.replicator);
    this.started = this.replicator ? this.replicator.start() : Promise.resolve();
    // A start cut short by close() rejects with a ClosedError (ready() says so), reported to no one.
    this.started.then(
      () => {
        this.replicationStarted = true;
      },
      (error: unknown) => {
        if (!host.isClosed()) host.reportError(error);
      },
    );
    // Eviction would drop tombstones (a logout undone) and metadata: say so once, at start.
    this.policyChecked = checkMemoryPolicy(
      client,
      Math.max(resolved.operationTimeoutMs, MEMORY_POLICY_TIMEOUT_MS),
      (error) => {
        if (!host.isClosed()) host.reportError(error);
      },
    );
  }

  private startReplication(): Replicator {
    const { options: resolved, host } = this;
    return new Replicator({
      region: resolved.region,
      channel: resolved.prefix,
      client: resolved.client as Redis,
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
      onError: (error) => host.reportError(error),
      // A replicated "revoked before" mark ends the user's sessions here that began before it, before
      // the mark is acknowledged: if Redis fails meanwhile, the mark comes again and so does this. Once
      // per user and origin a batch (with outbox shards a logout everywhere sends one mark per shard).
      afterApply: async (events) => {
        const done = new Set<string>();
        for (const event of events) {
          if (event.op !== 'revoke' || done.has(`${event.origin} ${event.sid}`)) continue;
          done.add(`${event.origin} ${event.sid}`);
          await this.users.endRevoked(event.sid, event.origin);
        }
      },
      onApplied: (batch) => {
        this.monitor?.noteApplied(batch);
        if (host.listenerCount('replicated') > 0) host.emit('replicated', batch);
      },
      onRejected: (rejected) => {
        this.monitor?.noteRejected(rejected);
        if (host.listenerCount('rejected') > 0) host.emit('rejected', rejected);
      },
    });
  }

  private startStatus(replicator: Replicator): StatusMonitor {
    const { options: resolved, host } = this;
    const monitor = new StatusMonitor({
      region: resolved.region,
      client: resolved.client,
      keys: this.keys,
      replicator,
      transport: resolved.transport as NonNullable<ResolvedOptions['transport']>,
      rules: resolved.alerts,
      onAlert: resolved.onAlert,
      intervalMs: resolved.statusIntervalMs,
      record: resolved.statusRecord,
      operationTimeoutMs: resolved.operationTimeoutMs,
      onError: (error) => host.reportError(error),
    });
    monitor.start();
    return monitor;
  }

  /** See OperationsContext.knowsItsOwnSessions. */
  knowsItsOwnSessions(): boolean {
    if (!this.replicator) return true;
    return this.replicationStarted && this.replicator.stats().needsResync[this.options.region] === undefined;
  }

  /** Runs a bulk method (./bulk.ts) with what it needs: the client, keys, SCAN count and calls. */
  async bulk<T>(operation: (ctx: BulkContext) => Promise<T>): Promise<T> {
    if (this.host.isClosed()) throw new ClosedError('the session store');
    return operation({
      client: this.options.client,
      keys: this.keys,
      scanCount: this.options.scanCount,
      allowClearWithoutPrefix: this.options.allowClearWithoutPrefix,
      call: (op, work) => this.ops.call(op, work),
      parse: (sid, text) => this.ops.parse(sid, text),
    });
  }

  /**
   * Closes every part (see `GeoSessionStore.close`): revocations, the monitor and the near cache at once,
   * replication within `operationTimeoutMs` plus a second, then the deadlines fail what is still pending.
   */
  async close(): Promise<void> {
    this.revocations.close();
    this.monitor?.close();
    const nearClosed = this.nearCache?.close();
    await this.replicator?.close(this.options.operationTimeoutMs + 1000);
    this.deadlines.close(new ClosedError('the session store'));
    await nearClosed;
  }
}
