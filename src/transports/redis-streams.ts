import type { Redis } from 'ioredis';
import type { Envelope } from '../contracts/envelope.js';
import type {
  PeerBacklog,
  ReplicationTransport,
  SubscribeOptions,
  Subscription,
} from '../contracts/transport.js';
import {
  ClosedError,
  type GeoSessionError,
  MessageTooLargeError,
  TransientError,
  TransportError,
} from '../errors.js';
import { isMissingStream } from '../failures/reply-errors.js';
import { Lifecycle, unlessAborted } from '../runtime/lifecycle.js';
import { withTimeout } from '../runtime/timeout.js';
import { StreamGroupReader } from '../streams/group-reader.js';
import { groupMissedEntries, removeIdleConsumers, trimStream } from '../streams/trim.js';
import { type InternalFamily, internalKey, keyPrefixOf } from '../wire/internal-keys.js';
import { entryFields, envelopeOfEntry, isPoison } from '../wire/stream-entry.js';
import {
  type RedisStreamsSettings,
  type RedisStreamsTransportOptions,
  resolveRedisStreamsOptions,
} from './redis-streams-options.js';
import { sizeRefusal } from './size-refusal.js';
import { TransportEvents } from './transport-state.js';

export type { RedisStreamsTransportOptions } from './redis-streams-options.js';

/**
 * The Redis Streams transport: each region's outbox stream, written in the same atomic script as the
 * session itself, is read directly by every other region through a consumer group named after the
 * reading region. No relay and no extra hop; nothing is lost while a region is away, because its group
 * keeps its place and the outbox is trimmed only below what every region has consumed (within
 * `maxBacklog`). With a sealer, each region's relay publishes sealed batches to a second stream that
 * the others read instead.
 *
 * @example
 * const transport = createRedisStreamsTransport({ regions: { hk: redisHK, kr: redisKR } });
 * const store = new GeoSessionStore({ region: 'hk', client: redisHK, transport });
 */
export function createRedisStreamsTransport(options: RedisStreamsTransportOptions): ReplicationTransport {
  return new RedisStreamsTransport(options);
}

class RedisStreamsTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'redis-streams';
  readonly readsOutbox = true;
  private readonly regions: Readonly<Record<string, Redis>>;
  private readonly settings: RedisStreamsSettings;
  private readonly subscriptions = new Set<Subscription>();
  private readonly backlogs = new Map<string, PeerBacklog[]>();
  private closed = false;

  constructor(options: RedisStreamsTransportOptions) {
    super();
    const { regions, settings } = resolveRedisStreamsOptions(options);
    this.regions = regions;
    this.settings = settings;
    this.setState('ready');
  }

  private client(region: string): Redis {
    const client = this.regions[region];
    if (!client) throw new TransportError(`region "${region}" is not among the transport's regions`);
    return client;
  }

  private stream(channel: string, family: InternalFamily, region: string): string {
    return internalKey(channel, family, region, keyPrefixOf(this.client(region)));
  }

  /** Appends envelopes to their origin's published stream (a relay's output; stores write the outbox). */
  async publish(channel: string, envelopes: readonly Envelope[]): Promise<void> {
    if (this.closed) throw new ClosedError('the redis-streams transport');
    try {
      await Promise.all(
        envelopes.map((envelope) =>
          this.client(envelope.origin).xadd(
            this.stream(channel, 'relay', envelope.origin),
            '*',
            ...entryFields(envelope),
          ),
        ),
      );
    } catch (error) {
      if (sizeRefusal(error)) {
        throw new MessageTooLargeError('Redis refused an entry for its size (proto-max-bulk-len)', {
          cause: error,
        });
      }
      throw error instanceof TransportError
        ? error
        : new TransportError('XADD to a stream failed', { cause: error });
    }
  }

  async backlog(channel: string, region: string): Promise<PeerBacklog[]> {
    return this.backlogs.get(`${channel}\u0000${region}`) ?? [];
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new ClosedError('the redis-streams transport');
    const { channel, region, handler } = options;
    this.client(region);
    const source = options.source ?? 'outbox';
    const families: InternalFamily[] =
      source === 'both' ? ['outbox', 'relay'] : source === 'outbox' ? ['outbox'] : ['relay'];
    const others = Object.keys(this.regions).filter((r) => r !== region);
    const unhealthy = new Set<string>();
    const s = this.settings;
    // The subscription exists (and close() reaches it, from the caller's signal or the transport's
    // close) before the first await: closed while starting, it builds no reader, or stops those it built.
    const life = new Lifecycle('the redis-streams subscription');
    const readers: StreamGroupReader[] = [];
    let timer: NodeJS.Timeout | undefined;
    let closing: Promise<void> | undefined;
    const subscription: Subscription = {
      close: () => {
        closing ??= (async () => {
          life.beginClose();
          clearInterval(timer);
          await Promise.all(readers.map((reader) => reader.stop()));
          this.subscriptions.delete(subscription);
          life.markClosed();
        })();
        return closing;
      },
    };
    this.subscriptions.add(subscription);
    const onAbort = () => void subscription.close();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    try {
      const counts = await life.race(
        Promise.all(others.map((origin) => this.readersFor(channel, origin, life.signal))),
      );
      life.check();
      const streamsOf = (origin: string) => this.streamsOf(channel, origin, families, options.outboxes);
      for (const [i, origin] of others.entries()) {
        for (const { family, key, stream } of streamsOf(origin)) {
          for (let n = 0; n < (counts[i] as number); n++) {
            const id = `${origin}/${key}/${n}`;
            readers.push(
              new StreamGroupReader({
                client: this.client(origin),
                key,
                group: region,
                consumerPrefix: region,
                batchSize: Math.min(options.maxBatch ?? s.readBatch, s.readBatch),
                blockMs: s.blockMs,
                claimIdleMs: s.claimIdleMs,
                watchdogMs: s.watchdogMs,
                onBatch: async (entries) => {
                  const envelopes: Envelope[] = [];
                  for (const [entryId, fields] of entries) {
                    if (fields === null) continue; // trimmed after it was claimed
                    const parsed = envelopeOfEntry(origin, entryId, fields, stream);
                    if (isPoison(parsed)) options.onPoison?.(parsed);
                    else envelopes.push(parsed);
                  }
                  if (envelopes.length > 0) await handler(envelopes);
                },
                onError: (error) => {
                  // While closing, a failure is still news (a handover refused by an ACL); once closed, none is.
                  if (life.state === 'closed') return;
                  this.reportError(
                    error instanceof TransportError || error instanceof TransientError
                      ? error
                      : new TransportError(`reading ${key} failed`, { cause: error }),
                  );
                },
                onHealth: (healthy) => {
                  if (healthy) unhealthy.delete(id);
                  else unhealthy.add(id);
                  this.refreshState(unhealthy);
                },
                onGroupLost: () =>
                  this.emit('resync', {
                    region: origin,
                    reason: `the ${family} stream of ${origin} lost its consumer groups (its Redis restarted empty or was flushed): changes it held for ${region} are gone`,
                  }),
              }),
            );
          }
        }
      }
      for (const reader of readers) reader.start();
      const own = new Set(readers.map((r) => r.consumerName));
      const missed = new Set<string>();
      const report = (error: GeoSessionError) => {
        if (!life.stopping) this.reportError(error);
      };
      let busy = false;
      const tend = async () => {
        const ownFamilies: InternalFamily[] = options.relayed === true ? ['relay'] : ['outbox', 'relay'];
        const ownKeys = this.streamsOf(channel, region, ownFamilies, options.outboxes).map((s) => s.key);
        await this.trimOwn(ownKeys, region, others, report, channel);
        for (const origin of others) {
          for (const { key } of streamsOf(origin)) {
            if (life.stopping) return;
            await this.tendRemote(key, origin, region, own, missed, report);
          }
        }
      };
      timer = setInterval(() => {
        if (busy || life.stopping) return;
        busy = true;
        void tend().finally(() => {
          busy = false;
        });
      }, s.trimIntervalMs);
      timer.unref();
      life.markRunning();
      return subscription;
    } catch (error) {
      await subscription.close();
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * How many reads to keep waiting on `origin`'s streams: the `readers` option, or with `'auto'` one per
   * 5 ms of round trip to that region's Redis (the median of three small calls the reader's ACL allows),
   * 4 when it cannot be measured now.
   */
  private async readersFor(channel: string, origin: string, signal: AbortSignal): Promise<number> {
    const setting = this.settings.readers;
    if (setting !== 'auto') return setting;
    const client = this.client(origin);
    const key = this.stream(channel, 'outbox', origin);
    const times: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        const answered = withTimeout(
          client.xinfo('GROUPS', key).catch((error: unknown) => {
            // "no such key" is an answer too: it took a round trip.
            if (!isMissingStream(error)) throw error;
          }),
          2000,
          () => new Error('no answer'),
        );
        // A close does not wait for a region that does not answer.
        await unlessAborted(answered, signal, 'the redis-streams subscription');
        times.push(performance.now() - started);
      }
    } catch {
      return 4;
    }
    const rtt = times.sort((a, b) => a - b)[1] as number;
    return Math.min(16, Math.max(1, Math.ceil(rtt / 5)));
  }

  private refreshState(unhealthy: ReadonlySet<string>): void {
    const behind = [...this.backlogs.values()].some((list) => list.some((b) => b.level !== 'ok'));
    this.setState(unhealthy.size > 0 || behind ? 'degraded' : 'ready');
  }

  /**
   * The streams of `origin` to read, by family: its published (`relay`) stream, and its outboxes (the
   * one, or with `outboxes` every shard's, each with the name its numbers travel under).
   */
  private streamsOf(
    channel: string,
    origin: string,
    families: readonly InternalFamily[],
    outboxes: SubscribeOptions['outboxes'],
  ): { family: InternalFamily; key: string; stream: string }[] {
    return families.flatMap((family) =>
      family === 'outbox' && outboxes
        ? outboxes(origin).map((o) => ({ family, key: o.key, stream: o.stream }))
        : [{ family, key: this.stream(channel, family, origin), stream: origin }],
    );
  }

  /** Trims this region's own streams (`keys`) within the backlog bound and reports each peer's backlog. */
  private async trimOwn(
    keys: readonly string[],
    region: string,
    others: string[],
    report: (error: GeoSessionError) => void,
    channel: string,
  ): Promise<void> {
    const client = this.client(region);
    const reports = new Map<string, PeerBacklog>();
    for (const key of keys) {
      try {
        if ((await client.exists(key)) === 0) continue;
        for (const report of await trimStream(client, key, others, this.settings.bound)) {
          const seen = reports.get(report.region);
          if (!seen || report.entries > seen.entries) reports.set(report.region, report);
        }
      } catch (error) {
        report(new TransportError(`trimming ${key} failed`, { cause: error }));
      }
    }
    const slot = `${channel}\u0000${region}`;
    const previous = new Map((this.backlogs.get(slot) ?? []).map((b) => [b.region, b.level]));
    this.backlogs.set(slot, [...reports.values()]);
    for (const report of reports.values()) {
      if (report.level !== 'ok' && report.level !== previous.get(report.region)) this.reportBacklog(report);
    }
    this.refreshState(new Set());
  }

  /** On a stream this region reads: notices entries it missed, removes its own dead consumers. */
  private async tendRemote(
    key: string,
    origin: string,
    region: string,
    own: ReadonlySet<string>,
    missed: Set<string>,
    report: (error: GeoSessionError) => void,
  ): Promise<void> {
    // Only stream commands on the other region's Redis (XINFO, XGROUP DELCONSUMER), so that a reader
    // needs no more than the ACL in docs/security.md: a stream that does not exist yet fails XINFO
    // with "no such key", which is ignored below.
    const client = this.client(origin);
    try {
      if (await groupMissedEntries(client, key, region)) {
        if (!missed.has(key)) {
          missed.add(key);
          this.emit('resync', {
            region: origin,
            reason: `${key} was trimmed past what ${region} had read (a backlog bound, or the stream was replaced)`,
          });
        }
      } else {
        missed.delete(key);
      }
      await removeIdleConsumers(client, key, region, this.settings.consumerIdleMs, own);
    } catch (error) {
      if (isMissingStream(error)) return;
      report(new TransportError(`tending ${key} failed`, { cause: error }));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.setState('closed');
  }
}
