/**
 * The three things the push gateway needs from geosession, in one place:
 *
 * - a connection registry: which pods hold a user's live connections (`register`, `unregister`,
 *   `podsOf`), replicated so a sender in one region finds the pods of the other;
 * - a way to learn that one session ended, in any region (`watchSession`);
 * - logging a user out of every session in every region (`logoutEverywhere`).
 *
 * The registry is `createConnectionRegistry`, replicated; a session's end is `store.watch`; logging out
 * everywhere is `store.logoutEverywhere`, which needs the store's `userId` option ({@link userOfSession})
 * so that the scripts keep each user's index of sessions in every region.
 */
import type { Redis } from 'ioredis';
import {
  createConnectionRegistry,
  type GeoSessionStore,
  type ReplicationTransport,
  type Sealer,
  type SessionData,
} from '../../src/index.js';

/** A pod holding connections of a user, as the sender uses `podsOf`'s answer. */
export interface PodConnections {
  region: string;
  pod: string;
  /** Connection ids on that pod. */
  connections: string[];
}

/** What a pod and a sender use of the connection registry. */
export interface Connections {
  register(userId: string, connectionId: string, options: { sid?: string }): Promise<void>;
  unregister(connectionId: string): Promise<void>;
  podsOf(userId: string): Promise<PodConnections[]>;
  close(): Promise<void>;
}

/** Options of {@link openConnections}: those of `createConnectionRegistry`. */
export interface ConnectionsOptions {
  client: Redis;
  region: string;
  pod: string;
  leaseMs: number;
  /** The key prefix of the region's sessions: the registry's keys sit beside them. */
  prefix: string;
  transport: ReplicationTransport;
  sealer: Sealer | undefined;
  log: (line: string) => void;
}

/**
 * Opens this pod's connection registry (`createConnectionRegistry`). It replicates through `transport`
 * (sealed with `sealer`), so `podsOf` lists every region's pods from the local Redis alone.
 */
export function openConnections(options: ConnectionsOptions): Connections {
  const registry = createConnectionRegistry({
    client: options.client,
    region: options.region,
    pod: options.pod,
    leaseMs: options.leaseMs,
    prefix: options.prefix,
    transport: options.transport,
    ...(options.sealer ? { sealer: options.sealer } : {}),
  });
  registry.on('error', (error) => options.log(`[${options.pod}] registry: ${error.message}`));
  return {
    async register(userId, connectionId, { sid }) {
      await registry.register(userId, connectionId, sid === undefined ? {} : { sid });
    },
    async unregister(connectionId) {
      await registry.unregister(connectionId);
    },
    async podsOf(userId) {
      return (await registry.podsOf(userId)).map((g) => ({
        region: g.region,
        pod: g.pod,
        connections: g.connections.map((c) => c.connectionId),
      }));
    },
    close: () => registry.close(),
  };
}

/** Why a watched session ended, as a pod logs it. */
export interface SessionEnd {
  sid: string;
  /** Region where it was ended ('?' when a re-check found it ended: origin unknown). */
  origin: string;
  /** `logout`, `logout-everywhere`, `revoked-before`, or `missed` (found ended by a re-check). */
  reason: string;
}

/**
 * The user a session belongs to: the store's `userId` option, so that the scripts keep the per-user
 * index that `logoutEverywhere` ends. The pods store the user in `session.user`.
 */
export function userOfSession(session: SessionData): string | undefined {
  return typeof session.user === 'string' ? session.user : undefined;
}

/**
 * Calls `callback` once when session `sid` ends in any region (`store.watch`); the returned function
 * releases the watch.
 */
export function watchSession(
  store: GeoSessionStore,
  sid: string,
  callback: (end: SessionEnd) => void,
): () => void {
  return store.watch(sid, (e) => callback({ sid, origin: e.origin ?? '?', reason: e.reason }));
}

/**
 * Ends every session of `userId` in every region (`store.logoutEverywhere`); resolves to how many
 * sessions it ended in this region (those of other regions that had arrived here included).
 */
export function logoutEverywhere(store: GeoSessionStore, userId: string): Promise<number> {
  return store.logoutEverywhere(userId);
}
