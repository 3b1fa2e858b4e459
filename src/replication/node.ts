import { type Envelope, KIND_PATTERN } from '../contracts/envelope.js';
import type { PeerBacklog, Subscription } from '../contracts/transport.js';
import { ClosedError, EventError, type GeoSessionError, ResyncNeededError, TimeoutError } from '../errors.js';
import type { SessionOutbox } from '../keys.js';
import { appendEnvelopes } from '../redis/commands.js';
import { Lifecycle, type LifecycleState } from '../runtime/lifecycle.js';
import { settledWithin, withTimeout } from '../runtime/timeout.js';
import { DeadLetters } from './dead-letters.js';
import { registerHeartbeat } from './heartbeat.js';
import { asReported, NodeHousekeeping } from './node-housekeeping.js';
import { type ReplicationNodeOptions, type ResolvedNodeOptions, resolveNodeOptions } from './node-options.js';
import { type NodeStats, snapshotStats } from './node-stats.js';
import { type KindHandler, Pipeline } from './pipeline.js';
import { RedisClock } from './redis-clock.js';
import { OutboxRelay } from './relay.js';
import { type ResyncCause, ResyncState } from './resync-state.js';
import { SEALED_KIND } from './sealed-batch.js';
import { describeGap, HEARTBEAT_KIND, type SequenceGap, SequenceTracker } from './sequence.js';

export type { ReplicationNodeOptions } from './node-options.js';
export type { NodeStats } from './node-stats.js';

/** Kinds the node itself uses, which no caller may register: `sealed`, `heartbeat`. */
export const RESERVED_KINDS: readonly string[] = [SEALED_KIND, HEARTBEAT_KIND];

/** The keys a Lua script must take (as KEYS) to append an envelope with `append_envelope` (common.lua). */
export interface AppendKeys {
  /** This region's outbox stream. */
  readonly outbox: string;
  /** Its sequence counter (same cluster slot as the outbox). */
  readonly counter: string;
}

/**
 * A replication node: moves envelopes of any registered kind from this region to every other, at least
 * once, in order per origin (a batch delivered again may come after newer ones: docs/replication.md,
 * "Delivery"), sealed when a sealer is given, with nothing lost silently. It owns what the
 * session store's replication did for sessions and is kind-agnostic (docs/replication.md, "Other kinds
 * of events"):
 * - the outbox in the local Redis, whose entries are numbered by one counter (`append`, or a module's own
 *   script calling `append_envelope` with {@link appendKeys}), so every other region tells a gap from a
 *   duplicate ({@link SequenceTracker}), and a heartbeat announcing the last number when quiet;
 * - the relay that publishes the outbox for broker transports, or to seal it;
 * - the subscription and the {@link Pipeline} (open, check sealing, drop duplicates and its own origin,
 *   decode, dispatch by kind), with poison refused, counted and dead-lettered;
 * - the resync state (gaps, backlog bounds, trimmed streams, a Redis that lost its data), the clock
 *   lag is measured with, and the lifecycle (`start`, `close`).
 *
 * Kinds are registered before `start()`; an envelope of a kind no handler takes is refused as
 * `unknown-kind`. Every region must run a node on the same channel with the same kinds.
 */
export class ReplicationNode {
  readonly pipeline: Pipeline;
  /** The options, defaults filled in. */
  readonly options: ResolvedNodeOptions;
  /** One relay per outbox (the unsharded one, and each session shard's), for a broker or to seal. */
  private readonly relays: OutboxRelay[] = [];
  /** The outboxes of this region: the unsharded one first, then the session shards' (src/keys.ts). */
  private readonly outboxes: SessionOutbox[];
  private readonly state: ResyncState;
  private readonly deadLetters: DeadLetters;
  private readonly sequences: SequenceTracker;
  /** The clock lag is measured with: the local Redis's, not the host's. */
  private readonly clock: RedisClock;
  private readonly outboxKey: string;
  private subscription: Subscription | undefined;
  private readonly applied: Record<string, number> = {};
  private readonly life = new Lifecycle('replication');
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly detach: () => void;
  /** The periodic work, from the end of startup to close (src/replication/node-housekeeping.ts). */
  private readonly housekeeping: NodeHousekeeping;

  /** Throws a `ConfigError` naming the option at fault (see {@link ReplicationNodeOptions}). */
  constructor(input: ReplicationNodeOptions) {
    const options = resolveNodeOptions(input);
    this.options = options;
    const { client, keys, region, transport, sealer } = options;
    this.outboxKey = keys.internal('outbox', region);
    this.outboxes = [{ key: this.outboxKey, shard: undefined, stream: region }];
    if (keys.shards > 0) this.outboxes.push(...keys.sessionOutboxes(region));
    const onError = (error: GeoSessionError) => this.report(error);
    const report = (error: unknown) => this.report(asReported(error));
    this.clock = new RedisClock(client, options.now);
    this.deadLetters = new DeadLetters(
      client,
      keys.internal('dead', region),
      options.deadLetterLimit,
      report,
    );
    this.state = new ResyncState(
      client,
      keys.internal('state', region),
      region,
      (other, need) => onError(new ResyncNeededError(other, need.reason)),
      report,
      keys.resync(region),
    );
    this.sequences = new SequenceTracker({
      client,
      keys,
      region,
      graceMs: options.gapGraceMs,
      timeoutMs: options.operationTimeoutMs,
      onGap: (gap) => this.onGap(gap),
      onHealed: (origin) => this.onHealed(origin),
      onLateEpoch: (origin) =>
        this.state.mark(
          origin,
          `changes ${origin} made before its Redis lost its data arrived here after it restarted: it may not hold them (resync ${origin} from ${region})`,
          { cause: 'late' },
        ),
    });
    this.housekeeping = new NodeHousekeeping({
      options,
      outboxes: this.outboxes,
      state: this.state,
      sequences: this.sequences,
      clock: this.clock,
      life: this.life,
      report: onError,
    });
    this.pipeline = new Pipeline({
      region,
      channel: options.channel,
      transport,
      sealer,
      acceptUnsealed: options.acceptUnsealed,
      sealOutgoing: !options.sendUnsealed,
      deadLetters: this.deadLetters,
      sequences: this.sequences,
      now: () => this.clock.now(),
      onError,
      onRejected: options.onRejected,
    });
    registerHeartbeat(this.pipeline);
    // A relay reads the outbox for a broker, or to seal what it holds.
    const relayed = !transport.readsOutbox || (sealer && !options.sendUnsealed);
    for (const outbox of relayed ? this.outboxes : []) {
      const relay = new OutboxRelay({
        client,
        region,
        outboxKey: outbox.key,
        stream: outbox.stream,
        publish: (envelopes: Envelope[]) => this.pipeline.publish(envelopes),
        onPoison: (poison) => this.pipeline.refusePoison(poison),
        onError: report,
        onBacklog: (b) => this.housekeeping.onBacklog(b),
        batchSize: 500,
        maxInFlight: options.relayInFlight,
        bound: options.outboxBound,
        consumerIdleMs: options.consumerIdleMs,
        trimIntervalMs: 5000,
        // While unsealed envelopes are accepted, regions that do not seal yet may read the outbox itself.
        keepReaders: transport.readsOutbox && options.acceptUnsealed,
      });
      this.relays.push(relay);
    }
    const onTransportError = (error: Error) => report(error);
    const onBacklog = (b: PeerBacklog) => this.housekeeping.onBacklog(b);
    const onResync = (notice: { region: string; reason: string }) =>
      this.state.mark(notice.region, notice.reason, { cause: 'trimmed' });
    transport.on('error', onTransportError);
    transport.on('backlog', onBacklog);
    transport.on('resync', onResync);
    this.detach = () => {
      transport.off('error', onTransportError);
      transport.off('backlog', onBacklog);
      transport.off('resync', onResync);
    };
  }

  /** `starting`, `running` once start() subscribed, `closing` and `closed` (see {@link Lifecycle}). */
  get lifecycle(): LifecycleState {
    return this.life.state;
  }

  /**
   * Routes envelopes of `kind` to `handler` (decode each, apply a batch; see {@link KindHandler}).
   * Call it before {@link start}. Throws for a kind already registered, a reserved one
   * ({@link RESERVED_KINDS}) or one outside `[a-z0-9-]{1,32}`.
   */
  register<T>(kind: string, handler: KindHandler<T>): void {
    if (!KIND_PATTERN.test(kind))
      throw new EventError(`kind ${JSON.stringify(kind)} is not 1 to 32 of a-z, 0-9, -`);
    if (RESERVED_KINDS.includes(kind)) throw new EventError(`kind ${kind} is reserved`);
    if (this.starting)
      throw new EventError(`kind ${kind} registered after start(): register every kind first`);
    this.pipeline.register<T>(kind, {
      decode: (envelope) => handler.decode(envelope),
      apply: async (items, envelopes) => {
        await handler.apply(items, envelopes);
        this.applied[kind] = (this.applied[kind] ?? 0) + items.length;
      },
    });
  }

  /**
   * Appends one envelope of `kind` per body to this region's outbox, numbered, in one atomic call
   * (src/redis/scripts/append.lua); every other region receives them in this order. Resolves with their
   * ids. A body is the kind's own encoding (text, any characters). Rejects with Redis's error (which may
   * be transient: the caller retries or reports) or a `TimeoutError` past `operationTimeoutMs` (after
   * which the envelopes may or may not have been appended: a retry can send them twice, under new numbers,
   * so handlers must be idempotent). Appending works whether or not the node is started (the outbox keeps
   * what is appended until it is sent).
   */
  append(kind: string, bodies: readonly string[]): Promise<string[]> {
    if (!KIND_PATTERN.test(kind) || RESERVED_KINDS.includes(kind)) {
      return Promise.reject(new EventError(`cannot append envelopes of kind ${JSON.stringify(kind)}`));
    }
    if (bodies.length === 0) return Promise.resolve([]);
    const { client, region, operationTimeoutMs: ms } = this.options;
    return withTimeout(
      appendEnvelopes(client, this.outboxKey, { region, kind, bodies }),
      ms,
      () => new TimeoutError(`appending ${kind} envelopes to the outbox`, ms),
    );
  }

  /**
   * The keys a module's own Lua script takes to append envelopes atomically with its own writes, by
   * calling `append_envelope(outbox, counter, region, kind, body)` from includes/common.lua. Both keys
   * share a cluster slot; the module's other keys must be in that slot too on a Redis Cluster.
   */
  appendKeys(): AppendKeys {
    return { outbox: this.outboxKey, counter: this.options.keys.sequence(this.options.region) };
  }

  /**
   * The local Redis's clock, epoch ms (the host's clock corrected by the offset measured at start and
   * every few seconds): what lag is measured with. A handler's lag is `node.now() - envelope.time`.
   */
  now(): number {
    return this.clock.now();
  }

  /**
   * Records that this region and `origin` may hold different data (shown in stats and status, reported
   * once as a `ResyncNeededError`): for handlers that detect divergence themselves.
   */
  markResync(origin: string, reason: string, cause: ResyncCause): void {
    this.state.mark(origin, reason, { cause });
  }

  /**
   * A failure to report: dropped once closed (close() abandoned that work), and so is a `ClosedError`
   * once closing began (a step of startup or a batch cut short by the close).
   */
  private report(error: GeoSessionError): void {
    if (this.life.state === 'closed') return;
    if (this.life.stopping && error instanceof ClosedError) return;
    this.options.onError(error);
  }

  private onGap(gap: SequenceGap): void {
    const missed = {
      epoch: gap.epoch,
      from: gap.from,
      to: gap.to,
      ...(gap.stream === gap.origin ? {} : { stream: gap.stream }),
    };
    this.state.mark(gap.origin, describeGap(gap), { cause: 'gap', missed });
  }

  /**
   * Late arrivals filled every gap of `origin` (of each of its outboxes): a need recorded for a gap
   * alone is cleared.
   */
  private onHealed(origin: string): void {
    if (this.state.snapshot()[origin]?.cause !== 'gap') return;
    if (this.sequences.hasGaps(origin)) return;
    this.state.clear(origin).catch((error: unknown) => this.report(asReported(error)));
  }

  /**
   * Subscribes, starts the relay and loads the resync state. Resolves once envelopes can flow. A local
   * Redis that is away at start delays only the resync state, which is loaded again later. Rejects with
   * a `ClosedError` when close() was called before it finished; whatever it had made by then is
   * released (the subscription is closed, the relay never runs).
   */
  start(): Promise<void> {
    this.starting ??= this.run();
    return this.starting;
  }

  private async run(): Promise<void> {
    this.life.check();
    const loaded = this.housekeeping.loadState();
    const { transport, sealer, acceptUnsealed } = this.options;
    const source = !transport.readsOutbox
      ? 'published'
      : !sealer
        ? 'outbox'
        : acceptUnsealed
          ? 'both'
          : 'published';
    const synced = this.housekeeping.syncClock();
    const { keys } = this.options;
    const subscription = await this.pipeline.subscribe({
      source,
      relayed: this.relays.length > 0,
      signal: this.life.signal,
      // With outbox shards a transport that reads outboxes reads every one of them.
      ...(keys.shards > 0
        ? {
            outboxes: (region: string) => [
              { key: keys.internal('outbox', region), stream: region },
              ...keys.sessionOutboxes(region),
            ],
          }
        : {}),
    });
    if (this.life.stopping) {
      // Closed while subscribing, by a transport that finished anyway: this subscription is ours to close.
      await subscription.close();
      this.life.check();
    }
    this.subscription = subscription;
    for (const relay of this.relays) relay.start();
    this.housekeeping.start();
    this.life.markRunning();
    await this.life.race(Promise.all([loaded, synced]));
  }

  /** A snapshot of the node's counters, lag and health (each call a fresh copy). */
  stats(): NodeStats {
    return snapshotStats({
      transport: this.options.transport.state,
      transportName: this.options.transport.name,
      applied: this.applied,
      pipeline: this.pipeline.stats,
      needsResync: this.state.snapshot(),
      backlog: this.housekeeping.backlog,
      sequences: this.sequences,
    });
  }

  /** The newest dead letters, newest first. */
  deadLettersLatest(count: number) {
    return this.deadLetters.latest(count);
  }

  /**
   * Stops the relay and the subscription within `limitMs`, whatever the servers do: batches not applied
   * or not confirmed by then stay unacknowledged and are delivered again (what the stream readers left
   * pending is handed over to their group's next reader). Called during startup, it abandons startup at
   * its next step (a subscribe still waiting on a region or broker is aborted) and releases what
   * startup made. No error is reported once it resolved. The transport and the client stay open.
   */
  close(limitMs: number = this.options.operationTimeoutMs + 1000): Promise<void> {
    if (this.closing) return this.closing;
    this.life.beginClose();
    this.housekeeping.stop();
    this.detach();
    const deadline = Date.now() + limitMs;
    this.closing = (async () => {
      if (this.starting) await settledWithin(this.starting, limitMs);
      const left = Math.max(0, deadline - Date.now());
      const stopping = Promise.all([
        ...this.relays.map((relay) => relay.stop(left)),
        this.subscription?.close(),
      ]);
      await settledWithin(stopping, left);
      this.life.markClosed();
    })();
    return this.closing;
  }
}
