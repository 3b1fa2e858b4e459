/**
 * The three things the push gateway needs from geosession, in one place:
 *
 * - a connection registry: which pods hold a user's live connections (`register`, `unregister`,
 *   `podsOf`), replicated so a sender in one region finds the pods of the other;
 * - a way to learn that one session ended, in any region (`watchSession`);
 * - logging a user out of every session in every region (`logoutEverywhere`).
 *
 * The registry is `createConnectionRegistry`, replicated. INTERIM (marked below): until `store.watch` and
 * `store.logoutEverywhere` (issue 17) are on this branch, this file stands in for them with the least
 * that makes the scene honest within one process: a user's sessions are an in-process map shared by both
 * regions, and a session's end is seen through the store's own replication (`replicated` destroy
 * events) and local logouts. Everything else (the pods, the sender, the scene) uses only the signatures below, which are
 * those of the library API, so swapping this file is the whole integration.
 */
import type { Redis } from 'ioredis';
import {
  createConnectionRegistry,
  type GeoSessionStore,
  type ReplicationTransport,
  type Sealer,
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

// INTERIM from here on. Once the store has `userId`, `watch` and `logoutEverywhere` (h/users, h/revoked):
// - watchSession: `return store.watch(sid, (e) => callback({ sid, origin: e.origin ?? '?', reason: e.reason }));`
// - logoutEverywhere: `return store.logoutEverywhere(userId);`
// - delete rememberLogin and loggedOut (and their two calls in pod.ts): the scripts keep the index and
//   a plain logout fires `revoked` itself;
// - give every store `userId: (session) => session.user` (index.ts, examples/demo/index.ts, the test).

/** Why a watched session ended. */
export interface SessionEnd {
  sid: string;
  /** Region where it was ended. */
  origin: string;
  reason: string;
}

type Watcher = (end: SessionEnd) => void;
const watchers = new WeakMap<GeoSessionStore, Map<string, Set<Watcher>>>();

function fire(store: GeoSessionStore, end: SessionEnd): void {
  for (const watcher of watchers.get(store)?.get(end.sid) ?? []) watcher(end);
}

function watchersOf(store: GeoSessionStore): Map<string, Set<Watcher>> {
  let bySid = watchers.get(store);
  if (!bySid) {
    const created = new Map<string, Set<Watcher>>();
    bySid = created;
    watchers.set(store, created);
    store.on('replicated', ({ events }) => {
      for (const event of events) {
        if (event.op === 'destroy') fire(store, { sid: event.sid, origin: event.origin, reason: 'logout' });
      }
    });
  }
  return bySid;
}

/** Calls `callback` once when session `sid` ends in any region; the returned function releases it. */
export function watchSession(store: GeoSessionStore, sid: string, callback: Watcher): () => void {
  const bySid = watchersOf(store);
  const set = bySid.get(sid) ?? new Set<Watcher>();
  bySid.set(sid, set);
  let done = false;
  const once: Watcher = (end) => {
    if (done) return;
    done = true;
    release();
    callback(end);
  };
  const release = () => {
    set.delete(once);
    if (set.size === 0) bySid.delete(sid);
  };
  set.add(once);
  return release;
}

/** Interim per-user index: user → session ids (shared by the regions of this process). */
const sessionsByUser = new Map<string, Set<string>>();

/** Notes that `userId` logged in with session `sid` (the store's `userId` option does it in the library). */
export function rememberLogin(userId: string, sid: string): void {
  const set = sessionsByUser.get(userId) ?? new Set<string>();
  set.add(sid);
  sessionsByUser.set(userId, set);
}

/** Tells this process's watchers that session `sid` was just logged out here (other regions see it replicated). */
export function loggedOut(store: GeoSessionStore, sid: string): void {
  fire(store, { sid, origin: store.region, reason: 'logout' });
}

/** Ends every session of `userId` in every region; returns how many it ended. */
export async function logoutEverywhere(store: GeoSessionStore, userId: string): Promise<number> {
  const sids = [...(sessionsByUser.get(userId) ?? [])];
  sessionsByUser.delete(userId);
  for (const sid of sids) {
    await store.destroy(sid);
    fire(store, { sid, origin: store.region, reason: 'logout-everywhere' });
  }
  return sids.length;
}
