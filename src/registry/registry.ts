import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ClosedError } from '../errors.js';
import {
  LeaseResult,
  leasePod,
  liveConnections,
  type OutboxKeys,
  type PodIdentity,
  RegisterResult,
  registerConnection,
  unregisterConnections,
} from '../redis/registry-commands.js';
import { sessionIdProblem } from '../validation/ids.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import { registryIdProblem } from './ids.js';
import { type RegistryKeys, registryKeys } from './keys.js';
import {
  type ConnectionRegistryOptions,
  type ResolvedRegistryOptions,
  resolveRegistryOptions,
} from './options.js';
import { RegistryReplication, type RegistryReplicationStats } from './replication.js';

type ReplicationNodeStats = RegistryReplication['node']['stats'];

/** One live connection in a {@link PodConnections} group. */
export interface RegisteredConnection {
  readonly connectionId: string;
  /** The session it was registered with, when one was given. */
  readonly sid?: string;
}

/** The live connections of one user held by one pod: what a push sender sends one request for. */
export interface PodConnections {
  readonly region: string;
  readonly pod: string;
  readonly connections: RegisteredConnection[];
}

/** Options of {@link ConnectionRegistry.register}. */
export interface RegisterOptions {
  /** The session the connection was authenticated with. */
  readonly sid?: string;
}

/** Events of a {@link ConnectionRegistry}. */
export interface ConnectionRegistryEvents {
  /**
   * A background failure: a lease renewal that failed (it is tried again at the next renewal), or the
   * pod claimed by another process with the same `pod` id (this registry's connections are then dead).
   */
  error: [error: Error];
}

/** The longest remote lease expiry accepted ahead of this region's clock: the longest lease and a minute. */
const MAX_REMOTE_LEASE_AHEAD_MS = 86_400_000 + 60_000;

/** Longest wait for the replication node to start before the pod is claimed, ms. */
const START_WAIT_MS = 5_000;

/** Connections removed per script call by `close()`. */
const CLOSE_CHUNK = 256;

/** A new incarnation: start time (15 digits, so they order as text) and 64 random bits. */
function newIncarnation(): string {
  return `${String(Date.now()).padStart(15, '0')}.${randomBytes(8).toString('hex')}`;
}

function checkId(operation: string, what: string, value: unknown): asserts value is string {
  const problem = registryIdProblem(value);
  if (problem !== undefined)
    throw new TypeError(`geosession: ${operation} refused a ${what} that ${problem}`);
}

/**
 * Which pod holds each live connection of a user (seed 001): pods register their connections, a sender
 * asks {@link ConnectionRegistry.podsOf} and sends one request per pod. Every call is one script on the
 * local Redis. Each registry process holds a lease on its pod, renewed on a timer; when the lease lapses
 * (the process died, or hung longer than `leaseMs`) its connections are no longer returned, and the
 * scripts delete them as they meet them.
 */
export class ConnectionRegistry extends EventEmitter<ConnectionRegistryEvents> {
  /** The region and pod this registry speaks for. */
  readonly region: string;
  readonly pod: string;
  private readonly options: ResolvedRegistryOptions;
  private readonly keys: RegistryKeys;
  private readonly who: PodIdentity;
  /** This process's connections: connection id to user id and session id. */
  private readonly mine = new Map<string, { userId: string; sid: string }>();
  private readonly ready: Promise<void>;
  private readonly timer: NodeJS.Timeout;
  private renewing = false;
  /** The pod was claimed (until then, renewals claim it). */
  private claimed = false;
  private lost = false;
  private closing: Promise<void> | undefined;
  private readonly replication: RegistryReplication | undefined;
  /** With replication: where the scripts append their events. */
  private readonly append: OutboxKeys | undefined;

  constructor(input: ConnectionRegistryOptions) {
    super();
    this.options = resolveRegistryOptions(input);
    const { client, region, pod, prefix, renewMs, transport, sealer, channel } = this.options;
    this.region = region;
    this.pod = pod;
    // On a Cluster with a transport every script also appends to the outbox: the keys take its slot.
    const onCluster = (client as { isCluster?: boolean }).isCluster === true;
    const outboxSlot = onCluster && transport !== undefined ? channel : undefined;
    this.keys = registryKeys(prefix, keyPrefixOf(client), outboxSlot);
    this.who = { region, pod, inc: newIncarnation() };
    if (transport !== undefined) {
      this.replication = new RegistryReplication({
        client,
        region,
        channel,
        transport,
        sealer,
        keys: this.keys,
        maxAheadMs: MAX_REMOTE_LEASE_AHEAD_MS,
        onError: (error) => this.report(error),
      });
      this.append = this.replication.outbox;
    }
    // The node starts first: what the claim appends must find its relay and readers in place.
    // A transport that cannot start (a broker away) delays the local registry by START_WAIT_MS at most.
    const started = this.replication?.start().catch((error: unknown) => this.report(error));
    const bounded =
      started &&
      Promise.race([started, new Promise<void>((resolve) => setTimeout(resolve, START_WAIT_MS).unref())]);
    this.ready = Promise.resolve(bounded)
      .then(() => leasePod(client, this.keys, this.who, this.options.leaseMs, true, this.append))
      .then(() => {
        this.claimed = true;
      });
    // A failed claim is retried by the first renewal; calls in the meantime report it.
    this.ready.catch((error: unknown) => this.report(error));
    this.timer = setInterval(() => void this.renew(), renewMs);
    this.timer.unref();
  }

  /** The number of connections this process has registered. */
  get size(): number {
    return this.mine.size;
  }

  /**
   * Registers a live connection of `userId` on this pod (again: its session id is updated). A
   * connection id is registered to one user at a time: unregister it before registering it for another.
   * Resolves to true when it was new.
   */
  async register(userId: string, connectionId: string, options: RegisterOptions = {}): Promise<boolean> {
    checkId('register', 'user id', userId);
    checkId('register', 'connection id', connectionId);
    const sid = options?.sid ?? '';
    if (options?.sid !== undefined) {
      const problem = sessionIdProblem(options.sid);
      if (problem !== undefined)
        throw new TypeError(`geosession: register refused a session id that ${problem}`);
    }
    this.usable('register');
    const held = this.mine.get(connectionId);
    if (held !== undefined && held.userId !== userId) {
      throw new TypeError(
        `geosession: register refused connection ${JSON.stringify(connectionId)}: it is registered to another user (unregister it first)`,
      );
    }
    this.mine.set(connectionId, { userId, sid });
    if (!this.claimed) await this.ready.catch(() => undefined);
    const result = await registerConnection(
      this.options.client,
      { ...this.keys, user: this.keys.user(userId) },
      this.who,
      { userId, connectionId, sid, leaseMs: this.options.leaseMs },
      this.append,
    ).catch((error: unknown) => {
      // Not known to be registered: forget it unless it was registered before this call.
      if (held === undefined && this.mine.get(connectionId)?.userId === userId)
        this.mine.delete(connectionId);
      throw error;
    });
    if (result === RegisterResult.Lost) this.onLost();
    return result === RegisterResult.Registered;
  }

  /** Removes a connection this pod registered; resolves to false when it was not registered here. */
  async unregister(connectionId: string): Promise<boolean> {
    checkId('unregister', 'connection id', connectionId);
    this.usable('unregister');
    const held = this.mine.get(connectionId);
    if (held === undefined) return false;
    this.mine.delete(connectionId);
    if (!this.claimed) await this.ready.catch(() => undefined);
    const items = [{ user: this.keys.user(held.userId), userId: held.userId, connectionId }];
    const { client } = this.options;
    return (await unregisterConnections(client, this.keys, this.who, items, false, this.append)) > 0;
  }

  /**
   * The live connections of `userId`, grouped by pod, in one round trip to the local Redis. Connections
   * of pods whose lease lapsed are left out (and deleted).
   */
  async podsOf(userId: string): Promise<PodConnections[]> {
    checkId('podsOf', 'user id', userId);
    this.usable('podsOf');
    const live = await liveConnections(this.options.client, { ...this.keys, user: this.keys.user(userId) });
    const groups = new Map<string, PodConnections>();
    for (const c of live) {
      const key = `${c.region}|${c.pod}`;
      let group = groups.get(key);
      if (group === undefined) {
        group = { region: c.region, pod: c.pod, connections: [] };
        groups.set(key, group);
      }
      group.connections.push(
        c.sid === '' ? { connectionId: c.connectionId } : { connectionId: c.connectionId, sid: c.sid },
      );
    }
    return [...groups.values()];
  }

  /**
   * Stops renewing, removes this pod's connections and ends its lease. The client is left open.
   * Idempotent; other calls afterwards reject with a `ClosedError`.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.ready.catch(() => undefined);
    const items = [...this.mine].map(([connectionId, held]) => ({
      user: this.keys.user(held.userId),
      userId: held.userId,
      connectionId,
    }));
    this.mine.clear();
    try {
      if (this.lost) return;
      const { client } = this.options;
      for (let i = 0; i < items.length; i += CLOSE_CHUNK) {
        const chunk = items.slice(i, i + CLOSE_CHUNK);
        const last = i + CLOSE_CHUNK >= items.length;
        await unregisterConnections(client, this.keys, this.who, chunk, last, this.append);
      }
      if (items.length === 0) await unregisterConnections(client, this.keys, this.who, [], true, this.append);
    } finally {
      // The node sends what the scripts appended (the close included) before it stops.
      await this.replication?.close();
    }
  }

  /**
   * Counters of the registry's replication (remote events applied, unchanged, refused for their lease
   * expiry) and of its replication node (refused envelopes by reason, duplicates, lag, resync needs);
   * `undefined` without a transport.
   */
  replicationStats(): (RegistryReplicationStats & { node: ReturnType<ReplicationNodeStats> }) | undefined {
    const replication = this.replication;
    if (replication === undefined) return undefined;
    return { ...replication.stats, node: replication.node.stats() };
  }

  private usable(operation: string): void {
    if (this.closing !== undefined) throw new ClosedError(`the connection registry (${operation})`);
  }

  /** One lease renewal; after a lapse, registers this process's connections again. */
  private async renew(): Promise<void> {
    if (this.renewing || this.closing !== undefined || this.lost) return;
    this.renewing = true;
    try {
      const { client, leaseMs } = this.options;
      const claim = !this.claimed;
      const { result } = await leasePod(client, this.keys, this.who, leaseMs, claim, this.append);
      this.claimed = true;
      if (result === LeaseResult.Lost) this.onLost();
      else if (result === LeaseResult.Relapsed) {
        await Promise.all(
          [...this.mine].map(([connectionId, held]) =>
            registerConnection(
              client,
              { ...this.keys, user: this.keys.user(held.userId) },
              this.who,
              { userId: held.userId, connectionId, sid: held.sid, leaseMs },
              this.append,
            ),
          ),
        );
      }
    } catch (error) {
      this.report(error);
    } finally {
      this.renewing = false;
    }
  }

  private onLost(): void {
    if (this.lost) return;
    this.lost = true;
    clearInterval(this.timer);
    this.report(
      new Error(
        `geosession: pod ${JSON.stringify(this.pod)} of region ${this.region} was claimed by another registry process: this one's connections are no longer listed`,
      ),
    );
  }

  private report(error: unknown): void {
    // What the replication's own shutdown stops (a subscription closing under a batch) is no failure.
    if (this.closing !== undefined && error instanceof ClosedError) return;
    if (this.listenerCount('error') > 0)
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }
}

/** Creates a {@link ConnectionRegistry} for one pod (validates its options, claims the pod's lease). */
export function createConnectionRegistry(options: ConnectionRegistryOptions): ConnectionRegistry {
  return new ConnectionRegistry(options);
}
