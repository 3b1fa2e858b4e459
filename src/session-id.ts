import { randomBytes } from 'node:crypto';

/** A region id: 1 to 32 of lowercase letters, digits and '-'. */
export const REGION_PATTERN = /^[a-z0-9-]{1,32}$/;

/** Random bytes per generated id: 144 bits, written as 24 base64url characters. */
const RANDOM_BYTES = 18;
const ID_PATTERN = /^([a-z0-9-]{1,32})\.([A-Za-z0-9_-]{24})$/;

/** True when `region` is a valid region id. */
export function isValidRegion(region: unknown): region is string {
  return typeof region === 'string' && REGION_PATTERN.test(region);
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
