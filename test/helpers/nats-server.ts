import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portAnswers } from './servers.js';

/** A private nats-server with JetStream (file storage in a temp dir) that a test may kill and restart. */
export interface PrivateNats {
  readonly port: number;
  readonly url: string;
  /** SIGKILLs the server (a crash). The store dir is kept. */
  kill(): Promise<void>;
  /** SIGSTOPs / SIGCONTs the server (a stall: connections stay open, nothing answers). */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port with the same store dir (streams and consumers survive). */
  restart(): Promise<void>;
  /** Stops the server and deletes its store dir. */
  stop(): Promise<void>;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portAnswers(port, 200)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server did not answer on port ${port} within ${timeoutMs} ms`);
}

/** Starts `nats-server -a 127.0.0.1 -p <free port> -js -sd <tmpdir>`. */
export async function startNats(): Promise<PrivateNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'geosession-nats-'));
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
      stdio: 'ignore',
    });
    await waitForPort(port, 10_000);
  };
  const killProc = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await once(p, 'exit');
  };
  await launch();
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    kill: killProc,
    pause: () => proc?.kill('SIGSTOP'),
    resume: () => proc?.kill('SIGCONT'),
    async restart() {
      await killProc();
      await launch();
    },
    async stop() {
      await killProc();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
