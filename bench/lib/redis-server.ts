import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';

/** A private redis-server the benchmark starts, playing one region. */
export interface BenchRedis {
  readonly port: number;
  client(options?: RedisOptions): Redis;
  stop(): Promise<void>;
}

/** A port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  return typeof address === 'object' && address ? address.port : 0;
}

/** True when something accepts connections on 127.0.0.1:`port`. */
export function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
  });
}

/** Starts `redis-server` on a free port, without persistence. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (Date.now() > deadline) throw new Error(`redis-server did not start on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const clients: Redis[] = [];
  return {
    port,
    client(options = {}) {
      const client = new Redis({ port, host: '127.0.0.1', ...options });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.disconnect();
      proc.kill('SIGKILL');
      if (proc.exitCode === null) await once(proc, 'exit');
    },
  };
}
