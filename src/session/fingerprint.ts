import * as crypto from 'node:crypto';
import type { Serializer, SessionCookie, SessionData } from '../types.js';

type HashFn = (algorithm: string, data: string, encoding: 'base64') => string;
const oneShot = (crypto as unknown as { hash?: HashFn }).hash;
const sha1 = oneShot
  ? (text: string) => oneShot('sha1', text, 'base64')
  : (text: string) => crypto.createHash('sha1').update(text).digest('base64');

type CookieLike = SessionCookie & { originalExpires?: unknown; toJSON?: () => object };

/** How JSON.stringify writes a Date or ISO string value, or `undefined` for anything else. */
function jsonOf(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'null' : `"${value.toISOString()}"`;
  if (typeof value === 'string') return JSON.stringify(value);
  return undefined;
}

/**
 * With the JSON serializer: removes this session's own `"expires":…` (recording where it was) and
 * fastify's `,"originalExpires":…` (which only some writes carry) from the serialized text. JSON escapes
 * every quote inside a string, so `"expires":` can only match an object key, and the cookie is a
 * session's first key. `undefined` when the text does not look as expected.
 */
function withoutMovingFields(body: string, cookie: CookieLike): string | undefined {
  let rest = body;
  let at = -1;
  if (cookie.expires !== undefined && cookie.expires !== null) {
    const json = jsonOf(cookie.expires);
    if (json === undefined) return undefined;
    const needle = `"expires":${json}`;
    at = rest.indexOf(needle);
    if (at === -1) return undefined;
    rest = rest.slice(0, at) + rest.slice(at + needle.length);
  }
  if (cookie.originalExpires !== undefined && cookie.originalExpires !== null) {
    const json = jsonOf(cookie.originalExpires);
    if (json === undefined) return undefined;
    const needle = `,"originalExpires":${json}`;
    const where = rest.indexOf(needle);
    if (where === -1) return undefined;
    rest = rest.slice(0, where) + rest.slice(where + needle.length);
  }
  return `${at}|${rest}`;
}

/**
 * A digest of the session's content without the fields that change on every request when nothing else
 * does: `cookie.expires`, and @fastify/session's `cookie.originalExpires`. Two sessions with the same
 * fingerprint differ at most in when they expire, so writing the second one only needs a touch.
 *
 * `body` is the session as `serializer` wrote it. With the default JSON serializer the digest is taken
 * from it directly; any other serializer is run a second time on a copy without those fields.
 */
export function fingerprint(serializer: Serializer, session: SessionData, body: string): string {
  const cookie = session.cookie as CookieLike | null | undefined;
  if (cookie === undefined || cookie === null) return sha1(body);
  if (serializer === JSON) {
    const shortened = withoutMovingFields(body, cookie);
    if (shortened !== undefined) return sha1(shortened);
  }
  const plainCookie = typeof cookie.toJSON === 'function' ? cookie.toJSON() : cookie;
  const shadow = {
    ...session,
    cookie: { ...plainCookie, expires: undefined, originalExpires: undefined },
  } as SessionData;
  return sha1(`*${serializer.stringify(shadow)}`);
}
