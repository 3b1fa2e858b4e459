import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import type { GeoSessionStore } from '../../src/index.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
    cart?: string[];
  }
}

/** One region's web app: an ordinary express-session app whose only geosession-specific line is the store. */
export async function startRegionApp(
  store: GeoSessionStore,
): Promise<{ port: number; close(): Promise<void> }> {
  const app = express();
  app.use(express.json());
  app.use(
    session({
      store,
      genid: store.genid,
      secret: 'demo secret, use a real one',
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 30 * 60 * 1000 },
    }),
  );
  app.use((_req, res, next) => {
    res.setHeader('x-region', store.region);
    next();
  });

  app.post('/login', (req, res, next) => {
    // A new id at login (fixation defence); the old one, if any, is destroyed everywhere.
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = String(req.body?.user ?? 'guest');
      req.session.cart = [];
      res.json({ user: req.session.user });
    });
  });
  app.get('/me', (req, res) => {
    if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
    res.json({ user: req.session.user, cart: req.session.cart ?? [] });
  });
  app.post('/cart', (req, res) => {
    if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
    req.session.cart = [...(req.session.cart ?? []), String(req.body?.item)];
    res.json({ cart: req.session.cart });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
