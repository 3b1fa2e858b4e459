/**
 * The store reads the Redis `maxmemory-policy` at start and reports, with a code, any policy that can
 * evict tombstones or metadata (issue 14 item 5): `allkeys-lru` and `volatile-lru` are reported,
 * `noeviction` is not; a server where CONFIG is renamed away, or an ACL user without it, is neither a
 * crash nor an error. Private redis-servers.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type GeoSessionError, MemoryPolicyError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/index.js';
import {
  freePort,
  hasRedis,
  type PrivateRedis,
  type ServerProcess,
  startRedis,
  startServerProcess,
} from '../helpers/servers.js';

const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function privateRedis(): Promise<PrivateRedis> {
  const server = await startRedis();
  cleanup.push(() => server.stop());
  return server;
}

/** A store on `client` with its error events kept; resolves once its memory policy check ended. */
async function storeOn(client: Redis): Promise<{ policy: string | undefined; errors: GeoSessionError[] }> {
  const store = new GeoSessionStore({ region: 'hk', client, prefix: 'mp:' });
  const errors: GeoSessionError[] = [];
  store.on('error', (e) => errors.push(e));
  cleanup.push(() => store.close());
  const policy = await store.memoryPolicy();
  // A write and a read go through: the store works whatever the check found.
  await store.set('s1', { cookie: { originalMaxAge: 60_000 }, user: 'a' });
  expect((await store.get('s1'))?.user).toBe('a');
  return { policy, errors };
}

describe.skipIf(!hasRedis)('maxmemory-policy at start', () => {
  for (const policy of ['allkeys-lru', 'volatile-lru', 'volatile-ttl']) {
    it(`${policy} is reported with its code`, async () => {
      const server = await privateRedis();
      const client = server.client();
      await client.config('SET', 'maxmemory-policy', policy);
      const { policy: read, errors } = await storeOn(client);
      expect(read).toBe(policy);
      const reported = errors.filter((e) => e instanceof MemoryPolicyError);
      expect(reported).toHaveLength(1);
      expect(reported[0]?.code).toBe('ERR_GEOSESSION_MEMORY_POLICY');
      expect((reported[0] as MemoryPolicyError).policy).toBe(policy);
      expect(reported[0]?.message).toMatch(/noeviction/);
    });
  }

  it('noeviction is not reported', async () => {
    const server = await privateRedis();
    const client = server.client();
    await client.config('SET', 'maxmemory-policy', 'noeviction');
    const { policy, errors } = await storeOn(client);
    expect(policy).toBe('noeviction');
    expect(errors).toEqual([]);
  });

  it('CONFIG renamed away: no crash, no error, the policy is unknown', async () => {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const server: ServerProcess = await startServerProcess(
      'redis-server',
      [
        ...args,
        '--maxmemory-policy',
        'allkeys-lru',
        '--rename-command',
        'CONFIG',
        '',
        '--loglevel',
        'warning',
      ],
      port,
    );
    cleanup.push(() => server.kill());
    const client = new Redis({ port, host: '127.0.0.1' });
    client.on('error', () => {});
    cleanup.push(async () => client.disconnect());
    const { policy, errors } = await storeOn(client);
    expect(policy).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('an ACL user without CONFIG: no error, the policy is unknown', async () => {
    const server = await privateRedis();
    const admin = server.client();
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await admin.acl('SETUSER', 'app', 'on', '>pw', '~*', '&*', '+@all', '-config');
    const client = server.client({ username: 'app', password: 'pw' });
    const { policy, errors } = await storeOn(client);
    expect(policy).toBeUndefined();
    expect(errors).toEqual([]);
  });
});
