import * as crypto from 'node:crypto';
import type { Serializer, SessionCookie, SessionData } from '../options.js';

type HashFn = (algorithm: string, data: string, encoding: 'base64') => string;
const oneShot = (crypto as unknown as { hash?: HashFn }).hash;
const sha1 = oneShot
  ? (text: string) => oneShot('sha1', text, 'base64')
  : (text: string) => crypto.createHash('sha1').update(text).digest('base64');

/**
 * A digest of the session's content without the fields that change on every request when nothing else
 * does: `cookie.expires`, and @fastify/session's `cookie.originalExpires`. Two sessions with the same
 * fingerprint differ at most in when they expire, so writing the second one only needs a touch.
 */
export function fingerprint(serializer: Serializer, session: SessionData): string {
  const cookie = session.cookie as (SessionCookie & { toJSON?: () => object }) | null | undefined;
  if (cookie === undefined || cookie === null) return sha1(serializer.stringify(session));
  const plainCookie = typeof cookie.toJSON === 'function' ? cookie.toJSON() : cookie;
  const shadow = {
    ...session,
    cookie: { ...plainCookie, expires: undefined, originalExpires: undefined },
  } as SessionData;
  return sha1(serializer.stringify(shadow));
}
