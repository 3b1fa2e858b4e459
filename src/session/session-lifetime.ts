/**
 * What a session about to be stored carries besides its text: its remaining lifetime and its lifetime
 * rule (from the cookie or the `ttl` option), and the user it belongs to (the `userId` option).
 */

import type { KeySpace } from '../keys.js';
import type { SessionData, SessionInput } from '../types.js';
import { sessionIdProblem } from '../validation/ids.js';
import { cookieExpiryMs } from './cookie-expiry.js';
import type { ResolvedOptions } from './store-options.js';

/**
 * The user of session `sid` and that user's index key (in the sharded layout the index of `sid`'s
 * shard, in the session's slot), when the store has a `userId` option and it names one; throws a
 * TypeError naming the problem when the id it gives is not a valid user id.
 */
export function userOf(
  options: ResolvedOptions,
  keys: KeySpace,
  sid: string,
  session: SessionData,
): { id: string; key: string } | undefined {
  if (options.userId === undefined) return undefined;
  const id = options.userId(session);
  if (id === undefined || id === null) return undefined;
  const problem = sessionIdProblem(id);
  if (problem !== undefined)
    throw new TypeError(`geosession: option \`userId\` gave a user id that ${problem}`);
  return { id, key: keys.user(id, keys.shardOf(sid)) };
}

/**
 * The remaining lifetime in ms of a session about to be stored: the cookie's expiry minus the host's
 * now (a wrong host clock cancels out: express-session set the expiry from the same clock), or the
 * ttl; 0 means never (disableTTL); negative means already expired. And its lifetime rule: the cookie's
 * maxAge, or the ttl, which no touch may reach past.
 */
export function lifetimeOf(
  options: ResolvedOptions,
  session: SessionInput,
): { lifetimeMs: number; ruleMs: number } {
  let lifetime: number;
  let rule: number;
  const maxAge = session?.cookie?.originalMaxAge;
  if (typeof options.ttl === 'function') {
    lifetime = options.ttl(session as SessionData) * 1000;
    rule = lifetime;
  } else {
    const expires = cookieExpiryMs(session);
    lifetime = expires === undefined ? options.ttl * 1000 : expires - options.clock();
    rule = typeof maxAge === 'number' && maxAge > 0 ? maxAge : options.ttl * 1000;
  }
  if (!Number.isFinite(lifetime)) throw new TypeError(`the session's lifetime is ${lifetime}`);
  if (lifetime <= 0) return { lifetimeMs: -1, ruleMs: 0 };
  if (options.disableTTL) return { lifetimeMs: 0, ruleMs: 0 };
  // A cookie whose expiry lies beyond its maxAge (or the ttl) makes that expiry its rule; a second of
  // slack keeps the clock's jitter from changing the rule of an ordinary `now + maxAge` cookie.
  const ruleMs = lifetime > rule + 1000 ? Math.ceil(lifetime) : Math.ceil(rule);
  return { lifetimeMs: Math.max(1, Math.floor(lifetime)), ruleMs: Math.max(1, ruleMs) };
}
