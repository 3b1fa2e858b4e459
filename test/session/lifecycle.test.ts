/**
 * A lifecycle for replication (issue 14, item 4): `close()` at any moment, including during startup
 * against a region that does not answer, leaves no reader, timer, socket or pending promise behind and
 * reports no error afterwards. Before, a store whose Redis Streams transport included a region that
 * accepts connections and never answers, closed 20-50 ms after construction, resolved `close()` at once,
 * then built its readers anyway and never exited; over NATS an error came 5 s after close; AMQP's
 * `close()` waited out its connect timeout.
 *
 * Each case runs in a child process (test/helpers/lifecycle-child.ts) that builds a store with one
 * transport, closes it after a delay, and must then exit by itself (it never calls `process.exit`)
 * before the parent's kill timeout, with nothing on stderr after close. Timing is not asserted: a child
 * that leaks never exits and is killed.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateNats, startNats } from '../helpers/nats-server.js';
import {
  dropKeys,
  hasRedis,
  portAnswers,
  serviceAvailable,
  sharedRedis,
  uniquePrefix,
} from '../helpers/servers.js';
import { AMQP_URL, deleteTopology } from '../transports/amqp-fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/lifecycle-child.ts', import.meta.url));
/** A child still running this long after it started is killed: it would never have exited. */
const KILL_AFTER_MS = 25_000;
const DELAYS = [0, 5, 20, 50, 100];

const hasRabbit = await serviceAvailable('rabbitmq', 5672);
const hasNats = await portAnswers(4222);

/** A TCP server that accepts every connection and never sends a byte. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.resume(); // reads (and drops) what it is sent, so it sees a client's FIN and closes too
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Outcome {
  code: number | null;
  killed: boolean;
  stdout: string;
  stderr: string;
}

function runChild(env: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CHILD],
      { cwd: ROOT, timeout: KILL_AFTER_MS, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: number; killed?: boolean }) | null;
        resolve({
          code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0,
          killed: failure?.killed === true,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** Runs `work` over `items`, `limit` at a time (the machine has 2 CPUs). */
async function inBatches<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(work));
}

describe.skipIf(!hasRedis)('close() at any moment leaves nothing behind (child processes)', () => {
  let silent: Awaited<ReturnType<typeof silentServer>>;
  let nats: PrivateNats | undefined;
  const prefixes: string[] = [];
  const namePrefix = `gslife.${process.pid}`;

  beforeAll(async () => {
    silent = await silentServer();
    if (hasNats) nats = await startNats();
  });
  afterAll(async () => {
    await silent?.close();
    await nats?.stop();
    const redis = sharedRedis();
    for (const prefix of prefixes) await dropKeys(redis, prefix);
    redis.disconnect();
    if (hasRabbit) await deleteTopology(prefixes, ['hk', 'kr'], namePrefix);
  });

  type Case = { transport: string; target: 'silent' | 'normal'; delay: number };
  const cases: Case[] = [];
  for (const transport of ['redis-streams', 'amqp', 'nats', 'memory']) {
    for (const target of ['silent', 'normal'] as const) {
      if (transport === 'memory' && target === 'silent') continue; // nothing to connect to
      for (const delay of target === 'silent' ? DELAYS : [0, 20, 100])
        cases.push({ transport, target, delay });
    }
  }

  it('every transport, against a region or broker that never answers and against a normal one, closed 0-100 ms after construction: the process exits by itself, with no error after close', async () => {
    const failures: string[] = [];
    const runnable = cases.filter(
      (c) => (c.transport !== 'amqp' || hasRabbit) && (c.transport !== 'nats' || nats !== undefined),
    );
    await inBatches(runnable, 3, async (c) => {
      const prefix = uniquePrefix(`life-${c.transport}`);
      prefixes.push(prefix);
      const silentUrl = (scheme: string) => `${scheme}://127.0.0.1:${silent.port}`;
      const outcome = await runChild({
        GEOSESSION_TRANSPORT: c.transport,
        GEOSESSION_DELAY_MS: String(c.delay),
        GEOSESSION_REDIS_PORT: '6379',
        GEOSESSION_REMOTE_PORT: c.target === 'silent' ? String(silent.port) : '6379',
        GEOSESSION_AMQP_URL: c.target === 'silent' ? `amqp://guest:guest@127.0.0.1:${silent.port}` : AMQP_URL,
        GEOSESSION_NATS_URL: c.target === 'silent' ? silentUrl('nats') : (nats?.url ?? ''),
        GEOSESSION_PREFIX: prefix,
        GEOSESSION_NAME_PREFIX: namePrefix,
      });
      const name = `${c.transport} ${c.target} ${c.delay} ms`;
      if (outcome.killed) failures.push(`${name}: never exited (killed after ${KILL_AFTER_MS} ms)`);
      else if (outcome.code !== 0) failures.push(`${name}: exit code ${outcome.code}: ${outcome.stderr}`);
      if (outcome.stderr.includes('AFTER CLOSE')) failures.push(`${name}: ${outcome.stderr.trim()}`);
      if (!outcome.killed && !/^closed \d+ ready=settled$/m.test(outcome.stdout)) {
        failures.push(`${name}: ${outcome.stdout.trim() || 'no output'}`);
      }
    });
    expect(failures).toEqual([]);
  }, 600_000);
});
