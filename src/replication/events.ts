/**
 * Change events: what one region tells the others about a session. Every event carries the absolute
 * expiry it leads to, so replicas expire when the origin does, and the HLC version of the data it
 * concerns, so every region picks the same winner. See docs/replication.md.
 */

/** The three kinds of change. */
export type ChangeOp = 'set' | 'touch' | 'destroy';

interface ChangeEventBase {
  /** Unique across regions and retries: `<origin>:<outbox entry id>`. Brokers use it for de-duplication. */
  readonly id: string;
  /** Region that made the change. */
  readonly origin: string;
  /** Session id. */
  readonly sid: string;
  /**
   * HLC version: `<wall ms, 13 digits>.<counter, 4 digits>.<region>`. Plain string order is version order.
   * For `set` and `destroy` it is the version the change created; for `touch`, the data version it saw.
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
  /** The cookie's own expiry in epoch ms, when it has one. */
  readonly cookieExpires?: number;
}

/** A session's lifetime was extended; its data did not change. */
export interface TouchEvent extends ChangeEventBase {
  readonly op: 'touch';
  /** The cookie's own expiry in epoch ms, when it has one. */
  readonly cookieExpires?: number;
}

/** A session was destroyed (logout). */
export interface DestroyEvent extends ChangeEventBase {
  readonly op: 'destroy';
}

/** Any change event. */
export type ChangeEvent = SetEvent | TouchEvent | DestroyEvent;
