/**
 * Session changes: what one region tells the others about a session, as the body of an envelope of
 * kind `session`. Every change carries the absolute expiry it leads to, so replicas expire when the
 * origin does, the HLC version of the data it concerns, so every region picks the same winner, and
 * when it was made, so that a change older than the stale-event horizon is refused. See
 * docs/replication.md.
 */

/** The three kinds of change. */
export type ChangeOp = 'set' | 'touch' | 'destroy' | 'revoke';

interface ChangeEventBase {
  /** The id of the envelope that carried it: unique across regions and retries. */
  readonly id: string;
  /** Region that made the change. */
  readonly origin: string;
  /** When the origin made it, epoch ms by the origin's Redis clock. */
  readonly time: number;
  /** Session id. */
  readonly sid: string;
  /**
   * HLC version: `<wall ms, 15 digits>.<counter, 4 digits>.<region>`. Plain string order is version
   * order. For `set` and `destroy` it is the version the change created; for `touch`, the data version
   * the origin had (`''` when it had none yet).
   */
  readonly version: string;
  /**
   * Absolute expiry in epoch ms the change leads to; 0 means never. For `destroy`, when the tombstone
   * may be forgotten.
   */
  readonly expiresAt: number;
}

/** A session was written. */
export interface SetEvent extends ChangeEventBase {
  readonly op: 'set';
  /** The serialized session, exactly as stored. */
  readonly data: string;
  /** Digest of the content without its expiry, so the receiving region can spot unchanged writes. */
  readonly fingerprint: string;
  /** The session's lifetime rule in ms (0 never): no touch may reach further than now plus this. */
  readonly lifetimeMs: number;
}

/** A session's lifetime was extended; its data did not change. */
export interface TouchEvent extends ChangeEventBase {
  readonly op: 'touch';
  /** The session's lifetime rule in ms, as the origin knew it. */
  readonly lifetimeMs: number;
}

/** A session was destroyed (logout). */
export interface DestroyEvent extends ChangeEventBase {
  readonly op: 'destroy';
  /**
   * Why, when not a plain logout (carried in the fingerprint field, empty for a logout, so regions that
   * predate it read it as one): the `reason` of the revocation event every region publishes.
   */
  readonly reason?: 'logout-everywhere' | 'revoked-before';
  /** With `reason`: the user whose sessions were ended (after a space in the same field). */
  readonly userId?: string;
}

/**
 * A user's "revoked before" mark (`store.logoutEverywhere`): every session of the user created before
 * the time of `version` is refused in every region. `sid` holds the user id (checked as a session id),
 * `expiresAt` when the mark may be forgotten.
 */
export interface RevokeEvent extends ChangeEventBase {
  readonly op: 'revoke';
  /** The session id logout everywhere kept (`''`: none). */
  readonly except: string;
}

/** Any change event. */
export type ChangeEvent = SetEvent | TouchEvent | DestroyEvent | RevokeEvent;
