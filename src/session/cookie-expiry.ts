import type { SessionData, SessionInput } from '../types.js';

/** The cookie's expiry in epoch ms, or `undefined` when it has none or it cannot be read. */
export function cookieExpiryMs(session: SessionInput | null | undefined): number | undefined {
  const expires = session?.cookie?.expires;
  if (expires === undefined || expires === null) return undefined;
  const ms = typeof expires === 'string' ? Date.parse(expires) : (expires as Date).getTime?.();
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
}

export function cookieExpiryText(ms: number | undefined): string {
  return ms === undefined ? '' : String(Math.floor(ms));
}

let clockMs = 0;
let clockIso = '';

/**
 * True when the session's cookie says it has expired. ISO strings (what JSON gives back) are compared as
 * text with the current time's ISO string, cached per millisecond: no date parsing on the read path.
 */
export function cookieExpired(session: SessionData): boolean {
  const expires = session.cookie?.expires;
  if (expires === undefined || expires === null) return false;
  if (typeof expires === 'string' && expires.length === 24 && expires.endsWith('Z')) {
    const now = Date.now();
    if (now !== clockMs) {
      clockMs = now;
      clockIso = new Date(now).toISOString();
    }
    return expires <= clockIso;
  }
  const ms = cookieExpiryMs(session);
  return ms !== undefined && ms <= Date.now();
}

/** Moves the session's cookie.expires by `shiftMs`, keeping its type (ISO text or Date). */
export function shiftCookieExpiry(session: SessionData, shiftMs: number): void {
  const cookie = session.cookie;
  const ms = cookieExpiryMs(session);
  if (!cookie || ms === undefined) return;
  const moved = new Date(ms + shiftMs);
  cookie.expires = typeof cookie.expires === 'string' ? moved.toISOString() : moved;
}
