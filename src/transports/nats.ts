import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../contracts/envelope.js';
import type { ReplicationTransport, SubscribeOptions, Subscription } from '../contracts/transport.js';
import { ClosedError, MessageTooLargeError, MissingDependencyError, TransportError } from '../errors.js';
import { sleep } from '../runtime/backoff.js';
import { unlessAborted } from '../runtime/lifecycle.js';
import { settledWithin, withTimeout } from '../runtime/timeout.js';
import { isValidRegion } from '../validation/ids.js';
import { encodeFrames, MAX_FRAME } from '../wire/broker-frame.js';
import { type Conn, type Names, type NatsHost, NatsSubscription } from './nats-consumer.js';
import { loadNats, type NatsModules } from './nats-modules.js';
import {
  channelToken,
  type NatsSettings,
  type NatsTransportOptions,
  resolveNatsOptions,
} from './nats-options.js';
import { natsAnswers } from './nats-probe.js';
import { createNatsStream, ensureNatsConsumer } from './nats-topology.js';
import { sizeRefusal } from './size-refusal.js';
import { TransportEvents } from './transport-state.js';

export type { NatsTransportOptions } from './nats-options.js';
export { channelToken } from './nats-options.js';

/**
 * The NATS JetStream transport. One stream per channel (`<streamPrefix>_<channel>`, file storage)
 * holds every region's envelopes on the subject `<subjectPrefix>.<channel>.<origin>`; each region reads
 * each other region's subject through its own durable pull consumer (`<region>_from_<origin>`, filtered
 * on that subject), so no region ever receives its own envelopes back. Each message (several envelopes)
 * is published with `<first envelope id>+<count>` as `msgID`, so the same message published again inside
 * the duplicate window is dropped by the server. See
 * docs/transports/nats.md.
 *
 * Requires the optional peer dependencies `@nats-io/transport-node` and `@nats-io/jetstream` (3.x),
 * loaded when the transport first connects; without them it fails at once (state `failed`) with an
 * error that says what to install.
 *
 * @example
 * import { createNatsTransport } from 'geosession/nats';
 * const transport = createNatsTransport({ servers: 'nats://127.0.0.1:4222', regions: ['hk', 'kr'] });
 * const store = new GeoSessionStore({ region: 'hk', client: redis, transport, sealer }); // sealer: createPasetoSealer()
 */
export function createNatsTransport(options: NatsTransportOptions): ReplicationTransport {
  return new NatsTransport(options);
}

/** Bytes of a message's max_payload left for its headers (`Nats-Msg-Id` and the header line). */
const HEADER_ROOM = 512;

class NatsTransport extends TransportEvents implements ReplicationTransport, NatsHost {
  readonly name = 'nats';
  readonly readsOutbox = false;
  readonly settings: NatsSettings;
  private conn: Conn | undefined;
  private connecting: Promise<Conn> | undefined;
  private disconnected = false;
  private everConnected = false;
  private outageReported = false;
  private fatal: Error | undefined;
  private closed = false;
  private readonly abort = new AbortController();
  private readonly streams = new Map<string, Promise<void>>();
  private readonly subscriptions = new Set<NatsSubscription>();

  constructor(options: NatsTransportOptions) {
    super();
    this.settings = resolveNatsOptions(options);
    // Connect in the background so the first publish or subscribe finds the connection up.
    this.connection().catch(() => {});
  }

  names(channel: string): Names {
    const token = channelToken(channel);
    return {
      stream: `${this.settings.streamPrefix}_${token}`,
      base: `${this.settings.subjectPrefix}.${token}`,
    };
  }

  /** Current connection; waits (forever, or until closed or failed) for one when there is none. */
  connection(): Promise<Conn> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new ClosedError('the nats transport'));
    if (this.conn) return Promise.resolve(this.conn);
    this.connecting ??= this.connectLoop().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectLoop(): Promise<Conn> {
    while (!this.closed) {
      let modules: NatsModules;
      try {
        modules = await loadNats();
      } catch (error) {
        this.fatal = error as Error;
        this.reportError(error);
        this.setState('failed');
        throw error;
      }
      let nc: NatsConnection | undefined;
      const timeout = Math.max(this.settings.publishTimeoutMs, 2000);
      try {
        // nats.js cannot abandon an attempt on a server that never answers (its socket lives on): ask
        // first on a socket of our own, which a close destroys at once.
        const tlsFirst = (this.settings.connection?.tls as { handshakeFirst?: boolean } | null | undefined)
          ?.handshakeFirst;
        if (tlsFirst !== true && !(await natsAnswers(this.settings.servers, timeout, this.abort.signal))) {
          if (this.closed) break;
          throw new TransportError(`no NATS server answered within ${timeout} ms`);
        }
        if (this.closed) break;
        nc = await modules.connect({
          name: 'geosession',
          ...this.settings.connection,
          servers: this.settings.servers,
          maxReconnectAttempts: -1,
          reconnect: true,
          reconnectTimeWait: this.settings.reconnectTimeWaitMs,
          timeout,
        });
        const jsm: JetStreamManager = await modules.jetstreamManager(nc, {
          timeout: this.settings.publishTimeoutMs,
        });
        const js: JetStreamClient = modules.jetstream(nc, { timeout: this.settings.publishTimeoutMs });
        if (this.closed) break;
        const conn: Conn = { nc, js, jsm };
        this.adopt(conn);
        return conn;
      } catch (error) {
        await nc?.close().catch(() => {});
        nc = undefined;
        // Closed while connecting: the attempt was abandoned, nothing to report.
        if (this.closed) break;
        if (!this.outageReported) {
          this.outageReported = true;
          this.reportError(new TransportError('cannot connect to NATS; retrying', { cause: error }));
        }
        await sleep(this.settings.reconnectTimeWaitMs, this.abort.signal);
      } finally {
        if (this.closed) await nc?.close().catch(() => {});
      }
    }
    throw new ClosedError('the nats transport');
  }

  /** Makes `conn` current and follows its status; a closed connection is replaced by a new one. */
  private adopt(conn: Conn): void {
    this.conn = conn;
    this.disconnected = false;
    this.everConnected = true;
    this.outageReported = false;
    this.streams.clear();
    this.refreshState();
    void (async () => {
      for await (const status of conn.nc.status()) {
        if (this.conn !== conn) return;
        if (status.type === 'disconnect') {
          this.disconnected = true;
          this.refreshState();
        } else if (status.type === 'reconnect') {
          this.disconnected = false;
          // A restarted server may have lost a stream (memory storage, new cluster): check again.
          this.streams.clear();
          for (const sub of this.subscriptions) sub.reconnected();
          this.refreshState();
        } else if (status.type === 'error') {
          this.reportError(new TransportError('NATS reported an error', { cause: status.error }));
        }
      }
    })().catch(() => {});
    void conn.nc.closed().then((error) => {
      if (this.conn !== conn || this.closed) return;
      // nats.js may close for good on a server-initiated close; never stay without a connection.
      this.conn = undefined;
      this.reportError(new TransportError('the NATS connection closed; rebuilding it', { cause: error }));
      this.refreshState();
      this.connection().catch(() => {});
    });
  }

  /** Recomputes the transport state from the connection and the subscriptions' health. */
  refreshState(): void {
    if (this.closed || this.fatal) return;
    if (!this.conn) {
      this.setState(this.everConnected ? 'degraded' : 'connecting');
      return;
    }
    const sick = this.disconnected || [...this.subscriptions].some((sub) => !sub.healthy);
    this.setState(sick ? 'degraded' : 'ready');
  }

  isConnected(): boolean {
    return this.conn !== undefined && !this.disconnected;
  }

  /** Creates the channel's stream once per connection (an existing stream is left as it is). */
  ensureStream(conn: Conn, names: Names): Promise<void> {
    let pending = this.streams.get(names.stream);
    if (!pending) {
      pending = this.createStream(conn, names);
      this.streams.set(names.stream, pending);
      pending.catch(() => this.streams.delete(names.stream));
    }
    return pending;
  }

  private createStream(conn: Conn, names: Names): Promise<void> {
    return createNatsStream(conn.jsm, names, this.settings);
  }

  /** Creates `region`'s durable consumer of `origin`'s subject unless it exists. */
  ensureConsumer(conn: Conn, names: Names, region: string, origin: string): Promise<string> {
    return ensureNatsConsumer(conn.jsm, names, this.settings, region, origin);
  }

  async publish(channel: string, envelopes: readonly Envelope[]): Promise<void> {
    if (this.closed) throw new ClosedError('the nats transport');
    if (this.fatal) throw this.fatal;
    if (envelopes.length === 0) return;
    const deadline = Date.now() + this.settings.publishTimeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const names = this.names(channel);
    const timedOut = (what: string) => () =>
      new TransportError(`${what} timed out after ${this.settings.publishTimeoutMs} ms`);
    let conn: Conn;
    try {
      conn = await withTimeout(this.connection(), left(), timedOut('connecting to NATS'));
      await withTimeout(this.ensureStream(conn, names), left(), timedOut(`creating stream ${names.stream}`));
    } catch (error) {
      if (
        error instanceof ClosedError ||
        error instanceof MissingDependencyError ||
        error instanceof TransportError
      )
        throw error;
      throw new TransportError(`publishing to ${names.stream} failed`, { cause: error });
    }
    // Several envelopes to a message (one PubAck each): a relay's batch is one or two messages, none over
    // the server's max_payload unless one envelope is larger alone, which no retry can send: refused
    // here, before anything is published, for the pipeline to isolate and dead-letter.
    const maxPayload = conn.nc.info?.max_payload ?? MAX_FRAME;
    // Room for the headers (Nats-Msg-Id), which count towards max_payload.
    const frames = encodeFrames(envelopes, Math.min(MAX_FRAME, maxPayload - HEADER_ROOM));
    const oversized = frames.find((frame) => frame.bytes > maxPayload - HEADER_ROOM);
    if (oversized) {
      throw new MessageTooLargeError(
        `a message of ${oversized.bytes} bytes is over the NATS server's max_payload (${maxPayload} bytes)`,
        { bytes: oversized.bytes },
      );
    }
    const subject = `${names.base}.${(envelopes[0] as Envelope).origin}`;
    let next = 0;
    const worker = async () => {
      while (next < frames.length) {
        const frame = frames[next++] as (typeof frames)[number];
        await conn.js.publish(subject, frame.text, { msgID: frame.id, timeout: left() });
      }
    };
    const workers = Array.from({ length: Math.min(this.settings.publishWindow, frames.length) }, worker);
    try {
      await withTimeout(Promise.all(workers), left() + 1000, timedOut(`publishing to ${names.stream}`));
    } catch (error) {
      this.streams.delete(names.stream); // "no responders" may mean the stream is gone: check it again
      if (this.closed) throw new ClosedError('the nats transport');
      // A stream's max_msg_size (or a max_payload the client did not know yet): the same every time.
      if (sizeRefusal(error)) {
        throw new MessageTooLargeError('NATS refused a message for its size', { cause: error });
      }
      throw error instanceof TransportError
        ? error
        : new TransportError(`publishing to ${names.stream} failed (not confirmed)`, { cause: error });
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the nats transport');
    if (this.fatal) throw this.fatal;
    if (!isValidRegion(options.region) || !this.settings.regions.includes(options.region)) {
      throw new TransportError(`region "${options.region}" is not among the transport's regions`);
    }
    const names = this.names(options.channel);
    const subs = this.settings.regions
      .filter((origin) => origin !== options.region)
      .map((origin) => new NatsSubscription(this, names, origin, options));
    for (const sub of subs) this.subscriptions.add(sub);
    this.refreshState();
    const close = async () => {
      await Promise.all(subs.map((sub) => sub.close()));
      for (const sub of subs) this.subscriptions.delete(sub);
      this.refreshState();
    };
    // Resolve once the consumers run, or after a bounded wait when the broker is away (they keep trying in
    // the background; envelopes wait in the stream meanwhile); at once when the caller gives up (its
    // signal) or the transport closes (closing a subscription marks it started).
    const { signal } = options;
    await settledWithin(
      unlessAborted(Promise.all(subs.map((sub) => sub.started)), signal, 'the nats subscription'),
      this.settings.publishTimeoutMs,
    );
    if (signal?.aborted || this.closed) {
      await close();
      throw new ClosedError('the nats subscription');
    }
    if (this.fatal) {
      await close();
      throw this.fatal;
    }
    return { close };
  }

  report(error: unknown): void {
    this.reportError(error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // First, so that a connection attempt in flight reports nothing and is closed as soon as it settles
    // (nats.js cannot abort it: against a server that does not answer, its socket lives until the
    // connect timeout, then closes).
    this.closed = true;
    this.abort.abort();
    await Promise.all([...this.subscriptions].map((sub) => sub.close()));
    this.subscriptions.clear();
    const conn = this.conn;
    this.conn = undefined;
    if (conn && !(await settledWithin(conn.nc.drain(), 5000))) await conn.nc.close().catch(() => {});
    this.setState('closed');
  }
}
