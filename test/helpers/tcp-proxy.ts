import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

/** How new connections are treated while the link is cut. */
export type CutMode = 'reset' | 'hold';

/** A TCP proxy on 127.0.0.1 in front of a local server, to cut and heal the link in tests. */
export interface TcpProxy {
  /** Port clients connect to. */
  readonly port: number;
  /** Connections accepted since start (for assertions that a client reconnected). */
  readonly accepted: number;
  /** Live client connections (forwarding or held). */
  readonly live: number;
  /**
   * Cuts the link: every live connection is destroyed at once (the peer sees a reset), and until
   * {@link TcpProxy.heal} new connections are either reset right after accept (`'reset'`, the default:
   * like a refused port) or accepted and held without an answer (`'hold'`: like a black-holed route;
   * they are forwarded once healed).
   */
  cut(mode?: CutMode): void;
  /** Restores forwarding for new connections (and forwards held ones). */
  heal(): void;
  /**
   * Freezes the link without closing anything, as a route that went silent: live connections stop
   * forwarding (both ends stay open and see nothing), and new ones are held until {@link TcpProxy.thaw}.
   */
  freeze(): void;
  /** Resumes forwarding on every frozen and held connection. */
  thaw(): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Options of {@link startTcpProxy}. */
export interface TcpProxyOptions {
  /** Delay added to every chunk in each direction, in ms, to play a long link (round trip = 2x). */
  delayMs?: number;
}

/**
 * Starts a proxy forwarding 127.0.0.1:`port` (returned) to `targetHost`:`targetPort`, optionally
 * delaying every chunk (the order of chunks is kept; timers of one duration fire in order).
 */
export async function startTcpProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
  options: TcpProxyOptions = {},
): Promise<TcpProxy> {
  const delayMs = options.delayMs ?? 0;
  const pairs = new Set<{ client: Socket; upstream: Socket | undefined }>();
  const frozen: { client: Socket; upstream: Socket }[] = [];
  const held: Socket[] = [];
  let mode: CutMode | undefined;
  let accepted = 0;

  const forward = (client: Socket) => {
    const pair: { client: Socket; upstream: Socket | undefined } = { client, upstream: undefined };
    pairs.add(pair);
    const upstream = createConnection({ port: targetPort, host: targetHost, noDelay: true });
    pair.upstream = upstream;
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    if (delayMs > 0) {
      client.on('data', (chunk) => setTimeout(() => upstream.write(chunk), delayMs));
      upstream.on('data', (chunk) => setTimeout(() => client.write(chunk), delayMs));
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
    client.resume();
  };

  const server = createServer({ pauseOnConnect: true, noDelay: true }, (client) => {
    accepted++;
    client.on('error', () => {});
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'hold') {
      held.push(client);
      client.once('close', () => {
        const i = held.indexOf(client);
        if (i >= 0) held.splice(i, 1);
      });
      return;
    }
    forward(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const heal = () => {
    mode = undefined;
    for (const client of held.splice(0)) forward(client);
  };

  const destroyAll = () => {
    for (const { client, upstream } of [...pairs]) {
      client.resetAndDestroy();
      upstream?.destroy();
    }
    pairs.clear();
  };

  return {
    port,
    get accepted() {
      return accepted;
    },
    get live() {
      return pairs.size + held.length;
    },
    cut(cutMode: CutMode = 'reset') {
      mode = cutMode;
      destroyAll();
    },
    heal,
    freeze() {
      mode = 'hold';
      for (const { client, upstream } of pairs) {
        // Once only: a pair frozen twice would be piped twice on thaw, and every byte sent twice.
        if (!upstream || frozen.some((f) => f.client === client)) continue;
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        frozen.push({ client, upstream });
      }
    },
    thaw() {
      for (const { client, upstream } of frozen.splice(0)) {
        if (delayMs > 0) {
          client.resume();
          upstream.resume();
        } else {
          client.pipe(upstream);
          upstream.pipe(client);
        }
      }
      heal();
    },
    async close() {
      mode = 'reset';
      destroyAll();
      for (const client of held.splice(0)) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
