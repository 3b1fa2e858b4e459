import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { ConfigError } from '../errors.js';
import { isValidRegion } from '../validation/ids.js';
import {
  numberOption,
  regionListOption,
  rejectUnknown,
  requireObject,
  stringOption,
} from '../validation/options.js';
import { encodeChannel } from './channel-name.js';

/** Options of `createNatsTransport`. */
export interface NatsTransportOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. Required. */
  servers: string | string[];
  /**
   * Every region of the deployment, this process's own included. Each region reads every other region's
   * subject through its own durable consumer, so it never receives its own envelopes.
   */
  regions: string[];
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
   * First subject token(s): a channel's envelopes are published on `<subjectPrefix>.<channel>.<origin>`.
   * @default 'geosession'
   */
  subjectPrefix?: string;
  /**
   * How long the stream keeps envelopes (stream `max_age`), in ms: a region away for longer misses what
   * is older (and needs a resync). Applied only when the transport creates the stream.
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
   * The stream's `duplicate_window`, in ms: a re-published envelope id inside it is dropped by the server.
   * @default 120000
   */
  duplicateWindowMs?: number;
  /**
   * A publish (connecting, creating the stream, every PubAck) that has not completed after this long
   * rejects with a `TransportError`; the relay publishes it again from the outbox.
   * @default 5000
   */
  publishTimeoutMs?: number;
  /**
   * Most PubAcks awaited at once by one publish call.
   * @default 500
   */
  publishWindow?: number;
  /**
   * The consumers' `ack_wait`, in ms: a delivered envelope not acknowledged within it is delivered again.
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * Each consumer's `max_ack_pending`: most envelopes delivered and not yet acknowledged.
   * @default 1000
   */
  maxAckPending?: number;
  /**
   * Delay before envelopes whose handler rejected are delivered again (`nak` delay), in ms; it doubles
   * (up to 5 s) while batches keep failing.
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

const KNOWN = [
  'servers',
  'regions',
  'connectionOptions',
  'streamPrefix',
  'subjectPrefix',
  'maxAgeMs',
  'maxBytes',
  'replicas',
  'duplicateWindowMs',
  'publishTimeoutMs',
  'publishWindow',
  'ackWaitMs',
  'maxAckPending',
  'retryDelayMs',
  'idleHeartbeatMs',
  'reconnectTimeWaitMs',
] as const;

/** The options after defaults and validation. */
export interface NatsSettings {
  readonly servers: string[];
  readonly regions: readonly string[];
  readonly connection: NatsTransportOptions['connectionOptions'];
  readonly streamPrefix: string;
  readonly subjectPrefix: string;
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly replicas: number;
  readonly duplicateWindowMs: number;
  readonly publishTimeoutMs: number;
  readonly publishWindow: number;
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
  readonly retryDelayMs: number;
  readonly idleHeartbeatMs: number;
  readonly reconnectTimeWaitMs: number;
}

/** Fills in defaults and validates, throwing a `ConfigError` that names the first bad option. */
export function resolveNatsOptions(options: NatsTransportOptions): NatsSettings {
  requireObject(options, 'servers', '`servers` (the NATS server URL(s)) and `regions`');
  rejectUnknown(options, KNOWN, 'createNatsTransport');
  const servers = typeof options.servers === 'string' ? [options.servers] : options.servers;
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new ConfigError('servers', 'is required: a NATS server URL or a non-empty array of them');
  }
  if (servers.some((s) => typeof s !== 'string' || s.trim() === '')) {
    throw new ConfigError('servers', 'must contain only non-empty strings');
  }
  const regions = regionListOption('regions', options.regions, isValidRegion);
  if (
    options.connectionOptions !== undefined &&
    (typeof options.connectionOptions !== 'object' || options.connectionOptions === null)
  ) {
    throw new ConfigError('connectionOptions', 'must be an object');
  }
  const whole = { integer: true } as const;
  return {
    servers,
    regions,
    connection: options.connectionOptions,
    streamPrefix: stringOption(
      'streamPrefix',
      options.streamPrefix,
      'GEOSESSION',
      /^[A-Za-z0-9_-]{1,64}$/,
      '1-64 characters of A-Z, a-z, 0-9, _ and -',
    ),
    subjectPrefix: stringOption(
      'subjectPrefix',
      options.subjectPrefix,
      'geosession',
      /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
      'dot-separated tokens of A-Z, a-z, 0-9, _ and -',
    ),
    maxAgeMs: numberOption('maxAgeMs', options.maxAgeMs, 86_400_000, { min: 1000, minExclusive: false }),
    maxBytes: numberOption('maxBytes', options.maxBytes, 0, { min: 0, minExclusive: false, integer: true }),
    replicas: numberOption('replicas', options.replicas, 1, whole),
    duplicateWindowMs: numberOption('duplicateWindowMs', options.duplicateWindowMs, 120_000, {
      min: 100,
      minExclusive: false,
    }),
    publishTimeoutMs: numberOption('publishTimeoutMs', options.publishTimeoutMs, 5000, {
      min: 100,
      minExclusive: false,
    }),
    publishWindow: numberOption('publishWindow', options.publishWindow, 500, whole),
    ackWaitMs: numberOption('ackWaitMs', options.ackWaitMs, 30_000, { min: 1000, minExclusive: false }),
    maxAckPending: numberOption('maxAckPending', options.maxAckPending, 1000, whole),
    retryDelayMs: numberOption('retryDelayMs', options.retryDelayMs, 1000, { min: 0, minExclusive: false }),
    idleHeartbeatMs: numberOption('idleHeartbeatMs', options.idleHeartbeatMs, 5000, {
      min: 500,
      minExclusive: false,
    }),
    reconnectTimeWaitMs: numberOption('reconnectTimeWaitMs', options.reconnectTimeWaitMs, 1000, {
      min: 10,
      minExclusive: false,
    }),
  };
}

/**
 * A channel (any string, often with ':' or empty) as one subject token and stream-name part: letters,
 * digits and '-' stay, every other byte becomes `_xx` (hex), the empty channel is `_`. Injective, so
 * channels never share a stream; very long channels are shortened with a hash.
 */
export function channelToken(channel: string): string {
  return encodeChannel(channel, /[A-Za-z0-9-]/, '_', 64);
}

/** The durable consumer through which `region` reads `origin`'s envelopes. */
export function consumerName(region: string, origin: string): string {
  return `${region}_from_${origin}`;
}
