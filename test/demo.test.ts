import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRedis, type PrivateRedis, portAnswers, startRedis } from './helpers/servers.js';

const TSX_CLI = 'node_modules/tsx/dist/cli.mjs';
const DEMO = 'examples/demo/index.ts';

/** The environment of a newcomer's shell: none of the demo's own variables set. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['REDIS_HK_URL', 'REDIS_KR_URL', 'GEOSESSION_DEMO_EMBEDDED', 'NODE_OPTIONS']) {
    delete env[name];
  }
  return { ...env, ...extra };
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or 128 + signal number) once the process is gone. */
  exited: Promise<number>;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const exited = once(child, 'close').then(([code, signal]) => {
    clearTimeout(timer);
    return typeof code === 'number' ? code : signal === 'SIGKILL' ? 137 : 128;
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

const demo = (args: string[] = [], env: Record<string, string> = {}) =>
  start(process.execPath, [TSX_CLI, DEMO, ...args], cleanEnv(env));

async function until(run: Run, text: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!run.stdout().includes(text)) {
    if (run.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the demo never printed "${text}":\n${run.stdout()}\n${run.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

const WRITE_STEPS = [
  'log in as alice',
  'add tea to cart',
  'add dumplings to cart',
  'add kimchi to cart',
  'log out',
];

/**
 * What every complete run must show: nothing at all on stderr, exit 0, both regions serving, each region
 * applying events from the other, a measured lag figure (towards the region that did not serve the
 * write) on every write step, none of them replaced by a reason it could not be measured, and the
 * stores' lag counters in agreement with the lag measured for every write.
 */
function expectGoodRun(stdout: string, stderr: string, code: number): void {
  expect(stderr).toBe('');
  expect(code).toBe(0);
  expect(stdout).toMatch(/served by hk/);
  expect(stdout).toMatch(/served by kr/);
  expect(stdout).toContain('"cart":["tea","dumplings","kimchi"]');
  expect(stdout).toContain('logout was final in both regions.');
  expect(stdout).not.toContain('UNEXPECTED');
  for (const region of ['hk', 'kr']) {
    const applied = new RegExp(`^  ${region}: applied (\\d+) events from (hk|kr)`, 'm').exec(stdout);
    expect(applied, `${region}'s counter line`).not.toBeNull();
    expect(Number(applied?.[1]), `events ${region} applied from the other region`).toBeGreaterThan(0);
  }
  const lines = stdout.split('\n');
  for (const label of WRITE_STEPS) {
    const line = lines.find((l) => l.startsWith(label.padEnd(22)));
    const match = line && /served by (hk|kr) .*→ in (hk|kr) (\d+\.\d) ms after the write$/.exec(line);
    expect(match, `a measured lag figure on "${line ?? label}"`).toBeTruthy();
    if (!match) continue;
    expect(match[2], 'the lag is towards the other region').not.toBe(match[1]);
    expect(Number(match[3])).toBeGreaterThan(0);
  }
  expect(stdout).toContain(`lag measured for ${WRITE_STEPS.length} of ${WRITE_STEPS.length} writes`);
  // The demo checks each write's lag counter against what it measured (examples/demo/lag.ts).
  expect(stdout).toContain('the lag counters agree with the lag measured for every write');
  // The "push and log out everywhere" scene: sockets in both regions, one call per pod, and the
  // logout everywhere in kr closing the sockets held in hk.
  expect(stdout).toContain('push and log out everywhere');
  expect(stdout).toContain('  sockets open: 2 in hk, 1 in kr');
  expect(stdout).toContain('  [sender kr] podsOf(alice): hk/hk-a (2), kr/kr-a (1)');
  expect(stdout).toContain('  [sender kr] 2 calls for 3 connections, 3 delivered');
  expect(stdout).toContain('  kr ended 2 sessions');
  expect(stdout).toMatch(/^ {2}\[hk-a\] alice's session ended \(.* in kr\): closing hk-a\./m);
  expect(stdout).toContain('  laptop tab 1: closed (1008)');
  expect(stdout).toContain('  laptop tab 2: closed (1008)');
  expect(stdout).toContain('every socket of alice was closed by her logout everywhere.');
}

/** Ports and temporary directory of the private redis-servers, from the demo's header. */
function privateServers(stdout: string): { ports: number[]; dir: string } {
  const match = /hk on port (\d+), kr on port (\d+), files in (\S+)\)/.exec(stdout);
  if (!match) throw new Error(`no private redis-server line in:\n${stdout}`);
  return { ports: [Number(match[1]), Number(match[2])], dir: match[3] as string };
}

async function expectServersGone(servers: { ports: number[]; dir: string }): Promise<void> {
  expect(existsSync(servers.dir), `${servers.dir} removed`).toBe(false);
  for (const port of servers.ports) expect(await portAnswers(port, 500), `port ${port} closed`).toBe(false);
}

describe('npm run demo (embedded default: a private redis-server per region)', () => {
  it('runs as the README says, with nothing on stderr, and leaves no server or directory behind', async () => {
    const run = start('npm', ['run', 'demo'], cleanEnv());
    const code = await run.exited;
    expectGoodRun(run.stdout(), run.stderr(), code);
    expect(run.stdout()).toContain('a private redis-server per region');
    expect(run.stdout()).toContain('Redis Streams transport');
    await expectServersGone(privateServers(run.stdout()));
  });

  it('stops its servers and removes their directory on SIGTERM mid-run', async () => {
    const run = demo(['--pause', '300']);
    await until(run, 'browse 1');
    const servers = privateServers(run.stdout());
    expect(existsSync(servers.dir)).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(143);
    expect(run.stderr()).toBe('');
    expect(run.stdout()).toContain('cleaned up.');
    await expectServersGone(servers);
  });
});

describe('npm run demo (embedded fallback: ioredis-mock)', () => {
  it('runs the real store, scripts and applier when forced with GEOSESSION_DEMO_EMBEDDED=mock', async () => {
    const run = demo([], { GEOSESSION_DEMO_EMBEDDED: 'mock' });
    const code = await run.exited;
    expectGoodRun(run.stdout(), run.stderr(), code);
    expect(run.stdout()).toContain('in-memory Redis (ioredis-mock; as GEOSESSION_DEMO_EMBEDDED=mock asks)');
    expect(run.stdout()).toContain('memory transport');
  });

  it('falls back to it by itself when no redis-server is on PATH', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'geosession-no-redis-'));
    try {
      const run = demo([], { PATH: empty });
      const code = await run.exited;
      expectGoodRun(run.stdout(), run.stderr(), code);
      expect(run.stdout()).toContain('in-memory Redis (ioredis-mock; no redis-server on PATH)');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!hasRedis)('npm run demo -- --hk <url> --kr <url>', () => {
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  let clients: Redis[];
  beforeAll(async () => {
    [hk, kr] = await Promise.all([startRedis(), startRedis()]);
    clients = [hk.client(), kr.client()];
  });
  afterAll(async () => {
    await Promise.all([hk?.stop(), kr?.stop()]);
  });

  /** Every key matching the patterns the demo writes (`demo:*` values, `{demo:*` everything else). */
  async function demoKeys(client: Redis): Promise<string[]> {
    const found: string[] = [];
    for (const pattern of ['demo:*', '{demo:*']) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
    }
    return found.sort();
  }

  it('uses real Redis and the Redis Streams transport, and removes every key it wrote', async () => {
    const run = demo(['--hk', hk.url, '--kr', kr.url]);
    const code = await run.exited;
    expectGoodRun(run.stdout(), run.stderr(), code);
    expect(run.stdout()).toContain('real Redis');
    expect(run.stdout()).toContain('Redis Streams transport');
    for (const client of clients) expect(await demoKeys(client)).toEqual([]);
  });

  it('removes every key it wrote when interrupted with Ctrl-C (SIGINT) mid-run', async () => {
    const run = demo(['--hk', hk.url, '--kr', kr.url, '--pause', '300']);
    await until(run, 'add tea to cart');
    // Mid-run there is something to clean up: session values, metadata and both outbox streams.
    const before = [...(await demoKeys(clients[0] as Redis)), ...(await demoKeys(clients[1] as Redis))];
    expect(before.some((key) => key.startsWith('demo:'))).toBe(true);
    expect(before.some((key) => key.endsWith('}:m'))).toBe(true);
    expect(before).toContain('{demo:|outbox}:hk');
    expect(before).toContain('{demo:|outbox}:kr');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toBe('');
    expect(run.stdout()).toContain('cleaned up.');
    expect(run.stdout()).not.toContain('logout was final');
    for (const client of clients) expect(await demoKeys(client)).toEqual([]);
  });
});
