import { EventEmitter } from 'node:events';
import { GeoSessionError } from '../errors.js';
import { loadExpressSession } from './express-session.js';

/**
 * What makes the store a drop-in for express-session beyond get/set/destroy/touch: the base class
 * (express-session's `Store` when the app has it, so that `store instanceof session.Store` holds; a
 * plain EventEmitter otherwise, which is all fastify needs) and the three methods express-session's
 * middleware calls on a store: `regenerate`, `load` and `createSession`.
 */

const expressSession = loadExpressSession();

/** The store's base class. */
export const BaseStore: typeof EventEmitter = expressSession?.Store ?? EventEmitter;

/** The request shape `regenerate` needs (express-session's `req`). */
export interface RegenerateRequest {
  sessionID: string;
}

/** What the compatibility methods need from the store. */
export interface CompatStore extends EventEmitter {
  generate?: (req: unknown) => void;
  destroy(sid: string, cb: (err?: Error | null) => void): void;
  get(sid: string, cb: (err: Error | null | undefined, session?: object | null) => void): void;
}

/** express-session's `Store#regenerate`: destroys the old session, then makes a new one on `req`. */
export function regenerate(
  store: CompatStore,
  req: RegenerateRequest,
  fn: (err?: Error | null) => void,
): void {
  store.destroy(req.sessionID, (err) => {
    store.generate?.(req);
    fn(err);
  });
}

/** express-session's `Store#load`: `get` plus `createSession`. */
export function load<T>(
  store: CompatStore,
  sid: string,
  fn: (err?: Error | null, session?: T) => void,
): void {
  store.get(sid, (err, session) => {
    if (err) return fn(err);
    if (!session) return fn();
    fn(null, createSession<T>(store, { sessionID: sid, sessionStore: store }, session));
  });
}

/** express-session's `Store#createSession`: sets and returns `req.session`. Needs express-session. */
export function createSession<T>(store: CompatStore, req: object, session: object): T {
  if (!expressSession) {
    throw new GeoSessionError(
      'ERR_GEOSESSION_CONFIG',
      'geosession: createSession needs express-session, which is not installed',
    );
  }
  return expressSession.Store.prototype.createSession.call(store, req, session) as T;
}
