import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { TransportError } from '../errors.js';
import { isBusyGroup, isMissingStream, isNoGroup } from '../failures/reply-errors.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { Lifecycle, type LifecycleState } from '../runtime/lifecycle.js';
import { settledWithin, withTimeout } from '../runtime/timeout.js';
import type { StreamEntry } from '../wire/stream-entry.js';

/** Options of {@link StreamGroupReader}. */
export interface StreamGroupReaderOptions {
  /**
   * Client of the Redis holding the stream. Blocking reads run on a duplicate of it, never on it;
   * acknowledgements, group creation and the non-blocking reads of the last drain on stop use it.
   */
  client: Redis;
  /** Stream key. */
  key: string;
  /** Consumer group. Created at id 0 if missing, so nothing written before it existed is skipped. */
  group: string;
  /** Prefix of this reader's consumer name; a host, pid and random suffix are added. */
  consumerPrefix: string;
  /** Largest batch per read. */
  batchSize: number;
  /** BLOCK of each read, in ms. Finite, so a read always returns. */
  blockMs: number;
  /** Entries pending this long in a dead consumer are claimed (XAUTOCLAIM). */
  claimIdleMs: number;
  /** A read that has not returned `blockMs + watchdogMs` after it was sent is abandoned and the connection rebuilt. */
  watchdogMs: number;
  /**
   * Batches handled at once: 1 for an applier (the next read is still sent while a batch is handled);
   * more for a relay, which keeps publishing while earlier batches wait for their confirms.
   * @default 1
   */
  maxInFlight?: number;
  /** Handles a batch; resolving acknowledges it (XACK), rejecting leaves it pending for a retry. */
  onBatch(entries: StreamEntry[]): Promise<void>;
  /** Reports a failure that the reader recovers from by itself. */
  onError(error: unknown): void;
  /** Reports when reads start working again after a failure, and when they fail. */
  onHealth?(healthy: boolean): void;
  /**
   * The group (or the whole stream) vanished under a running reader: the Redis holding it restarted
   * empty, was flushed or replaced. The reader recreates the group at id 0 and goes on.
   */
  onGroupLost?(): void;
}

/**
 * The idle time an orderly stop gives the entries it leaves pending (a year): past any reader's
 * `claimIdleMs`, so the next reader claims them at once; below the Redis clock, which XCLAIM requires.
 */
export const HANDOVER_IDLE_MS = 365 * 86_400_000;

/**
 * Reads a Redis stream through a consumer group, at least once: a batch is acknowledged only after its
 * handler resolved; a failed batch is retried from this consumer's pending list with backoff, in the
 * order it was read; entries left pending by a crashed consumer are claimed after `claimIdleMs`, those
 * an orderly stop left pending are claimed by the next reader at once (the stop hands them over).
 * Blocking reads use a finite BLOCK on a dedicated connection and a watchdog that rebuilds the
 * connection when a read hangs (blocking commands can stall after a reconnect, ioredis#1285). A group
 * that vanished (NOGROUP: the Redis restarted empty) is recreated by itself.
 *
 * Between regions a round trip costs tens of milliseconds, so the reader never waits for one it does
 * not need: the next read is sent as soon as a batch arrives, while that batch is handled, and the
 * acknowledgement goes out on the stream's own client without being waited for. With `maxInFlight`
 * above 1 several batches are handled at once (a relay waiting for broker confirms).
 */
export class StreamGroupReader {
  private readonly options: StreamGroupReaderOptions;
  private readonly maxInFlight: number;
  private readonly consumer: string;
  /** The blocking reads' own connection, opened by start(). */
  private conn!: Redis;
  private readonly life = new Lifecycle('the stream reader');
  private running: Promise<void> | undefined;
  private retryOwnPending = true;
  private lastClaim = 0;
  private healthy = true;
  /** The last batch's handler failed: on stop, what is pending is left for a later consumer. */
  private failing = false;
  /** Why the last batch failed. */
  private failure: unknown;
  private readonly acks = new Set<Promise<boolean>>();
  private readonly inFlight = new Set<Promise<void>>();
  /** The last batch handed over: each batch acknowledges only after the one before it did. */
  private tail: Promise<void> = Promise.resolve();
  /** A batch of the current window failed: the batches after it are not acknowledged either. */
  private windowFailed = false;

  constructor(options: StreamGroupReaderOptions) {
    this.options = options;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.consumer = `${options.consumerPrefix}:${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  }

  /** This reader's consumer name in the group. */
  get consumerName(): string {
    return this.consumer;
  }

  /**
   * `starting` until {@link StreamGroupReader.start}, `running`, then `closing` and `closed` once
   * {@link StreamGroupReader.stop} was called and has finished.
   */
  get state(): LifecycleState {
    return this.life.state;
  }

  private get stopped(): boolean {
    return this.life.stopping;
  }

  /** Opens the reads' connection and starts the read loop; does nothing once stop() was called. */
  start(): void {
    if (this.running || !this.life.markRunning()) return;
    this.conn = this.openConnection();
    this.running = this.loop();
  }

  /**
   * Stops reading: a read in flight is cut at once (its connection serves reads only), batches being
   * handled are let finish, and entries this consumer was given but did not handle yet are handled too.
   * Then what is still pending under this consumer is handed over (see `handOver`): the group's next
   * reader takes it up at once, not after `claimIdleMs`. Resolves within `limitMs` plus `blockMs`
   * whatever the servers do; what is not handled by then stays pending and is delivered again (to this
   * group's next consumer). A reader stopped before it started opens nothing.
   */
  async stop(limitMs = this.options.blockMs + this.options.watchdogMs): Promise<void> {
    if (!this.life.beginClose()) {
      if (this.running) await settledWithin(this.running, limitMs);
      return;
    }
    this.conn?.disconnect(false);
    if (this.running) {
      await settledWithin(this.running, limitMs);
      await this.handOver();
    }
    this.life.markClosed();
  }

  /**
   * The handover of an orderly stop: entries still pending under this consumer (a batch that failed, or
   * is still being handled) are marked idle for {@link HANDOVER_IDLE_MS} (XCLAIM to itself with IDLE),
   * so the next reader of the group claims them at once with its first XAUTOCLAIM (a reader claims
   * when it starts) instead of after `claimIdleMs`, and so does any other running reader of the group
   * at its next claim. Bounded by `blockMs` and skipped when the client is not connected: they are then
   * claimed after `claimIdleMs` as a dead consumer's. Never throws; a failure is reported.
   */
  private async handOver(): Promise<void> {
    const { client, key, group, blockMs } = this.options;
    if (client.status !== 'ready') return;
    const xclaim = client.xclaim as unknown as (...a: (string | number)[]) => Promise<unknown>;
    const work = (async () => {
      // Pages of 1000, each after the last id of the one before (exclusive: they stay this consumer's).
      let from = '-';
      for (let round = 0; round < 10; round++) {
        const pending = (await client.xpending(key, group, from, '+', 1000, this.consumer)) as [
          string,
          ...unknown[],
        ][];
        const ids = pending.map((row) => row[0]);
        if (ids.length === 0) return;
        await xclaim.call(client, key, group, this.consumer, 0, ...ids, 'IDLE', HANDOVER_IDLE_MS, 'JUSTID');
        if (ids.length < 1000) return;
        from = `(${ids[ids.length - 1]}`;
      }
    })();
    work.catch((error: unknown) => {
      // The stream or its group is gone: nothing is pending any more.
      if (isMissingStream(error)) return;
      this.report(
        new TransportError(
          `handing over what ${this.consumer} left pending on ${key} failed: it is claimed after claimIdleMs`,
          { cause: error },
        ),
      );
    });
    await settledWithin(work, blockMs);
  }

  private openConnection(): Redis {
    // A blocking read must not retry forever through the offline queue, nor share the user's connection.
    // Nor may it be sent again silently after a reconnect: Redis may have handed entries to the lost
    // read (they are pending under this consumer), and only a failed read makes the loop read its
    // pending list first; a resent `>` read would leave them there until claimIdleMs. Nor be
    // auto-pipelined (a duplicate inherits `enableAutoPipelining`): each read goes out on its own,
    // at once, and the watchdog's disconnect can only ever cut that one read.
    const settings = {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: false,
    };
    const client = this.options.client as Redis & { isCluster?: boolean };
    // On a Redis Cluster the reads get a Cluster of their own (its duplicate takes its startup nodes
    // first): one stream is one slot, so its reads go to that slot's master on a connection no other
    // command and no other reader uses, and the Cluster follows MOVED and failovers by itself (a slot's
    // new master is found by the slot map it refreshes on a redirection or a lost connection).
    const conn = (
      client.isCluster
        ? (client.duplicate as unknown as (nodes: unknown[], options: object) => Redis)([], {
            enableAutoPipelining: false,
            redisOptions: { ...(client.options as { redisOptions?: object }).redisOptions, ...settings },
          })
        : client.duplicate({ ...settings, enableAutoPipelining: false })
    ) as Redis;
    conn.on('error', () => {
      // Connection errors surface through the commands that fail; ioredis reconnects by itself.
    });
    return conn;
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    this.options.onHealth?.(healthy);
  }

  /** Reports a failure; a listener that throws must not turn it into an unhandled rejection. */
  private report(error: unknown): void {
    if (this.life.state === 'closed') return;
    try {
      this.options.onError(error);
    } catch {
      // The reader goes on regardless.
    }
  }

  private async loop(): Promise<void> {
    const backoff = new Backoff(50, 2000);
    let groupReady = false;
    // A read sent while the previous batch was being handled.
    let ahead: Promise<StreamEntry[]> | undefined;
    while (!this.stopped) {
      try {
        if (!groupReady) {
          await this.ensureGroup();
          groupReady = true;
        }
        const read = ahead ?? this.nextEntries();
        ahead = undefined;
        const entries = await read;
        this.setHealthy(true);
        // A batch that keeps failing is read again and again from the pending list: only leaving that
        // list (everything handled) ends the backoff.
        if (!this.retryOwnPending) backoff.reset();
        if (entries.length === 0) {
          // A batch still in flight may have failed meanwhile (a relay keeps several): retry it now, not
          // only when the next entries arrive.
          if (this.windowFailed) {
            await Promise.all(this.inFlight);
            throw this.takeFailure();
          }
          continue;
        }
        const delivery = this.deliver(entries);
        this.inFlight.add(delivery);
        void delivery.then(() => this.inFlight.delete(delivery));
        // Never while own pending entries are being retried: that read would return this very batch.
        if (!this.retryOwnPending && !this.stopped) {
          ahead = this.nextEntries();
          ahead.catch(() => {}); // settled below, or dropped after a failure (its entries stay pending)
        }
        const limit = this.retryOwnPending ? 1 : this.maxInFlight;
        while (this.inFlight.size >= limit) await Promise.race(this.inFlight);
        if (this.windowFailed) {
          await Promise.all(this.inFlight);
          throw this.takeFailure();
        }
      } catch (error) {
        // Whatever failed, a read may have been answered without the reply reaching us: its entries
        // are pending under this consumer, so the pending list is read first from now on.
        this.retryOwnPending = true;
        await ahead?.catch(() => {});
        ahead = undefined;
        await Promise.all(this.inFlight);
        this.windowFailed = false;
        this.failure = undefined;
        if (this.stopped) break;
        if (isNoGroup(error)) {
          groupReady = false;
          try {
            this.options.onGroupLost?.();
          } catch {
            // A listener's failure changes nothing here.
          }
        } else {
          this.setHealthy(false);
        }
        this.report(error);
        await sleep(backoff.next(), this.life.signal);
      }
    }
    await ahead?.catch(() => {});
    await Promise.all(this.inFlight);
    await this.handleOwnPending();
  }

  /** Why the last batch failed, once (the loop throws it to retry with backoff). */
  private takeFailure(): unknown {
    const failure = this.failure ?? new Error('a batch failed');
    this.failure = undefined;
    return failure;
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.options.client.xgroup('CREATE', this.options.key, this.options.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!isBusyGroup(error)) throw error;
    }
  }

  /** Own pending entries first (after a failure), then entries claimed from dead consumers, then new ones. */
  private async nextEntries(): Promise<StreamEntry[]> {
    const { key, batchSize } = this.options;
    if (this.retryOwnPending) {
      // Acknowledgements travel on another connection: let them land, or this read returns their entries.
      await Promise.allSettled([...this.acks]);
      const pending = await this.readGroup(['COUNT', batchSize, 'STREAMS', key, '0']);
      if (pending.length > 0) return pending;
      this.retryOwnPending = false;
    }
    if (Date.now() - this.lastClaim >= this.options.claimIdleMs / 2) {
      this.lastClaim = Date.now();
      const claimed = await this.claim();
      if (claimed.length > 0) {
        // There may be more (a handover larger than a batch): claim again on the next read.
        this.lastClaim = 0;
        return claimed;
      }
    }
    if (this.stopped) return [];
    return this.readGroup(['COUNT', batchSize, 'BLOCK', this.options.blockMs, 'STREAMS', key, '>']);
  }

  private async claim(): Promise<StreamEntry[]> {
    const { key, group, batchSize, claimIdleMs } = this.options;
    const conn = this.conn;
    const claim = conn.xautoclaim(key, group, this.consumer, claimIdleMs, '0-0', 'COUNT', batchSize);
    const reply = (await this.watched(claim, conn, 'XAUTOCLAIM')) as [string, StreamEntry[], string[]?];
    return reply[1] ?? [];
  }

  /** One XREADGROUP as this consumer, on the dedicated connection unless `conn` says otherwise. Watched. */
  private async readGroup(args: (string | number)[], conn: Redis = this.conn): Promise<StreamEntry[]> {
    const xreadgroup = conn.xreadgroup as unknown as (...a: (string | number)[]) => Promise<unknown>;
    const read = xreadgroup.call(conn, 'GROUP', this.options.group, this.consumer, ...args) as Promise<
      [string, StreamEntry[]][] | null
    >;
    const reply = await this.watched(read, conn, 'XREADGROUP');
    return reply?.[0]?.[1] ?? [];
  }

  /**
   * A command that has not answered `blockMs + watchdogMs` after it was sent rejects, and when it was on
   * the dedicated connection that connection is rebuilt: a link can go silent without closing, and a
   * command lost with its connection may never settle (ioredis drops what it does not send again).
   */
  private watched<T>(command: Promise<T>, conn: Redis, name: string): Promise<T> {
    const { blockMs, watchdogMs } = this.options;
    return new Promise<T>((resolve, reject) => {
      const watchdog = setTimeout(() => {
        // It should have answered by now: assume the connection is wedged and rebuild it.
        const rebuild = conn === this.conn && !this.stopped;
        if (rebuild) {
          this.conn = this.openConnection();
          conn.disconnect(false);
        }
        const what = `${name} on ${this.options.key} hung for ${blockMs + watchdogMs} ms`;
        reject(new Error(rebuild ? `${what}; reconnected` : what));
      }, blockMs + watchdogMs);
      command.then(
        (reply) => {
          clearTimeout(watchdog);
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(watchdog);
          reject(error);
        },
      );
    });
  }

  /**
   * Hands a batch to the handler and, once it resolved and every batch read before it was acknowledged,
   * acknowledges it (without waiting, unless retrying). Acknowledgements thus go out in read order: when
   * a batch fails, the batches after it stay pending too, even if their handlers resolved, and are read
   * again and handled again in their order after it (a relay re-publishes them after the failed one, so
   * a session's changes never overtake each other). Never rejects.
   */
  private deliver(entries: StreamEntry[]): Promise<void> {
    const previous = this.tail;
    const done = (async () => {
      let ok = true;
      try {
        await this.options.onBatch(entries);
      } catch (error) {
        ok = false;
        this.failure ??= error;
      }
      await previous;
      if (!ok || this.windowFailed) {
        // Left pending; retried from this consumer's pending list after a pause.
        this.windowFailed = true;
        this.failing = true;
        return;
      }
      this.failing = false;
      const ack = this.acknowledge(entries);
      // While own pending entries are retried, the next read is of that list: it must not see these
      // again, and an acknowledgement that keeps failing must back off like any other failure.
      if (this.retryOwnPending && !(await ack)) {
        this.windowFailed = true;
        this.failing = true;
        this.failure ??= new Error(`XACK on ${this.options.key} failed`);
      }
    })();
    this.tail = done;
    return done;
  }

  /**
   * XACK on the stream's own client, which does not block, so it is not queued behind a read that is.
   * Resolves to whether it worked. A failed acknowledgement leaves the entries pending: they are read
   * again and handled again, which the handlers tolerate (delivery is at least once).
   */
  private acknowledge(entries: StreamEntry[]): Promise<boolean> {
    const { client, key, group, blockMs, watchdogMs } = this.options;
    // Bounded like a read: a client that drops commands lost with a connection (ioredis with
    // autoResendUnfulfilledCommands off) would otherwise leave the reader waiting on it forever.
    const limit = blockMs + watchdogMs;
    const sent = client.xack(key, group, ...entries.map((entry) => entry[0]));
    const timeout = () => new Error(`XACK on ${key} got no answer within ${limit} ms`);
    const ack = withTimeout(sent, limit, timeout).then(
      () => {
        this.acks.delete(ack);
        return true;
      },
      (error: unknown) => {
        this.acks.delete(ack);
        this.retryOwnPending = true;
        this.report(error);
        return false;
      },
    );
    this.acks.add(ack);
    return ack;
  }

  /**
   * On stop: handles what is still pending under this consumer, such as a batch that a read ahead
   * fetched just before the stop, as retries are handled (acknowledgements in flight first, each batch
   * acknowledged before the next read). It reads through the stream's own client (the dedicated
   * connection is closed by now) and gives up after `blockMs`, so a link that went silent cannot hold
   * the stop. Nothing is tried when reads or the last batch were failing (the stop must not wait on a
   * region that is down) or the client is not connected. Whatever is left stays pending and is claimed
   * by another consumer after `claimIdleMs`.
   */
  private async handleOwnPending(): Promise<void> {
    const { client, key, batchSize, blockMs } = this.options;
    if (!this.healthy || this.failing || client.status !== 'ready') return;
    this.retryOwnPending = true;
    const drain = async () => {
      await Promise.allSettled([...this.acks]);
      // Bounded: a handler that keeps failing does not hold the stop up forever.
      for (let round = 0; round < 10 && !this.failing; round++) {
        const entries = await this.readGroup(['COUNT', batchSize, 'STREAMS', key, '0'], client);
        if (entries.length === 0) return;
        await this.deliver(entries);
      }
    };
    const work = drain();
    work.catch((error: unknown) => this.report(error));
    await settledWithin(work, blockMs);
  }
}

/** What one consumer group holds of a stream (XINFO GROUPS). */
export interface GroupInfo {
  readonly name: string;
  readonly lastDeliveredId: string;
  readonly pending: number;
  /** Entries not delivered to the group yet (Redis 7: `lag`), when Redis can tell. */
  readonly lag: number | undefined;
}

/** XINFO GROUPS, parsed. */
export async function groupsOf(client: Redis, key: string): Promise<GroupInfo[]> {
  const rows = (await client.xinfo('GROUPS', key)) as unknown[][];
  return rows.map((row) => {
    const f: Record<string, unknown> = {};
    for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1];
    return {
      name: String(f.name),
      lastDeliveredId: String(f['last-delivered-id']),
      pending: Number(f.pending ?? 0),
      lag: f.lag === null || f.lag === undefined ? undefined : Number(f.lag),
    };
  });
}
