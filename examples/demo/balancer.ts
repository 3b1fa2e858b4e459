import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A plain round-robin HTTP load balancer: no stickiness, each request goes to the next backend. */
export interface Balancer {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a balancer on `port` (0 = any free port) in front of `backends` (ports on 127.0.0.1). */
export async function startBalancer(backends: readonly number[], port = 0): Promise<Balancer> {
  let next = 0;
  const server: Server = createServer((req, res) => {
    const target = backends[next++ % backends.length] as number;
    const upstream = request(
      { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`balancer: backend ${target} failed: ${error.message}`);
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
