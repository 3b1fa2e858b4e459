/**
 * The app process of `npm run bench -- paseto`: one express 5 app on GeoSessionStore, authenticating
 * either with `pasetoSession` (MODE=paseto) or with express-session cookies (MODE=cookie). It prints
 * `{"port": <n>}` on stdout once listening and exits on SIGTERM.
 *
 * Environment: MODE, PREFIX (key prefix), ISSUER_KEY (k4.public, paseto mode), TOKEN_CACHE (paseto mode:
 * `verifiedTokenCache`, default 10000), REDIS_HOST, REDIS_PORT.
 */
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
import { GeoSessionStore } from '../../src/index.js';
import { pasetoSession, pasetoSessionOf } from '../../src/paseto.js';
import { BENCH_AUDIENCE, BENCH_ISSUER } from './paseto-app-config.js';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
  }
}

const mode = process.env['MODE'];
const client = new Redis({
  host: process.env['REDIS_HOST'] ?? '127.0.0.1',
  port: Number(process.env['REDIS_PORT'] ?? 6379),
});
const store = new GeoSessionStore({ region: 'bench', client, prefix: process.env['PREFIX'] ?? 'bench:' });
const app = express();
app.disable('x-powered-by');
app.disable('etag');

if (mode === 'paseto') {
  app.use(
    pasetoSession({
      store,
      publicKeys: [process.env['ISSUER_KEY'] ?? ''],
      issuer: BENCH_ISSUER,
      audience: BENCH_AUDIENCE,
      verifiedTokenCache: Number(process.env['TOKEN_CACHE'] ?? 10_000),
    }),
  );
  app.get('/me', (req, res) => {
    res.json({ user: pasetoSessionOf(req)['userId'] });
  });
} else if (mode === 'cookie') {
  app.use(
    session({
      secret: 'bench-secret-bench-secret-bench-secret',
      store,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 3_600_000 },
    }),
  );
  app.post('/login/:user', (req, res) => {
    req.session.userId = req.params.user;
    res.json({ user: req.session.userId });
  });
  app.get('/me', (req, res) => {
    if (!req.session.userId) {
      res.status(401).json({ error: 'no session' });
      return;
    }
    res.json({ user: req.session.userId });
  });
} else {
  throw new Error(`MODE must be paseto or cookie, got ${String(mode)}`);
}

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});

process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => {
    store.close().finally(() => {
      client.disconnect();
      process.exit(0);
    });
  });
});
