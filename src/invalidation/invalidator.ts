import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Envelope } from '../contracts/envelope.js';
import { ArgumentError, ClosedError, GeoSessionError, TimeoutError, TransportError } from '../errors.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import { invalidateKeys, tagKeys, tagKeysOnCluster } from '../redis/invalidation-commands.js';
import { type NodeStats, ReplicationNode } from '../replication/node.js';
import type { RejectedEnvelope } from '../replication/pipeline.js';
import { withTimeout } from '../runtime/timeout.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import { invalidateOnCluster } from './cluster.js';
import {
  decodeInvalidation,
  encodeInvalidation,
  INVALIDATE_KIND,
  type Invalidation,
  nameProblem,
} from './codec.js';
import {
  type InvalidatorOptions,
  type ResolvedInvalidatorOptions,
  resolveInvalidatorOptions,
} from './options.js';
import { type FlushEvent, type InvalidatedEvent, InvalidationSubscriber } from './subscriber.js';

/** What one `invalidate()` call did in this region. */
export interface InvalidateResult {
  /** Keys deleted here (tag members included; keys that did not exist are not counted). */
  readonly deleted: number;
  /** Atomic steps (and events sent): the call was split into steps of `maxKeysPerEvent` names. */
  readonly steps: number;
}

/** Options of one `invalidate()` call. */
export interface InvalidateCallOptions {
  /** Tags to invalidate too: every key added to each with `tag()` is deleted, in every region. */
  tags?: readonly string[];
}

/** What {@link Invalidator.stats} reports. */
export interface InvalidatorStats {
  /** `invalidate()` steps run in this process. */
  readonly sent: number;
  /** Invalidations heard on the pub/sub channel (this region's and the others'), and malformed messages. */
  readonly heard: number;
  readonly malformed: number;
  /** Invalidations from other regions applied by this process. */
  readonly applied: number;
  /** Replication: refused envelopes by reason, lag per origin, numbering, resync needs (with a transport). */
  readonly replication: NodeStats | undefined;
}

/** Events of an {@link Invalidator}. */
export interface InvalidatorEventMap {
  /** An invalidation reached this region's Redis (made here or applied from another region). Once per process. */
  invalidated: [event: InvalidatedEvent];
  /** Drop your whole in-process cache: this process may have missed invalidations. */
  flush: [event: FlushEvent];
  /** An envelope from another region was refused (forged, replayed into another channel, malformed...). */
  rejected: [rejected: RejectedEnvelope];
  /** A background failure (always a `GeoSessionError`); the invalidator recovers by itself. */
  error: [error: GeoSessionError];
}

/**
 * Cross-region cache invalidation (seed 000 section 5). `invalidate(keys, { tags })` deletes the keys,
 * and every key of the tags, in this region's Redis at once (one Lua call that deletes and appends the
 * event to the invalidator's outbox atomically; on a Redis Cluster the event first, then the deletes slot
 * by slot: ./cluster.ts) and in every other region through the transport: at
 * least once, idempotently (deleting twice changes nothing), and nothing lost across a partition (the
 * outbox keeps it until every region consumed it). Every process of every region hears each invalidation
 * once (`invalidated`), so in-process caches drop their entries too.
 */
export class Invalidator extends EventEmitter<InvalidatorEventMap> {
  /** This region. */
  readonly region: string;
  /** The invalidator's channel (keyspace). */
  readonly channel: string;
  private readonly options: ResolvedInvalidatorOptions;
  private readonly keys: KeySpace;
  private readonly pubsub: string;
  private readonly subscriber: InvalidationSubscriber;
  private readonly node: ReplicationNode | undefined;
  private readonly starting: Promise<void>;
  private closing: Promise<void> | undefined;
  private readonly counters = { sent: 0, heard: 0, malformed: 0, applied: 0 };

  constructor(input: InvalidatorOptions) {
    super();
    const options = resolveInvalidatorOptions(input);
    this.options = options;
    this.region = options.region;
    this.channel = options.channel;
    const { client } = options;
    this.keys = createKeySpace(options.channel, keyPrefixOf(client));
    this.pubsub = `${keyPrefixOf(client)}${options.channel}|invalidated`;
    this.subscriber = new InvalidationSubscriber({
      client,
      channel: this.pubsub,
      onInvalidated: (event) => {
        this.counters.heard++;
        this.emit('invalidated', event);
      },
      onFlush: (event) => this.emit('flush', event),
      onMalformed: () => {
        this.counters.malformed++;
      },
      onError: (error) => this.report(error),
    });
    if (options.transport) {
      this.node = new ReplicationNode({
        region: options.region,
        channel: options.channel,
        client: client as Redis,
        keys: this.keys,
        transport: options.transport,
        sealer: options.sealer,
        operationTimeoutMs: options.operationTimeoutMs,
        deadLetterLimit: options.deadLetterLimit,
        gapGraceMs: options.gapGraceMs,
        heartbeatMs: options.heartbeatMs,
        now: options.clock,
        onError: (error) => this.report(error),
        onRejected: (rejected) => {
          if (this.listenerCount('rejected') > 0) this.emit('rejected', rejected);
        },
      });
      this.node.register<Invalidation>(INVALIDATE_KIND, {
        decode: decodeInvalidation,
        apply: (items, envelopes) => this.applyRemote(items, envelopes),
      });
    }
    this.starting = this.start();
    // ready() reports a failed start; the background start must not be an unhandled rejection.
    this.starting.catch((error: unknown) => this.report(error));
  }

  private async start(): Promise<void> {
    await this.subscriber.start();
    if (this.closing) throw new ClosedError('the invalidator was closed while starting');
    await this.node?.start();
  }

  /** Resolves once this process hears invalidations and receives the other regions'. */
  ready(): Promise<void> {
    return this.starting;
  }

  /** True while this process hears invalidations (its pub/sub connection is subscribed). */
  get listening(): boolean {
    return this.subscriber.listening;
  }

  /**
   * Deletes `keys`, and every key of `options.tags`, here at once and in every other region through the
   * transport. Empty lists do nothing. Past `maxKeysPerEvent` names the call is split into steps, each
   * atomic and sent on its own. Rejects with an `ArgumentError` for a name that is not a non-empty
   * string, a `TimeoutError` when the local Redis does not answer (the outcome is then unknown: call it
   * again, deleting twice changes nothing), a `ClosedError` after `close()`. On a Redis Cluster a step
   * is not one atomic call: its event is appended for the other regions first, then the keys are deleted
   * slot by slot (failed commands tried again within `operationTimeoutMs`); it rejects when either is
   * not done, and calling it again is safe.
   */
  async invalidate(
    keys: readonly string[] | string,
    options: InvalidateCallOptions = {},
  ): Promise<InvalidateResult> {
    if (this.closing) throw new ClosedError('the invalidator is closed');
    const keyList = typeof keys === 'string' ? [keys] : keys;
    if (!Array.isArray(keyList)) throw new ArgumentError('invalidate() takes a key or a list of keys');
    const tags = options?.tags ?? [];
    if (!Array.isArray(tags)) throw new ArgumentError('invalidate(keys, { tags }) takes a list of tags');
    checkNames(keyList, 'key', 'invalidate()');
    checkNames(tags, 'tag', 'invalidate()');
    const { client, region, maxKeysPerEvent, operationTimeoutMs: ms } = this.options;
    const { outbox, counter } = this.appendKeys();
    const mode = this.node ? 'send' : 'local';
    let deleted = 0;
    let steps = 0;
    // Tags first, then keys, in steps of at most maxKeysPerEvent names.
    const names = [
      ...tags.map((t) => ({ tag: true, name: t })),
      ...keyList.map((k) => ({ tag: false, name: k })),
    ];
    for (let i = 0; i < names.length; i += maxKeysPerEvent) {
      const slice = names.slice(i, i + maxKeysPerEvent);
      const step: Invalidation = {
        tags: slice.filter((n) => n.tag).map((n) => n.name),
        keys: slice.filter((n) => !n.tag).map((n) => n.name),
      };
      const work = this.onCluster
        ? this.invalidateOnCluster(step)
        : invalidateKeys(client, {
            mode,
            outbox,
            counter,
            tagSets: step.tags.map((t) => this.keys.tag(t)),
            keys: step.keys,
            pubsub: this.pubsub,
            region,
            body: encodeInvalidation(step),
          });
      // On a Cluster the step bounds its own parts (./cluster.ts retries until its deadline).
      const reply = this.onCluster
        ? await work
        : await withTimeout(work, ms, () => new TimeoutError('invalidating keys', ms));
      deleted += reply.deleted;
      steps++;
      this.counters.sent++;
    }
    return { deleted, steps };
  }

  /**
   * Adds `keys` to `tag` in this region, so that `invalidate([], { tags: [tag] })`, here or in any
   * region, deletes them. Tags are kept per region (each region tags what it cached); the tag lives as
   * long as its longest-lived key, and at least `tagLifetimeMs`. Resolves to how many keys were new to
   * the tag.
   */
  async tag(tag: string, keys: readonly string[] | string): Promise<number> {
    if (this.closing) throw new ClosedError('the invalidator is closed');
    checkNames([tag], 'tag', 'tag()');
    const keyList = typeof keys === 'string' ? [keys] : keys;
    if (!Array.isArray(keyList)) throw new ArgumentError('tag() takes a key or a list of keys');
    checkNames(keyList, 'key', 'tag()');
    const { client, tagLifetimeMs, operationTimeoutMs: ms } = this.options;
    let added = 0;
    for (let i = 0; i < keyList.length; i += 1000) {
      const slice = keyList.slice(i, i + 1000);
      const set = this.keys.tag(tag);
      added += await withTimeout(
        this.onCluster
          ? tagKeysOnCluster(client, set, slice, tagLifetimeMs, keyPrefixOf(client))
          : tagKeys(client, set, slice, tagLifetimeMs),
        ms,
        () => new TimeoutError('tagging keys', ms),
      );
    }
    return added;
  }

  /** On a Redis Cluster (see ./cluster.ts). */
  private get onCluster(): boolean {
    return (this.options.client as { isCluster?: boolean }).isCluster === true;
  }

  /**
   * One step on a Redis Cluster. With a transport the event is appended to the outbox first (its one
   * slot, atomically): once that resolved the other regions get it whatever happens here. Then the
   * keys are deleted slot by slot and the event published (./cluster.ts). A failure of either rejects
   * the call (the caller calls again: appending twice only sends a duplicate the others apply as a
   * no-op), so no region is left stale by a step that reported success.
   */
  private async invalidateOnCluster(step: Invalidation): Promise<{ deleted: number }> {
    const { region } = this.options;
    const body = encodeInvalidation(step);
    await this.node?.append(INVALIDATE_KIND, [body]);
    const deleted = await this.deleteOnCluster(step, `${region} ${this.options.clock()} 0\n${body}`);
    return { deleted };
  }

  /** Deletes a step's keys slot by slot and publishes `message`, within `operationTimeoutMs`. */
  private deleteOnCluster(step: Invalidation, message: string): Promise<number> {
    const { client, operationTimeoutMs: ms } = this.options;
    const work = invalidateOnCluster(client, {
      tagSets: step.tags.map((t) => this.keys.tag(t)),
      keys: step.keys,
      keyPrefix: keyPrefixOf(client),
      pubsub: this.pubsub,
      message,
      deadline: Date.now() + ms,
    });
    return withTimeout(work, ms, () => new TimeoutError('invalidating keys slot by slot', ms));
  }

  /** The outbox keys invalidate.lua takes (the node's, or the same names without a transport). */
  private appendKeys(): { outbox: string; counter: string } {
    if (this.node) return this.node.appendKeys();
    const { region } = this.options;
    return { outbox: this.keys.internal('outbox', region), counter: this.keys.sequence(region) };
  }

  /** Counters, and replication's (refusals by reason, lag, numbering) with a transport. */
  stats(): InvalidatorStats {
    return { ...this.counters, replication: this.node?.stats() };
  }

  /**
   * Applies invalidations from other regions: one atomic call each, pipelined; on a Redis Cluster slot
   * by slot (./cluster.ts). A failure rejects the batch, which is delivered again (deleting twice
   * changes nothing).
   */
  private async applyRemote(items: Invalidation[], envelopes: Envelope[]): Promise<void> {
    const { client, region } = this.options;
    const { outbox, counter } = this.appendKeys();
    await Promise.all(
      items.map((item, i) => {
        const envelope = envelopes[i] as Envelope;
        const body = encodeInvalidation(item);
        if (this.onCluster) {
          const lag = Math.max(0, Math.round((this.node as ReplicationNode).now() - envelope.time));
          return this.deleteOnCluster(item, `${envelope.origin} ${envelope.time} ${lag}\n${body}`);
        }
        return invalidateKeys(client, {
          mode: 'apply',
          outbox,
          counter,
          tagSets: item.tags.map((t) => this.keys.tag(t)),
          keys: item.keys,
          pubsub: this.pubsub,
          region,
          body,
          origin: { region: envelope.origin, time: envelope.time },
        });
      }),
    );
    this.counters.applied += items.length;
  }

  private report(error: unknown): void {
    if (this.closing && error instanceof ClosedError) return;
    const reported =
      error instanceof GeoSessionError
        ? error
        : new TransportError(error instanceof Error ? error.message : String(error), { cause: error });
    if (this.listenerCount('error') > 0) this.emit('error', reported);
  }

  /**
   * Stops receiving and hearing invalidations, within `operationTimeoutMs` + 1 s whatever the servers
   * do. What was not applied yet stays in the other regions' outboxes and is delivered again. The
   * client passed in is left open.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([this.node?.close(this.options.operationTimeoutMs + 1000), this.subscriber.close()]);
    })();
    return this.closing;
  }
}

/** Creates an {@link Invalidator}; throws a `ConfigError` naming the option at fault. */
export function createInvalidator(options: InvalidatorOptions): Invalidator {
  return new Invalidator(options);
}

function checkNames(names: readonly unknown[], what: 'key' | 'tag', call: string): void {
  for (const name of names) {
    const problem = nameProblem(name);
    if (problem) throw new ArgumentError(`${call} was given a ${what} name that ${problem}`);
  }
}
