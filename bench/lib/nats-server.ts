import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answers, freePort } from './redis-server.js';

/** A private nats-server with JetStream that a suite starts, on a free port, storing in a temp dir. */
export interface BenchNats {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts `nats-server -js` on a free port of 127.0.0.1 with its store in a fresh temp directory. */
export async function startBenchNats(): Promise<BenchNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gsbench-nats-'));
  const proc: ChildProcess = spawn(
    'nats-server',
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (Date.now() > deadline || proc.exitCode !== null)
      throw new Error(`nats-server did not start on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
