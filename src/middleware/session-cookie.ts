/**
 * Signed session cookies outside express and fastify: a WebSocket upgrade, a gRPC gateway, any Node
 * service that receives the browser's `Cookie` header and must know which session (if any) it names.
 *
 * How the two frameworks write the cookie:
 * - express-session: cookie `connect.sid`, value `s:` + `<sid>.<signature>`, URL-encoded on the wire
 *   (`s%3A…`, with `+` and `/` of the signature encoded too). The first secret signs; all verify.
 * - @fastify/session: cookie `sessionId`, value `<sid>.<signature>`, with no `s:` unless the app set
 *   `cookiePrefix`. Same HMAC-SHA256 signature (its default `algorithm`), so with `cookiePrefix: 's:'` and
 *   the same secret the two formats are the same cookie.
 *
 * Signatures are checked by `cookie-signature` 1.2, which compares in constant time.
 */
import { unsign } from 'cookie-signature';
import { ConfigError } from '../errors.js';
import type { SessionData } from '../types.js';
import { numberOption } from '../validation/options.js';
import { exceedsBytes } from '../validation/utf8.js';
import { type CookieHeader, decodeCookieValue, readCookie } from './cookie-header.js';

/** Which framework wrote the cookie. */
export type SessionCookieFormat = 'express' | 'fastify';

/** Options of {@link verifySessionCookie} and {@link loadSessionFromCookie}. */
export interface SessionCookieOptions {
  /**
   * The app's session secret(s): express-session's `secret`, @fastify/session's `secret`, in the same
   * order. The first is the one the app signs with; every one of them verifies (rotation: put the new
   * secret first and keep the old ones after it until their cookies have expired). Required; any
   * non-empty string is accepted (the 32-character minimum is @fastify/session's own rule for a single
   * string secret, checked by fastify, not here).
   */
  secrets: string | readonly string[];
  /** Required: `'express'` (express-session) or `'fastify'` (@fastify/session). */
  format: SessionCookieFormat;
  /**
   * The cookie's name: express-session's `name`, @fastify/session's `cookieName`.
   * Default `'connect.sid'` for `'express'`, `'sessionId'` for `'fastify'`.
   */
  name?: string;
  /**
   * `'fastify'` only: the app's @fastify/session `cookiePrefix` (e.g. `'s:'`), which precedes the signed
   * value. Default `''`. A cookie without the prefix is treated as absent, as @fastify/session does.
   * express-session always uses `s:`, so this option is refused with `format: 'express'`.
   */
  cookiePrefix?: string;
  /**
   * Longest cookie value read, in UTF-8 bytes as it is on the wire (before percent-decoding). A longer
   * value is treated as no cookie, without decoding it or computing any signature. Browsers keep at most
   * 4096 bytes per cookie, name included.
   * @default 4096
   */
  maxCookieBytes?: number;
}

/** A session cookie whose signature verified. */
export interface VerifiedSessionCookie {
  /** The session id, as the app sees it (`req.sessionID`, `request.session.sessionId`). */
  sid: string;
  /** Index in `secrets` of the secret that verified the signature. */
  secretIndex: number;
  /**
   * True when a secret other than the first verified it: the cookie predates a rotation and should be
   * signed again with the current secret the next time the app sets it.
   */
  renew: boolean;
}

/** What {@link loadSessionFromCookie} reads sessions from: a `GeoSessionStore`, or any store with `get`. */
export interface SessionReader {
  /** The stored session, or `null` (or `undefined`) when there is none. */
  get(sid: string): Promise<SessionData | null | undefined>;
}

/** A verified cookie and the session it names. */
export interface SessionFromCookie extends VerifiedSessionCookie {
  /** The session as the app stored it. */
  session: SessionData;
}

const DEFAULT_NAMES: Record<SessionCookieFormat, string> = {
  express: 'connect.sid',
  fastify: 'sessionId',
};

/** express-session's fixed marker of a signed value. */
const EXPRESS_PREFIX = 's:';

interface ResolvedOptions {
  readonly secrets: readonly string[];
  readonly name: string;
  readonly prefix: string;
  readonly maxCookieBytes: number;
}

/** Default of {@link SessionCookieOptions.maxCookieBytes}: what a browser keeps of one cookie. */
export const DEFAULT_MAX_COOKIE_BYTES = 4096;

/** A cookie name: an RFC 7230 token, as the `cookie` package requires when the app sets it. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function resolveSecrets(secrets: unknown): string[] {
  if (typeof secrets === 'string') {
    if (secrets.length === 0) throw new ConfigError('secrets', 'must not be an empty string');
    return [secrets];
  }
  if (!Array.isArray(secrets)) {
    throw new ConfigError('secrets', 'must be a non-empty string or an array of non-empty strings');
  }
  if (secrets.length === 0) throw new ConfigError('secrets', 'must hold at least one secret');
  secrets.forEach((secret: unknown, index) => {
    if (typeof secret !== 'string' || secret.length === 0) {
      throw new ConfigError(`secrets[${index}]`, 'must be a non-empty string');
    }
  });
  return [...(secrets as string[])];
}

/** Validates options; a `ConfigError` names the option at fault. */
function resolveOptions(options: SessionCookieOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'must be an object with `secrets` and `format`');
  }
  const { format, name, cookiePrefix, maxCookieBytes = DEFAULT_MAX_COOKIE_BYTES } = options;
  if (format !== 'express' && format !== 'fastify') {
    throw new ConfigError('format', `must be 'express' or 'fastify' (got ${JSON.stringify(format)})`);
  }
  const secrets = resolveSecrets(options.secrets);
  if (name !== undefined && (typeof name !== 'string' || !COOKIE_NAME.test(name))) {
    throw new ConfigError('name', "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)");
  }
  if (cookiePrefix !== undefined) {
    if (format === 'express') {
      throw new ConfigError(
        'cookiePrefix',
        "applies to format 'fastify' only (express-session always uses 's:')",
      );
    }
    if (typeof cookiePrefix !== 'string') throw new ConfigError('cookiePrefix', 'must be a string');
  }
  numberOption('maxCookieBytes', maxCookieBytes, DEFAULT_MAX_COOKIE_BYTES, {
    integer: true,
    min: 64,
    minExclusive: false,
    max: 65_536,
  });
  return {
    secrets,
    name: name ?? DEFAULT_NAMES[format],
    prefix: format === 'express' ? EXPRESS_PREFIX : (cookiePrefix ?? ''),
    maxCookieBytes,
  };
}

/**
 * Verifies the signed session cookie in a `Cookie` request header and returns the session id it carries.
 *
 * Returns `null` when the header has no such cookie (or only an empty one), when the value is not of the
 * format's shape (no `s:` for express, a missing `cookiePrefix` for fastify, bad percent-encoding), longer than `maxCookieBytes`, or when
 * no secret verifies the signature. Never throws for any header; throws a {@link ConfigError} naming the
 * option when the options are invalid. When the name appears twice, the first cookie counts, as in the app.
 *
 * A valid signature says the app issued this id, not that the session still exists: after a logout or
 * expiry the cookie still verifies. Use {@link loadSessionFromCookie} to also read the session.
 *
 * @example
 * ```ts
 * const cookie = verifySessionCookie(req.headers.cookie, { secrets: [current, previous], format: 'express' });
 * if (cookie?.renew) console.log(`session ${cookie.sid} still carries a cookie signed with an old secret`);
 * ```
 */
export function verifySessionCookie(
  cookieHeader: CookieHeader,
  options: SessionCookieOptions,
): VerifiedSessionCookie | null {
  const { secrets, name, prefix, maxCookieBytes } = resolveOptions(options);
  const raw = readCookie(cookieHeader, name);
  if (raw === undefined || raw === '' || exceedsBytes(raw, maxCookieBytes)) return null;
  const value = decodeCookieValue(raw);
  if (value === undefined || !value.startsWith(prefix)) return null;
  const signed = value.slice(prefix.length);
  for (let index = 0; index < secrets.length; index++) {
    const sid = unsign(signed, secrets[index] as string);
    // An empty id is never issued by either framework; refuse it even when signed.
    if (sid !== false && sid !== '') return { sid, secretIndex: index, renew: index > 0 };
  }
  return null;
}

/**
 * Verifies the session cookie in `cookieHeader` (see {@link verifySessionCookie}) and reads the session it
 * names from `store`.
 *
 * Resolves to `null` when there is no cookie, the signature does not verify, or the store has no such
 * session (logged out, or expired). Never rejects because of the header; rejects with the store's own error
 * when the store fails (a `TimeoutError` or `RedisCommandError` from `GeoSessionStore`, for example), and
 * with a {@link ConfigError} when the options are invalid.
 *
 * The check is made once, when called: a long-lived connection that must notice a later logout should call
 * `store.get(sid)` again from time to time (see `examples/websocket-auth`).
 *
 * @example
 * ```ts
 * server.on('upgrade', async (req, socket) => {
 *   const found = await loadSessionFromCookie(store, req.headers.cookie, { secrets, format: 'express' });
 *   if (!found) return void socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
 *   // found.sid, found.session.user ...
 * });
 * ```
 */
export async function loadSessionFromCookie(
  store: SessionReader,
  cookieHeader: CookieHeader,
  options: SessionCookieOptions,
): Promise<SessionFromCookie | null> {
  const cookie = verifySessionCookie(cookieHeader, options);
  if (cookie === null) return null;
  const session = await store.get(cookie.sid);
  if (session === null || session === undefined) return null;
  return { ...cookie, session };
}
