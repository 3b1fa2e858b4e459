import type { Options, SocketOptions } from 'amqplib';
import { ConfigError } from '../errors.js';
import { isValidRegion } from '../validation/ids.js';
import {
  numberOption,
  oneOfOption,
  regionListOption,
  rejectUnknown,
  requireObject,
  stringOption,
} from '../validation/options.js';
import { encodeChannel } from './channel-name.js';

/** Options of `createAmqpTransport`. */
export interface AmqpTransportOptions {
  /**
   * Broker address: an `amqp://` / `amqps://` URL, or amqplib's connection object. A `heartbeat` of
   * {@link AmqpTransportOptions.heartbeatSeconds} is added unless the URL or object sets one.
   */
  url: string | Options.Connect;
  /**
   * Every region of the deployment, this process's own included. Each gets a durable queue per channel
   * as soon as the channel is used, so a region that is away keeps receiving into its queue.
   */
  regions: string[];
  /**
   * First part of every exchange and queue name (`<namePrefix>.<channel>` ...), letters, digits, `.`,
   * `_` and `-`.
   * @default 'geosession'
   */
  namePrefix?: string;
  /**
   * Type of the queues created: plain classic durable queues (RabbitMQ and LavinMQ), or RabbitMQ quorum
   * queues (replicated). Changing it for existing queues fails until they are deleted.
   * @default 'classic'
   */
  queueType?: 'classic' | 'quorum';
  /**
   * Most messages a region's queue keeps while that region does not consume (`x-max-length`, oldest
   * dropped first: `x-overflow: drop-head`); 0 for no limit. Declared with the queue, so changing it for
   * an existing queue needs the queue deleted, or a broker policy instead (docs/transports/amqp.md).
   * @default 1000000
   */
  maxQueueLength?: number;
  /**
   * Oldest message a region's queue keeps, in ms (`x-message-ttl`); 0 for no limit. The default matches
   * the store's default `tombstoneTtl`: older changes are refused as stale anyway.
   * @default 86400000
   */
  messageTtlMs?: number;
  /**
   * Unacknowledged deliveries per subscription (basic.qos). Defaults to twice the subscription's
   * `maxBatch`, at least 100.
   */
  prefetch?: number;
  /**
   * Publisher confirm window: messages published but not yet confirmed, across all publish calls.
   * @default 1000
   */
  maxInFlight?: number;
  /**
   * A publish that is not confirmed within this many ms (including waiting for a connection) rejects
   * with a `TransportError`; the relay publishes it again later.
   * @default 5000
   */
  publishTimeoutMs?: number;
  /**
   * Time allowed for the TCP connect and AMQP handshake, in ms. `subscribe` also resolves after at most
   * this long when the broker is away; the consumer then starts as soon as the broker is back.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * AMQP heartbeat interval in seconds (a dead peer is noticed after about two intervals).
   * @default 10
   */
  heartbeatSeconds?: number;
  /**
   * Pause before a batch whose handler rejected is returned to its queue (nack with requeue), in ms; it
   * doubles (up to 5 s) while batches keep failing.
   * @default 1000
   */
  retryDelayMs?: number;
  /**
   * When fewer than `maxBatch` deliveries are waiting, how long to wait for more before handing them
   * over, in ms. With 0 a batch is what arrived together (and what piled up while the previous batch
   * was handled), which batches well under load without adding latency.
   * @default 0
   */
  batchLingerMs?: number;
  /**
   * First and largest delay between reconnect attempts, in ms (exponential backoff with jitter).
   * @default [100, 10000]
   */
  reconnectDelayMs?: [min: number, max: number];
  /**
   * Extra socket options for amqplib (TLS certificates, `clientProperties`...). `noDelay` is `true`
   * unless set here: Nagle's algorithm otherwise adds about 40 ms to each confirm and delivery.
   */
  socketOptions?: SocketOptions;
}

const KNOWN = [
  'url',
  'regions',
  'namePrefix',
  'queueType',
  'maxQueueLength',
  'messageTtlMs',
  'prefetch',
  'maxInFlight',
  'publishTimeoutMs',
  'connectTimeoutMs',
  'heartbeatSeconds',
  'retryDelayMs',
  'batchLingerMs',
  'reconnectDelayMs',
  'socketOptions',
] as const;

/** The options after defaults and validation. */
export interface ResolvedAmqpOptions {
  readonly url: string | Options.Connect;
  readonly regions: readonly string[];
  readonly namePrefix: string;
  readonly queueType: 'classic' | 'quorum';
  readonly maxQueueLength: number;
  readonly messageTtlMs: number;
  readonly prefetch: number | undefined;
  readonly maxInFlight: number;
  readonly publishTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly batchLingerMs: number;
  readonly reconnectDelayMs: readonly [number, number];
  readonly socketOptions: SocketOptions;
}

/** Fills in defaults and validates, throwing a `ConfigError` that names the first bad option. */
export function resolveAmqpOptions(options: AmqpTransportOptions): ResolvedAmqpOptions {
  requireObject(options, 'url', '`url` and `regions`');
  rejectUnknown(options, KNOWN, 'createAmqpTransport');
  const heartbeat = numberOption('heartbeatSeconds', options.heartbeatSeconds, 10, {
    integer: true,
    min: 0,
    minExclusive: false,
  });
  let url: string | Options.Connect;
  if (typeof options.url === 'string') {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new ConfigError('url', 'is not a valid URL');
    }
    if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
      throw new ConfigError('url', `must be an amqp:// or amqps:// URL, got ${parsed.protocol}`);
    }
    if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(heartbeat));
    url = parsed.toString();
  } else if (typeof options.url === 'object' && options.url !== null) {
    url = { heartbeat, ...options.url };
  } else {
    throw new ConfigError('url', 'is required: an amqp:// URL or an amqplib connection object');
  }
  const regions = regionListOption('regions', options.regions, isValidRegion);
  const reconnect = options.reconnectDelayMs ?? [100, 10_000];
  if (
    !Array.isArray(reconnect) ||
    reconnect.length !== 2 ||
    !reconnect.every((n) => typeof n === 'number' && Number.isFinite(n) && n > 0) ||
    reconnect[0] > reconnect[1]
  ) {
    throw new ConfigError('reconnectDelayMs', 'must be [min, max] positive ms with min <= max');
  }
  if (
    options.socketOptions !== undefined &&
    (typeof options.socketOptions !== 'object' || options.socketOptions === null)
  ) {
    throw new ConfigError('socketOptions', 'must be an object');
  }
  const whole = { integer: true, min: 0, minExclusive: false } as const;
  return {
    url,
    regions,
    namePrefix: stringOption(
      'namePrefix',
      options.namePrefix,
      'geosession',
      /^[A-Za-z0-9._-]{1,64}$/,
      '1 to 64 letters, digits, ".", "_" or "-"',
    ),
    queueType: oneOfOption('queueType', options.queueType, ['classic', 'quorum'] as const, 'classic'),
    maxQueueLength: numberOption('maxQueueLength', options.maxQueueLength, 1_000_000, whole),
    messageTtlMs: numberOption('messageTtlMs', options.messageTtlMs, 86_400_000, whole),
    prefetch:
      options.prefetch === undefined
        ? undefined
        : numberOption('prefetch', options.prefetch, 0, { integer: true }),
    maxInFlight: numberOption('maxInFlight', options.maxInFlight, 1000, { integer: true }),
    publishTimeoutMs: numberOption('publishTimeoutMs', options.publishTimeoutMs, 5000, { integer: true }),
    connectTimeoutMs: numberOption('connectTimeoutMs', options.connectTimeoutMs, 5000, { integer: true }),
    retryDelayMs: numberOption('retryDelayMs', options.retryDelayMs, 1000, whole),
    batchLingerMs: numberOption('batchLingerMs', options.batchLingerMs, 0, whole),
    reconnectDelayMs: [reconnect[0], reconnect[1]],
    socketOptions: { noDelay: true, ...(options.socketOptions ?? {}) },
  };
}

/** The broker names the transport uses for one channel; see {@link amqpTopology}. */
export interface AmqpTopology {
  /** Durable topic exchange every region publishes to. */
  exchange: string;
  /** Durable queue of each destination region, by region id. */
  queues: Record<string, string>;
  /** Binding keys of each destination region's queue: one `<origin>.#` per other region. */
  bindings: Record<string, string[]>;
}

/**
 * The exchange, queue and binding names used for `channel` (a store's key prefix). Characters other
 * than letters and digits in the channel are written as `_xx` (hex), so distinct prefixes never share
 * a name; `''` becomes `-`. Useful for monitoring and for removing a channel's or a region's topology.
 */
export function amqpTopology(
  channel: string,
  regions: readonly string[],
  namePrefix = 'geosession',
): AmqpTopology {
  if (typeof channel !== 'string') throw new ConfigError('channel', 'must be a string (a store key prefix)');
  if (!Array.isArray(regions) || !regions.every(isValidRegion)) {
    throw new ConfigError('regions', 'must be an array of region ids');
  }
  if (typeof namePrefix !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(namePrefix)) {
    throw new ConfigError('namePrefix', 'must be 1 to 64 letters, digits, ".", "_" or "-"');
  }
  // AMQP names are at most 255 bytes: long channels keep a readable head and a digest.
  const base = `${namePrefix}.${encodeChannel(channel, /[A-Za-z0-9]/, '-', 122)}`;
  const queues: Record<string, string> = {};
  const bindings: Record<string, string[]> = {};
  for (const region of regions) {
    queues[region] = `${base}.${region}`;
    bindings[region] = regions.filter((origin) => origin !== region).map((origin) => `${origin}.#`);
  }
  return { exchange: `${base}.events`, queues, bindings };
}
