import type { RefusalReason } from './contracts/sealer.js';

/**
 * Every error geosession raises is a {@link GeoSessionError} with a stable `code` and, where a lower-level
 * failure caused it, that failure as `cause`.
 */

/** Stable error codes. Match on these, not on messages. */
export type GeoSessionErrorCode =
  | 'ERR_GEOSESSION_CONFIG'
  | 'ERR_GEOSESSION_TIMEOUT'
  | 'ERR_GEOSESSION_CORRUPT'
  | 'ERR_GEOSESSION_REDIS'
  | 'ERR_GEOSESSION_CLOSED'
  | 'ERR_GEOSESSION_TRANSPORT'
  | 'ERR_GEOSESSION_EVENT'
  | 'ERR_GEOSESSION_SEAL';

/** Base class of every geosession error. */
export class GeoSessionError extends Error {
  /** Stable machine-readable code. */
  readonly code: GeoSessionErrorCode;

  constructor(code: GeoSessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** A constructor option is missing or invalid. `option` names it. */
export class ConfigError extends GeoSessionError {
  /** The option at fault, e.g. `region` or `remotes.kr`. */
  readonly option: string;

  constructor(option: string, message: string) {
    super('ERR_GEOSESSION_CONFIG', `geosession: option \`${option}\` ${message}`);
    this.option = option;
  }
}

/**
 * A Redis call did not answer within `operationTimeoutMs`. For a write, the outcome is unknown: the command
 * may still run when Redis answers.
 */
export class TimeoutError extends GeoSessionError {
  constructor(operation: string, ms: number, options?: { cause?: unknown }) {
    super(
      'ERR_GEOSESSION_TIMEOUT',
      `geosession: ${operation} got no answer from Redis within ${ms} ms`,
      options,
    );
  }
}

/** A stored session could not be parsed. Only the request that read it fails; the store keeps working. */
export class CorruptSessionError extends GeoSessionError {
  /** The session id whose stored value is corrupt. */
  readonly sid: string;

  constructor(sid: string, cause: unknown) {
    super('ERR_GEOSESSION_CORRUPT', `geosession: the stored value of session "${sid}" cannot be parsed`, {
      cause,
    });
    this.sid = sid;
  }
}

/** Redis answered with an error (connection lost, script failure, wrong type...). */
export class RedisCommandError extends GeoSessionError {
  constructor(operation: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('ERR_GEOSESSION_REDIS', `geosession: ${operation} failed: ${detail}`, { cause });
  }
}

/** The store or transport was closed and cannot take this call. */
export class ClosedError extends GeoSessionError {
  constructor(what: string) {
    super('ERR_GEOSESSION_CLOSED', `geosession: ${what} is closed`);
  }
}

/** A replication transport failed (publish not confirmed, subscription lost...). */
export class TransportError extends GeoSessionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_GEOSESSION_TRANSPORT', `geosession: ${message}`, options);
  }
}

/** A replication event was malformed or failed its checks; it is skipped and reported, never applied. */
export class EventError extends GeoSessionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_GEOSESSION_EVENT', `geosession: ${message}`, options);
  }
}

/**
 * A sealed batch could not be opened, or an unsealed one was refused. `reason` says why; the batch is
 * counted, dead-lettered and never applied.
 */
export class SealError extends GeoSessionError {
  /** Why the batch was refused. */
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string, options?: { cause?: unknown }) {
    super('ERR_GEOSESSION_SEAL', `geosession: ${message}`, options);
    this.reason = reason;
  }
}
