/**
 * The framework-neutral part of sessions from PASETO access tokens: find the token in a request's
 * headers, verify it (no Redis involved until it passes), then load or create the server-side session
 * and, once the handler is done, save what it changed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  type AccessTokenFailure,
  type AccessTokenVerifier,
  createAccessTokenVerifier,
  type VerifiedAccessToken,
} from '../security/access-token.js';
import type { SessionData } from '../types.js';
import {
  type PasetoSessionOptions,
  type ResolvedPasetoSessionOptions,
  resolvePasetoSessionOptions,
  SESSION_ID_PATTERN,
} from './paseto-session-options.js';

/** Why a request was refused: a token failure, or `revoked` (its session was destroyed: a logout). */
export type PasetoSessionFailure = AccessTokenFailure | 'revoked';

/**
 * The session of a request, as `req.session` (express) or `request.session` (fastify): a plain object
 * whose own enumerable properties are the session's fields (the mapped claims, then whatever the handler
 * adds), plus two non-enumerable members. Change fields freely: the session is saved when the response
 * is sent, if they changed.
 */
export interface PasetoSession {
  /** The session id: the configured prefix and the session claim's value. */
  readonly id: string;
  /**
   * Destroys the session in every region (a logout): later requests with this token, or any token
   * naming this session, get 401 `revoked`. Resolves once the local Redis has the tombstone.
   */
  destroy(): Promise<void>;
  [field: string]: unknown;
}

/** The JSON body of a 401. */
export interface PasetoSessionErrorBody {
  error: 'invalid_token';
  reason: PasetoSessionFailure;
}

/** The value of the `WWW-Authenticate` header of a 401 (RFC 6750). */
export const WWW_AUTHENTICATE = 'Bearer error="invalid_token"';

/** A loaded session and what to do with it once the handler is done. */
export interface LoadedSession {
  readonly session: PasetoSession;
  readonly token: VerifiedAccessToken;
  /** Saves the session if it is new, extended or changed by the handler; a no-op after destroy. */
  commit(): Promise<void>;
}

/** The outcome of {@link TokenSessions.load}. */
export type LoadResult =
  | { readonly ok: true; readonly loaded: LoadedSession }
  | { readonly ok: false; readonly reason: PasetoSessionFailure };

const RESERVED = new Set(['id', 'destroy', 'cookie']);
const BEARER = /^Bearer[ ]+([^ ]+)[ ]*$/i;

/**
 * The value of cookie `name` in a `Cookie` header, URL-decoded when it needs to be; `''` (malformed) for
 * a value longer than `maxBytes`, which is never decoded.
 */
function cookieValue(header: string | undefined, name: string, maxBytes: number): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (value.length > maxBytes) return '';
    if (!value.includes('%')) return value;
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

function snapshot(session: PasetoSession): string {
  return JSON.stringify(session);
}

/** The cookie part of a stored token session. */
interface SessionCookieShape {
  expires: string;
  originalMaxAge: number;
}

/** A stored session's expiry (epoch ms) as its cookie says, `NaN` when unreadable. */
function cookieExpiryOf(stored: SessionData): number {
  const expires = (stored.cookie as { expires?: unknown } | null | undefined)?.expires;
  return typeof expires === 'string' ? Date.parse(expires) : Number.NaN;
}

function fieldsOf(stored: SessionData): Record<string, unknown> {
  const { cookie: _cookie, ...fields } = stored;
  return fields;
}

/** Turns headers into sessions; one per middleware instance. */
export class TokenSessions {
  readonly options: ResolvedPasetoSessionOptions;
  private readonly verifier: AccessTokenVerifier;

  constructor(options: PasetoSessionOptions) {
    this.options = resolvePasetoSessionOptions(options);
    this.verifier = createAccessTokenVerifier(this.options);
  }

  /** The token of a request: `Authorization: Bearer <token>`, else the configured cookie. */
  tokenOf(headers: IncomingHttpHeaders): string | undefined {
    const authorization = headers.authorization;
    if (authorization !== undefined) {
      const match = BEARER.exec(authorization);
      if (match) return match[1];
      if (/^Bearer\b/i.test(authorization)) return ''; // "Bearer" with no usable token: malformed
    }
    const { cookie, maxTokenBytes } = this.options;
    // A percent-encoded byte takes three characters: the decoded token is checked against the limit again.
    return cookie === undefined ? undefined : cookieValue(headers.cookie, cookie, 3 * maxTokenBytes);
  }

  /**
   * Authenticates a request by its headers and loads (or starts) its session. A missing, invalid or
   * expired token is refused before any Redis command; a valid token whose session was destroyed is
   * refused as `revoked`. Store failures reject.
   */
  async load(headers: IncomingHttpHeaders): Promise<LoadResult> {
    const raw = this.tokenOf(headers);
    if (raw === undefined) return { ok: false, reason: 'missing' };
    const verified = await this.verifier.verify(raw);
    if (!verified.ok) return verified;
    const { token } = verified;
    const claim = token.claims[this.options.sessionIdClaim];
    const sid = typeof claim === 'string' ? this.options.sessionIdPrefix + claim : '';
    if (!SESSION_ID_PATTERN.test(sid)) return { ok: false, reason: 'malformed' };

    const { store } = this.options;
    const expiresAt = token.expiresAt + this.options.clockTolerance * 1000;
    const stored = await store.get(sid);
    if (stored === null && (await store.isDestroyed(sid))) {
      // The logout lasts as long as this token: a tombstone shorter than its exp (an operator's destroy
      // that did not say until when) is lengthened to it (nothing is written when it lives that long).
      await store.destroy(sid, { until: expiresAt });
      return { ok: false, reason: 'revoked' };
    }

    // A new session, or one a later token (same session claim, later exp) extends: cookie from the token.
    // A fresh originalMaxAge makes the extension a full write, so the stored cookie tells the truth.
    const storedExpiry = stored === null ? Number.NaN : cookieExpiryOf(stored);
    const current = Number.isFinite(storedExpiry) && storedExpiry >= expiresAt;
    const cookie = current
      ? (stored?.cookie as SessionCookieShape)
      : { expires: new Date(expiresAt).toISOString(), originalMaxAge: Math.max(0, expiresAt - Date.now()) };
    const fields = stored === null ? this.mappedClaims(token) : fieldsOf(stored);
    return { ok: true, loaded: this.open(sid, fields, cookie, stored, token) };
  }

  private mappedClaims(token: VerifiedAccessToken): Record<string, unknown> {
    const fields = this.options.claims(token.claims);
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
      throw new TypeError('geosession: the `claims` option must return a plain object');
    }
    for (const name of Object.keys(fields)) {
      if (RESERVED.has(name))
        throw new TypeError(`geosession: the \`claims\` option returned reserved field "${name}"`);
    }
    return { ...fields };
  }

  private open(
    sid: string,
    fields: Record<string, unknown>,
    cookie: SessionCookieShape,
    stored: SessionData | null,
    token: VerifiedAccessToken,
  ): LoadedSession {
    const { store } = this.options;
    let destroyed = false;
    const session = { ...fields } as PasetoSession;
    // The tombstone lives at least until the token's exp: however soon the logout, the same token can
    // never bring the session back.
    const until = token.expiresAt + this.options.clockTolerance * 1000;
    Object.defineProperty(session, 'id', { value: sid, enumerable: false });
    Object.defineProperty(session, 'destroy', {
      enumerable: false,
      value: async () => {
        destroyed = true;
        await store.destroy(sid, { until });
      },
    });
    const before = stored === null ? undefined : snapshot(session);
    const extended =
      stored !== null && cookie.expires !== (stored.cookie as { expires?: unknown } | undefined)?.expires;
    return {
      session,
      token,
      async commit() {
        if (destroyed) return;
        const value = { ...session, cookie };
        if (before === undefined || extended || snapshot(session) !== before) await store.set(sid, value);
      },
    };
  }
}
