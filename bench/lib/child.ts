/**
 * Child processes for suites that need regions (or an app) in processes of their own: the parent forks a
 * TypeScript module under tsx and calls named handlers in it over the IPC channel.
 *
 * Parent side: `const child = await forkChild(file, 'hk writer'); await child.call('init', {...})`.
 * Child side: `serveParent({ init: async (args) => ..., ... })`; a `close` handler, if any, runs on the
 * parent's `stop()` before the child exits.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';

/** Handlers a child serves, by name. Arguments and results travel as JSON. */
export type Handlers = Record<string, (args: never) => unknown>;

interface Request {
  id: number;
  name: string;
  args: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** A forked child whose handlers the parent calls. */
export interface Child {
  readonly label: string;
  readonly pid: number;
  /** Calls the child's handler `name` and resolves with what it returned. */
  call<T = unknown>(name: string, args?: unknown): Promise<T>;
  /** Runs the child's `close` handler (if any), then ends the process. */
  stop(): Promise<void>;
}

/**
 * Forks `file` (a .ts module that calls {@link serveParent}) under tsx. With `BENCH_CPU_PROF=<dir>` in
 * the environment each child writes a V8 CPU profile there when it exits (`node --cpu-prof`; open it in
 * Chrome DevTools), which is how the http suite's app processes were profiled.
 */
export async function forkChild(file: string, label: string): Promise<Child> {
  const profileDir = process.env.BENCH_CPU_PROF;
  const proc: ChildProcess = fork(file, [], {
    execArgv: ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let next = 0;
  let exited = false;
  proc.on('message', (message: Reply) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(`${label}: ${message.error}`));
  });
  proc.on('exit', (code, signal) => {
    exited = true;
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`${label} exited (${signal ?? code}) during a call`));
    }
    pending.clear();
  });
  const call = <T>(name: string, args?: unknown): Promise<T> => {
    if (exited) return Promise.reject(new Error(`${label} has exited`));
    const id = ++next;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      proc.send({ id, name, args } satisfies Request);
    });
  };
  await call('ping');
  return {
    label,
    pid: proc.pid ?? 0,
    call,
    async stop() {
      if (exited) return;
      try {
        await Promise.race([call('close'), new Promise((r) => setTimeout(r, 15_000))]);
      } catch {
        // ends below either way
      }
      // The child exits by itself right after answering `close` (writing its CPU profile, if asked).
      if (!exited) await Promise.race([once(proc, 'exit'), new Promise((r) => setTimeout(r, 5_000))]);
      if (!exited) {
        proc.kill('SIGKILL');
        await once(proc, 'exit');
      }
    },
  };
}

/**
 * Serves `handlers` to the parent. `ping` is built in; `close` (yours, if given) runs before the
 * process exits. An uncaught error in the child is printed and ends it, so the parent's call fails.
 */
export function serveParent(handlers: Handlers): void {
  process.on('message', async (message: Request) => {
    const reply = (r: Omit<Reply, 'id'>) => process.send?.({ id: message.id, ...r });
    try {
      if (message.name === 'ping') return reply({ ok: true, value: 'pong' });
      const handler = handlers[message.name];
      if (!handler && message.name !== 'close') throw new Error(`no handler "${message.name}"`);
      const value = handler ? await handler(message.args as never) : undefined;
      reply({ ok: true, value });
      if (message.name === 'close') setImmediate(() => process.exit(0));
    } catch (error) {
      reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
