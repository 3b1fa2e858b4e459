/**
 * A small fastify 5 app whose sessions live in this region's Redis through GeoSessionStore.
 *
 *   npx tsx examples/fastify-basic/index.ts
 *
 * Routes: POST /login {"user": "..."}, GET /me, POST /logout. See README.md for curl commands.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
// This example runs from a clone without a build. An app would write:
//   import { GeoSessionStore } from 'geosession';
import { GeoSessionStore } from '../../src/index.js';

// Tell TypeScript what this app keeps in its sessions.
declare module 'fastify' {
  interface Session {
    user?: string;
    loggedInAt?: string;
  }
}

const port = Number(process.env.PORT ?? 3000);

// The client is yours: the store never quits it, so shut it down yourself (the onClose hook below).
const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
client.on('error', (error) => console.error('redis:', error.message));

const store = new GeoSessionStore({ region: process.env.REGION ?? 'hk', client });
// A write refused because the session was logged out meanwhile (a slow request re-saving it).
store.on('refused', (info) => console.warn('session write refused:', info));
// Background failures (replication); request failures become 500 responses instead.
store.on('error', (error) => console.error('session store:', error));

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });

await app.register(fastifyCookie);
await app.register(fastifySession, {
  store,
  // Ids carry the region that made them, e.g. "hk.Q2x...", so other regions know where a session lives.
  idGenerator: store.genid,
  secret: process.env.SESSION_SECRET ?? 'dev-only-secret-change-me-32-chars-or-more',
  // fastify's default rolling: true saves the session on every request. GeoSessionStore notices when only
  // the expiry changed and then just extends it, without rewriting (or replicating) the whole value.
  saveUninitialized: false, // no Redis key and no cookie for visitors who never log in
  cookie: {
    maxAge: 24 * 60 * 60 * 1000,
    httpOnly: true,
    sameSite: 'lax',
    // fastify defaults to secure cookies, which a browser never sends back over plain http on localhost.
    secure: process.env.NODE_ENV === 'production',
  },
});

app.post<{ Body: { user?: unknown } }>('/login', async (request, reply) => {
  const user = typeof request.body?.user === 'string' ? request.body.user.trim() : '';
  if (!user) return reply.code(400).send({ error: 'send {"user": "<name>"}' });
  // A new id on login prevents session fixation; the old id is destroyed (and tombstoned) in Redis.
  await request.session.regenerate();
  request.session.user = user;
  request.session.loggedInAt = new Date().toISOString();
  return { user, region: store.regionOf(request.session.sessionId) };
});

app.get('/me', async (request, reply) => {
  const { user, loggedInAt } = request.session;
  if (!user) return reply.code(401).send({ error: 'not logged in' });
  return { user, loggedInAt, sessionId: request.session.sessionId };
});

app.post('/logout', async (request, reply) => {
  await request.session.destroy();
  reply.clearCookie('sessionId', { path: '/' });
  return { loggedOut: true };
});

// Runs on app.close(), after the server stopped accepting requests and in-flight ones finished.
app.addHook('onClose', async () => {
  await store.close();
  await client.quit();
});

await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });
app.log.info(`fastify-basic ready (region ${store.region})`);

// Once everything is closed nothing keeps the event loop alive, so the process exits on its own.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and again through npx and
  // tsx, which forward it), and a second SIGINT without a handler would end the shutdown halfway.
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: shutting down`);
    app.close().catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
}
