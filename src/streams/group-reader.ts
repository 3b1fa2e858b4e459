import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { isBusyGroup, isNoGroup } from '../failures/reply-errors.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { Lifecycle, type LifecycleState } from '../runtime/lifecycle.js';
import { settledWithin, withTimeout } from '../runtime/timeout.js';
import type { StreamEntry } from '../wire/stream-entry.js';
import { handOverPending } from './group-handover.js';
import type { StreamGroupReaderOptions } from './group-reader-options.js';
import { openReadConnection } from './read-connection.js';

export type { StreamGroupReaderOptions } from './group-reader-options.js';

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

  /** Hands what is still pending under this consumer over to the group's next reader (see `handOverPending`). */
  private handOver(): Promise<void> {
    const { client, key, group, blockMs } = this.options;
    const target = { client, key, group, consumer: this.consumer, limitMs: blockMs };
    return handOverPending(target, (error) => this.report(error));
  }

  private openConnection(): Redis {
    return openReadConnection(this.options.client);
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
