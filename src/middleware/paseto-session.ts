/**
 * Sessions from PASETO access tokens (seed 000 section 3): `pasetoSession(options)` for express (any
 * connect-style stack) and `pasetoSessionPlugin` for fastify.
 *
 * Each request must carry a v4.public token (`Authorization: Bearer <token>`, or the `cookie` option's
 * cookie). It is verified (key by footer `kid`, issuer, audience, expiry) before anything touches Redis;
 * then the server-side session named by the token's session claim is loaded from the store, or created
 * from the token's claims, and exposed as `req.session` / `request.session` (a {@link PasetoSession}).
 * The session lives until the token's `exp`, is stored and replicated like any other session, and is
 * saved when the response is sent if the handler changed it. `session.destroy()` logs out everywhere: the
 * same token is then refused as `revoked` in every region, although it has not expired.
 *
 * Refusals are 401 with `WWW-Authenticate: Bearer error="invalid_token"` and the JSON body
 * `{ "error": "invalid_token", "reason": <PasetoSessionFailure> }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reportError } from '../failures/report.js';
import type { PasetoSessionOptions } from './paseto-session-options.js';
import {
  type LoadedSession,
  type PasetoSession,
  type PasetoSessionErrorBody,
  type PasetoSessionFailure,
  TokenSessions,
  WWW_AUTHENTICATE,
} from './token-session.js';

/** The body and headers of a refusal. */
function refusal(reason: PasetoSessionFailure): { body: string; headers: Record<string, string> } {
  const body: PasetoSessionErrorBody = { error: 'invalid_token', reason };
  return {
    body: JSON.stringify(body),
    headers: {
      'www-authenticate': WWW_AUTHENTICATE,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
    },
  };
}

/** Reports a failed save: the response has been written by then, so it goes to the store's `error`. */
function committer(sessions: TokenSessions, loaded: LoadedSession): () => Promise<void> {
  return () => loaded.commit().catch((error: unknown) => reportError(sessions.options.store, error));
}

/** A request that went through the middleware. */
interface WithSession {
  session?: unknown;
}

/**
 * The {@link PasetoSession} of a request that went through `pasetoSession` or `pasetoSessionPlugin`
 * (typed access to `req.session` that does not clash with express-session's or @fastify/session's
 * declarations). Throws when the request has none.
 */
export function pasetoSessionOf(request: object): PasetoSession {
  const session = (request as WithSession).session as Partial<PasetoSession> | null | undefined;
  if (!session || typeof session.destroy !== 'function' || typeof session.id !== 'string') {
    throw new TypeError('geosession: this request has no PASETO session (is pasetoSession mounted?)');
  }
  return session as PasetoSession;
}

/** An express (connect-style) middleware. */
export type PasetoSessionMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/**
 * Express middleware: authenticates every request by its PASETO access token and sets `req.session`.
 * Options are validated now (a `ConfigError` names the bad one). A store failure goes to `next(err)`;
 * a failed save after the handler is reported on the store's `error` event.
 *
 * @example
 * ```ts
 * app.use(pasetoSession({ store, publicKeys: [ISSUER_KEY], issuer: 'https://auth.example', audience: 'shop' }));
 * app.get('/me', (req, res) => res.json({ user: pasetoSessionOf(req).userId }));
 * app.post('/logout', async (req, res) => { await pasetoSessionOf(req).destroy(); res.end(); });
 * ```
 */
export function pasetoSession(options: PasetoSessionOptions): PasetoSessionMiddleware {
  const sessions = new TokenSessions(options);
  return (req, res, next) => {
    sessions.load(req.headers).then((result) => {
      if (!result.ok) {
        const { body, headers } = refusal(result.reason);
        res.writeHead(401, headers);
        res.end(body);
        return;
      }
      (req as WithSession).session = result.loaded.session;
      saveBeforeEnd(res, committer(sessions, result.loaded));
      next();
    }, next);
  };
}

/**
 * Makes the response's first `end()` wait for `save`, so that the next request (in any region, once
 * replicated) sees what this one wrote, as express-session does.
 */
function saveBeforeEnd(res: ServerResponse, save: () => Promise<void>): void {
  const end = res.end as (...args: unknown[]) => ServerResponse;
  let called = false;
  res.end = function deferredEnd(this: ServerResponse, ...args: unknown[]) {
    if (called) return end.apply(this, args);
    called = true;
    save().finally(() => end.apply(res, args));
    return res;
  } as ServerResponse['end'];
}

/** The parts of a fastify request this plugin uses. */
interface FastifyRequestLike {
  headers: IncomingMessage['headers'];
}

/** The parts of a fastify reply this plugin uses. */
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(values: Record<string, string>): FastifyReplyLike;
  send(payload?: unknown): FastifyReplyLike;
}

/** The parts of a fastify instance this plugin uses. */
interface FastifyInstanceLike {
  hasRequestDecorator(name: string): boolean;
  decorateRequest(name: string, value: null): unknown;
  addHook(
    name: 'onRequest',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
  addHook(
    name: 'onSend',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, payload: unknown) => Promise<unknown>,
  ): unknown;
}

/** A fastify plugin callback taking {@link PasetoSessionOptions}. */
export type PasetoSessionPlugin = (
  fastify: FastifyInstanceLike,
  options: PasetoSessionOptions,
  done: (error?: Error) => void,
) => void;

function registerPasetoSession(
  fastify: FastifyInstanceLike,
  options: PasetoSessionOptions,
  done: (error?: Error) => void,
): void {
  let sessions: TokenSessions;
  try {
    sessions = new TokenSessions(options);
  } catch (error) {
    done(error as Error);
    return;
  }
  const loaded = new WeakMap<object, () => Promise<void>>();
  if (!fastify.hasRequestDecorator('session')) fastify.decorateRequest('session', null);
  fastify.addHook('onRequest', async (request, reply) => {
    const result = await sessions.load(request.headers);
    if (!result.ok) {
      const { body, headers } = refusal(result.reason);
      return reply.code(401).headers(headers).send(body);
    }
    (request as WithSession).session = result.loaded.session;
    loaded.set(request, committer(sessions, result.loaded));
    return undefined;
  });
  fastify.addHook('onSend', async (request, _reply, payload) => {
    const save = loaded.get(request);
    if (save) {
      loaded.delete(request);
      await save();
    }
    return payload;
  });
  done();
}

/**
 * Fastify plugin (not encapsulated, like @fastify/session): authenticates every request of the instance
 * it is registered on by its PASETO access token and sets `request.session`. Bad options fail the
 * registration (`app.ready()` rejects with the `ConfigError`). A store failure fails the request (500);
 * a failed save is reported on the store's `error` event.
 *
 * @example
 * ```ts
 * await app.register(pasetoSessionPlugin, { store, publicKeys: [ISSUER_KEY], issuer, audience: 'shop' });
 * app.get('/me', async (request) => ({ user: pasetoSessionOf(request).userId }));
 * ```
 */
export const pasetoSessionPlugin: PasetoSessionPlugin = Object.assign(registerPasetoSession, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'geosession-paseto-session',
  [Symbol.for('plugin-meta')]: { name: 'geosession-paseto-session', fastify: '5.x' },
});
