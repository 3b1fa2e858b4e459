/**
 * An Express 5 app with express-session whose HTTP server also takes WebSocket upgrades on `/live`, and
 * authenticates each upgrade from the same signed session cookie with `loadSessionFromCookie`.
 *
 *   npx tsx examples/websocket-auth/index.ts
 *
 * Routes: POST /login {"user": "..."}, GET /me, POST /logout, and GET /live with `Upgrade: websocket`.
 * No WebSocket library: the upgrade is answered by hand (101 or 401) to show exactly where the session
 * check sits. A real app hands the socket to its library after the check (see README.md).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
// This example runs from a clone without a build. An app would write:
//   import { GeoSessionStore, loadSessionFromCookie } from 'geosession';
import { GeoSessionStore, loadSessionFromCookie, type SessionCookieOptions } from '../../src/index.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
  }
}

const port = Number(process.env.PORT ?? 3000);
// Comma-separated; the first signs new cookies, all verify (put a new secret first to rotate).
const secrets = (process.env.SESSION_SECRETS ?? 'dev-only-secret-change-me').split(',');
// How often an open socket checks that its session still exists (a logout in any region ends it).
const recheckMs = Number(process.env.RECHECK_MS ?? 30_000);

const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
client.on('error', (error) => console.error('redis:', error.message));
const store = new GeoSessionStore({
  region: process.env.REGION ?? 'hk',
  client,
  prefix: process.env.SESSION_PREFIX ?? 'sess:',
});
store.on('error', (error) => console.error('session store:', error));

// The same secrets and cookie name as express-session below: that is all the upgrade needs to know.
const cookieOptions: SessionCookieOptions = { secrets, format: 'express', name: 'connect.sid' };

const app = express();
app.use(express.json());
app.use(
  session({
    store,
    genid: store.genid,
    name: 'connect.sid',
    secret: secrets,
    resave: false,
    saveUninitialized: false,
    rolling: true, // every response re-sends the cookie, signed with the first secret
    cookie: { maxAge: 24 * 60 * 60 * 1000, httpOnly: true, sameSite: 'lax' },
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
    res.json({ user });
  });
});

app.get('/me', (req, res) => {
  if (!req.session?.user) {
    res.status(401).json({ error: 'not logged in' });
    return;
  }
  res.json({ user: req.session.user, sessionId: req.sessionID });
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

// --- WebSocket upgrades -------------------------------------------------------------------------------

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const live = new Set<Duplex>();

/** One unmasked server-to-client frame (RFC 6455 5.2), for payloads under 64 KiB. */
function frame(opcode: number, payload: Buffer): Buffer {
  const header =
    payload.length < 126
      ? Buffer.from([0x80 | opcode, payload.length])
      : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([header, payload]);
}

/** Sends a close frame with `code` and `reason`, then ends the connection. */
function closeSocket(socket: Duplex, code: number, reason: string): void {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  socket.end(frame(0x8, payload));
  // A client that never finishes the closing handshake must not hold the connection open.
  setTimeout(() => socket.destroy(), 2000).unref();
}

/** Answers the upgrade request with a plain HTTP error and closes the connection. */
function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

async function onUpgrade(req: IncomingMessage, socket: Duplex): Promise<void> {
  socket.on('error', () => socket.destroy());
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/live' || req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
    refuse(socket, 400, 'Bad Request');
    return;
  }

  // The whole authentication: verify the signed cookie, then read the session from this region's Redis.
  let found: Awaited<ReturnType<typeof loadSessionFromCookie>>;
  try {
    found = await loadSessionFromCookie(store, req.headers.cookie, cookieOptions);
  } catch (error) {
    console.error('upgrade: session store failed:', error);
    refuse(socket, 503, 'Service Unavailable');
    return;
  }
  if (found === null || typeof found.session.user !== 'string') {
    refuse(socket, 401, 'Unauthorized');
    return;
  }
  const { sid, renew } = found;
  const user = found.session.user;
  if (renew)
    console.log(`upgrade: ${user}'s cookie is signed with an old secret; the next HTTP response re-signs it`);

  const accept = createHash('sha1')
    .update(key + WEBSOCKET_GUID)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  live.add(socket);
  console.log(`upgrade: ${user} connected`);
  socket.write(frame(0x1, Buffer.from(JSON.stringify({ hello: user, region: store.regionOf(sid) }))));

  // The cookie was checked once; a logout later (here or in another region) must still end the socket.
  const recheck = setInterval(() => {
    store.get(sid).then(
      (current) => {
        if (current !== null || !live.has(socket)) return;
        console.log(`upgrade: ${user} logged out, closing the socket`);
        closeSocket(socket, 1008, 'logged out');
      },
      (error: unknown) => console.error('recheck failed (socket kept):', error),
    );
  }, recheckMs);
  socket.once('close', () => {
    clearInterval(recheck);
    live.delete(socket);
  });
}

const server = app.listen(port, () => {
  console.log(`websocket-auth listening on http://127.0.0.1:${port} (region ${store.region})`);
});
server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
  onUpgrade(req, socket).catch((error: unknown) => {
    console.error('upgrade failed:', error);
    socket.destroy();
  });
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: shutting down`);
  // Upgraded sockets are the server's connections too: end them, or `server.close` waits for them.
  for (const socket of live) closeSocket(socket, 1001, 'server going away');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
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
