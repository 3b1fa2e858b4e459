/**
 * Redis server-assisted client-side caching in broadcast mode, on two connections of its own:
 *
 * - a subscriber, RESP2 (ioredis 6 may speak RESP3, and its RESP3 path drops invalidation pushes),
 *   subscribed to `__redis__:invalidate`;
 * - a tracker, on which `CLIENT TRACKING ON REDIRECT <subscriber id> BCAST PREFIX …` is turned on.
 *
 * With BCAST, Redis sends the name of every key written under a tracked prefix, by any client, to the
 * subscriber, before it replies to the write. Tracking lives on the tracker's connection and points at
 * the subscriber's client id: a reconnect of either loses it, so this module reports `disarmed` on every
 * close of either connection and arms again (a new CLIENT ID, SUBSCRIBE, TRACKING) once both are ready.
 */
import type { Redis } from 'ioredis';

/** Redis's channel for invalidation messages redirected to a RESP2 connection. */
export const INVALIDATE_CHANNEL = '__redis__:invalidate';

/**
 * Why tracking stopped. A redirect breaks only when the subscriber's connection goes, which its `close`
 * reports (Redis tells a broken redirect, `tracking-redir-broken`, to RESP3 trackers only; a message
 * naming it on the channel is taken as one too). `demoted`: with `roleCheckMs`, the node is no longer a
 * master (a Redis Cluster failover): writes now go elsewhere.
 */
export type DisarmReason = 'disconnected' | 'closed' | 'demoted';

/** What {@link KeyTracking} reports. */
export interface KeyTrackingListener {
  /** Tracking is on: every write under the prefixes from now on is reported by `invalidated`. */
  armed(): void;
  /** Tracking may miss writes from now on (a connection closed, the redirect broke, close()). */
  disarmed(reason: DisarmReason): void;
  /** Keys written (raw Redis names, the client's keyPrefix included); `null`: the whole database (FLUSHALL/FLUSHDB). */
  invalidated(keys: readonly string[] | null): void;
  /** A failure while arming (e.g. a Redis before 6.0); arming is tried again on the next reconnect. */
  error(error: unknown): void;
}

/** Options of {@link KeyTracking}. */
export interface KeyTrackingOptions {
  /** The store's client: duplicated (its options: host, port, password, TLS…) for both connections. */
  readonly client: Redis;
  /** Raw key prefixes to track (no one a prefix of another). */
  readonly prefixes: readonly string[];
  /** Connection name prefix (CLIENT SETNAME), for operators and tests. */
  readonly name: string;
  readonly listener: KeyTrackingListener;
  /** Options given to both duplicates over the client's own (a Cluster node's: host, port, retryStrategy). */
  readonly connection?: Record<string, unknown>;
  /**
   * While armed, ask the tracker `ROLE` this often (ms) and disarm (`demoted`) when the node is not a
   * master; arming waits until it is one again. Off when absent (a single-node client).
   */
  readonly roleCheckMs?: number;
}

/** Thrown inside an arming of a node that is not a master (with `roleCheckMs`): retried, not reported. */
const NOT_MASTER = Symbol('not a master');

/** The Redis redirect-broken notice (RESP3 push to the tracker; taken as one on the channel too). */
const REDIRECT_BROKEN = 'tracking-redir-broken';

/** Drops from `prefixes` any prefix that another one of them starts (Redis refuses overlapping prefixes). */
export function disjointPrefixes(prefixes: readonly string[]): string[] {
  const unique = [...new Set(prefixes)].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const prefix of unique) if (!kept.some((k) => prefix.startsWith(k))) kept.push(prefix);
  return kept;
}

/** One tracking setup: a subscriber and a tracker connection. */
export class KeyTracking {
  private readonly subscriber: Redis;
  private readonly tracker: Redis;
  private closed = false;
  private isArmed = false;
  /** Bumped on every disarm and arming: an arming that started before it is void. */
  private attempt = 0;
  /** The arming in progress (armings run one after another). */
  private arming: Promise<void> = Promise.resolve();
  /** Armings failed in a row. */
  private failures = 0;
  /** The `roleCheckMs` timer. */
  private roleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KeyTrackingOptions) {
    // RESP2 (`protocol: 2`, an ioredis 6 option; ioredis 5 speaks RESP2 and ignores it). No key prefix:
    // the prefixes given are raw names. Subscriptions are ours to renew (a new client id each time).
    const base = {
      keyPrefix: '',
      lazyConnect: true,
      autoResubscribe: false,
      enableAutoPipelining: false,
      protocol: 2,
      ...options.connection,
    } as Record<string, unknown>;
    this.subscriber = options.client.duplicate({ ...base, connectionName: `${options.name}-sub` });
    this.tracker = options.client.duplicate({ ...base, connectionName: `${options.name}-track` });
    // `messageBuffer`: the payload is an array of key names (or nil), which `message` would flatten.
    this.subscriber.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.toString() === INVALIDATE_CHANNEL) this.message(message);
    });
    for (const connection of [this.subscriber, this.tracker]) {
      // Connection failures are the store client's to report; tracking only stops serving.
      connection.on('error', () => {});
      connection.on('close', () => this.disarm('disconnected'));
      connection.on('ready', () => this.arm());
    }
    if (options.roleCheckMs !== undefined) {
      this.roleTimer = setInterval(() => this.checkRole(), options.roleCheckMs);
      this.roleTimer.unref();
    }
  }

  /** True while tracking is on for both connections. */
  get armed(): boolean {
    return this.isArmed;
  }

  /** Connects both connections; arming follows when both are ready. */
  start(): void {
    for (const connection of [this.subscriber, this.tracker]) {
      if (connection.status === 'wait') connection.connect().catch(() => {});
    }
  }

  /** Closes both connections (bounded: QUIT, else a disconnect within a second). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.disarm('closed');
    this.closed = true;
    clearInterval(this.roleTimer);
    await Promise.all(
      [this.subscriber, this.tracker].map(async (connection) => {
        try {
          await Promise.race([connection.quit(), new Promise((r) => setTimeout(r, 1000).unref())]);
        } catch {
          // Already gone.
        }
        connection.disconnect();
      }),
    );
  }

  private disarm(reason: DisarmReason): void {
    if (this.closed) return;
    this.attempt++;
    this.isArmed = false;
    // Told even when not armed yet: anything learnt before is void too.
    this.options.listener.disarmed(reason);
  }

  private arm(): void {
    if (this.closed || this.subscriber.status !== 'ready' || this.tracker.status !== 'ready') return;
    const attempt = ++this.attempt;
    this.isArmed = false;
    // One arming at a time (commands of two would interleave on the subscriber); a later one voids this.
    this.arming = this.arming.then(() => this.armIfCurrent(attempt));
  }

  private async armIfCurrent(attempt: number): Promise<void> {
    if (attempt !== this.attempt || this.closed) return;
    try {
      if (!(await this.armOnce(attempt)) || attempt !== this.attempt || this.closed) return;
      this.failures = 0;
      this.isArmed = true;
      this.options.listener.armed();
    } catch (error) {
      if (attempt !== this.attempt || this.closed) return;
      if (error === NOT_MASTER) {
        // A replica (a failover under way, or a stale view of the cluster): asked again shortly.
        setTimeout(() => this.arm(), this.options.roleCheckMs).unref();
        return;
      }
      // Reported once per streak of failures (a Redis before 6.0 fails every time); tried again later.
      if (this.failures++ === 0) this.options.listener.error(error);
      const retry = setTimeout(() => this.arm(), Math.min(30_000, 1000 * 2 ** Math.min(this.failures, 5)));
      retry.unref();
    }
  }

  private async armOnce(attempt: number): Promise<boolean> {
    const { subscriber, tracker } = this;
    if (this.options.roleCheckMs !== undefined && !(await this.isMaster())) throw NOT_MASTER;
    // A subscriber from an earlier arming is unsubscribed first (RESP2: CLIENT ID needs normal mode).
    if ((subscriber as unknown as { condition?: { subscriber?: unknown } }).condition?.subscriber) {
      await subscriber.unsubscribe();
    }
    const id = (await subscriber.client('ID')) as number;
    await subscriber.subscribe(INVALIDATE_CHANNEL);
    if (attempt !== this.attempt) return false;
    const prefixes = disjointPrefixes(this.options.prefixes).flatMap((p) => ['PREFIX', p]);
    // OFF first: tracking options cannot be changed while it is on.
    await tracker.client('TRACKING', 'OFF');
    await tracker.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', ...prefixes);
    return true;
  }

  /** The tracker's `ROLE` says master. */
  private async isMaster(): Promise<boolean> {
    const role = (await this.tracker.call('ROLE')) as unknown[];
    return String(role[0]) === 'master';
  }

  /** `roleCheckMs`: a node no longer a master disarms; arming waits until it is one again. */
  private checkRole(): void {
    if (!this.isArmed || this.closed) return;
    const attempt = this.attempt;
    this.isMaster().then(
      (master) => {
        if (master || attempt !== this.attempt || this.closed) return;
        this.disarm('demoted');
        setTimeout(() => this.arm(), this.options.roleCheckMs).unref();
      },
      () => {}, // a connection failure: its `close` disarms
    );
  }

  private message(message: unknown): void {
    if (this.closed) return;
    if (isRedirectBroken(message)) {
      this.disarm('disconnected');
      setImmediate(() => this.arm());
      return;
    }
    if (message === null || message === undefined) {
      this.options.listener.invalidated(null);
      return;
    }
    if (Array.isArray(message)) {
      this.options.listener.invalidated(message.map((key) => String(key)));
      return;
    }
    if (typeof message === 'string' || Buffer.isBuffer(message)) {
      this.options.listener.invalidated([message.toString()]);
      return;
    }
    // Anything else: the safe answer is to forget everything.
    this.options.listener.invalidated(null);
  }
}

/** A `tracking-redir-broken` notice, as a string or the first element of a list. */
function isRedirectBroken(message: unknown): boolean {
  const first = Array.isArray(message) ? message[0] : message;
  return (typeof first === 'string' || Buffer.isBuffer(first)) && first.toString() === REDIRECT_BROKEN;
}
