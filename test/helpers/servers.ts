import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';
import { Redis } from 'ioredis';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** Install hints printed when a server is missing outside CI. */
const HINTS: Record<string, string> = {
  redis: 'install redis-server (Debian: apt-get install redis-server) and run it on 127.0.0.1:6379',
  rabbitmq: 'install rabbitmq-server and run `rabbitmq-server -detached` (guest/guest on 5672)',
  nats: 'install nats-server and run it with JetStream: `nats-server -a 127.0.0.1 -p 4222 -js`',
};

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function portAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

/**
 * Whether the integration tests that need `service` can run. Under CI a missing server is a failure
 * (this throws); elsewhere the tests skip with a loud notice naming what to install.
 */
export async function serviceAvailable(
  service: 'redis' | 'rabbitmq' | 'nats',
  port: number,
): Promise<boolean> {
  if (await portAnswers(port)) return true;
  const message = `${service} is not answering on 127.0.0.1:${port}: ${HINTS[service]}`;
  if (IN_CI) throw new Error(`CI=true and ${message}`);
  console.warn(`\n!!! SKIPPING ${service} integration tests: ${message}\n`);
  return false;
}

/** Is the machine's Redis on 6379 up? Evaluated once per test file, at import. */
export const hasRedis = await serviceAvailable('redis', 6379);

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portAnswers(port, 200)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing answered on port ${port} within ${timeoutMs} ms`);
}

/** A private redis-server started for one test: a second region, or one that the test may kill. */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** A new ioredis client for this server (closed by `stop`). */
  client(options?: import('ioredis').RedisOptions): Redis;
  /** SIGKILLs the server (a crash). */
  kill(): Promise<void>;
  /** SIGSTOPs / SIGCONTs the server (a stall). */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port (data is not kept). */
  restart(): Promise<void>;
  /** Stops the server and quits every client made by `client()`. */
  stop(): Promise<void>;
}

/** A server process a test started on `port` and may crash, stall and start again. */
export interface ServerProcess {
  /** SIGKILLs the server (a crash). */
  kill(): Promise<void>;
  /** SIGSTOPs / SIGCONTs the server (a stall: connections stay open, nothing answers). */
  pause(): void;
  resume(): void;
  /** Starts it again with the same command line. */
  restart(): Promise<void>;
}

/** Starts `command args` and waits until it answers on `port`. */
export async function startServerProcess(
  command: string,
  args: string[],
  port: number,
): Promise<ServerProcess> {
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn(command, args, { stdio: 'ignore' });
    await waitForPort(port, 10_000);
  };
  const kill = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await once(p, 'exit');
  };
  await launch();
  return {
    kill,
    pause: () => proc?.kill('SIGSTOP'),
    resume: () => proc?.kill('SIGCONT'),
    async restart() {
      await kill();
      await launch();
    },
  };
}

export async function startRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const clients: Redis[] = [];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const server = await startServerProcess('redis-server', [...args, '--loglevel', 'warning'], port);
  return {
    ...server,
    port,
    url: `redis://127.0.0.1:${port}`,
    client(options = {}) {
      const c = new Redis({ port, host: '127.0.0.1', lazyConnect: false, ...options });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await server.kill();
    },
  };
}

/** A client of the machine's Redis on 6379, with errors swallowed (tests assert on the store instead). */
export function sharedRedis(options: import('ioredis').RedisOptions = {}): Redis {
  const c = new Redis({ port: 6379, host: '127.0.0.1', ...options });
  c.on('error', () => {});
  return c;
}

/** A unique key prefix, so test files never see each other's keys. */
export function uniquePrefix(name: string): string {
  return `t:${name}:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`;
}

export { eventually } from './eventually.js';

/** Deletes every key of `prefix`, metadata and tombstones included. */
export async function dropKeys(client: Redis, prefix: string): Promise<void> {
  for (const pattern of [`${prefix}*`, `{${prefix}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  }
}
