/**
 * The demo's default embedded Redis: one private `redis-server` per region, started by the demo from the
 * binary on PATH, on a free port, with its files in a temporary directory, and stopped (directory
 * removed) when the demo ends. No server for the user to run, and the real Redis the library is built
 * for.
 *
 * Each server runs under a small `sh` watchdog in its own process group: a Ctrl-C in the terminal does
 * not reach it (the demo stops it itself, after the stores are closed), and it is killed as soon as the
 * demo's end of the watchdog's stdin closes, which happens however the demo exits, even on SIGKILL.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Oldest redis-server the scripts run on (PEXPIRETIME, PEXPIREAT ... GT). */
const MIN_VERSION = [7, 0];

/** The first executable `name` on PATH, or `undefined`. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The version `binary --version` reports ("7.0.15"), or `undefined` when it does not run. */
export function redisServerVersion(binary: string): string | undefined {
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return /v=(\d+\.\d+\.\d+)/.exec(result.stdout ?? '')?.[1];
}

/** Whether `version` ("7.0.15") is recent enough for the scripts. */
export function versionIsRecentEnough(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [needMajor = 0, needMinor = 0] = MIN_VERSION;
  return major > needMajor || (major === needMajor && minor >= needMinor);
}

/** Private redis-servers, one per region. */
export interface PrivateRedisServers {
  /** `redis://127.0.0.1:<port>` by region. */
  readonly urls: Record<string, string>;
  /** The temporary directory holding their files. */
  readonly dir: string;
  /** Stops every server and removes the directory. Safe to call more than once. */
  stop(): Promise<void>;
}

// Runs redis-server ("$0", with the arguments after the directory "$1") in the background, kills it as
// soon as stdin (kept on fd 3; the demo's end of a pipe) reaches end of file, and removes the (empty)
// directory once it has exited. In sh an asynchronous list reads /dev/null as its stdin, hence the copy
// of stdin on fd 3 made first. The server's log goes to the demo, which shows it if the server fails.
const WATCHDOG = [
  'dir=$1',
  'shift',
  'exec 3<&0',
  '"$0" "$@" </dev/null 2>&1 &',
  'server=$!',
  '(read -r _ <&3; kill "$server" 2>/dev/null) &',
  'wait "$server"',
  'status=$?',
  'rmdir "$dir" 2>/dev/null',
  'exit $status',
].join('\n');

interface Server {
  region: string;
  port: number;
  process: ChildProcess;
  exited: Promise<unknown>;
}

/** Starts one server per region. Throws (after cleaning up) when one does not come up. */
export async function startPrivateRedis(
  binary: string,
  regions: readonly string[],
): Promise<PrivateRedisServers> {
  const dir = await mkdtemp(join(tmpdir(), 'geosession-demo-'));
  const servers: Server[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all(servers.map(stopServer));
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    for (const region of regions) servers.push(await startServer(binary, dir, region));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    urls: Object.fromEntries(servers.map((s) => [s.region, `redis://127.0.0.1:${s.port}`])),
    dir,
    stop,
  };
}

async function startServer(binary: string, dir: string, region: string): Promise<Server> {
  let lastError: Error | undefined;
  // A free port can be taken between finding it and binding it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    args.push('--dir', dir, '--daemonize', 'no', '--loglevel', 'warning');
    const child = spawn('sh', ['-c', WATCHDOG, binary, dir, ...args], {
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let log = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      log = (log + chunk).slice(-2000);
    });
    const exited = once(child, 'exit');
    const server: Server = { region, port, process: child, exited };
    const up = await Promise.race([
      waitForPort(port, 10_000),
      exited.then(
        () => false,
        () => false,
      ),
    ]);
    if (up) return server;
    await stopServer(server);
    const lines = log.trim().split('\n').slice(-3).join(' / ') || '(no output)';
    lastError = new Error(`redis-server for ${region} did not start on port ${port}: ${lines}`);
  }
  throw lastError;
}

async function stopServer(server: Server): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end(); // the watchdog kills the server, waits for it and exits
  const timer = setTimeout(() => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5000);
  await server.exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once('error', () => done(false));
      socket.connect(port, '127.0.0.1', () => done(true));
    });
    if (answered) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
