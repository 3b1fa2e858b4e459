import type { GeoSessionError } from '../errors.js';
import type { RejectedEnvelope } from '../replication/pipeline.js';
import type { AppliedBatch } from '../replication/replicator.js';
import type { RevocationGap, RevokedSession } from './revocations.js';

/** Why a write was not applied. Emitted as the store's `refused` event. */
export interface RefusedWrite {
  /** The method that was refused. */
  op: 'set' | 'touch';
  /** The session id. */
  sid: string;
  /** `destroyed`: a logout's tombstone forbids the write (a slow request re-saving after logout). */
  reason: 'destroyed';
}

/**
 * The events of a {@link GeoSessionStore}, by name, with their arguments. `store.on(...)` is typed
 * from this map, so a misspelled event name or a wrong payload field fails to compile.
 */
export interface GeoSessionStoreEvents {
  /** The Redis client became ready (express-session resumes using the store). */
  connect: [];
  /** The Redis client lost its connection (express-session stops using the store until `connect`). */
  disconnect: [];
  /** A `set` or `touch` hit a logout's tombstone and was dropped; the call itself succeeded. */
  refused: [write: RefusedWrite];
  /** A batch of other regions' session changes was applied here. */
  replicated: [batch: AppliedBatch];
  /** An envelope from another region was refused before it could be applied (sealing, malformed …). */
  rejected: [envelope: RejectedEnvelope];
  /**
   * A session ended by logout, logout everywhere or a "revoked before" mark, in this region or any other:
   * fires once in every process of every region that listens (docs/users-and-connections.md,
   * "Revocation events"). Listening holds one subscriber connection to Redis.
   */
  revoked: [event: RevokedSession];
  /**
   * The revocation subscriber was disconnected and is subscribed again: sessions that ended between
   * `since` and `until` were not reported. Re-check live connections (`isDestroyed`, `get`); watched
   * sessions are re-checked by the store.
   */
  'revocation-gap': [gap: RevocationGap];
  /**
   * A background failure: replication, a transport, read-through, a backlog or a needed resync, or an
   * exception thrown by a caller's callback (`CallbackError`, `ERR_GEOSESSION_CALLBACK`). Always a
   * `GeoSessionError` with a stable `code`. Printed when nobody listens; never thrown.
   */
  error: [error: GeoSessionError];
}
