/**
 * An Express 5 app for one region whose sessions live in the region's Redis and are replicated to the
 * other regions through RabbitMQ (or LavinMQ) with the AMQP transport.
 *
 *   npx tsx examples/express-amqp/index.ts                                             # region hk
 *   REGION=kr PORT=3001 REDIS_URL=redis://127.0.0.1:6379/4 npx tsx examples/express-amqp/index.ts
 *
 * Routes: POST /login {"user": "..."}, GET /me, POST /logout, GET /replication. See README.md.
 */
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
// This example runs from a clone without a build. An app would write:
//   import { GeoSessionStore } from 'geosession';
//   import { createPasetoSealer } from 'geosession/paseto';
//   import { createAmqpTransport } from 'geosession/amqp';
import { createAmqpTransport } from '../../src/amqp.js';
import { GeoSessionStore } from '../../src/index.js';
import { createPasetoSealer } from '../../src/paseto.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
    loggedInAt?: string;
  }
}

const region = process.env.REGION ?? 'hk';
const regions = (process.env.REGIONS ?? 'hk,kr').split(',').map((r) => r.trim());
const port = Number(process.env.PORT ?? 3000);

// The Redis client is yours: the store never quits it.
const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/3');
client.on('error', (error) => console.error('redis:', error.message));

// One transport per process. It connects in the background and reconnects by itself; while the broker
// is away, changes wait in this region's Redis outbox and are published when it is back.
const transport = createAmqpTransport({
  url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  regions, // every region of the deployment, this one included: each gets a durable queue
  namePrefix: process.env.AMQP_NAME_PREFIX ?? 'geosession', // names: <namePrefix>.<channel>.<region>
});
transport.on('state', (state) => console.log(`amqp transport: ${state}`));
transport.on('error', (error) => console.warn('amqp transport:', error.message));

// Every batch between regions is sealed (PASETO v4.local: encrypted and authenticated), so the broker
// cannot read or forge sessions. Every region holds the same key; make one with
//   node -e "import('geosession/paseto').then((p) => console.log(p.generatePasetoKey().key))"
// The default below is for trying the example only: set SEAL_KEY in production.
const sealer = createPasetoSealer({
  purpose: 'local',
  deployment: 'example',
  keys: [process.env.SEAL_KEY ?? 'k4.local.RASiB_kbBDWDTEyDXZiF4-kYUFg_0MHw1IbMmKWEK4I'],
});

const store = new GeoSessionStore({ region, client, transport, sealer });
store.on('error', (error) => console.error('session store:', error.message));

const app = express();
app.use(express.json());
app.use(
  session({
    store,
    genid: store.genid, // ids start with the region that made them, e.g. "hk.Q2x..."
    secret: process.env.SESSION_SECRET ?? 'dev-only-secret-change-me',
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: {
      maxAge: 24 * 60 * 60 * 1000,
      httpOnly: true,
      sameSite: 'lax',
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
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = user;
    req.session.loggedInAt = new Date().toISOString();
    res.json({ user, region, sessionId: req.sessionID });
  });
});

app.get('/me', (req, res) => {
  if (!req.session) {
    res.status(503).json({ error: 'sessions are unavailable right now' });
    return;
  }
  if (!req.session.user) {
    res.status(401).json({ error: 'not logged in' });
    return;
  }
  res.json({
    user: req.session.user,
    servedBy: region,
    madeIn: store.regionOf(req.sessionID),
    sessionId: req.sessionID,
  });
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

// Replication counters, lag per origin region and the transport's state.
app.get('/replication', (_req, res) => {
  res.json(store.replicationStats());
});

app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  console.error(err);
  res.status(500).json({ error: 'internal error' });
});

const server = app.listen(port, () => {
  console.log(
    `express-amqp listening on http://127.0.0.1:${port} (region ${region} of ${regions.join(', ')})`,
  );
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close(); // stops the relay and the subscription after the batch in flight
  await transport.close(); // closes the AMQP channels and the connection it opened
  await client.quit();
  console.log('bye');
}
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
