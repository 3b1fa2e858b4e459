/**
 * The connection registry (issue 17 part 4, seed 001) on real Redis: grouping by pod, one round trip per
 * call, leases (a pod SIGKILLed without cleanup disappears within its lease, with no process's help),
 * restarts, close(), and bad input.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, type ConnectionRegistry, createConnectionRegistry } from '../../src/index.js';
import { registryKeys } from '../../src/registry/keys.js';
import { dropKeys, eventually, hasRedis, sharedRedis, startRedis, uniquePrefix } from '../helpers/servers.js';

const CHILD = fileURLToPath(new URL('./registry-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const client = sharedRedis({ lazyConnect: true });
const prefixes: string[] = [];
const registries: ConnectionRegistry[] = [];

afterAll(async () => {
  for (const registry of registries) await registry.close().catch(() => {});
  for (const prefix of hasRedis ? prefixes : []) await dropKeys(client, `${prefix}|`);
  for (const prefix of hasRedis ? prefixes : []) await dropKeys(client, prefix);
  client.disconnect();
});

function newPrefix(name: string): string {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return prefix;
}

function pod(prefix: string, name: string, extra: { leaseMs?: number; region?: string } = {}) {
  const registry = createConnectionRegistry({
    client,
    region: extra.region ?? 'hk',
    pod: name,
    prefix,
    ...extra,
  });
  registries.push(registry);
  return registry;
}

/** Pods as sorted plain data, for comparisons. */
function shape(groups: Awaited<ReturnType<ConnectionRegistry['podsOf']>>) {
  return groups
    .map((g) => ({
      ...g,
      connections: [...g.connections].sort((a, b) => a.connectionId.localeCompare(b.connectionId)),
    }))
    .sort((a, b) => `${a.region}|${a.pod}`.localeCompare(`${b.region}|${b.pod}`));
}

describe.runIf(hasRedis)('connection registry', () => {
  it('groups a user’s connections by pod, with their sessions', async () => {
    const prefix = newPrefix('reg-group');
    const [p1, p2, p3] = [pod(prefix, 'pod-1'), pod(prefix, 'pod-2'), pod(prefix, 'pod-3')];
    expect(await p1.register('user123', 'c1', { sid: 'hk.s1' })).toBe(true);
    expect(await p1.register('user123', 'c2')).toBe(true);
    expect(await p2.register('user123', 'c3', { sid: 'hk.s3' })).toBe(true);
    await p3.register('other', 'c4');
    expect(await p1.register('user123', 'c1', { sid: 'hk.s1b' })).toBe(false); // again: sid updated

    expect(shape(await p3.podsOf('user123'))).toEqual([
      {
        region: 'hk',
        pod: 'pod-1',
        connections: [{ connectionId: 'c1', sid: 'hk.s1b' }, { connectionId: 'c2' }],
      },
      { region: 'hk', pod: 'pod-2', connections: [{ connectionId: 'c3', sid: 'hk.s3' }] },
    ]);
    expect(await p1.podsOf('nobody')).toEqual([]);

    expect(await p1.unregister('c2')).toBe(true);
    expect(await p1.unregister('c2')).toBe(false);
    expect(await p2.unregister('c1')).toBe(false); // not pod-2's
    expect(shape(await p2.podsOf('user123')).map((g) => [g.pod, g.connections.length])).toEqual([
      ['pod-1', 1],
      ['pod-2', 1],
    ]);
  });

  it('answers podsOf, register and unregister with one command each on the local Redis', async () => {
    const redis = await startRedis();
    try {
      const own = redis.client();
      const prefix = uniquePrefix('reg-rtt');
      const registry = createConnectionRegistry({ client: own, region: 'hk', pod: 'p', prefix });
      await registry.register('u', 'warm'); // the claim is done and the scripts are loaded
      await registry.podsOf('u');
      await registry.unregister('warm');
      const id = Number(await own.client('ID'));
      const monitor = await redis.client().monitor();
      const seen: string[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        // Commands run by a script are reported with the source "lua": only the client's own count.
        if (source !== 'lua' && !source.includes('lua')) seen.push(String(args[0]).toLowerCase());
      });
      const mark = redis.client();
      await mark.ping('start');
      await registry.register('u', 'c1');
      await registry.podsOf('u');
      await registry.unregister('c1');
      await mark.ping('end');
      await eventually(() => seen.includes('ping') && seen.filter((c) => c === 'ping').length >= 2);
      const between = seen.slice(seen.indexOf('ping') + 1, seen.lastIndexOf('ping'));
      expect(between).toEqual(['evalsha', 'evalsha', 'evalsha']);
      expect(id).toBeGreaterThan(0);
      monitor.disconnect();
      await registry.close();
    } finally {
      await redis.stop();
    }
  });

  it('drops the connections of a pod killed without cleanup within its lease', async () => {
    const prefix = newPrefix('reg-kill');
    const leaseMs = 1_500;
    const survivor = pod(prefix, 'pod-alive', { leaseMs });
    await survivor.register('u1', 'alive-1');
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: ROOT,
      env: {
        ...process.env,
        REGISTRY_PORT: '6379',
        REGISTRY_PREFIX: prefix,
        REGISTRY_POD: 'pod-doomed',
        REGISTRY_USER: 'u1',
        REGISTRY_LEASE_MS: String(leaseMs),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (chunk) => {
      out += String(chunk);
    });
    try {
      await eventually(() => out.includes('ready'), 20_000);
      // Alive past several renewals: the lease is renewed while the pod lives.
      await new Promise((r) => setTimeout(r, leaseMs * 2));
      expect(shape(await survivor.podsOf('u1')).map((g) => g.pod)).toEqual(['pod-alive', 'pod-doomed']);
      child.kill('SIGKILL');
      const killedAt = Date.now();
      await eventually(async () => (await survivor.podsOf('u1')).length === 1, 20_000);
      expect((await survivor.podsOf('u1'))[0]?.pod).toBe('pod-alive');
      // Not kept either: the scripts deleted the dead entries from the user's hash.
      const keys = registryKeys(prefix);
      expect((await client.hkeys(keys.user('u1'))).sort()).toEqual(['hk|pod-alive|alive-1']);
      expect(await client.zscore(keys.leases, 'hk|pod-doomed')).toBeNull();
      // Within the lease (plus the renewal period it may have just renewed in, and slack for a busy machine).
      expect(Date.now() - killedAt).toBeLessThan(leaseMs * 2 + 5_000);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a restarted pod takes a new incarnation: the connections of the old one are gone at once', async () => {
    const prefix = newPrefix('reg-restart');
    const before = pod(prefix, 'pod-1', { leaseMs: 60_000 });
    await before.register('u', 'old');
    const errors: Error[] = [];
    before.on('error', (e) => errors.push(e));
    const after = pod(prefix, 'pod-1', { leaseMs: 60_000 });
    await after.register('u', 'new');
    expect(shape(await after.podsOf('u'))).toEqual([
      { region: 'hk', pod: 'pod-1', connections: [{ connectionId: 'new' }] },
    ]);
    // The old process learns it lost the pod and writes nothing more.
    expect(await before.register('u', 'late')).toBe(false);
    expect(errors.map((e) => e.message).join()).toMatch(/claimed by another registry process/);
    expect((await after.podsOf('u'))[0]?.connections).toEqual([{ connectionId: 'new' }]);
  });

  it('registers its connections again when its lease lapsed while it was alive', async () => {
    const prefix = newPrefix('reg-lapse');
    const registry = pod(prefix, 'pod-1', { leaseMs: 2_000 });
    await registry.register('u', 'c1');
    // As if the process had hung past its lease: the lease is gone, a reader prunes the entry.
    const keys = registryKeys(prefix);
    await client.zadd(keys.leases, '1', 'hk|pod-1');
    expect(await registry.podsOf('u')).toEqual([]);
    await eventually(async () => (await registry.podsOf('u')).length === 1, 10_000);
    expect((await registry.podsOf('u'))[0]?.connections).toEqual([{ connectionId: 'c1' }]);
  });

  it('close() removes the pod’s connections and its lease; calls afterwards are refused', async () => {
    const prefix = newPrefix('reg-close');
    const [a, b] = [pod(prefix, 'a'), pod(prefix, 'b')];
    for (let i = 0; i < 300; i++) await a.register(`u${i % 3}`, `c${i}`); // more than one chunk
    await b.register('u0', 'b0');
    await a.close();
    await a.close();
    expect(shape(await b.podsOf('u0'))).toEqual([
      { region: 'hk', pod: 'b', connections: [{ connectionId: 'b0' }] },
    ]);
    const keys = registryKeys(prefix);
    expect(await client.hlen(keys.user('u1'))).toBe(0);
    expect(await client.zscore(keys.leases, 'hk|a')).toBeNull();
    expect(await client.hget(keys.incs, 'hk|a')).toBeNull();
    await expect(a.register('u0', 'x')).rejects.toThrow(/closed/);
    await expect(a.podsOf('u0')).rejects.toThrow(/closed/);
  });

  it('refuses bad ids with a clear error, and bad options naming the option', async () => {
    const prefix = newPrefix('reg-bad');
    const registry = pod(prefix, 'p');
    for (const bad of ['', 'a|b', '{tag}', 'sp ace', 'é', 'x'.repeat(257), 42, null]) {
      await expect(registry.register(bad as string, 'c')).rejects.toThrow(/register refused a user id/);
      await expect(registry.register('u', bad as string)).rejects.toThrow(/register refused a connection id/);
      await expect(registry.podsOf(bad as string)).rejects.toThrow(/podsOf refused a user id/);
      await expect(registry.unregister(bad as string)).rejects.toThrow(/unregister refused a connection id/);
    }
    await expect(registry.register('u', 'c', { sid: 'a|b' })).rejects.toThrow(/session id/);
    // The longest ids work.
    const long = 'x'.repeat(256);
    expect(await registry.register(long, long, { sid: 'hk.s' })).toBe(true);
    expect((await registry.podsOf(long))[0]?.connections).toEqual([{ connectionId: long, sid: 'hk.s' }]);
    await registry.register('u', 'c');
    await expect(registry.register('someone-else', 'c')).rejects.toThrow(/registered to another user/);

    const base = { client, region: 'hk', pod: 'p', prefix };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, client: undefined }, 'client'],
      [{ ...base, region: 'HK' }, 'region'],
      [{ ...base, pod: 'a|b' }, 'pod'],
      [{ ...base, leaseMs: 50 }, 'leaseMs'],
      [{ ...base, leaseMs: 1.5 }, 'leaseMs'],
      [{ ...base, leaseMs: 1000, renewMs: 1000 }, 'renewMs'],
      [{ ...base, prefix: 'a|b' }, 'prefix'],
      [{ ...base, lease: 1 }, 'lease'],
    ];
    for (const [options, option] of cases) {
      let thrown: unknown;
      try {
        createConnectionRegistry(options as never);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).option).toBe(option);
    }
  });
});
