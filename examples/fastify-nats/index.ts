/**
 * A fastify 5 app whose sessions live in this region's Redis and replicate to the other regions over
 * NATS JetStream.
 *
 *   npx tsx examples/fastify-nats/index.ts
 *
 * Run it twice (REGION=hk and REGION=kr, each with its own Redis or Redis database) to see a login made
 * in one region served by the other. Routes: POST /login {"user": "..."}, GET /me, POST /logout,
 * GET /health. See README.md.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
// This example runs from a clone without a build. An app would write:
//   import { GeoSessionStore } from 'geosession';
//   import { createPasetoSealer } from 'geosession/paseto';
//   import { createNatsTransport } from 'geosession/nats';
import { GeoSessionStore } from '../../src/index.js';
import { createNatsTransport } from '../../src/nats.js';
import { createPasetoSealer } from '../../src/paseto.js';

declare module 'fastify' {
  interface Session {
    user?: string;
    loggedInAt?: string;
  }
}

const region = process.env.REGION ?? 'hk';
const port = Number(process.env.PORT ?? 3000);

// The client is yours: the store never quits it (see the onClose hook).
const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
client.on('error', (error) => console.error('redis:', error.message));

// One transport per process. It connects in the background, reconnects forever, and while NATS is away
// the changes wait in this region's Redis outbox, so nothing is lost.
const transport = createNatsTransport({
  servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
  regions: ['hk', 'kr'],
});
transport.on('state', (state) => console.info(`nats transport: ${state}`));

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

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });

await app.register(fastifyCookie);
await app.register(fastifySession, {
  store,
  idGenerator: store.genid, // ids start with the region that made them, e.g. "hk.Q2x..."
  secret: process.env.SESSION_SECRET ?? 'dev-only-secret-change-me-32-chars-or-more',
  saveUninitialized: false,
  cookie: {
    maxAge: 24 * 60 * 60 * 1000,
    httpOnly: true,
    sameSite: 'lax',
    secure: process.env.NODE_ENV === 'production',
  },
});

app.post<{ Body: { user?: unknown } }>('/login', async (request, reply) => {
  const user = typeof request.body?.user === 'string' ? request.body.user.trim() : '';
  if (!user) return reply.code(400).send({ error: 'send {"user": "<name>"}' });
  await request.session.regenerate();
  request.session.user = user;
  request.session.loggedInAt = new Date().toISOString();
  return { user, region };
});

app.get('/me', async (request, reply) => {
  const { user, loggedInAt } = request.session;
  if (!user) return reply.code(401).send({ error: 'not logged in' });
  return { user, loggedInAt, servedBy: region, madeIn: store.regionOf(request.session.sessionId) };
});

app.post('/logout', async (request, reply) => {
  await request.session.destroy();
  reply.clearCookie('sessionId', { path: '/' });
  return { loggedOut: true };
});

// Transport state and replication counters, for a load balancer or a dashboard.
app.get('/health', async () => ({
  region,
  transport: transport.state,
  replication: store.replicationStats(),
}));

// Order matters: the store stops its relay and subscription first, then the transport drains, then Redis.
app.addHook('onClose', async () => {
  await store.close();
  await transport.close();
  await client.quit();
});

await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });
app.log.info(`fastify-nats ready (region ${region})`);

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
