/**
 * The web app of the http suite, one process per store setup (forked by bench/http.ts through
 * bench/lib/child.ts): express 5 + express-session with a login, a read and a write route.
 *
 * - `POST /login`: a new session for a user (about 500 bytes: user, roles, CSRF secret, cart, counters).
 * - `GET /me`: reads the session; express-session then touches it (`resave: false`, so `store.touch`).
 * - `POST /cart`: changes the session (cart, counters), so express-session saves it (`store.set`).
 *
 * Stores: connect-redis 8 on ioredis, connect-redis 9 on node-redis, geosession on one region, and
 * geosession replicating over Redis Streams to kr (kr's store applies in another process), and the same
 * with the near cache (`nearCache: { touchAfterMs: 60_000 }`), and the near cache on one region.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { RedisStore as ConnectRedis8 } from 'connect-redis-8';
import { RedisStore as ConnectRedis9 } from 'connect-redis-9';
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { GeoSessionStore } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/redis-streams.js';
import { serveParent } from '../lib/child.js';

/** The store setups the suite compares. */
export const SETUPS = [
  'connect-redis-8',
  'connect-redis-9',
  'geosession',
  'geosession-replicating',
  // Near cache (issue 18): geosession replicating as above, with `nearCache: { touchAfterMs: 60_000 }`.
  'geosession-replicating-near',
  // The near cache on one region: as many processes on the machine as connect-redis's setups.
  'geosession-near',
] as const;
export type Setup = (typeof SETUPS)[number];

/** What the app needs to start. */
export interface AppInit {
  setup: Setup;
  /** Key prefix of the sessions (and geosession's replication channel). */
  prefix: string;
  redisPorts: { hk: number; kr: number };
}

/** The app's session fields (typed here rather than by augmenting express-session, which the demo does). */
interface ShopSession {
  user?: { id: string; email: string; roles: string[] };
  csrfSecret?: string;
  locale?: string;
  cart?: { sku: string; qty: number; priceCents: number }[];
  views?: number;
  lastSeen?: number;
  flash?: Record<string, string[]>;
}

const shop = (req: express.Request) => req.session as unknown as ShopSession;

let server: Server | undefined;
const closers: (() => Promise<unknown> | undefined)[] = [];
let cpuMark = process.cpuUsage();
let storeErrors = 0;
/** The near cache's counters, for the near cache setup (issue 18). */
let nearStats: () => unknown = () => undefined;

async function storeFor(init: AppInit): Promise<session.Store> {
  const { setup, prefix, redisPorts } = init;
  if (setup === 'connect-redis-9') {
    const client = createClient({ socket: { host: '127.0.0.1', port: redisPorts.hk } });
    client.on('error', () => storeErrors++);
    await client.connect();
    closers.push(() => client.quit());
    return new ConnectRedis9({ client, prefix });
  }
  const client = new Redis({ host: '127.0.0.1', port: redisPorts.hk });
  closers.push(async () => client.disconnect());
  if (setup === 'connect-redis-8') return new ConnectRedis8({ client, prefix });
  let transport: ReturnType<typeof createRedisStreamsTransport> | undefined;
  const replicating = setup === 'geosession-replicating' || setup === 'geosession-replicating-near';
  if (replicating) {
    const kr = new Redis({ host: '127.0.0.1', port: redisPorts.kr });
    transport = createRedisStreamsTransport({ regions: { hk: client, kr } });
    closers.unshift(async () => kr.disconnect());
    closers.unshift(() => transport?.close());
  }
  const store = new GeoSessionStore({
    region: 'hk',
    client,
    prefix,
    sealer: 'none',
    ...(transport ? { transport } : {}),
    ...(setup === 'geosession-replicating-near' || setup === 'geosession-near'
      ? { nearCache: { touchAfterMs: 60_000 } }
      : {}),
  });
  store.on('error', () => storeErrors++);
  nearStats = () => store.nearCacheStats();
  await store.ready();
  closers.unshift(() => store.close());
  return store as unknown as session.Store;
}

async function start(init: AppInit): Promise<number> {
  const app = express();
  app.disable('x-powered-by');
  app.use(
    session({
      store: await storeFor(init),
      secret: 'http bench secret, not for production',
      name: 'sid',
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 86_400_000, httpOnly: true, sameSite: 'lax' },
    }),
  );
  let users = 0;
  app.post('/login', (req, res) => {
    const sess = shop(req);
    const n = ++users;
    sess.user = {
      id: `usr_${String(n).padStart(10, '0')}`,
      email: `customer.${n}@shop.example.com`,
      roles: ['customer', 'newsletter', 'beta-checkout'],
    };
    sess.csrfSecret = randomBytes(18).toString('base64url');
    sess.locale = 'en-GB';
    sess.cart = [{ sku: 'SKU-000124-BLU-M', qty: 1, priceCents: 2999 }];
    sess.views = 0;
    sess.lastSeen = Date.now();
    sess.flash = { info: ['Welcome back!'] };
    res.json({ ok: true });
  });
  app.get('/me', (req, res) => {
    const sess = shop(req);
    const { user, cart } = sess;
    if (!user) {
      res.status(401).json({ error: 'not logged in' });
      return;
    }
    res.json({ id: user.id, email: user.email, items: cart?.length ?? 0 });
  });
  app.post('/cart', (req, res) => {
    const sess = shop(req);
    if (!sess.user) {
      res.status(401).json({ error: 'not logged in' });
      return;
    }
    const cart = sess.cart ?? [];
    cart.push({ sku: 'SKU-004410-BLK-42', qty: 1 + (cart.length % 3), priceCents: 8950 });
    if (cart.length > 3) cart.shift();
    sess.cart = cart;
    sess.views = (sess.views ?? 0) + 1;
    sess.lastSeen = Date.now();
    res.json({ items: cart.length });
  });
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

serveParent({
  start,
  'cpu-mark': () => {
    cpuMark = process.cpuUsage();
  },
  'cpu-read': () => {
    const used = process.cpuUsage(cpuMark);
    return { cpuUs: used.user + used.system, errors: storeErrors, near: nearStats() };
  },
  close: async () => {
    server?.closeAllConnections();
    server?.close();
    for (const close of closers) await close();
  },
});
