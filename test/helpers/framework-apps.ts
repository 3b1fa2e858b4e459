/**
 * One app per framework over a GeoSessionStore, with the same routes, so the store suite
 * (test/session/frameworks.test.ts) runs unchanged under express-session and @fastify/session:
 * POST /login?user=…, GET /me, POST /count, POST /regenerate, POST /logout.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import express, { type NextFunction, type Request, type Response } from 'express';
import session, { type SessionOptions } from 'express-session';
import Fastify from 'fastify';
import { createKeySpace } from '../../src/keys.js';
import type { GeoSessionStore } from '../../src/session/store.js';
import { type CookieJar, recordCalls } from './http.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
    count?: number;
  }
}

declare module 'fastify' {
  interface Session {
    user?: string;
    count?: number;
  }
}

export type Framework = 'express' | 'fastify';

/** What the routes answer. `session: false` when express-session skipped the store (Redis down). */
export interface Body {
  user?: string | null;
  sid?: string;
  count?: number;
  session?: boolean;
  error?: string;
}

export interface FrameworkApp {
  readonly framework: Framework;
  readonly store: GeoSessionStore;
  /** The session cookie's name. */
  readonly cookieName: string;
  /** Store methods called, in order. */
  readonly calls: string[];
  /** Errors that reached the framework's error handler. */
  readonly errors: Error[];
  request(jar: CookieJar, method: string, path: string): Promise<{ status: number; body: Body }>;
  metaKey(sid: string): string;
  /** The session id inside the signed cookie value the jar holds. */
  sidOfCookie(jar: CookieJar): string;
  close(): Promise<void>;
}

export interface AppOptions {
  /** Cookie maxAge, ms. @default 60000 */
  maxAge?: number;
  saveUninitialized?: boolean;
  rolling?: boolean;
  /** express-session only. */
  resave?: boolean;
}

const EXPRESS_SECRET = 'express-e2e-secret';
const FASTIFY_SECRET = 'fastify-e2e-secret-of-at-least-32-characters';

/** Starts `framework`'s app over `store` on a free port. */
export async function startApp(
  framework: Framework,
  store: GeoSessionStore,
  options: AppOptions = {},
): Promise<FrameworkApp> {
  const calls: string[] = [];
  recordCalls(store, calls);
  const errors: Error[] = [];
  const started =
    framework === 'express'
      ? await expressApp(store, options, errors)
      : await fastifyApp(store, options, errors);
  const keys = createKeySpace(store.prefix);
  return {
    framework,
    store,
    cookieName: started.cookieName,
    calls,
    errors,
    metaKey: (sid) => keys.meta(sid),
    sidOfCookie(jar) {
      const decoded = decodeURIComponent(jar.cookies.get(started.cookieName) ?? '');
      const signed = framework === 'express' ? decoded.replace(/^s:/, '') : decoded;
      return signed.slice(0, signed.lastIndexOf('.'));
    },
    async request(jar, method, path) {
      const res = await fetch(started.base + path, { method, headers: { cookie: jar.header() } });
      jar.absorb(res);
      return { status: res.status, body: (await res.json()) as Body };
    },
    close: started.close,
  };
}

async function expressApp(store: GeoSessionStore, options: AppOptions, errors: Error[]) {
  const app = express();
  const sessionOptions: SessionOptions = {
    secret: EXPRESS_SECRET,
    store,
    genid: store.genid,
    resave: options.resave ?? false,
    saveUninitialized: options.saveUninitialized ?? false,
    cookie: { maxAge: options.maxAge ?? 60_000 },
    ...(options.rolling === undefined ? {} : { rolling: options.rolling }),
  };
  app.use(session(sessionOptions));
  app.post('/login', (req, res) => {
    req.session.user = String(req.query.user ?? 'alice');
    res.json({ sid: req.sessionID });
  });
  app.get('/me', (req, res) => {
    if (!req.session) {
      res.json({ session: false });
      return;
    }
    res.json({ user: req.session.user ?? null, sid: req.sessionID });
  });
  app.post('/count', (req, res) => {
    req.session.count = (req.session.count ?? 0) + 1;
    res.json({ count: req.session.count });
  });
  app.post('/regenerate', (req, res, next) => {
    const user = req.session.user;
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = user;
      res.json({ sid: req.sessionID, user: req.session.user ?? null });
    });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({})));
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(err);
    res.status(500).json({ error: err.name });
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    cookieName: 'connect.sid',
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function fastifyApp(store: GeoSessionStore, options: AppOptions, errors: Error[]) {
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: FASTIFY_SECRET,
    store,
    idGenerator: store.genid,
    cookie: { secure: false, maxAge: options.maxAge ?? 60_000 },
    ...(options.saveUninitialized === undefined ? {} : { saveUninitialized: options.saveUninitialized }),
    ...(options.rolling === undefined ? {} : { rolling: options.rolling }),
  });
  app.post('/login', async (request) => {
    request.session.user = String((request.query as { user?: string }).user ?? 'alice');
    return { sid: request.session.sessionId };
  });
  app.get('/me', async (request) => ({ user: request.session.user ?? null, sid: request.session.sessionId }));
  app.post('/count', async (request) => {
    request.session.count = (request.session.count ?? 0) + 1;
    return { count: request.session.count };
  });
  app.post('/regenerate', async (request) => {
    await request.session.regenerate(['user']);
    return { sid: request.session.sessionId, user: request.session.user ?? null };
  });
  app.post('/logout', async (request) => {
    await request.session.destroy();
    return {};
  });
  app.setErrorHandler((err, _request, reply) => {
    const error = err instanceof Error ? err : new Error(String(err));
    errors.push(error);
    void reply.status(500).send({ error: error.name });
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { cookieName: 'sessionId', base, close: () => app.close() };
}
