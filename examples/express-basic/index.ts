/**
 * A small Express 5 app whose sessions live in this region's Redis through GeoSessionStore.
 *
 *   npx tsx examples/express-basic/index.ts
 *
 * Routes: POST /login {"user": "..."}, GET /me, POST /logout. See README.md for curl commands.
 */
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
// This example runs from a clone without a build. An app would write:
//   import { GeoSessionStore } from 'geosession';
import { GeoSessionStore } from '../../src/index.js';

// Tell TypeScript what this app keeps in its sessions.
declare module 'express-session' {
  interface SessionData {
    user?: string;
    loggedInAt?: string;
  }
}

const port = Number(process.env.PORT ?? 3000);

// The client is yours: the store never quits it, so shut it down yourself (see `shutdown` below).
const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
client.on('error', (error) => console.error('redis:', error.message));

const store = new GeoSessionStore({ region: process.env.REGION ?? 'hk', client });
// A write refused because the session was logged out meanwhile (a slow request re-saving it).
store.on('refused', (info) => console.warn('session write refused:', info));
// Background failures (replication); request failures go to Express's error handler instead.
store.on('error', (error) => console.error('session store:', error));

const app = express();
app.use(express.json());
app.use(
  session({
    store,
    // Ids carry the region that made them, e.g. "hk.Q2x...", so other regions know where a session lives.
    genid: store.genid,
    secret: process.env.SESSION_SECRET ?? 'dev-only-secret-change-me',
    resave: false, // unmodified sessions are touched (expiry only), never rewritten
    saveUninitialized: false, // no Redis key and no cookie for visitors who never log in
    rolling: true, // re-send the cookie on every response, so an active user stays logged in
    cookie: {
      maxAge: 24 * 60 * 60 * 1000,
      httpOnly: true,
      sameSite: 'lax',
      // Behind HTTPS in production; plain http on localhost. Behind a proxy also set app.set('trust proxy', 1).
      secure: process.env.NODE_ENV === 'production',
    },
  }),
);

app.post('/login', (req, res, next) => {
  const user = typeof req.body?.user === 'string' ? req.body.user.trim() : '';
  if (!user) {
    res.status(400).json({ error: 'send {"user": "<name>"}' });
    return;
  }
  // A new id on login prevents session fixation; the old id is destroyed (and tombstoned) in Redis.
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = user;
    req.session.loggedInAt = new Date().toISOString();
    res.json({ user, region: store.regionOf(req.sessionID) });
  });
});

app.get('/me', (req, res) => {
  // req.session is missing while Redis is unreachable: express-session skips a disconnected store.
  if (!req.session) {
    res.status(503).json({ error: 'sessions are unavailable right now' });
    return;
  }
  if (!req.session.user) {
    res.status(401).json({ error: 'not logged in' });
    return;
  }
  res.json({ user: req.session.user, loggedInAt: req.session.loggedInAt, sessionId: req.sessionID });
});

app.post('/logout', (req, res, next) => {
  if (!req.session) {
    res.status(503).json({ error: 'sessions are unavailable right now' });
    return;
  }
  req.session.destroy((err) => {
    if (err) return next(err);
    res.clearCookie('connect.sid');
    res.json({ loggedOut: true });
  });
});

// A Redis failure while loading a session arrives here, as a 500, instead of crashing the process.
app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  console.error(err);
  res.status(500).json({ error: 'internal error' });
});

const server = app.listen(port, () => {
  console.log(`express-basic listening on http://127.0.0.1:${port} (region ${store.region})`);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  // Stop accepting requests and let in-flight ones finish, then release the store and the client.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  await client.quit();
  console.log('bye');
}
// Once everything is closed nothing keeps the event loop alive, so the process exits on its own.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and again through npx and
  // tsx, which forward it), and a second SIGINT without a handler would end the shutdown halfway.
  process.on(signal, () => {
    shutdown(signal).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
}
