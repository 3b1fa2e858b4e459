import { randomBytes } from 'node:crypto';

/** A region id: 1 to 32 of lowercase letters, digits and '-'. */
export const REGION_PATTERN = /^[a-z0-9-]{1,32}$/;

/** Longest session id the store accepts. */
export const MAX_SESSION_ID_LENGTH = 256;

/**
 * A session id: 1 to {@link MAX_SESSION_ID_LENGTH} printable ASCII characters (`!` to `~`) other than
 * `{`, `}` and `|`. Braces would let an id pick its own Redis Cluster hash tag and reach geosession's
 * internal keys; `|` separates the parts of a replicated change. Ids from `genid`, express-session's
 * default generator (uid-safe) and @fastify/session's are always valid.
 */
const SESSION_ID_PATTERN = /^[!-z~]+$/;

/** Random bytes per generated id: 144 bits, written as 24 base64url characters. */
const RANDOM_BYTES = 18;
const ID_PATTERN = /^([a-z0-9-]{1,32})\.([A-Za-z0-9_-]{24})$/;

/** True when `region` is a valid region id. */
export function isValidRegion(region: unknown): region is string {
  return typeof region === 'string' && REGION_PATTERN.test(region);
}

/**
 * Why `sid` cannot be a session id, or `undefined` when it can. See {@link SESSION_ID_PATTERN}: the
 * pattern admits `!`..`z` and `~`, which leaves out `{`, `|` and `}` (0x7B-0x7D).
 */
export function sessionIdProblem(sid: unknown): string | undefined {
  if (typeof sid !== 'string') return `is a ${sid === null ? 'null' : typeof sid}, not a string`;
  if (sid.length === 0) return 'is empty';
  if (sid.length > MAX_SESSION_ID_LENGTH)
    return `is ${sid.length} characters long (at most ${MAX_SESSION_ID_LENGTH})`;
  if (!SESSION_ID_PATTERN.test(sid)) {
    return 'holds a character outside printable ASCII, or one of "{", "}", "|"';
  }
  return undefined;
}

/** True when `sid` can be stored and replicated (see {@link sessionIdProblem}). */
export function isValidSessionId(sid: unknown): sid is string {
  return sessionIdProblem(sid) === undefined;
}

/**
 * Makes a new session id that records the region that created it: `<region>.<24 base64url chars>`
 * (144 random bits). Only cookie-safe characters are used, and '.' never occurs in ids written by
 * express-session's default generator (uid-safe) or @fastify/session's, so the two never get confused.
 */
export function generateSessionId(region: string): string {
  return `${region}.${randomBytes(RANDOM_BYTES).toString('base64url')}`;
}

/**
 * The region that created `sid`, or `undefined` when `sid` was not made by {@link generateSessionId}
 * (for example an id written by connect-redis before the switch).
 */
export function regionOfSessionId(sid: string): string | undefined {
  const match = ID_PATTERN.exec(sid);
  return match ? match[1] : undefined;
}
