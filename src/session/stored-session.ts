/**
 * A stored value turned into the session handed to the caller: parsed by the serializer (sync or
 * async; a `CorruptSessionError` when it cannot be), its cookie expiry moved by what touches and
 * expiry-only writes moved since it was written, and freshened from Redis when a touch left it behind.
 */

import { CorruptSessionError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { sendCommand } from '../redis/send-command.js';
import type { Callback } from '../runtime/callback.js';
import type { SessionData } from '../types.js';
import { cookieExpired, cookieExpiryMs, shiftCookieExpiry } from './cookie-expiry.js';
import type { Deadlines } from './deadline.js';
import { execCall } from './redis-call.js';
import type { ResolvedOptions } from './store-options.js';

/** What delivering a stored session needs from the store (a subset of its operations' context). */
export interface StoredSessionContext {
  readonly options: ResolvedOptions;
  readonly keys: KeySpace;
  readonly deadlines: Deadlines;
}

/**
 * Parses a stored value and hands it to `done`, its cookie expiry moved by `shiftMs` (how far writes
 * that changed only the expiry, and touches, moved it since the value was written: the metadata's
 * `x - w`, both Redis-clock times, so no host clock enters) and fixed if a touch left it behind.
 */
export function deliverStored(
  ctx: StoredSessionContext,
  sid: string,
  text: string,
  done: Callback<SessionData | null>,
  shiftMs = 0,
): void {
  let parsed: SessionData | Promise<SessionData>;
  try {
    parsed = ctx.options.serializer.parse(text);
  } catch (error) {
    done(new CorruptSessionError(sid, error));
    return;
  }
  if (parsed instanceof Promise) {
    parsed.then(
      (session) => finish(ctx, sid, session, done, shiftMs),
      (error: unknown) => done(new CorruptSessionError(sid, error)),
    );
    return;
  }
  finish(ctx, sid, parsed, done, shiftMs);
}

function finish(
  ctx: StoredSessionContext,
  sid: string,
  session: unknown,
  done: Callback<SessionData | null>,
  shiftMs: number,
): void {
  if (typeof session !== 'object' || session === null) {
    const what = session === null ? 'null' : typeof session;
    done(new CorruptSessionError(sid, new TypeError(`parsed to ${what}`)));
    return;
  }
  if (shiftMs !== 0) shiftCookieExpiry(session as SessionData, shiftMs);
  if (!cookieExpired(session as SessionData)) {
    done(null, session as SessionData);
    return;
  }
  freshenCookieExpiry(ctx, sid, session as SessionData, done);
}

/**
 * `touch` never rewrites the stored value, so after one its `cookie.expires` is older than the real
 * expiry. That is harmless until it lies in the past, when @fastify/session would treat a live session
 * as expired: then (rarely) read the key's real expiry (PEXPIRETIME) and put it in.
 */
function freshenCookieExpiry(
  ctx: StoredSessionContext,
  sid: string,
  session: SessionData,
  done: Callback<SessionData | null>,
): void {
  const stored = cookieExpiryMs(session) ?? 0;
  const work = sendCommand(ctx.options.client, 'pexpiretime', [ctx.keys.session(sid)]) as Promise<number>;
  execCall(ctx.deadlines, 'get', work, done, (latest) => {
    if (latest > stored && session.cookie) session.cookie.expires = new Date(latest).toISOString();
    done(null, session);
  });
}
