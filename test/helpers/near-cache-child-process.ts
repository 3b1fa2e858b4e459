import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./near-cache-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A second store process of region hk (test/helpers/near-cache-child.ts), driven over IPC. */
export class NearCacheChild {
  private next = 1;
  private constructor(private readonly child: ChildProcess) {}

  /** Starts one with `env` (GEOSESSION_REDIS_PORT, GEOSESSION_DB, GEOSESSION_PREFIX…, see the child). */
  static async start(env: Record<string, string>): Promise<NearCacheChild> {
    const child = fork(CHILD, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await once(child, 'message');
    return new NearCacheChild(child);
  }

  call(op: 'set' | 'destroy' | 'logout' | 'exit', args: Record<string, unknown> = {}): Promise<void> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const listener = (message: { id: number; ok: boolean; error?: string }) => {
        if (message.id !== id) return;
        this.child.off('message', listener);
        if (message.ok) resolve();
        else reject(new Error(message.error));
      };
      this.child.on('message', listener);
      this.child.send({ id, op, ...args });
    });
  }

  async stop(): Promise<void> {
    await this.call('exit');
    if (this.child.exitCode === null) await once(this.child, 'exit');
  }
}
