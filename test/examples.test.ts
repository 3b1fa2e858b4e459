/**
 * The examples as their READMEs tell a newcomer to use them: each test starts the example with the
 * README's own command, runs every other shell command of the README in order (curl, redis-cli, cp),
 * checks each documented output (`# → …` lines, see helpers/readme.ts), then stops the example with
 * Ctrl-C (SIGINT to its process group, as a terminal does) and checks it exits cleanly. Nothing may appear
 * on any stderr.
 *
 * Every `examples/<name>/README.md` is run, found afresh each time: a new example is covered without
 * touching this file. Conventions for the commands of an example README (stated in each README):
 * - a command that runs `tsx examples/...` starts the example: it runs until Ctrl-C. The test starts the
 *   ones of the last block that starts any (the two-region block, when there is one) in the background,
 *   waits for their HTTP ports (`PORT=<n>`, else 3000), and stops them at the end. One that bounds its
 *   own run with `--for <duration>` is not a server: it runs (from the repository root) like any other
 *   command, and its documented output is checked once it ended;
 * - any other command must end by itself: one that would run on (a stream, an open WebSocket) ends with
 *   ` &` and is bounded by the example (an option such as `RECHECK_MS`, a `--max-time`); the test runs it
 *   in the background and checks its documented output once it ended, at the next `wait` line (which
 *   waits for it, as it does in a shell) or at the end of the README, within 30 s;
 * - `npm ci` / `npm install` lines are not run (the test runs in an installed clone).
 *
 * Only ports and servers are changed, so that tests never share anything: every 127.0.0.1 port the
 * commands name (and `PORT=`) becomes a free port, every Redis a private redis-server (the example's
 * default `REDIS_URL` too, and `redis-cli` talks to that one), NATS a private nats-server, and the AMQP
 * names get a unique prefix. Examples that need a broker have their own setup below; every other example
 * needs no more than Redis and runs with the generic one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats } from './helpers/nats-server.js';
import { type ReadmeCommand, readmeCommands, showsDocumented } from './helpers/readme.js';
import {
  eventually,
  freePort,
  hasRedis,
  type PrivateRedis,
  serviceAvailable,
  startRedis,
  waitForPort,
} from './helpers/servers.js';
import { deleteTopology } from './transports/amqp-fixtures.js';

const hasRabbit = hasRedis && (await serviceAvailable('rabbitmq', 5672));
const hasNats = hasRedis && (await serviceAvailable('nats', 4222));

const ROOT = process.cwd();
/** A command whose documented output may take a moment to come true (replication) is run again. */
const RETRY_FOR_MS = 10_000;
/** How long a background command (` &`) may run before the test gives up on it. */
const BACKGROUND_FOR_MS = 30_000;
/** Examples that need a broker: they have a setup of their own (the describes at the end). */
const OWN_SETUP = new Set(['express-amqp', 'fastify-nats']);

interface Setup {
  /** Environment of the example's processes (assignments in the README command win). */
  env: Record<string, string>;
  /** The example's HTTP ports, to wait for. */
  ports: number[];
  /** Turns a README command into the same command against this test's ports and servers. */
  rewrite(command: string): string;
  /** Checks what one example printed once stopped with Ctrl-C. */
  stopped(stdout: string, context: string): void;
}

/** Whether any process of group `pgid` is still running. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** express examples print "bye" once the store, transport and client are closed. */
function saidBye(stdout: string, context: string): void {
  expect(stdout, context).toMatch(/SIGINT: shutting down\n(.*\n)*bye\n/);
}

/** How an example that logs JSON lines (fastify) or plain lines (express) shows a clean shutdown. */
function stoppedCleanly(stdout: string, context: string): void {
  if (stdout.split('\n').some((line) => line.startsWith('{'))) loggedCleanShutdown(stdout, context);
  else saidBye(stdout, context);
}

/** fastify examples log JSON lines: the shutdown, and nothing at warn level (40) or above. */
function loggedCleanShutdown(stdout: string, context: string): void {
  const logs = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg?: string });
  expect(
    logs.some((log) => log.msg === 'SIGINT: shutting down'),
    context,
  ).toBe(true);
  expect(
    logs.filter((log) => log.level >= 40),
    context,
  ).toEqual([]);
}

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

function environment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of ['NODE_OPTIONS', 'NODE_ENV', 'REGION', 'REGIONS', 'SESSION_SECRET']) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

function collect(child: ChildProcess): () => Output {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return () => ({ code: child.exitCode, stdout, stderr });
}

async function shell(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Output> {
  const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  const [code] = await once(child, 'close');
  return { ...output(), code: code as number | null };
}

/** Builds {@link Setup.rewrite}: ports 3000/3001, Redis URLs and the machine's redis-cli. */
function rewriter(options: {
  ports: Record<string, number>;
  redisUrls?: Record<string, string>;
  redisCli?: PrivateRedis;
}): (command: string) => string {
  return (command) => {
    let out = command.replace(
      /\b(PORT=|127\.0\.0\.1:)(\d{4})\b/g,
      (_all, lead: string, port: string) => `${lead}${options.ports[port] ?? port}`,
    );
    for (const [from, to] of Object.entries(options.redisUrls ?? {})) {
      out = out.replace(new RegExp(`${from.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?!\\d)`, 'g'), to);
    }
    if (options.redisCli) out = out.replace(/^redis-cli\b/, `redis-cli -p ${options.redisCli.port}`);
    return out;
  };
}

const startsExample = (command: string) => /\btsx examples\//.test(command);
const isServer = (c: ReadmeCommand) => startsExample(c.command) && !/\s--for\b/.test(c.command);
const isInstall = (c: ReadmeCommand) => /^npm (ci|install|i)\b/.test(c.command);
const isRead = (command: string) =>
  command.startsWith('redis-cli') || (command.startsWith('curl') && !/-X\s*POST/.test(command));

/** Runs `examples/<name>/README.md` as written (see the file comment). */
async function runReadme(name: string, setup: Setup): Promise<void> {
  const commands = readmeCommands(await readFile(join(ROOT, 'examples', name, 'README.md'), 'utf8'));
  // The servers of the last block that starts any (the two-region block, when there is one).
  const serverBlock = Math.max(...commands.filter(isServer).map((c) => c.block));
  const servers = commands.filter((c) => isServer(c) && c.block === serverBlock);
  const steps = commands.filter((c) => !isServer(c) && !isInstall(c));
  expect(
    servers.length + steps.filter((c) => startsExample(c.command)).length,
    'commands that start the example',
  ).toBeGreaterThan(0);
  expect(steps.flatMap((c) => c.expected).length, 'documented outputs').toBeGreaterThan(1);

  const work = await mkdtemp(join(tmpdir(), `geosession-${name}-`));
  const running: {
    command: string;
    child: ChildProcess;
    output: () => Output;
    closed: Promise<unknown[]>;
  }[] = [];
  try {
    for (const server of servers) {
      const command = setup.rewrite(server.command);
      const child = spawn('bash', ['-c', command], {
        cwd: ROOT,
        env: environment(setup.env),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, which Ctrl-C is sent to
      });
      running.push({ command, child, output: collect(child), closed: once(child, 'close') });
    }
    await Promise.all(setup.ports.map((port) => waitForPort(port, 20_000)));

    const previous = new Map<string, string>();
    let sid = '';
    const background: { step: ReadmeCommand; command: string; done: Promise<Output> }[] = [];
    // Waits for the background commands (` &`) and checks what each printed once it ended.
    const waitForBackground = async () => {
      for (const job of background.splice(0)) {
        const output = await Promise.race([
          job.done,
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), BACKGROUND_FOR_MS)),
        ]);
        const context = `${job.step.command}\n  ran as: ${job.command}`;
        expect(output, `${context}\n  still running after ${BACKGROUND_FOR_MS} ms`).toBeDefined();
        if (!output) continue;
        const printed = `${context}\n  printed: ${output.stdout}${output.stderr}`;
        expect(output.code, printed).toBe(0);
        expect(output.stderr, printed).toBe('');
        const missing = job.step.expected.filter((line) => !showsDocumented(output.stdout, line, undefined));
        expect(missing, `documented output not printed by: ${printed}`).toEqual([]);
      }
    };
    for (const step of steps) {
      if (step.command === 'wait') {
        await waitForBackground();
        continue;
      }
      if (step.command.endsWith(' &')) {
        const command = setup.rewrite(step.command.slice(0, -2).trim());
        background.push({ step, command, done: shell(command, work, environment({})) });
        continue;
      }
      const command = setup.rewrite(step.command.replaceAll('<session id from /me>', sid));
      const deadline = Date.now() + (isRead(command) ? RETRY_FOR_MS : 0);
      let output: Output;
      let missing: string[];
      for (;;) {
        output = await shell(command, startsExample(command) ? ROOT : work, environment(setup.env));
        const before = previous.get(command);
        missing = step.expected.filter((line) => !showsDocumented(output.stdout, line, before));
        if ((output.code === 0 && missing.length === 0) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const context = `${step.command}\n  ran as: ${command}\n  printed: ${output.stdout}${output.stderr}`;
      expect(output.code, context).toBe(0);
      expect(output.stderr, context).toBe('');
      expect(missing, `documented output not printed by: ${context}`).toEqual([]);
      previous.set(command, output.stdout);
      sid = /"sessionId":"([^"]+)"/.exec(output.stdout)?.[1] ?? sid;
    }
    await waitForBackground();

    // Ctrl-C, as in the terminal that runs each example: each stops by itself, cleanly, and leaves no
    // process behind. (npx itself may end by the signal; the example must finish its shutdown.)
    for (const server of running) if (server.child.pid) process.kill(-server.child.pid, 'SIGINT');
    for (const server of running) {
      const [code, signal] = await server.closed;
      await eventually(() => !groupAlive(server.child.pid as number), 15_000);
      const { stdout, stderr } = server.output();
      const context = `${server.command}\n${stdout}${stderr}`;
      expect(code === 0 || signal === 'SIGINT', `${context}\nexit: ${code ?? signal}`).toBe(true);
      expect(stderr, context).toBe('');
      setup.stopped(stdout, context);
    }
  } finally {
    for (const server of running) {
      if (server.child.exitCode === null && server.child.pid) {
        try {
          process.kill(-server.child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await rm(work, { recursive: true, force: true });
  }
}

/** Every example with a README, but those with a setup of their own. */
const GENERIC = (await readdir(join(ROOT, 'examples'), { withFileTypes: true }))
  .filter((entry) => entry.isDirectory() && !OWN_SETUP.has(entry.name))
  .map((entry) => entry.name)
  .filter((name) => existsSync(join(ROOT, 'examples', name, 'README.md')))
  .sort();

describe.skipIf(!hasRedis)('examples that need only Redis, as their READMEs say', () => {
  it('are all found', () => {
    for (const name of ['express-basic', 'fastify-basic', 'websocket-auth']) expect(GENERIC).toContain(name);
  });

  for (const name of GENERIC) {
    it(name, { timeout: 120_000 }, async () => {
      const commands = readmeCommands(await readFile(join(ROOT, 'examples', name, 'README.md'), 'utf8'));
      const text = commands.map((c) => c.command).join('\n');
      // A private redis-server for the example's default Redis and for each Redis URL the commands name.
      const named = [...new Set(text.match(/redis:\/\/127\.0\.0\.1:6379(?:\/\d+)?(?![\d/])/g) ?? [])];
      const servers: PrivateRedis[] = [];
      try {
        const main = await startRedis();
        servers.push(main);
        const redisUrls: Record<string, string> = {};
        for (const url of named.sort((a, b) => b.length - a.length)) {
          const server = await startRedis();
          servers.push(server);
          redisUrls[url] = server.url;
        }
        // A free port for 3000 (the examples' default) and for every other port the commands name.
        const ports: Record<string, number> = { '3000': await freePort() };
        for (const [, port] of text.matchAll(/(?:PORT=|127\.0\.0\.1:)(\d{4})\b/g)) {
          if (port && port !== '6379' && !(port in ports)) ports[port] = await freePort();
        }
        const serverBlock = Math.max(...commands.filter(isServer).map((c) => c.block));
        const listening = commands
          .filter((c) => isServer(c) && c.block === serverBlock)
          .map((c) => ports[/\bPORT=(\d{4})\b/.exec(c.command)?.[1] ?? '3000'] as number);
        await runReadme(name, {
          env: { PORT: String(ports['3000']), REDIS_URL: main.url },
          ports: listening,
          rewrite: rewriter({ ports, redisUrls, redisCli: main }),
          stopped: stoppedCleanly,
        });
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    });
  }
});

describe.skipIf(!hasRabbit)('examples/express-amqp, two regions, as its README says', () => {
  const namePrefix = `geosession-example-${process.pid}`;
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  beforeAll(async () => {
    [hk, kr] = await Promise.all([startRedis(), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([hk?.stop(), kr?.stop()]);
    await deleteTopology(['sess:'], ['hk', 'kr'], namePrefix);
  });

  it('express-amqp', { timeout: 90_000 }, async () => {
    const ports = [await freePort(), await freePort()] as const;
    await runReadme('express-amqp', {
      env: { PORT: String(ports[0]), REDIS_URL: hk.url, AMQP_NAME_PREFIX: namePrefix },
      ports: [...ports],
      rewrite: rewriter({
        ports: { '3000': ports[0], '3001': ports[1] },
        redisUrls: { 'redis://127.0.0.1:6379/4': kr.url },
      }),
      stopped: saidBye,
    });
  });
});

describe.skipIf(!hasNats)('examples/fastify-nats, two regions, as its README says', () => {
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  let nats: Awaited<ReturnType<typeof startNats>>;
  beforeAll(async () => {
    [hk, kr, nats] = await Promise.all([startRedis(), startRedis(), startNats()]);
  });
  afterAll(async () => {
    await Promise.all([hk?.stop(), kr?.stop(), nats?.stop()]);
  });

  it('fastify-nats', { timeout: 90_000 }, async () => {
    const ports = [await freePort(), await freePort()] as const;
    await runReadme('fastify-nats', {
      env: { NATS_URL: nats.url },
      ports: [...ports],
      rewrite: rewriter({
        ports: { '3000': ports[0], '3001': ports[1] },
        redisUrls: { 'redis://127.0.0.1:6379/14': hk.url, 'redis://127.0.0.1:6379/15': kr.url },
      }),
      stopped: loggedCleanShutdown,
    });
  });
});
