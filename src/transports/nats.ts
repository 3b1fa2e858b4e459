import { createHash } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { ClosedError, ConfigError, TransportError } from '../errors.js';
import { delay, TransportEvents } from '../internal/transport-state.js';
import { encodeEvent } from '../replication/codec.js';
import type { ChangeEvent } from '../replication/events.js';
import { isValidRegion } from '../session-id.js';
import { type Conn, type Names, type NatsHost, NatsSubscription } from './nats-consumer.js';
import type { ReplicationTransport, SubscribeOptions, Subscription } from './transport.js';

/** Options of {@link createNatsTransport}. */
export interface NatsTransportOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. Required. */
  servers: string | string[];
  /**
   * Further options of the NATS connection (credentials, TLS, name...). `servers`, `maxReconnectAttempts`
   * and `reconnect` are the transport's: it reconnects forever and rebuilds a connection that closed.
   */
  connectionOptions?: Omit<NodeConnectionOptions, 'servers' | 'port' | 'maxReconnectAttempts' | 'reconnect'>;
  /**
   * Prefix of stream names: a channel's stream is `<streamPrefix>_<channel>`.
   * @default 'GEOSESSION'
   */
  streamPrefix?: string;
  /**
   * First subject token(s): a channel's events are published on `<subjectPrefix>.<channel>.<origin>`.
   * @default 'geosession'
   */
  subjectPrefix?: string;
  /**
   * How long the stream keeps events (stream `max_age`), in ms: a region away for longer misses what
   * is older. Applied only when the transport creates the stream.
   * @default 86400000 (24 h)
   */
  maxAgeMs?: number;
  /**
   * Size cap of each stream in bytes (stream `max_bytes`, oldest discarded first); 0 = unlimited.
   * Applied only when the transport creates the stream.
   * @default 0
   */
  maxBytes?: number;
  /**
   * Stream replicas (clustered JetStream). Applied only when the transport creates the stream.
   * @default 1
   */
  replicas?: number;
  /**
   * The stream's `duplicate_window`, in ms: a re-published event id inside it is dropped by the server.
   * @default 120000
   */
  duplicateWindowMs?: number;
  /**
   * A publish (connecting, creating the stream, every PubAck) that has not completed after this long
   * rejects with a `TransportError`; the relay retries it from the outbox.
   * @default 5000
   */
  publishTimeoutMs?: number;
  /**
   * Most PubAcks awaited at once by one publish call (the relay publishes up to 500 events a call).
   * @default 500
   */
  publishWindow?: number;
  /**
   * The consumer's `ack_wait`, in ms: a delivered event not acknowledged within it is delivered again.
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * The consumer's `max_ack_pending`: most events delivered and not yet acknowledged.
   * @default 1000
   */
  maxAckPending?: number;
  /**
   * Delay before events whose handler rejected are delivered again (`nak` delay), in ms.
   * @default 1000
   */
  retryDelayMs?: number;
  /**
   * Idle heartbeat asked of the server for each pull, in ms. Two missed heartbeats, or silence for
   * three heartbeats while connected, make the transport recreate the consumer.
   * @default 5000
   */
  idleHeartbeatMs?: number;
  /**
   * Pause between reconnect attempts, in ms.
   * @default 1000
   */
  reconnectTimeWaitMs?: number;
}

/**
 * The NATS JetStream transport. One stream per channel (`<streamPrefix>_<channel>`, file storage)
 * holds every region's events on the subject `<subjectPrefix>.<channel>.<origin>`; each destination
 * region reads it through one durable pull consumer named after the region, filtered on
 * `<subjectPrefix>.<channel>.>`, that acknowledges and skips its own region's events. Each event is
 * published with its id as `msgID`, so a re-publish inside the duplicate window is dropped by the
 * server. See docs/transports/nats.md.
 *
 * Requires the optional peer dependencies `@nats-io/transport-node` and `@nats-io/jetstream` (3.x).
 *
 * @example
 * import { createNatsTransport } from 'geosession/nats';
 * const transport = createNatsTransport({ servers: 'nats://127.0.0.1:4222' });
 * const store = new GeoSessionStore({ region: 'hk', client: redis, transport });
 */
export function createNatsTransport(options: NatsTransportOptions): ReplicationTransport {
  return new NatsTransport(options);
}

interface Settings {
  servers: string[];
  connection: NatsTransportOptions['connectionOptions'];
  streamPrefix: string;
  subjectPrefix: string;
  maxAgeMs: number;
  maxBytes: number;
  replicas: number;
  duplicateWindowMs: number;
  publishTimeoutMs: number;
  publishWindow: number;
  ackWaitMs: number;
  maxAckPending: number;
  retryDelayMs: number;
  idleHeartbeatMs: number;
  reconnectTimeWaitMs: number;
}

function numberOption(
  name: string,
  value: number | undefined,
  fallback: number,
  { min = 1, integer = false } = {},
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (integer && value % 1 !== 0)) {
    throw new ConfigError(
      name,
      `must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

function settingsOf(options: NatsTransportOptions): Settings {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('servers', 'is required: the NATS server URL(s)');
  }
  const servers = typeof options.servers === 'string' ? [options.servers] : options.servers;
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new ConfigError('servers', 'is required: a NATS server URL or a non-empty array of them');
  }
  if (servers.some((s) => typeof s !== 'string' || s.trim() === '')) {
    throw new ConfigError('servers', 'must contain only non-empty strings');
  }
  const streamPrefix = options.streamPrefix ?? 'GEOSESSION';
  if (typeof streamPrefix !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(streamPrefix)) {
    throw new ConfigError('streamPrefix', 'must be 1-64 characters of A-Z, a-z, 0-9, _ and -');
  }
  const subjectPrefix = options.subjectPrefix ?? 'geosession';
  if (typeof subjectPrefix !== 'string' || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(subjectPrefix)) {
    throw new ConfigError('subjectPrefix', 'must be dot-separated tokens of A-Z, a-z, 0-9, _ and -');
  }
  if (options.connectionOptions !== undefined && typeof options.connectionOptions !== 'object') {
    throw new ConfigError('connectionOptions', 'must be an object');
  }
  const idleHeartbeatMs = numberOption('idleHeartbeatMs', options.idleHeartbeatMs, 5000, { min: 500 });
  return {
    servers,
    connection: options.connectionOptions,
    streamPrefix,
    subjectPrefix,
    maxAgeMs: numberOption('maxAgeMs', options.maxAgeMs, 86_400_000, { min: 1000 }),
    maxBytes: numberOption('maxBytes', options.maxBytes, 0, { min: 0, integer: true }),
    replicas: numberOption('replicas', options.replicas, 1, { integer: true }),
    duplicateWindowMs: numberOption('duplicateWindowMs', options.duplicateWindowMs, 120_000, { min: 100 }),
    publishTimeoutMs: numberOption('publishTimeoutMs', options.publishTimeoutMs, 5000, { min: 100 }),
    publishWindow: numberOption('publishWindow', options.publishWindow, 500, { integer: true }),
    ackWaitMs: numberOption('ackWaitMs', options.ackWaitMs, 30_000, { min: 1000 }),
    maxAckPending: numberOption('maxAckPending', options.maxAckPending, 1000, { integer: true }),
    retryDelayMs: numberOption('retryDelayMs', options.retryDelayMs, 1000, { min: 0 }),
    idleHeartbeatMs,
    reconnectTimeWaitMs: numberOption('reconnectTimeWaitMs', options.reconnectTimeWaitMs, 1000, { min: 10 }),
  };
}

/**
 * A channel (any string, often with ':' or empty) as one subject token and stream-name part: letters,
 * digits and '-' stay, every other byte becomes `_xx` (hex), the empty channel is `_`. Injective, so
 * channels never share a stream; very long channels are shortened with a hash.
 */
export function channelToken(channel: string): string {
  if (channel === '') return '_';
  let out = '';
  for (const byte of Buffer.from(channel, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9-]/.test(ch) ? ch : `_${byte.toString(16).padStart(2, '0')}`;
  }
  if (out.length <= 64) return out;
  return `${out.slice(0, 40)}_h${createHash('sha1').update(channel).digest('hex').slice(0, 20)}`;
}

const nanos = (ms: number): number => Math.round(ms * 1_000_000);

/** Rejects with a TransportError if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TransportError(`${what} timed out after ${ms} ms`)), ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

class NatsTransport extends TransportEvents implements ReplicationTransport, NatsHost {
  readonly name = 'nats';
  readonly readsOutbox = false;
  readonly settings: Settings;
  private conn: Conn | undefined;
  private connecting: Promise<Conn> | undefined;
  private disconnected = false;
  private everConnected = false;
  private outageReported = false;
  private closed = false;
  private readonly streams = new Map<string, Promise<void>>();
  private readonly subscriptions = new Set<NatsSubscription>();

  constructor(options: NatsTransportOptions) {
    super();
    this.settings = settingsOf(options);
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

  /** Current connection; waits (forever, or until closed) for one when there is none. */
  connection(): Promise<Conn> {
    if (this.closed) return Promise.reject(new ClosedError('the nats transport'));
    if (this.conn) return Promise.resolve(this.conn);
    this.connecting ??= this.connectLoop().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectLoop(): Promise<Conn> {
    while (!this.closed) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({
          name: 'geosession',
          ...this.settings.connection,
          servers: this.settings.servers,
          maxReconnectAttempts: -1,
          reconnect: true,
          reconnectTimeWait: this.settings.reconnectTimeWaitMs,
          timeout: Math.max(this.settings.publishTimeoutMs, 2000),
        });
        const jsm = await jetstreamManager(nc, { timeout: this.settings.publishTimeoutMs });
        const js = jetstream(nc, { timeout: this.settings.publishTimeoutMs });
        if (this.closed) break;
        const conn: Conn = { nc, js, jsm };
        this.adopt(conn);
        return conn;
      } catch (error) {
        await nc?.close().catch(() => {});
        nc = undefined;
        if (!this.outageReported) {
          this.outageReported = true;
          this.reportError(new TransportError('cannot connect to NATS; retrying', { cause: error }));
        }
        await delay(this.settings.reconnectTimeWaitMs);
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
    if (this.closed) return;
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

  private async createStream(conn: Conn, names: Names): Promise<void> {
    const s = this.settings;
    try {
      await conn.jsm.streams.add({
        name: names.stream,
        subjects: [`${names.base}.>`],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: nanos(s.maxAgeMs),
        max_bytes: s.maxBytes > 0 ? s.maxBytes : -1,
        num_replicas: s.replicas,
        duplicate_window: nanos(Math.min(s.duplicateWindowMs, s.maxAgeMs)),
      });
    } catch (error) {
      // Exists with another configuration (tuned by an operator): keep it, as long as it exists.
      if (apiCode(error) === undefined) throw error;
      await conn.jsm.streams.info(names.stream);
    }
  }

  /** Creates the destination region's durable consumer unless it exists. */
  async ensureConsumer(conn: Conn, names: Names, region: string): Promise<void> {
    const s = this.settings;
    try {
      await conn.jsm.consumers.info(names.stream, region);
      return;
    } catch (error) {
      if (apiCode(error) !== JetStreamApiCodes.ConsumerNotFound) throw error;
    }
    await conn.jsm.consumers.add(names.stream, {
      durable_name: region,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${names.base}.>`,
      ack_wait: nanos(s.ackWaitMs),
      max_ack_pending: s.maxAckPending,
      max_deliver: -1,
    });
  }

  async publish(channel: string, events: readonly ChangeEvent[]): Promise<void> {
    if (this.closed) throw new ClosedError('the nats transport');
    if (events.length === 0) return;
    const deadline = Date.now() + this.settings.publishTimeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const names = this.names(channel);
    let conn: Conn;
    try {
      conn = await within(this.connection(), left(), 'connecting to NATS');
      await within(this.ensureStream(conn, names), left(), `creating stream ${names.stream}`);
    } catch (error) {
      if (error instanceof ClosedError) throw error;
      throw error instanceof TransportError
        ? error
        : new TransportError(`publishing to ${names.stream} failed`, { cause: error });
    }
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const event = events[next++] as ChangeEvent;
        await conn.js.publish(`${names.base}.${event.origin}`, encodeEvent(event), {
          msgID: event.id,
          timeout: left(),
        });
      }
    };
    const workers = Array.from({ length: Math.min(this.settings.publishWindow, events.length) }, worker);
    try {
      await within(Promise.all(workers), left() + 1000, `publishing to ${names.stream}`);
    } catch (error) {
      this.streams.delete(names.stream); // "no responders" may mean the stream is gone: check it again
      if (this.closed) throw new ClosedError('the nats transport');
      throw error instanceof TransportError
        ? error
        : new TransportError(`publishing to ${names.stream} failed (not confirmed)`, { cause: error });
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the nats transport');
    if (!isValidRegion(options.region)) throw new ConfigError('region', 'is not a valid region id');
    if (typeof options.handler !== 'function') throw new ConfigError('handler', 'must be a function');
    const sub = new NatsSubscription(this, this.names(options.channel), options);
    this.subscriptions.add(sub);
    this.refreshState();
    // Resolve once the consumer is running, or after a bounded wait when the broker is away (it keeps
    // trying in the background; events wait in the stream meanwhile).
    await Promise.race([sub.started, delay(this.settings.publishTimeoutMs)]);
    return {
      close: async () => {
        await sub.close();
        this.subscriptions.delete(sub);
        this.refreshState();
      },
    };
  }

  report(error: unknown): void {
    this.reportError(error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.subscriptions].map((sub) => sub.close()));
    this.subscriptions.clear();
    this.closed = true;
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      try {
        await within(conn.nc.drain(), 5000, 'draining the NATS connection');
      } catch {
        await conn.nc.close().catch(() => {});
      }
    }
    this.setState('closed');
  }
}
