/**
 * A TCP proxy that plays a long link between regions: every chunk is held for `delayMs` in each
 * direction (a round trip of twice that), in order, with TCP_NODELAY on both legs so the proxy adds no
 * Nagle delay of its own. Chunks that fall due together leave in one write, as on a real link.
 *
 * The suites run it in a child process of its own, so its timers do not share an event loop with a
 * region or a measurer.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

/** A running delay proxy. */
export interface DelayProxy {
  /** Port on 127.0.0.1 that clients connect to. */
  readonly port: number;
  close(): Promise<void>;
}

/** One direction of a connection: chunks wait in a FIFO until due, one timer at a time. */
function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    const ready: Buffer[] = [];
    // Timers fire on whole milliseconds; a chunk due within the next half millisecond goes now.
    while (queue.length > 0 && (queue[0]?.due ?? 0) <= now + 0.5)
      ready.push((queue.shift() as { chunk: Buffer }).chunk);
    if (ready.length > 0 && !to.destroyed)
      to.write(ready.length === 1 ? (ready[0] as Buffer) : Buffer.concat(ready));
    schedule();
  };
  const schedule = () => {
    if (timer !== undefined || queue.length === 0) return;
    timer = setTimeout(flush, Math.max(0, (queue[0]?.due ?? 0) - performance.now()));
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    schedule();
  });
  from.on('close', () => {
    if (timer) clearTimeout(timer);
    queue.length = 0;
  });
}

/** Starts a proxy from a free port on 127.0.0.1 to `targetHost:targetPort`, delaying each way by `delayMs`. */
export async function startDelayProxy(
  targetPort: number,
  delayMs: number,
  targetHost = '127.0.0.1',
): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true, pauseOnConnect: true }, (client) => {
    const upstream = createConnection({ port: targetPort, host: targetHost, noDelay: true });
    client.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    if (delayMs > 0) {
      delayedPipe(client, upstream, delayMs);
      delayedPipe(upstream, client, delayMs);
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
    client.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
