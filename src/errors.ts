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
  | 'ERR_GEOSESSION_SEAL'
  | 'ERR_GEOSESSION_SESSION_ID'
  | 'ERR_GEOSESSION_DEPENDENCY'
  | 'ERR_GEOSESSION_BACKLOG'
  | 'ERR_GEOSESSION_RESYNC_NEEDED'
  | 'ERR_GEOSESSION_READ_THROUGH'
  | 'ERR_GEOSESSION_TRANSIENT'
  | 'ERR_GEOSESSION_MEMORY_POLICY'
  | 'ERR_GEOSESSION_SESSION_TOO_LARGE'
  | 'ERR_GEOSESSION_MESSAGE_TOO_LARGE'
  | 'ERR_GEOSESSION_CALLBACK'
  | 'ERR_GEOSESSION_RESYNC'
  | 'ERR_GEOSESSION_ARGUMENT';

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

/**
 * A batch of remote changes met a failure that says "not now" rather than "not this input" (Redis out of
 * memory, busy with a script, read-only, loading, the connection lost, a timeout...): the batch was not
 * acknowledged and the transport delivers it again, so nothing is lost or dead-lettered. Reported at
 * most once per interval per `reason`; `suppressed` counts the failures held back since the last report.
 */
export class TransientError extends GeoSessionError {
  /** What failed: the Redis error reply code (`OOM`, `BUSY`, `READONLY`...), `CONNECTION`, `TIMEOUT` or `OTHER`. */
  readonly reason: string;
  /** Failures of the same reason not reported since the last report. */
  readonly suppressed: number;

  constructor(reason: string, message: string, options?: { cause?: unknown; suppressed?: number }) {
    super('ERR_GEOSESSION_TRANSIENT', `geosession: ${message}`, options);
    this.reason = reason;
    this.suppressed = options?.suppressed ?? 0;
  }
}

/**
 * The Redis of this region runs with a `maxmemory-policy` that can evict keys: under memory pressure it
 * may drop a tombstone (a logged-out session could come back) or a session's metadata. Run it with
 * `noeviction`; see docs/replication.md.
 */
export class MemoryPolicyError extends GeoSessionError {
  constructor(
    /** The policy the server reported. */
    readonly policy: string,
  ) {
    super(
      'ERR_GEOSESSION_MEMORY_POLICY',
      `geosession: this region's Redis runs with maxmemory-policy ${policy}, which can evict tombstones and session metadata (a logged-out session could come back); set it to noeviction`,
    );
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

/** A session id that cannot be stored or replicated safely; `set`, `touch` and `destroy` refuse it. */
export class InvalidSessionIdError extends GeoSessionError {
  constructor(operation: string, problem: string) {
    super('ERR_GEOSESSION_SESSION_ID', `geosession: ${operation} refused a session id that ${problem}`);
  }
}

/**
 * `set()` refused a session whose serialized form is larger than the store's `maxSessionBytes`. Nothing
 * was written: the session stays as it was in every region.
 */
export class SessionTooLargeError extends GeoSessionError {
  /** UTF-8 bytes of the serialized session. */
  readonly bytes: number;
  /** The `maxSessionBytes` it exceeds. */
  readonly limit: number;

  constructor(bytes: number, limit: number) {
    super(
      'ERR_GEOSESSION_SESSION_TOO_LARGE',
      `geosession: set refused a session of ${bytes} bytes (serialized, UTF-8): the limit is ${limit} bytes (option \`maxSessionBytes\`)`,
    );
    this.bytes = bytes;
    this.limit = limit;
  }
}

/**
 * A broker refused a message for its size, which the same message will always be (NATS `max_payload`
 * or a stream's `max_msg_size`, RabbitMQ `max_message_size`, Redis `proto-max-bulk-len`). The pipeline
 * splits the batch until the envelope at fault is alone and dead-letters it as `too-large`; the others
 * are published.
 */
export class MessageTooLargeError extends GeoSessionError {
  /** UTF-8 bytes of the refused message, when known. */
  readonly bytes: number | undefined;

  constructor(message: string, options?: { cause?: unknown; bytes?: number }) {
    super('ERR_GEOSESSION_MESSAGE_TOO_LARGE', `geosession: ${message}`, options);
    this.bytes = options?.bytes;
  }
}

/** An optional peer dependency that a transport or helper needs is not installed. */
export class MissingDependencyError extends GeoSessionError {
  /** The npm package to install. */
  readonly packageName: string;

  constructor(what: string, packages: readonly string[], options?: { cause?: unknown }) {
    super(
      'ERR_GEOSESSION_DEPENDENCY',
      `geosession: ${what} needs the package${packages.length > 1 ? 's' : ''} ${packages
        .map((p) => `\`${p}\``)
        .join(
          ' and ',
        )}, which ${packages.length > 1 ? 'are' : 'is'} not installed: run \`npm install ${packages.join(' ')}\``,
      options,
    );
    this.packageName = packages[0] ?? '';
  }
}

/**
 * What this region keeps for another region that does not consume it grew past a threshold
 * (`level: 'warning'`) or past its bound (`'exceeded'`: the oldest entries for that region were dropped
 * and it needs a resync).
 */
export class BacklogError extends GeoSessionError {
  constructor(
    /** The region that is not consuming; `*` for this region's outbox while its relay cannot publish. */
    readonly region: string,
    readonly entries: number,
    readonly oldestAgeMs: number | undefined,
    readonly level: 'warning' | 'exceeded',
  ) {
    super(
      'ERR_GEOSESSION_BACKLOG',
      `geosession: ${region === '*' ? 'the outbox (every region)' : `region ${region}`} has not consumed ${entries} entries${
        oldestAgeMs === undefined ? '' : ` (oldest ${Math.round(oldestAgeMs / 1000)} s old)`
      }; ${level === 'exceeded' ? 'past the bound, the oldest were dropped and it needs a resync' : 'past the warning threshold'}`,
    );
  }
}

/**
 * This region and `region` may hold different sessions and need a resync: they were cut off for longer
 * than the stale-event horizon, one of them lost its Redis data, or a backlog bound dropped events.
 */
export class ResyncNeededError extends GeoSessionError {
  constructor(
    /** The other region. */
    readonly region: string,
    /** Why, in a few words. */
    readonly reason: string,
  ) {
    super('ERR_GEOSESSION_RESYNC_NEEDED', `geosession: a resync with region ${region} is needed: ${reason}`);
  }
}

/**
 * Read-through to another region failed or timed out; the request went on with a miss. Reported at
 * most once per second per remote region; `suppressed` counts the failures since the last report.
 */
export class ReadThroughError extends GeoSessionError {
  constructor(
    /** The remote region. */
    readonly region: string,
    /** Failures not reported since the last report. */
    readonly suppressed: number,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      'ERR_GEOSESSION_READ_THROUGH',
      `geosession: read-through from ${region} failed: ${detail}${suppressed > 0 ? ` (and ${suppressed} more since the last report)` : ''}`,
      { cause },
    );
  }
}

/**
 * A callback passed to a store method threw. The store called it once and never calls it again; the
 * exception, as `cause`, is reported as an `error` event on the store (printed when nobody listens)
 * instead of crashing the process. `operation` names the store method.
 */
export class CallbackError extends GeoSessionError {
  constructor(
    /** The store method whose callback threw, e.g. `set`. */
    readonly operation: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('ERR_GEOSESSION_CALLBACK', `geosession: the callback of ${operation} threw: ${detail}`, { cause });
  }
}

/**
 * A resync (src/admin/resync.ts) could not run or did not finish: another one holds the region, the
 * target lost its data while it ran, or it was aborted. `region` is the region being resynced.
 */
export class ResyncError extends GeoSessionError {
  /** The region being resynced. */
  readonly region: string;

  constructor(region: string, message: string, options?: { cause?: unknown }) {
    super('ERR_GEOSESSION_RESYNC', `geosession: resync of ${region}: ${message}`, options);
    this.region = region;
  }
}

/** A call was given an argument it cannot use (an empty key name, a tag that is not a string...). */
export class ArgumentError extends GeoSessionError {
  constructor(message: string) {
    super('ERR_GEOSESSION_ARGUMENT', `geosession: ${message}`);
  }
}
