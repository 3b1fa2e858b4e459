/**
 * Two real apps over one GeoSessionStore, for tests that need cookies as the frameworks write them:
 * express 5 + express-session, and fastify 5 + @fastify/cookie + @fastify/session. Both answer the same
 * routes: POST /login?user=…&nonce=… (stores both in the session), GET /me, POST /logout.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import express from 'express';
import session from 'express-session';
import Fastify from 'fastify';
import type { GeoSessionStore } from '../../src/index.js';
import type { CookieJar } from './http.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
    nonce?: string;
  }
}

declare module 'fastify' {
  interface Session {
    user?: string;
    nonce?: string;
  }
}

/** What GET /me answers: the id the app resolved the request to and the user in that session. */
export interface Me {
  sid: string | null;
  user: string | null;
}

export interface SessionApp {
  readonly base: string;
  /** The cookie's name as the app sets it. */
  readonly cookieName: string;
  /** Logs in over HTTP; the jar keeps the Set-Cookie. Resolves to the session id the app chose. */
  login(jar: CookieJar, user: string, nonce: string): Promise<string>;
  /** GET /me with this exact Cookie header (or none). */
  me(cookieHeader: string | undefined): Promise<Me>;
  logout(jar: CookieJar): Promise<void>;
  close(): Promise<void>;
}

export interface AppOptions {
  store: GeoSessionStore;
  secret: string | string[];
  /** express-session `name` / @fastify/session `cookieName`. */
  name?: string;
  /** @fastify/session `cookiePrefix` (fastify only). */
  cookiePrefix?: string;
}

function client(base: string, cookieName: string, close: () => Promise<void>): SessionApp {
  return {
    base,
    cookieName,
    async login(jar, user, nonce) {
      const query = new URLSearchParams({ user, nonce });
      const res = await fetch(`${base}/login?${query}`, {
        method: 'POST',
        headers: { cookie: jar.header() },
      });
      if (res.status !== 200) throw new Error(`login answered ${res.status}`);
      jar.absorb(res);
      return ((await res.json()) as { sid: string }).sid;
    },
    async me(cookieHeader) {
      const res = await fetch(`${base}/me`, {
        headers: cookieHeader === undefined ? {} : { cookie: cookieHeader },
      });
      return (await res.json()) as Me;
    },
    async logout(jar) {
      const res = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: jar.header() } });
      if (res.status !== 200) throw new Error(`logout answered ${res.status}`);
      jar.absorb(res);
    },
    close,
  };
}

export async function startExpressApp(options: AppOptions): Promise<SessionApp> {
  const { store } = options;
  const cookieName = options.name ?? 'connect.sid';
  const app = express();
  app.use(
    session({
      store,
      genid: store.genid,
      secret: options.secret,
      name: cookieName,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 60_000 },
    }),
  );
  app.post('/login', (req, res) => {
    req.session.user = String(req.query.user);
    req.session.nonce = String(req.query.nonce);
    res.json({ sid: req.sessionID });
  });
  app.get('/me', (req, res) => {
    // A request without a verified cookie gets a fresh, unsaved session: no user in it.
    res.json({ sid: req.session.user ? req.sessionID : null, user: req.session.user ?? null });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({})));
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return client(`http://127.0.0.1:${port}`, cookieName, async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

export async function startFastifyApp(options: AppOptions): Promise<SessionApp> {
  const { store } = options;
  const cookieName = options.name ?? 'sessionId';
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    store,
    idGenerator: store.genid,
    secret: options.secret,
    cookieName,
    saveUninitialized: false,
    cookie: { secure: false, maxAge: 60_000 },
    ...(options.cookiePrefix === undefined ? {} : { cookiePrefix: options.cookiePrefix }),
  });
  app.post('/login', async (request) => {
    const query = request.query as { user: string; nonce: string };
    request.session.user = query.user;
    request.session.nonce = query.nonce;
    return { sid: request.session.sessionId };
  });
  app.get('/me', async (request) => ({
    sid: request.session.user ? request.session.sessionId : null,
    user: request.session.user ?? null,
  }));
  app.post('/logout', async (request) => {
    await request.session.destroy();
    return {};
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return client(base, cookieName, () => app.close());
}

/** The value of `name` in a jar, as the browser would send it back (still URL-encoded). */
export function cookieValue(jar: CookieJar, name: string): string {
  const value = jar.cookies.get(name);
  if (value === undefined) throw new Error(`the app set no ${name} cookie`);
  return value;
}
