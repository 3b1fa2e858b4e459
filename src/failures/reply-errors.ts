import { EventError, GeoSessionError, TimeoutError, TransientError } from '../errors.js';

/**
 * The one place where failures of Redis calls are classified. Everything else asks these functions and
 * never matches error messages itself.
 *
 * - **Transient**: the same call may work a moment later, so a batch that met it is delivered again:
 *   Redis error replies whose code says the server cannot take the command now (out of memory with
 *   `noeviction`, a busy script, a read-only replica, loading its data, a cluster or replication that
 *   is not ready, an unknown script, an ACL being changed) and everything about the connection (closed,
 *   reset, refused, out of retries, our own timeouts).
 * - **Deterministic**: the same input fails the same way (a body that does not decode, a script's own
 *   refusal, a wrong-type key, any other error reply): the envelope is dead-lettered, never retried.
 */

/** Error reply codes that say "not now", never "not this input". */
const TRANSIENT_REPLY_CODES: ReadonlySet<string> = new Set([
  'OOM',
  'BUSY',
  'READONLY',
  'LOADING',
  'MASTERDOWN',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'NOSCRIPT',
  'NOREPLICAS',
  'MISCONF',
  'MOVED',
  'ASK',
  'NOAUTH',
  'NOPERM',
  'UNBLOCKED',
]);

/** Socket error codes (Node's `error.code`) of a lost or refused connection. */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTCONN',
  'EAI_AGAIN',
]);

/** How a failure is treated: retried (`transient`) or dead-lettered (`deterministic`). */
export type FailureKind = 'transient' | 'deterministic';

/** A classified failure: its kind and a short code (`OOM`, `BUSY`, `CONNECTION`, `TIMEOUT`, `WRONGTYPE`...). */
export interface Classification {
  readonly kind: FailureKind;
  readonly code: string;
}

/** An error reply's code word: all capitals, then a space (`OOM command not allowed...`). */
const CODE_WORD = /^[A-Z][A-Z0-9_-]+(?= )/;

/** Codes a plain error (not a `ReplyError`) may start with and still count as an error reply. */
const PLAIN_REPLY_CODES: ReadonlySet<string> = new Set([
  ...TRANSIENT_REPLY_CODES,
  'ERR',
  'WRONGTYPE',
  'NOGROUP',
  'BUSYGROUP',
]);

/**
 * True for an error reply of Redis: ioredis raises a `ReplyError`; a plain error that starts with a
 * known code counts too (ioredis-mock, which the demo runs on, raises those).
 */
function isReplyError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ReplyError') return true;
  const word = CODE_WORD.exec(error.message)?.[0];
  return word !== undefined && PLAIN_REPLY_CODES.has(word);
}

/** Redis 6 wraps the error of a command inside a script: `ERR Error running script ... -OOM command...`. */
const SCRIPT_INNER_CODE = /^ERR Error running script\b.*?-([A-Z][A-Z0-9_-]+) /s;

/**
 * The code of a Redis error reply: its first word (`OOM`, `BUSY`, `NOGROUP`, `ERR`...). A script's
 * error keeps the code of the command that failed inside it (Redis 7; Redis 6's wrapped form is read
 * too). `undefined` when `error` is not an error reply.
 */
export function replyCode(error: unknown): string | undefined {
  if (!isReplyError(error)) return undefined;
  // A MULTI that Redis refused at EXEC (`EXECABORT`) failed for the first queued command's reason
  // (OOM while queueing a write, say), which ioredis keeps in `previousErrors`.
  const queued = (error as { previousErrors?: unknown }).previousErrors;
  if (error.message.startsWith('EXECABORT ') && Array.isArray(queued) && queued.length > 0) {
    return replyCode(queued[0]) ?? 'EXECABORT';
  }
  const inner = SCRIPT_INNER_CODE.exec(error.message)?.[1];
  if (inner !== undefined) return inner;
  const first = CODE_WORD.exec(error.message);
  return first ? first[0] : 'ERR';
}

/** True when a failure of the connection itself (not an answer of Redis) caused `error`. */
function isConnectionFailure(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'AbortError') return true;
  // ioredis signals a command lost with its connection, or refused while offline, by message only.
  return /^(Connection is closed|Stream isn't writeable|Command timed out)/.test(error.message);
}

/**
 * Classifies the failure of a Redis call (or of applying a batch): see the module comment. A
 * {@link GeoSessionError} wrapping another error (`cause`) is classified by what it wraps.
 */
export function classifyFailure(error: unknown): Classification {
  if (error instanceof TransientError) return { kind: 'transient', code: error.reason };
  if (error instanceof EventError) return { kind: 'deterministic', code: 'EVENT' };
  if (error instanceof TimeoutError) return { kind: 'transient', code: 'TIMEOUT' };
  const code = replyCode(error);
  if (code !== undefined) {
    return { kind: TRANSIENT_REPLY_CODES.has(code) ? 'transient' : 'deterministic', code };
  }
  if (error instanceof GeoSessionError && error.cause !== undefined) return classifyFailure(error.cause);
  if (error instanceof Error && isConnectionFailure(error)) return { kind: 'transient', code: 'CONNECTION' };
  // Anything else (a bug, a closed store) is not known to be the input's fault: retried, never dropped.
  return { kind: 'transient', code: 'OTHER' };
}

/** True when the same input would fail the same way again (dead-letter it, do not retry). */
export function isDeterministicFailure(error: unknown): boolean {
  return classifyFailure(error).kind === 'deterministic';
}

/** `error` as a {@link TransientError} (itself when it is one). */
export function asTransient(error: unknown): TransientError {
  if (error instanceof TransientError) return error;
  const { code } = classifyFailure(error);
  const detail = error instanceof Error ? error.message.replace(/^geosession: /, '') : String(error);
  return new TransientError(code, detail, { cause: error });
}

/**
 * True for the errors of a stream or consumer group that does not exist (yet, or any more: its Redis
 * restarted empty): XINFO's "no such key", and NOGROUP.
 */
export function isMissingStream(error: unknown): boolean {
  const code = replyCode(error);
  if (code === 'NOGROUP') return true;
  return code === 'ERR' && /no such key/i.test((error as Error).message);
}

/** True for NOGROUP: the consumer group (or its stream) does not exist. */
export function isNoGroup(error: unknown): boolean {
  return replyCode(error) === 'NOGROUP';
}

/** True for BUSYGROUP: the consumer group exists already. */
export function isBusyGroup(error: unknown): boolean {
  return replyCode(error) === 'BUSYGROUP';
}

/** True for NOSCRIPT: the server does not know the script (load it with EVAL). */
export function isNoScript(error: unknown): boolean {
  return replyCode(error) === 'NOSCRIPT';
}
