/**
 * The examples as their READMEs tell a newcomer to use them: each test starts the example with the
 * README's own command, runs every other shell command of the README in order (curl, redis-cli, cp),
 * checks each documented output (`# → …` lines, see helpers/readme.ts), then stops the example with
 * Ctrl-C (SIGINT to its process group, as a terminal does) and checks it exits cleanly. Nothing may appear
 * on any stderr.
 *
 * Only ports and servers are changed, so that tests never share anything: 127.0.0.1:3000/3001 become free
 * ports, every Redis a private redis-server, NATS a private nats-server, and the AMQP names get a unique
 * prefix. `npm ci` lines are not run (the test runs in an installed clone).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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

const isServer = (c: ReadmeCommand) => /\btsx examples\//.test(c.command);
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
  expect(servers.length, 'commands that start the example').toBeGreaterThan(0);
  expect(steps.filter((c) => c.expected.length > 0).length, 'documented outputs').toBeGreaterThan(3);

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
    for (const step of steps) {
      const command = setup.rewrite(step.command.replaceAll('<session id from /me>', sid));
      const deadline = Date.now() + (isRead(command) ? RETRY_FOR_MS : 0);
      let output: Output;
      let missing: string[];
      for (;;) {
        output = await shell(command, work, environment({}));
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

describe.skipIf(!hasRedis)('examples, single region, as their READMEs say', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  for (const name of ['express-basic', 'fastify-basic']) {
    it(name, { timeout: 90_000 }, async () => {
      await redis.client().flushall();
      const port = await freePort();
      await runReadme(name, {
        env: { PORT: String(port), REDIS_URL: redis.url },
        ports: [port],
        rewrite: rewriter({ ports: { '3000': port }, redisCli: redis }),
        stopped: name.startsWith('express') ? saidBye : loggedCleanShutdown,
      });
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
