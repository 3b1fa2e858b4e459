/**
 * One pod of one region: an express app with express-session (login, logout, logout everywhere), a `ws`
 * WebSocket server on `/live` that authenticates each upgrade from the session cookie, and the pod's
 * internal `POST /deliver` that the sender calls once per pod with every connection to reach.
 *
 * Each accepted socket is registered in the connection registry under its user, and watched: when its
 * session ends in any region (logout, logout everywhere), the socket is closed at once with code 1008.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import session from 'express-session';
import { type WebSocket, WebSocketServer } from 'ws';
import { type GeoSessionStore, loadSessionFromCookie, type SessionCookieOptions } from '../../src/index.js';
import { type Connections, logoutEverywhere, watchSession } from './integrations.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
  }
}

/** A running pod. */
export interface Pod {
  region: string;
  pod: string;
  /** Base URL of the pod's HTTP server (also `ws://…/live`). */
  url: string;
  /** How many sockets the pod holds now. */
  open(): number;
  close(): Promise<void>;
}

/** What a pod is made of. */
export interface PodOptions {
  store: GeoSessionStore;
  pod: string;
  connections: Connections;
  /** The app's session secrets (the first signs). */
  secrets: string[];
  log: (line: string) => void;
}

/** Starts a pod on a free port of 127.0.0.1 (or `port`). */
export async function startPod(options: PodOptions, port = 0): Promise<Pod> {
  const { store, pod, connections, secrets } = options;
  const log = (line: string) => options.log(`[${pod}] ${line}`);
  const cookieOptions: SessionCookieOptions = { secrets, format: 'express', name: 'connect.sid' };
  const sockets = new Map<string, { ws: WebSocket; user: string; release: () => void }>();

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
      cookie: { maxAge: 30 * 60 * 1000, httpOnly: true, sameSite: 'lax' },
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
      res.json({ user, region: store.region });
    });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.json({ loggedOut: true });
    });
  });
  app.post('/logout-everywhere', (req, res, next) => {
    const user = req.session.user;
    if (!user) {
      res.status(401).json({ error: 'not logged in' });
      return;
    }
    logoutEverywhere(store, user).then((ended) => {
      // This request's own session is among those ended: keep express-session from saving it again.
      req.session.destroy(() => res.json({ ended }));
    }, next);
  });
  // Internal: the sender's one call per pod. A real deployment keeps it off the public network.
  app.post('/deliver', (req, res) => {
    const ids: unknown = req.body?.connections;
    const message: unknown = req.body?.message;
    if (!Array.isArray(ids) || typeof message !== 'string') {
      res.status(400).json({ error: 'send {"connections": [...], "message": "..."}' });
      return;
    }
    let delivered = 0;
    for (const id of ids) {
      const socket = typeof id === 'string' ? sockets.get(id) : undefined;
      if (!socket || socket.ws.readyState !== socket.ws.OPEN) continue;
      socket.ws.send(JSON.stringify({ push: message }));
      delivered++;
    }
    res.json({ delivered, of: ids.length });
  });

  const wss = new WebSocketServer({ noServer: true });
  const onUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, text: string) =>
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    if (req.url !== '/live') return refuse(404, 'Not Found');
    let found: Awaited<ReturnType<typeof loadSessionFromCookie>>;
    try {
      found = await loadSessionFromCookie(store, req.headers.cookie, cookieOptions);
    } catch {
      return refuse(503, 'Service Unavailable');
    }
    const user = found?.session.user;
    if (!found || typeof user !== 'string') return refuse(401, 'Unauthorized');
    const { sid } = found;
    const connectionId = `${pod}.${randomUUID().slice(0, 8)}`;
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Closed at once when the session ends in any region; released when the socket closes.
      const release = watchSession(store, sid, (end) => {
        log(`${user}'s session ended (${end.reason} in ${end.origin}): closing ${connectionId}`);
        ws.close(1008, 'logged out');
      });
      sockets.set(connectionId, { ws, user, release });
      ws.on('close', () => {
        release();
        sockets.delete(connectionId);
        connections.unregister(connectionId).catch((error: unknown) => log(`unregister failed: ${error}`));
      });
      ws.on('error', () => ws.terminate());
      connections.register(user, connectionId, { sid }).then(
        () => {
          log(`${user} connected: ${connectionId}`);
          ws.send(JSON.stringify({ hello: user, connection: connectionId, region: store.region }));
        },
        (error: unknown) => {
          log(`register failed, refusing ${connectionId}: ${error}`);
          ws.close(1011, 'registry unavailable');
        },
      );
    });
  };

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    region: store.region,
    pod,
    url: `http://127.0.0.1:${bound}`,
    open: () => sockets.size,
    close: async () => {
      for (const { ws, release } of sockets.values()) {
        release();
        ws.close(1001, 'server going away');
      }
      await connections.close();
      wss.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
