/**
 * Transient failures of the receiving region's Redis are retried, never dead-lettered (issue 14 item 1):
 * kr's Redis out of memory with `noeviction`, busy with a long script, and a store client left on a
 * read-only replica until it is promoted. In each, hk writes 14 changes while kr cannot apply them, a
 * logout among them; once kr's Redis takes writes again every change has arrived, the logged-out
 * session is not served in kr, nothing was dead-lettered, and the failures were reported with their
 * reply code. Two private redis-servers, Redis Streams, sealed; `claimIdleMs` stays at its 30 s default
 * so that only the retry after a failed batch can bring the changes in time. No timing assertions.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import {
  createDeployment,
  type Deployment,
  TRANSPORT_KINDS,
  type TransportKind,
  transportAvailable,
} from '../helpers/deployment.js';
import { generatePasetoKey, localSealer, session } from '../helpers/forgery.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const WAIT = 20_000;
const CHANGES = 14;

let deployment: Deployment | undefined;
const extra: PrivateRedis[] = [];

afterEach(async () => {
  await deployment?.close();
  deployment = undefined;
  for (const server of extra.splice(0)) await server.stop();
});

async function twoRegions(kind: TransportKind = 'redis-streams'): Promise<Deployment> {
  const { key } = generatePasetoKey();
  const d = await createDeployment(kind, ['hk', 'kr'], {
    transport: { 'redis-streams': { claimIdleMs: 30_000 } },
  });
  deployment = d;
  await d.start('hk', { sealer: localSealer([key]) });
  await d.start('kr', { sealer: localSealer([key]) });
  return d;
}

/** True once kr met a failure applying (transient on the fixed code, a refusal on the old code). */
function krFailed(d: Deployment): boolean {
  const stats = d.store('kr').replicationStats();
  const transient = (stats as { transient?: { count: number } } | undefined)?.transient?.count ?? 0;
  return transient > 0 || (stats?.rejected.poison ?? 0) > 0;
}

/**
 * A logged-in session that kr holds; then, while `fault` holds kr's Redis, 13 new sessions and the
 * logout of the first (14 changes) in hk; then `recover`. Checks the end state in kr.
 */
async function changesThroughFault(
  d: Deployment,
  fault: () => Promise<void>,
  recover: () => Promise<void>,
  reason: string,
): Promise<void> {
  const hk = d.store('hk');
  const loggedOut = hk.genid();
  await hk.set(loggedOut, session({ user: 'mallory-victim' }));
  await eventually(async () => (await d.store('kr').get(loggedOut)) !== null, WAIT);

  await fault();
  const sids = Array.from({ length: CHANGES - 1 }, () => hk.genid());
  for (const [i, sid] of sids.entries()) await hk.set(sid, session({ user: `user${i}`, n: i }));
  await hk.destroy(loggedOut);
  await eventually(() => krFailed(d), WAIT);
  await recover();

  const kr = d.store('kr');
  await eventually(async () => {
    for (const [i, sid] of sids.entries()) if ((await kr.get(sid))?.n !== i) return false;
    return kr.isDestroyed(loggedOut);
  }, WAIT);
  expect(await kr.get(loggedOut)).toBeNull();
  expect(d.rejected.kr).toEqual([]);
  expect(await kr.deadLetters()).toEqual([]);
  const stats = kr.replicationStats();
  expect(stats?.rejected).toEqual({});
  expect(stats?.transient.byReason[reason]).toBeGreaterThan(0);
  expect(stats?.transient.last?.reason).toBeDefined();
  const reported = d.errors.kr?.filter((e): e is TransientError => e instanceof TransientError) ?? [];
  expect(reported.some((e) => e.reason === reason && e.code === 'ERR_GEOSESSION_TRANSIENT')).toBe(true);
}

/** Fills `client`'s Redis until it answers OOM (maxmemory a little above what it uses, noeviction). */
async function fillUntilOom(client: Redis): Promise<string[]> {
  const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
  await client.config('SET', 'maxmemory-policy', 'noeviction');
  await client.config('SET', 'maxmemory', String(used + 2_000_000));
  const filler: string[] = [];
  const chunk = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 10_000; i++) {
    const key = `filler:${i}`;
    try {
      await client.set(key, chunk);
      filler.push(key);
    } catch (error) {
      if (!(error as Error).message.startsWith('OOM')) throw error;
      // Full. Buffers freed after the refused write would let small writes in again: stay well past it.
      const now = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
      await client.config('SET', 'maxmemory', String(now - 500_000));
      return filler;
    }
  }
  throw new Error('never ran out of memory');
}

describe.skipIf(!hasRedis)('transient failures in the receiving region', () => {
  it.each(TRANSPORT_KINDS)(
    'kr out of memory (noeviction), over %s: every change arrives once memory is freed, the logout too',
    async (kind) => {
      if (!(await transportAvailable(kind))) return;
      const d = await twoRegions(kind);
      const admin = d.servers.kr?.client() as Redis;
      let filler: string[] = [];
      await changesThroughFault(
        d,
        async () => {
          filler = await fillUntilOom(admin);
        },
        async () => {
          // Hold the fault a little longer, so that the batch fails more than once.
          await new Promise((r) => setTimeout(r, 1500));
          await admin.del(...filler);
          await admin.config('SET', 'maxmemory', '0');
        },
        'OOM',
      );
    },
    60_000,
  );

  it('kr busy with a 5 s script: every change arrives after it, the logout too', async () => {
    const d = await twoRegions();
    const admin = d.servers.kr?.client() as Redis;
    await admin.config('SET', 'busy-reply-threshold', '100');
    const busy = d.servers.kr?.client() as Redis;
    let script: Promise<unknown> | undefined;
    await changesThroughFault(
      d,
      async () => {
        // A read-only busy loop of 5 s (TIME only): past 100 ms every other client gets BUSY.
        script = busy.eval(
          `local t = redis.call('TIME')
           while true do
             local n = redis.call('TIME')
             if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 5000000 then break end
           end
           return 1`,
          0,
        );
        await eventually(async () => {
          try {
            await admin.ping();
            return false;
          } catch (error) {
            return (error as Error).message.startsWith('BUSY');
          }
        }, WAIT);
      },
      async () => {
        await script;
      },
      'BUSY',
    );
  }, 60_000);

  it('kr on a read-only replica until it is promoted: every change arrives, none is dead-lettered', async () => {
    const d = await twoRegions();
    const primary = await startRedis();
    extra.push(primary);
    const admin = d.servers.kr?.client() as Redis;
    await changesThroughFault(
      d,
      async () => {
        // kr's Redis becomes a replica (a failover left kr's client on the demoted primary); loading
        // the primary's data from the socket writes no dump.rdb into the working directory.
        await admin.config('SET', 'repl-diskless-load', 'swapdb');
        await admin.replicaof('127.0.0.1', primary.port);
        await eventually(async () => /master_link_status:up/.test(await admin.info('replication')), WAIT);
      },
      async () => {
        await new Promise((r) => setTimeout(r, 1000));
        await admin.replicaof('NO', 'ONE');
      },
      'READONLY',
    );
  }, 60_000);
});
