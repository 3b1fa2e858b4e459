/**
 * Key tracking (src/redis/tracking.ts) over a Redis Cluster: tracking is per node, so every master gets
 * a {@link KeyTracking} of its own (a RESP2 subscriber and a tracker, duplicates of a cluster node's
 * connection pointed at that master), all with the same prefixes and all reporting to one listener.
 *
 * Armed only while every master of the cluster client's slot table is armed. The plan is the slot
 * table's owner of each slot; the client's `refresh`, `+node` and `-node` events re-read it, and any
 * change (a failover, a slot moved, a master added or removed) disarms first, then tracking follows the
 * new master set. Any node's disarm (a connection closed, a redirect broken, a master demoted: each node
 * checks its `ROLE`) disarms the whole. While not armed the slot table is refreshed every second, so a
 * failover the client has not noticed yet is found.
 */
import type { Cluster, Redis } from 'ioredis';
import { hashTagOf } from '../wire/internal-keys.js';
import { CLUSTER_SLOTS, slotOfTag } from '../wire/outbox-shards.js';
import { type DisarmReason, KeyTracking, type KeyTrackingListener } from './tracking.js';

/** Options of {@link ClusterKeyTracking}. */
export interface ClusterKeyTrackingOptions {
  readonly cluster: Cluster;
  /** Raw key prefixes to track on every master. */
  readonly prefixes: readonly string[];
  /** Connection name prefix (CLIENT SETNAME). */
  readonly name: string;
  readonly listener: KeyTrackingListener;
  /** How often each master's tracker checks that its node is still a master, in ms. */
  readonly roleCheckMs: number;
}

/** How often the slot table is refreshed while tracking is not armed, in ms. */
const REPLAN_MS = 1000;

/** The Redis Cluster slot of a raw key name (its hash tag's, or the whole name's). */
export function slotOfKey(key: string): number {
  return slotOfTag(hashTagOf(key) ?? key);
}

/** One master's tracking and whether it is armed. */
interface NodeTracking {
  readonly tracking: KeyTracking;
  armed: boolean;
}

/** Tracking on every master of a Cluster client, armed only when all are. */
export class ClusterKeyTracking {
  private readonly nodes = new Map<string, NodeTracking>();
  /** The slot table the nodes follow: the owner of each slot, as ranges (`''`: none yet). */
  private layout = '';
  private isArmed = false;
  private closed = false;
  private readonly replan = () => this.plan();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: ClusterKeyTrackingOptions) {
    this.timer = setInterval(() => {
      if (this.isArmed || this.closed) return;
      // Not armed: a failover or a new master the client has not seen yet is found by a fresh table.
      if (options.cluster.status === 'ready') options.cluster.refreshSlotsCache();
      this.plan();
    }, REPLAN_MS);
    this.timer.unref();
  }

  /** True while every master is armed and the slot table is the one they were armed for. */
  get armed(): boolean {
    return this.isArmed;
  }

  /**
   * True when a read of raw key `key` may fill the cache: tracking is armed, and the master the client
   * routes the key to is one of those armed (a slot the client was just redirected for is not).
   */
  covers(key: string): boolean {
    if (!this.isArmed) return false;
    const owner = this.options.cluster.slots[slotOfKey(key)]?.[0];
    return owner !== undefined && this.nodes.get(owner)?.armed === true;
  }

  start(): void {
    const { cluster } = this.options;
    for (const event of ['refresh', '+node', '-node', 'ready']) cluster.on(event, this.replan);
    this.plan();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.disarm('closed');
    this.closed = true;
    clearInterval(this.timer);
    const { cluster } = this.options;
    for (const event of ['refresh', '+node', '-node', 'ready']) cluster.off(event, this.replan);
    const all = [...this.nodes.values()];
    this.nodes.clear();
    await Promise.all(all.map((node) => node.tracking.close()));
  }

  /** Follows the client's slot table: on any change, disarms, then tracks exactly its masters. */
  private plan(): void {
    if (this.closed) return;
    const slots = this.options.cluster.slots;
    const owners = new Set<string>();
    let layout = '';
    let last: string | undefined;
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
      const owner = slots[slot]?.[0];
      if (owner !== undefined) owners.add(owner);
      if (owner !== last) layout += `${slot}=${owner ?? '-'};`;
      last = owner;
    }
    if (layout === this.layout) return;
    this.layout = layout;
    this.disarm('disconnected');
    for (const [key, node] of this.nodes) {
      if (owners.has(key)) continue;
      this.nodes.delete(key);
      node.tracking.close().catch(() => {});
    }
    for (const key of owners) {
      // A master that cannot be tracked yet (no node connection to copy): the next event plans again.
      if (!this.nodes.has(key) && !this.track(key)) this.layout = '';
    }
    this.checkArmed();
  }

  /** Starts tracking on master `key` (`host:port` as the slot table names it); false when it cannot. */
  private track(key: string): boolean {
    const { cluster, listener } = this.options;
    const template = cluster.nodes('all')[0];
    const colon = key.lastIndexOf(':');
    if (template === undefined || colon < 0) return false;
    // The listener acts only while this tracking is the master's current one (not one a plan dropped).
    const node = () => {
      const current = this.nodes.get(key);
      return current?.tracking === tracking ? current : undefined;
    };
    const tracking = new KeyTracking({
      // Any node's connection carries the cluster's redisOptions (password, TLS…); host and port are
      // the master's. Cluster nodes do not reconnect by themselves (retryStrategy null): these do,
      // until a new plan drops them.
      client: template as Redis,
      connection: {
        host: key.slice(0, colon),
        port: Number(key.slice(colon + 1)),
        readOnly: false,
        retryStrategy: (times: number) => Math.min(100 * times, 1000),
      },
      prefixes: this.options.prefixes,
      name: this.options.name,
      roleCheckMs: this.options.roleCheckMs,
      listener: {
        armed: () => {
          const current = node();
          if (current === undefined) return;
          current.armed = true;
          this.checkArmed();
        },
        disarmed: (reason) => {
          const current = node();
          if (current === undefined) return;
          current.armed = false;
          this.disarm(reason);
          // A master demoted or gone: the client's table is probably stale too.
          if (reason === 'demoted' && cluster.status === 'ready') cluster.refreshSlotsCache();
        },
        invalidated: (keys) => {
          if (node() !== undefined) listener.invalidated(keys);
        },
        error: (error) => listener.error(error),
      },
    });
    this.nodes.set(key, { tracking, armed: false });
    tracking.start();
    return true;
  }

  private disarm(reason: DisarmReason): void {
    if (this.closed) return;
    this.isArmed = false;
    this.options.listener.disarmed(reason);
  }

  private checkArmed(): void {
    if (this.closed || this.isArmed || this.nodes.size === 0 || this.layout === '') return;
    for (const node of this.nodes.values()) if (!node.armed) return;
    this.isArmed = true;
    this.options.listener.armed();
  }
}
