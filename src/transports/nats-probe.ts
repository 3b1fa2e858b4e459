import { connect, type Socket } from 'node:net';

/**
 * Whether one of `servers` answers as a NATS server does (it sends `INFO` as soon as a client
 * connects) within `timeoutMs`, on a socket of our own that `signal` destroys at once.
 *
 * nats.js cannot abandon a connection attempt: against a server that accepts connections and never
 * answers, its socket outlives the attempt's timeout (the process never exits), and a close cannot
 * cut it short. So the transport connects only once a probe got an answer. Servers that speak TLS
 * first (`tls.handshakeFirst`) send nothing in clear: do not probe them. A server URL this cannot read
 * counts as answering (nats.js tries it).
 */
export async function natsAnswers(
  servers: readonly string[],
  timeoutMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  for (const server of servers) {
    if (signal.aborted) return false;
    const target = hostPort(server);
    // A server this cannot read is nats.js's to try.
    if (!target || (await sendsInfo(target.host, target.port, timeoutMs, signal))) return true;
  }
  return false;
}

/** Host and port of a NATS server URL (`nats://h:p`, `tls://h:p`, `h:p`, `h`; default port 4222). */
function hostPort(server: string): { host: string; port: number } | undefined {
  try {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return { host, port: url.port ? Number(url.port) : 4222 };
  } catch {
    return undefined;
  }
}

function sendsInfo(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: Socket | undefined;
    let received = '';
    const done = (answer: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      socket?.destroy();
      resolve(answer);
    };
    const abort = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    signal.addEventListener('abort', abort, { once: true });
    socket = connect({ host, port });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.length >= 4) done(received.startsWith('INFO'));
    });
  });
}
