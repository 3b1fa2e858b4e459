/**
 * Revocation events: every process of every region learns when a session ends by logout, logout
 * everywhere or a "revoked before" mark, so a server holding live connections (websockets) can close
 * them.
 *
 * The scripts that end a session (destroy.lua, apply.lua's destroy, the user scripts) PUBLISH it on the
 * region's revocation channel (`KeySpace.revoked`) in the same atomic call. Each store process holds one
 * subscriber connection (src/redis/pubsub.ts: a `duplicate()` of its client, or on a Redis Cluster a
 * connection to one node, moved to another when that node goes), and only while someone listens to `revoked` or
 * watches a session: no connection and no cost otherwise. Each ending is published once per region (a
 * script publishes only when the session was not ended already), so each process sees it once.
 *
 * A subscriber that was disconnected may have missed endings: once it is subscribed again it reports
 * the gap (`revocation-gap`, so the app re-checks its live connections with `isDestroyed` or `get`) and
 * re-checks every watched session itself.
 */
import { EventEmitter } from 'node:events';
import { CallbackError } from '../errors.js';
import { type PubSubConnection, pubsubConnection } from '../redis/pubsub.js';
import type { RedisClient } from '../types.js';
import { isValidSessionId } from '../validation/ids.js';

/** Why a session ended (the `reason` of a {@link RevokedSession}). */
export type RevocationReason = 'logout' | 'logout-everywhere' | 'revoked-before';

/** A session that ended: the store's `revoked` event, and what a watch callback receives. */
export interface RevokedSession {
  /** The session id. */
  readonly sid: string;
  /** The session's user, when the store's `userId` option is configured; else `undefined`. */
  readonly userId: string | undefined;
  /** The region where the session was ended. */
  readonly origin: string;
  /** How it ended. */
  readonly reason: RevocationReason;
}

/**
 * A watched session found ended by a re-check rather than by its event: the watch began after the
 * session ended, or the subscriber was away when it ended (origin and user unknown).
 */
export interface MissedRevocation {
  readonly sid: string;
  readonly userId: undefined;
  readonly origin: undefined;
  readonly reason: 'missed';
}

/** What a watch callback receives. */
export type WatchedEnding = RevokedSession | MissedRevocation;

/** Called once when a watched session ends. */
export type WatchCallback = (ending: WatchedEnding) => void;

/** Options of `store.watch`. */
export interface WatchOptions {
  /** Aborting it releases the watch (as calling the returned function does). */
  readonly signal?: AbortSignal;
}

/**
 * The subscriber was not subscribed from `since` to `until` (epoch ms, this host's clock): sessions that
 * ended then were not reported. The store's `revocation-gap` event; re-check live connections.
 */
export interface RevocationGap {
  readonly since: number;
  readonly until: number;
}

/** What {@link Revocations} needs from the store. */
export interface RevocationsContext {
  readonly client: RedisClient;
  /** The region's revocation channel. */
  readonly channel: string;
  /** What comes before a session id in a value key as Redis sees it (client keyPrefix and prefix). */
  readonly valuePrefix: string;
  /** Whether a logout's tombstone stands for `sid`. */
  readonly isDestroyed: (sid: string) => Promise<boolean>;
  readonly onRevoked: (event: RevokedSession) => void;
  readonly onGap: (gap: RevocationGap) => void;
  readonly onError: (error: unknown) => void;
  readonly now: () => number;
}

const REASONS: ReadonlySet<string> = new Set(['logout', 'logout-everywhere', 'revoked-before']);

/**
 * The message a script published, as a {@link RevokedSession}, or `undefined` when it is none of ours
 * (anyone may publish on a channel).
 */
export function parseRevocation(message: string, valuePrefix: string): RevokedSession | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { k, o, r, u } = parsed as Record<string, unknown>;
  if (typeof k !== 'string' || typeof o !== 'string' || typeof r !== 'string' || !REASONS.has(r)) {
    return undefined;
  }
  if (!k.startsWith(valuePrefix) || (u !== undefined && typeof u !== 'string')) return undefined;
  const sid = k.slice(valuePrefix.length);
  if (!isValidSessionId(sid)) return undefined;
  return { sid, userId: u, origin: o, reason: r as RevocationReason };
}

/** One store's subscriber: held while `revoked` has listeners or a session is watched. */
export class Revocations {
  private subscriber: PubSubConnection | undefined;
  private listening = false;
  private readonly watchers = new Map<string, Set<WatchCallback>>();
  /** Subscribed right now. */
  private subscribed = false;
  /** When the subscription was lost (undefined: not lost since the last subscribe). */
  private lostAt: number | undefined;
  /** Waiting for the subscription (and the checks it starts). */
  private waiters: (() => void)[] = [];
  /** Watches whose first check has not run yet (it runs once subscribed). */
  private unchecked = new Set<string>();
  private checking = 0;
  private closed = false;

  constructor(private readonly ctx: RevocationsContext) {}

  /** Whether the store's `revoked` event has listeners. */
  setListening(on: boolean): void {
    this.listening = on;
    this.follow();
  }

  /** Watches `sid` (see `GeoSessionStore.watch`). */
  watch(sid: string, callback: WatchCallback, options: WatchOptions = {}): () => void {
    if (typeof callback !== 'function')
      throw new TypeError('geosession: watch(sid, callback): callback must be a function');
    const { signal } = options;
    let released = false;
    const unwatch = (): void => {
      if (released) return;
      released = true;
      signal?.removeEventListener('abort', unwatch);
      const set = this.watchers.get(sid);
      set?.delete(entry);
      if (set?.size === 0) {
        this.watchers.delete(sid);
        this.unchecked.delete(sid);
      }
      this.follow();
    };
    // Fires once, then releases itself.
    const entry: WatchCallback = (ending) => {
      unwatch();
      try {
        callback(ending);
      } catch (error) {
        this.ctx.onError(new CallbackError('watch', error));
      }
    };
    if (signal?.aborted || this.closed || !isValidSessionId(sid)) return () => {};
    signal?.addEventListener('abort', unwatch, { once: true });
    let set = this.watchers.get(sid);
    if (!set) {
      set = new Set();
      this.watchers.set(sid, set);
    }
    set.add(entry);
    if (this.subscribed) this.check([sid]);
    else this.unchecked.add(sid);
    this.follow();
    return unwatch;
  }

  /** Sessions watched right now. */
  watchedCount(): number {
    return this.watchers.size;
  }

  /**
   * Resolves once the subscriber is subscribed and the watches made before have been checked (at once
   * when nobody listens or watches).
   */
  ready(): Promise<void> {
    if (!this.subscriber || (this.subscribed && this.checking === 0)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Drops the subscriber and every watch. */
  close(): void {
    this.closed = true;
    this.watchers.clear();
    this.unchecked.clear();
    this.stop();
  }

  /** Starts or stops the subscriber as listeners and watches come and go. */
  private follow(): void {
    const wanted = !this.closed && (this.listening || this.watchers.size > 0);
    if (wanted && !this.subscriber) this.start();
    else if (!wanted && this.subscriber) this.stop();
  }

  private start(): void {
    // Our own connection: re-subscribed here, on each `ready`, so that the gap is known to end. On a
    // Redis Cluster it listens on one node and moves to another when that node goes (src/redis/pubsub.ts).
    const subscriber = pubsubConnection(this.ctx.client, { lazyConnect: false });
    this.subscriber = subscriber;
    this.subscribed = false;
    this.lostAt = undefined;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.ctx.channel) this.deliver(message);
    });
    // Connection errors show as a `revocation-gap` once back; ioredis retries on its own.
    subscriber.on('error', () => {});
    subscriber.on('close', () => {
      if (this.subscriber !== subscriber || !this.subscribed) return;
      this.subscribed = false;
      this.lostAt = this.ctx.now();
    });
    subscriber.on('ready', () => {
      if (this.subscriber !== subscriber) return;
      subscriber.subscribe(this.ctx.channel).then(
        () => this.onSubscribed(subscriber),
        (error: unknown) => {
          if (this.subscriber === subscriber) this.ctx.onError(error);
        },
      );
    });
  }

  private stop(): void {
    const subscriber = this.subscriber;
    if (!subscriber) return;
    this.subscriber = undefined;
    this.subscribed = false;
    subscriber.disconnect();
    this.release();
  }

  private onSubscribed(subscriber: PubSubConnection): void {
    if (this.subscriber !== subscriber || this.subscribed) return;
    this.subscribed = true;
    let sids: string[];
    if (this.lostAt !== undefined) {
      const gap = { since: this.lostAt, until: this.ctx.now() };
      this.lostAt = undefined;
      this.unchecked.clear();
      sids = [...this.watchers.keys()];
      if (this.listening) this.ctx.onGap(gap);
    } else {
      sids = [...this.unchecked];
      this.unchecked.clear();
    }
    this.check(sids);
  }

  /** Fires the watches of those `sids` whose session a tombstone ended (an ending this process missed). */
  private check(sids: readonly string[]): void {
    if (sids.length === 0) {
      this.release();
      return;
    }
    this.checking++;
    Promise.all(
      sids.map((sid) =>
        this.ctx.isDestroyed(sid).then(
          (destroyed) => {
            if (destroyed) this.fire(sid, { sid, userId: undefined, origin: undefined, reason: 'missed' });
          },
          (error: unknown) => this.ctx.onError(error),
        ),
      ),
    ).finally(() => {
      this.checking--;
      this.release();
    });
  }

  private release(): void {
    if (this.subscriber && (!this.subscribed || this.checking > 0)) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private deliver(message: string): void {
    const event = parseRevocation(message, this.ctx.valuePrefix);
    if (!event) return;
    if (this.listening) this.ctx.onRevoked(event);
    this.fire(event.sid, event);
  }

  private fire(sid: string, ending: WatchedEnding): void {
    const set = this.watchers.get(sid);
    if (!set) return;
    for (const entry of [...set]) entry(ending);
  }
}

/**
 * Keeps `revocations` told whether `events` (the store, as an event emitter) has `revoked` listeners,
 * so that the subscriber runs only while someone listens (or watches).
 */
export function followRevokedListeners(events: EventEmitter, revocations: Revocations): void {
  EventEmitter.prototype.on.call(events, 'newListener', (event: string | symbol) => {
    if (event === 'revoked') revocations.setListening(true);
  });
  EventEmitter.prototype.on.call(events, 'removeListener', (event: string | symbol) => {
    if (event === 'revoked') revocations.setListening(events.listenerCount('revoked') > 0);
  });
}
