import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs the `geosession` command line as a real child process, from the sources (`node --import tsx
 * src/cli/main.ts`, no build needed). Every CLI test goes through here.
 */

/** The repository root. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What a finished run gave. */
export interface CliResult {
  /** Exit code (`null` when killed by a signal). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of a run. */
export interface RunOptions {
  /** Extra environment (merged over a copy of this process's, without any GEOSESSION_* of it). */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Killed after this many ms (default 60 s): a hung CLI fails the test instead of hanging it. */
  timeoutMs?: number;
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('GEOSESSION_')) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** A running CLI: its process, what it printed so far, and its end. */
export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Resolves when `pattern` appears on stderr (rejects if the process ends first). */
  waitForStderr(pattern: RegExp): Promise<void>;
  /** Resolves when the process ends. */
  readonly result: Promise<CliResult>;
}

/** Starts `geosession args…` and returns at once. */
export function startCli(args: readonly string[], options: RunOptions = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: childEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(stderr)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    check();
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  else child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const result = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      for (const waiter of waiters.splice(0)) {
        waiter.reject(new Error(`the CLI ended (code ${code}) before printing ${waiter.pattern}: ${stderr}`));
      }
      resolve({ code, stdout, stderr });
    });
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStderr(pattern) {
      if (pattern.test(stderr)) return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ pattern, resolve, reject }));
    },
    result,
  };
}

/** Runs `geosession args…` to its end. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** `--region id=url` arguments for `regions`. */
export function regionArgs(regions: Record<string, { url: string }>): string[] {
  return Object.entries(regions).flatMap(([id, redis]) => ['--region', `${id}=${redis.url}`]);
}

/** The lines of `text`, without the empty last one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}
